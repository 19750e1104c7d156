# Every node with a ceph_openstack role gets the formula; init.sls picks the parts by role.
base:
  'G@role:mon or G@role:controller or G@role:compute':
    - match: compound
    - ceph_openstack
