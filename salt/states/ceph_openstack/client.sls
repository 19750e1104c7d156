{#- ceph.conf and the client keyrings of an OpenStack node, of each cluster it uses, for all
    its roles at once (grain `role`), so that a node that is both controller and compute has
    them once. A keyring both roles read (cinder's, by default) is owned by the controller's
    service user, with nova's group; ceph.conf has the guests' [client] options when the
    node is a compute. #}
{%- from "ceph_openstack/map.jinja" import co, clusters, node_keyrings, keyring_path, conf_id,
    roles, pkgs, problems, ref with context %}
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
{#- The main cluster's conf always; another cluster's where this node holds one of its
    keyrings. A cluster not named `ceph` names its keyrings in [client]: glance_store,
    nova and cinder-backup open librados with the conf file and no cluster name, which
    would look for ceph.client.<id>.keyring. #}
{%- for name, on in clusters.items()
      if on.main or node_keyrings.values() | selectattr('cluster', 'equalto', name) | list %}
{%-   set options = dict(co.compute_client) if 'compute' in roles else {} %}
{%-   if name != 'ceph' %}
{%-     do options.update({'keyring': co.lookup.ceph_dir ~ '/' ~ name ~ '.$name.keyring'}) %}
{%-   endif %}

{{ conf_id(name) }}:
  ceph_openstack.ceph_conf:
    - name: {{ on.conf | json }}
    - targets: {{ on.targets | json }}
    - fsid: {{ on.fsid | json }}
    - mon_host: {{ on.mon_host | json }}
{%-   if on.arg %}
    - ceph_cluster: {{ on.arg | json }}
{%-   endif %}
{%-   if options %}
    - client: {{ options | json }}
{%-   endif %}
{{- require_packages() }}
{%- endfor %}
{%- for key, keyring in node_keyrings.items() %}

ceph_openstack-keyring-{{ key }}:
  ceph_openstack.keyring:
    - name: {{ keyring_path(keyring.client, keyring.cluster) | json }}
    - client: {{ keyring.client | json }}
    - targets: {{ clusters[keyring.cluster].targets | json }}
{%-   if keyring.arg %}
    - ceph_cluster: {{ keyring.arg | json }}
{%-   endif %}
    - user: {{ keyring.user | json }}
    - group: {{ keyring.group | json }}
    - mode: '0640'
{{- require_packages() }}
{%- endfor %}
{#- The keyrings of the clients marked absent, of every cluster, on every controller and
    compute: removed last, after the config files no longer name them (refused while one
    does), and on a compute only once the client's libvirt secrets are undefined (kept
    while a guest uses one). No service watches them: nothing uses those clients. The
    mons delete the users afterwards (ceph_openstack.absent, the orchestration's last
    step). #}
{%- for name, on in clusters.items() %}
{%-   for client in on.absent %}
{%-     set withdrawn = [] %}
{%-     for secret_name, secret in co.libvirt.secrets.items()
          if 'compute' in roles and secret.get('absent') is sameas true
          and secret.get('client', secret_name) == client
          and (secret.get('cluster') or co.cluster) == name %}
{%-       do withdrawn.append(secret_name) %}
{%-     endfor %}

ceph_openstack-keyring-absent-{{ ref(client, name) }}:
  ceph_openstack.keyring_absent:
    - name: {{ keyring_path(client, name) | json }}
    - client: {{ client | json }}
{%-     if on.arg %}
    - ceph_cluster: {{ on.arg | json }}
{%-     endif %}
    - order: last
{%-     if withdrawn %}
    - require:
{%-       for secret_name in withdrawn %}
      - ceph_openstack: ceph_openstack-libvirt-secret-{{ secret_name }}
{%-       endfor %}
{%-     endif %}
{%-   endfor %}
{%- endfor %}
{%- endif %}
