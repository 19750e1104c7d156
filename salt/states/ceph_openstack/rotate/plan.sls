{#- Rotation, on the mons: decide and publish the plan (no key in it). #}
{%- from "ceph_openstack/map.jinja" import co with context %}
ceph_openstack-rotation-planned:
  ceph_openstack.rotation_planned:
    - targets: {{ co.targets | json }}
