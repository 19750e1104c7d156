{#- Ordered rollout: salt-run state.orchestrate orch.ceph_openstack
    sync -> validate -> mon (pools, users, published keys) -> controllers -> computes in
    batches -> raw images into Glance (when pillar lists any; one controller at a time)
    -> verify on every node (after a run that changed something; rollout:verify: always
    for every run) -> with clients marked absent in pillar, their users deleted on the
    mons (ceph_openstack.absent), once every node has withdrawn their keyrings and
    secrets. Each step requires the one before, so the run stops at the first failure;
    every step converges, so a re-run is safe.

    Each step waits for slow nodes as pillar rollout:timeout and rollout:gather_job_timeout
    say, and names a node that never answered ("<minion> did not answer in N s") apart from
    one whose states failed (ceph_openstack_rollout.state, run by the master: see
    orch/preflight.jinja). A re-run after such a failure changes only what is left.

    Sync and validate run only where the preflight (orch/preflight.jinja) finds a node's
    modules differ from the formula's or its pillar invalid; a node that does not answer
    stops the run at the sync step, before anything changed. #}
{%- from "ceph_openstack/map.jinja" import co, mon_target, clusters with context %}
{%- set t = co.targets %}
{%- set clients = '( ' ~ t.controller ~ ' ) or ( ' ~ t.compute ~ ' )' %}

{%- from "orch/preflight.jinja" import steps, sync, validate, waits, master_ready
    with context %}
{{ steps('ceph_openstack') }}
{%- if master_ready %}

{#- One mon after the other: the first creates the pools and users, the others find them
    (and publish the same keys). At once, two `osd pool create` landing in the same mon
    proposal both answer "created", and both states would report creating it. #}
ceph_openstack-mon:
  ceph_openstack_rollout.state:
    - tgt: {{ mon_target | json }}
    - tgt_type: compound
    - sls: ceph_openstack
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - batch: 1
    - require:
      - {{ validate }}: ceph_openstack-validate

ceph_openstack-controllers:
  ceph_openstack_rollout.state:
    - tgt: {{ t.controller | json }}
    - tgt_type: compound
    - sls: ceph_openstack
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - require:
      - ceph_openstack_rollout: ceph_openstack-mon

ceph_openstack-computes:
  ceph_openstack_rollout.state:
    - tgt: {{ t.compute | json }}
    - tgt_type: compound
    - sls: ceph_openstack
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - batch: {{ co.rollout.compute_batch }}
    - require:
      - ceph_openstack_rollout: ceph_openstack-controllers

{%- if co.images.upload %}

ceph_openstack-images:
  ceph_openstack_rollout.state:
    - tgt: {{ t.get('images', t.controller) | json }}
    - tgt_type: compound
    - sls: ceph_openstack.images
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - batch: 1
    - require:
      - ceph_openstack_rollout: ceph_openstack-controllers
{%- endif %}

ceph_openstack-verify:
  ceph_openstack_rollout.state:
    - tgt: {{ clients | json }}
    - tgt_type: compound
    - sls: ceph_openstack.verify
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - require:
      - ceph_openstack_rollout: ceph_openstack-computes
{%- if co.images.upload %}
      - ceph_openstack_rollout: ceph_openstack-images
{%- endif %}
{%- if co.rollout.get('verify', 'changed') != 'always' %}
    - onchanges:
      - {{ sync }}: ceph_openstack-sync
      - ceph_openstack_rollout: ceph_openstack-mon
      - ceph_openstack_rollout: ceph_openstack-controllers
      - ceph_openstack_rollout: ceph_openstack-computes
{%-   if co.images.upload %}
      - ceph_openstack_rollout: ceph_openstack-images
{%-   endif %}
{%- endif %}

{#- Only once every controller and compute has removed the absent clients' keyrings (and
    each compute their secrets: one that a guest uses stops the computes' step) and the
    nodes verified: a user is never deleted while a node may still use it. #}
{%- if clusters.values() | map(attribute='absent') | select | list %}

ceph_openstack-absent:
  ceph_openstack_rollout.state:
    - tgt: {{ mon_target | json }}
    - tgt_type: compound
    - sls: ceph_openstack.absent
    - timeout: {{ waits.timeout }}
    - gather_job_timeout: {{ waits.gather_job_timeout }}
    - batch: 1
    - require:
      - ceph_openstack_rollout: ceph_openstack-computes
      - ceph_openstack_rollout: ceph_openstack-verify
{%-   if co.images.upload %}
      - ceph_openstack_rollout: ceph_openstack-images
{%-   endif %}
{%- endif %}
{%- endif %}
