{#- Mon role: pools, cephx users, and the keys and cluster facts published in the mine. #}
{%- from "ceph_openstack/map.jinja" import co with context %}
include:
  - ceph_openstack.validate

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

ceph_openstack-publish-{{ client }}:
  ceph_openstack.key_published:
    - name: {{ client | json }}
    - roles: {{ spec.get('roles', []) | json }}
    - targets: {{ co.targets | json }}
    - require:
      - ceph_openstack: ceph_openstack-client-{{ client }}
{%- endfor %}

ceph_openstack-cluster-facts:
  ceph_openstack.cluster_published:
    - targets: {{ co.targets | json }}
