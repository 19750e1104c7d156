{#- Rotation, on the mons of the rotated cluster: the new keys (pending where the cluster
    has pending keys), then published for the nodes. #}
{%- from "ceph_openstack/map.jinja" import rotating, connect with context %}
ceph_openstack-rotation-staged:
  ceph_openstack_rotation.staged:
    - targets: {{ rotating.targets | json }}
{{- connect(rotating.name) }}
