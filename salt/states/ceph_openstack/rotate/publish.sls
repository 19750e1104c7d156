{#- Rotation, on every mon of the rotated cluster, after the commit: each mon publishes the
    clients' keys as the rollout does (the acting mon staged them; the others still hold
    the old ones, which a node's own highstate would otherwise read). #}
{%- from "ceph_openstack/map.jinja" import rotating, connect with context %}
ceph_openstack-rotation-published{{ rotating.suffix }}:
  ceph_openstack.published:
    - clients: {{ rotating.client_roles | json }}
    - targets: {{ rotating.targets | json }}
{%- if rotating.arg %}
    - ceph_cluster: {{ rotating.arg | json }}
{%- endif %}
{{- connect(rotating.name) }}
