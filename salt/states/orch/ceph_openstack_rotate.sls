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
{%- set t = co.targets %}
{%- set mons = rotating.targets.mon %}
{%- set nodes = '( ' ~ t.controller ~ ' ) or ( ' ~ t.compute ~ ' )' %}
{%- set asked = pillar.get('ceph_openstack_rotate') or {} %}
{%- set answering = [] %}
{%- if not asked.get('mon') %}
{%-   for minion, answer in (salt['saltutil.cmd'](
                               mons, 'test.ping', tgt_type='compound',
                               timeout=[co.rollout.timeout | int, 1] | max,
                               gather_job_timeout=[co.rollout.gather_job_timeout | int, 1]
                                                  | max) or {}) | dictsort %}
{%-     if answer is mapping and answer.get('ret') is sameas true %}
{%-       do answering.append(minion) %}
{%-     endif %}
{%-   endfor %}
{%- endif %}
{%- set acting = asked.get('mon') or (answering | first) %}
{%- set request = {'ceph_openstack_rotate': dict(asked, mon=acting)} %}
{#- (step, target: None for the acting mon, SLS under ceph_openstack.rotate, batch) #}
{%- set steps = [
      ('plan', None, 'plan', None),
      ('ready', nodes, 'ready', None),
      ('stage', None, 'stage', None),
      ('controllers', t.controller, 'node', None),
      ('computes', t.compute, 'node', co.rollout.compute_batch),
      ('verify', nodes, 'verify', None),
      ('commit', None, 'commit', None),
      ('publish', mons, 'publish', None),
      ('restart', nodes, 'restart', None),
    ] %}

{%- from "orch/preflight.jinja" import steps as preflight_steps, validate, waits,
    master_ready with context %}
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
{%-   set previous = namespace(id='ceph_openstack-rotate-validate', module=validate) %}
{%-   for step, tgt, sls, batch in steps %}

ceph_openstack-rotate-{{ step }}:
  ceph_openstack_rollout.state:
    - tgt: {{ (tgt or acting) | json }}
    - tgt_type: {{ 'compound' if tgt else 'list' }}
    - sls: ceph_openstack.rotate.{{ sls }}
    - pillar: {{ request | json }}
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
{%-     if batch %}
    - batch: {{ batch }}
{%-     endif %}
    - require:
      - {{ previous.module }}: {{ previous.id }}
{%-     set previous.id, previous.module = 'ceph_openstack-rotate-' ~ step,
                                           'ceph_openstack_rollout' %}
{%-   endfor %}
{%- endif %}
