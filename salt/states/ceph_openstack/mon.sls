{#- Mon role: pools, cephx users, and the keys and cluster facts published in the mine. #}
{%- from "ceph_openstack/map.jinja" import co, client_roles, problems with context %}
include:
  - ceph_openstack.validate
{#- A pillar with a problem: nothing but the check of ceph_openstack.validate. #}
{%- if not problems %}

{%- for pool, props in co.pools.items() %}
ceph_openstack-pool-{{ pool }}:
  cephpool.present:
    - name: {{ pool | json }}
{%-   for prop, value in (props or {}).items() %}
    - {{ prop }}: {{ value | json }}
{%-   endfor %}
{%- endfor %}

{%- for client, spec in co.clients.items() %}
ceph_openstack-client-{{ client }}:
  ceph_openstack.client_present:
    - name: {{ client | json }}
    - caps: {{ spec.caps | json }}
{%- endfor %}

{#- Runs in definition order: after the users, and before the controller and compute
    parts of a node that has those roles too (they read the keys from the mine). It does
    not `require` the users, so one that failed does not hold back the others' keys (the
    state names the key it could not read). #}
ceph_openstack-published:
  ceph_openstack.published:
    - clients: {{ client_roles | json }}
    - targets: {{ co.targets | json }}
{%- endif %}
