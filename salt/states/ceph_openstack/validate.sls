{#- Refuse to change anything while the pillar has a problem. #}
ceph_openstack-pillar:
  ceph_openstack.pillar_valid:
    - order: 1
    - failhard: True
