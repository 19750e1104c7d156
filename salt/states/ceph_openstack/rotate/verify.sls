{#- Rotation, on every OpenStack node: its own keyrings (and secrets) hold the new keys and
    log in with them; no guest still holds an old key. #}
{%- from "ceph_openstack/map.jinja" import co with context %}
ceph_openstack-rotation-verified:
  ceph_openstack.rotation_verified:
    - targets: {{ co.targets | json }}
