{#- Rotation, on the mons of the rotated cluster: decide and publish the plan (no key in
    it). #}
{%- from "ceph_openstack/map.jinja" import rotating, connect with context %}
ceph_openstack-rotation-planned:
  ceph_openstack_rotation.planned:
    - targets: {{ rotating.targets | json }}
{{- connect(rotating.name) }}
