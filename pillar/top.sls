# Every node gets the ceph_openstack pillar; narrow it (or split out pre-generated keys)
# with your own targeting.
base:
  '*':
    - ceph_openstack
