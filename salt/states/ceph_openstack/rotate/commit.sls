{#- Rotation, on the mons, last: the pending keys become the keys; the old ones die. #}
{%- from "ceph_openstack/map.jinja" import co with context %}
ceph_openstack-rotation-committed:
  ceph_openstack.rotation_committed:
    - targets: {{ co.targets | json }}
