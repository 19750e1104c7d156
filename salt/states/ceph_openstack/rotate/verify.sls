{#- Rotation, on every OpenStack node, before the commit: its own keyrings (and secrets) hold
    the new keys and no guest still holds an old key. No login: Ceph commits a pending key
    at its first use. #}
{%- from "ceph_openstack/map.jinja" import rotating with context %}
ceph_openstack-rotation-verified:
  ceph_openstack_rotation.verified:
    - targets: {{ rotating.targets | json }}
    - login: False
