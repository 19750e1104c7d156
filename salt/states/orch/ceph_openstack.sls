{#- Ordered rollout: salt-run state.orchestrate orch.ceph_openstack
    sync -> validate -> mon (pools, users, published keys) -> controllers -> computes in
    batches -> raw images into Glance (when pillar lists any; one controller at a time)
    -> verify on every node. Each step requires the one before, so the run stops
    at the first failure; every step converges, so a re-run is safe. #}
{%- from "ceph_openstack/map.jinja" import co with context %}
{%- set t = co.targets %}
{%- set all = '( ' ~ t.mon ~ ' ) or ( ' ~ t.controller ~ ' ) or ( ' ~ t.compute ~ ' )' %}
{%- set clients = '( ' ~ t.controller ~ ' ) or ( ' ~ t.compute ~ ' )' %}

ceph_openstack-sync:
  salt.function:
    - name: saltutil.sync_all
    - tgt: {{ all | json }}
    - tgt_type: compound
    - expect_minions: True
    - kwarg:
        refresh: true

ceph_openstack-validate:
  salt.state:
    - tgt: {{ all | json }}
    - tgt_type: compound
    - sls: ceph_openstack.validate
    - require:
      - salt: ceph_openstack-sync

ceph_openstack-mon:
  salt.state:
    - tgt: {{ t.mon | json }}
    - tgt_type: compound
    - sls: ceph_openstack
    - require:
      - salt: ceph_openstack-validate

ceph_openstack-controllers:
  salt.state:
    - tgt: {{ t.controller | json }}
    - tgt_type: compound
    - sls: ceph_openstack
    - require:
      - salt: ceph_openstack-mon

ceph_openstack-computes:
  salt.state:
    - tgt: {{ t.compute | json }}
    - tgt_type: compound
    - sls: ceph_openstack
    - batch: {{ co.rollout.compute_batch }}
    - require:
      - salt: ceph_openstack-controllers

{%- if co.images.upload %}

ceph_openstack-images:
  salt.state:
    - tgt: {{ t.get('images', t.controller) | json }}
    - tgt_type: compound
    - sls: ceph_openstack.images
    - batch: 1
    - require:
      - salt: ceph_openstack-controllers
{%- endif %}

ceph_openstack-verify:
  salt.state:
    - tgt: {{ clients | json }}
    - tgt_type: compound
    - sls: ceph_openstack.verify
    - require:
      - salt: ceph_openstack-computes
{%- if co.images.upload %}
      - salt: ceph_openstack-images
{%- endif %}
