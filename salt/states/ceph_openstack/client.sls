{#- ceph.conf and the client keyrings of an OpenStack node, for all its roles at once (grain
    `role`), so that a node that is both controller and compute has them once. A keyring
    both roles read (cinder's, by default) is owned by the controller's service user, with
    nova's group; ceph.conf has the guests' [client] options when the node is a compute. #}
{%- from "ceph_openstack/map.jinja" import co, paths, keyring_path, roles, pkgs, problems,
    keyring_owners as owners with context %}
{#- Written after the packages (ceph-common creates /etc/ceph), when the formula installs
    them (ceph_openstack:packages:manage). #}
{%- macro require_packages() %}
{%-   if pkgs %}
    - require:
      - pkg: ceph_openstack-packages
{%-   endif %}
{%- endmacro %}
include:
  - ceph_openstack.validate
  - ceph_openstack.common
{#- A pillar with a problem: nothing but the check of ceph_openstack.validate. #}
{%- if not problems %}

ceph_openstack-ceph-conf:
  ceph_openstack.ceph_conf:
    - name: {{ paths.ceph_conf | json }}
    - targets: {{ co.targets | json }}
    - fsid: {{ co.fsid | json }}
    - mon_host: {{ co.mon_host | json }}
{%- if 'compute' in roles %}
    - client: {{ co.compute_client | json }}
{%- endif %}
{{- require_packages() }}
{%- for client, owner in owners.items() %}

ceph_openstack-keyring-{{ client }}:
  ceph_openstack.keyring:
    - name: {{ keyring_path(client) | json }}
    - client: {{ client | json }}
    - targets: {{ co.targets | json }}
    - user: {{ owner[0] | json }}
    - group: {{ owner[1] | json }}
    - mode: '0640'
{{- require_packages() }}
{%- endfor %}
{%- endif %}
