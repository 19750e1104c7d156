{#- Rotation, on the mons of the rotated cluster, last: the pending keys become the keys;
    the old ones die. #}
{%- from "ceph_openstack/map.jinja" import rotating, connect with context %}
ceph_openstack-rotation-committed:
  ceph_openstack_rotation.committed:
    - targets: {{ rotating.targets | json }}
{{- connect(rotating.name) }}
