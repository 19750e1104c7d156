{#- Mon role: pools, cephx users, and the keys and cluster facts published in the mine, for
    each cluster whose targets:mon names this minion (matched here; with no other cluster
    in pillar, the main one without matching, as a one-cluster formula). A mon of another
    cluster reaches it with its minion config ceph_openstack:clusters:<name> (conf,
    keyring, client_id, cluster) when set, else with its usual connection. #}
{%- from "ceph_openstack/map.jinja" import co, clusters, ref, connect, problems with context %}
include:
  - ceph_openstack.validate
{#- A pillar with a problem: nothing but the check of ceph_openstack.validate. #}
{%- if not problems %}
{%- set served = [] %}
{%- for name, on in clusters.items()
      if clusters | length == 1 or salt['match.compound'](on.targets.mon) %}
{%-   do served.append(name) %}

{%-   for pool, props in on.pools.items() %}
ceph_openstack-pool-{{ pool }}{{ on.suffix }}:
  cephpool.present:
    - name: {{ pool | json }}
{%-     for prop, value in (props or {}).items() %}
    - {{ prop }}: {{ value | json }}
{%-     endfor %}
{{- connect(name) }}
{%-   endfor %}

{%-   for client, spec in on.clients.items() %}
ceph_openstack-client-{{ ref(client, name) }}:
  ceph_openstack.client_present:
    - name: {{ client | json }}
    - caps: {{ spec.caps | json }}
{%-     if on.arg %}
    - ceph_cluster: {{ on.arg | json }}
{%-     endif %}
{{- connect(name) }}
{%-   endfor %}

{#- Runs in definition order: after the users, and before the controller and compute
    parts of a node that has those roles too (they read the keys from the mine). It does
    not `require` the users, so one that failed does not hold back the others' keys (the
    state names the key it could not read). #}
ceph_openstack-published{{ on.suffix }}:
  ceph_openstack.published:
    - clients: {{ on.client_roles | json }}
    - targets: {{ on.targets | json }}
{%-   if on.arg %}
    - ceph_cluster: {{ on.arg | json }}
{%-   endif %}
{{- connect(name) }}
{%- endfor %}
{%- if not served %}

ceph_openstack-mon-cluster:
  test.fail_without_changes:
    - name: {{ ('this minion has the mon role, but no cluster\'s targets:mon names it '
                ~ '(ceph_openstack:targets:mon or ceph_openstack:clusters:<name>:targets:mon); '
                ~ 'nodegroups (N@) are matched here only with nodegroups in the minion config')
               | json }}
{%- endif %}
{%- endif %}
