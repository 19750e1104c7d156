{#- Key rotation: salt-run state.orchestrate orch.ceph_openstack_rotate
        pillar='{"ceph_openstack_rotate": {"clients": ["cinder"]}}'
    sync and validate where needed (orch/preflight.jinja) -> plan (the acting mon) -> every
    node ready (a guest that would lose its key stops the run when the old key dies at
    once) -> stage the new keys (the acting mon: pending where the cluster has pending keys)
    -> controllers -> computes (batches) -> every node checks that its keyrings and secrets
    hold the new keys and no guest still holds an old key -> commit (the acting mon: the old
    keys die) -> every mon publishes the new keys -> every node restarts its services once
    and logs in with its new keyrings. Each step requires the one before: a node offline or
    failing stops the run before any old key is invalidated, and re-running the same
    command completes it. Each step waits and names silent nodes as the rollout's do
    (rollout:timeout, rollout:gather_job_timeout; see orch/preflight.jinja).

    One mon acts for the whole rotation (ceph_openstack_rotate:mon, else the first by
    minion ID of the mons that answer): the cluster is one, and two mons staging at once
    would each make a new key. The nodes read the plan and the new keys from that mon's
    mine alone. A rotation works on one cluster: the main one, or the one named by
    ceph_openstack_rotate:cluster (its mons act; its clients are rotated). #}
{%- from "ceph_openstack/map.jinja" import co, rotating with context %}
{%- from "orch/preflight.jinja" import steps as preflight_steps, validate, waits,
    master_ready with context %}
{%- from "orch/rotation.jinja" import acting_mon, rotation_steps with context %}
{%- set t = co.targets %}
{%- set mons = rotating.targets.mon %}
{%- set nodes = {'controller': t.controller, 'compute': t.compute,
                 'all': '( ' ~ t.controller ~ ' ) or ( ' ~ t.compute ~ ' )'} %}
{%- set asked = pillar.get('ceph_openstack_rotate') or {} %}
{%- set acting = acting_mon(mons, asked.get('mon'), waits) | trim %}
{{ preflight_steps('ceph_openstack-rotate') }}
{%- if not master_ready %}
{%- elif not acting %}

ceph_openstack-rotate-mon:
  test.fail_without_changes:
    - name: {{ ('no mon minion of the cluster answered (its targets:mon is '
                ~ mons ~ '): nothing changed') | json }}
    - require:
      - {{ validate }}: ceph_openstack-rotate-validate
{%- else %}
{{- rotation_steps('ceph_openstack-rotate', nodes, mons, acting, dict(asked, mon=acting),
                   [validate, 'ceph_openstack-rotate-validate'], waits,
                   co.rollout.compute_batch) }}
{%- endif %}
