{#- Retiring a node (orch.ceph_openstack_retire), on the node, once the keys it held are
    rotated: take out what the formula put here, whatever the node's roles are now (it has
    left the targets). The formula's options in cinder.conf, glance-api.conf and nova.conf
    (options.jinja; every other line of those files stays as it is), the libvirt secrets
    of the pillar (those a domain uses too when ceph_openstack_retire:force), then every
    keyring of every client of every cluster, then each cluster's ceph.conf options (the
    file too when nothing else is left in it). No service restarts: the node is leaving,
    its services are the operator's to stop. Packages and /etc/hosts entries stay. #}
{%- from "ceph_openstack/map.jinja" import co, paths, clusters, keyring_path, ref, problems
    with context %}
{%- from "ceph_openstack/options.jinja" import cinder_sections, glance_sections,
    nova_sections with context %}
{%- set force = (pillar.get('ceph_openstack_retire') or {}).get('force') is sameas true %}
include:
  - ceph_openstack.validate
{#- A pillar with a problem: nothing but the check of ceph_openstack.validate. #}
{%- if not problems %}
{%- set before = [] %}
{%- for part, path, sections in [('cinder', paths.cinder_conf, cinder_sections),
                                 ('glance', paths.glance_conf, glance_sections),
                                 ('nova', paths.nova_conf, nova_sections)] if sections %}
{%-   set keys = {} %}
{%-   for section, options in sections.items() %}
{%-     do keys.update({section: options.keys() | list}) %}
{%-   endfor %}
{%-   do before.append(('openstack_ini', 'ceph_openstack-retire-' ~ part ~ '-conf')) %}

ceph_openstack-retire-{{ part }}-conf:
  openstack_ini.options_absent:
    - name: {{ path | json }}
    - sections: {{ keys | json }}
    - drop_emptied: True
{%- endfor %}
{%- for name, secret in co.libvirt.secrets.items() %}
{%-   do before.append(('ceph_openstack', 'ceph_openstack-retire-secret-' ~ name)) %}

ceph_openstack-retire-secret-{{ name }}:
  ceph_openstack.libvirt_secret_absent:
    - name: {{ secret.uuid | json }}
{%-   if co.lookup.libvirt_uri %}
    - uri: {{ co.lookup.libvirt_uri | json }}
{%-   endif %}
{%-   if force %}
    - force: True
{%-   endif %}
{%- endfor %}
{%- set keyrings = [] %}
{%- for name, on in clusters.items() %}
{%-   for client in (on.clients.keys() | list) + on.absent %}
{%-     do keyrings.append('ceph_openstack-retire-keyring-' ~ ref(client, name)) %}

ceph_openstack-retire-keyring-{{ ref(client, name) }}:
  ceph_openstack.keyring_absent:
    - name: {{ keyring_path(client, name) | json }}
    - client: {{ client | json }}
{%-     if on.arg %}
    - ceph_cluster: {{ on.arg | json }}
{%-     endif %}
    - reason: leaves with this node (orch.ceph_openstack_retire)
{%-     if before %}
    - require:
{%-       for module, sid in before %}
      - {{ module }}: {{ sid }}
{%-       endfor %}
{%-     endif %}
{%-   endfor %}
{%- endfor %}
{%- for name, on in clusters.items() %}
{%-   set client_options = co.compute_client.keys() | list %}
{%-   if name != 'ceph' %}{% do client_options.append('keyring') %}{% endif %}

ceph_openstack-retire-ceph-conf{{ on.suffix }}:
  ceph_openstack.ceph_conf_absent:
    - name: {{ on.conf | json }}
    - client: {{ client_options | json }}
{%-   if keyrings %}
    - require:
{%-     for sid in keyrings %}
      - ceph_openstack: {{ sid }}
{%-     endfor %}
{%-   endif %}
{%- endfor %}
{%- endif %}
