{#- On the mons, after every controller and compute withdrew them (the orchestration's last
    step, orch.ceph_openstack): delete the cephx users of the clients marked absent in
    pillar (clients:<name>:absent: true), of each cluster whose targets:mon names this
    minion (as mon.sls). Their mine entries were withdrawn by the mon part already. Pools
    are never deleted. Not part of the highstate: a mon must not delete a user before
    the nodes have removed its keyring. #}
{%- from "ceph_openstack/map.jinja" import clusters, ref, connect, problems with context %}
include:
  - ceph_openstack.validate
{#- A pillar with a problem: nothing but the check of ceph_openstack.validate. #}
{%- if not problems %}
{%- for name, on in clusters.items()
      if clusters | length == 1 or salt['match.compound'](on.targets.mon) %}
{%-   for client in on.absent %}

ceph_openstack-client-absent-{{ ref(client, name) }}:
  cephauth.absent:
    - name: {{ ('client.' ~ client) | json }}
{{- connect(name) }}
{%-   endfor %}
{%- endfor %}
{%- endif %}
