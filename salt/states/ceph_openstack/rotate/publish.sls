{#- Rotation, on every mon, after the commit: each mon publishes the clients' keys as the
    rollout does (the acting mon staged them; the others still hold the old ones, which a
    node's own highstate would otherwise read). #}
{%- from "ceph_openstack/map.jinja" import co, client_roles with context %}
ceph_openstack-rotation-published:
  ceph_openstack.published:
    - clients: {{ client_roles | json }}
    - targets: {{ co.targets | json }}
