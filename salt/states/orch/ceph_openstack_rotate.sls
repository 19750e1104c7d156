{#- Key rotation: salt-run state.orchestrate orch.ceph_openstack_rotate
        pillar='{"ceph_openstack_rotate": {"clients": ["cinder"]}}'
    sync -> validate -> plan (mon) -> every node ready (a guest that would lose its key
    stops the run when the old key dies at once) -> stage the new keys (mon: pending where
    the cluster has pending keys) -> controllers -> computes (batches) -> every node checks
    that its keyrings and secrets hold the new keys and no guest still holds an old key ->
    commit (mon: the old keys die) -> every node restarts its services once and logs in
    with its new keyrings. Each step requires the one before: a node offline or failing
    stops the run before any old key is invalidated, and re-running the same command
    completes it. #}
{%- from "ceph_openstack/map.jinja" import co with context %}
{%- set t = co.targets %}
{%- set nodes = '( ' ~ t.controller ~ ' ) or ( ' ~ t.compute ~ ' )' %}
{%- set all = '( ' ~ t.mon ~ ' ) or ' ~ nodes %}
{%- set request = {'ceph_openstack_rotate': pillar.get('ceph_openstack_rotate') or {}} %}
{%- set steps = [
      ('plan', t.mon, 'plan', None),
      ('ready', nodes, 'ready', None),
      ('stage', t.mon, 'stage', None),
      ('controllers', t.controller, 'node', None),
      ('computes', t.compute, 'node', co.rollout.compute_batch),
      ('verify', nodes, 'verify', None),
      ('commit', t.mon, 'commit', None),
      ('restart', nodes, 'restart', None),
    ] %}

ceph_openstack-rotate-sync:
  salt.function:
    - name: saltutil.sync_all
    - tgt: {{ all | json }}
    - tgt_type: compound
    - expect_minions: True
    - kwarg:
        refresh: true

ceph_openstack-rotate-validate:
  salt.state:
    - tgt: {{ all | json }}
    - tgt_type: compound
    - sls: ceph_openstack.validate
    - expect_minions: True
    - require:
      - salt: ceph_openstack-rotate-sync
{%- set previous = namespace(id='ceph_openstack-rotate-validate') %}
{%- for step, tgt, sls, batch in steps %}

ceph_openstack-rotate-{{ step }}:
  salt.state:
    - tgt: {{ tgt | json }}
    - tgt_type: compound
    - sls: ceph_openstack.rotate.{{ sls }}
    - pillar: {{ request | json }}
    - expect_minions: True
{%-   if batch %}
    - batch: {{ batch }}
{%-   endif %}
    - require:
      - salt: {{ previous.id }}
{%-   set previous.id = 'ceph_openstack-rotate-' ~ step %}
{%- endfor %}
