{#- Rotation, on each controller and compute: the keyrings (and libvirt secrets, same UUID)
    of the clients being rotated get the staged key; the services that read them restart
    once. Paths and owners are those of ceph_openstack.client. #}
{%- from "ceph_openstack/map.jinja" import co, roles, keyring_path, keyring_owners
    with context %}
{%- set lookup = co.lookup %}
{%- set rotate = (pillar.get('ceph_openstack_rotate') or {}).get('clients') or [] %}
{%- set ids = {'controller': [], 'compute': []} %}
{%- for client, owner in keyring_owners.items() if client in rotate %}
{%-   for role in ['controller', 'compute']
        if role in roles and role in co.clients[client].get('roles', []) %}
{%-     do ids[role].append('ceph_openstack-rotate-keyring-' ~ client) %}
{%-   endfor %}

ceph_openstack-rotate-keyring-{{ client }}:
  ceph_openstack.rotated_keyring:
    - name: {{ keyring_path(client) | json }}
    - client: {{ client | json }}
    - targets: {{ co.targets | json }}
    - user: {{ owner[0] | json }}
    - group: {{ owner[1] | json }}
    - mode: '0640'
{%- endfor %}
{%- if 'compute' in roles %}
{%-   for name, secret in co.libvirt.secrets.items() if secret.get('client', name) in rotate %}
{%-     do ids.compute.append('ceph_openstack-rotate-secret-' ~ name) %}

ceph_openstack-rotate-secret-{{ name }}:
  ceph_openstack.rotated_secret:
    - name: {{ secret.uuid | json }}
    - client: {{ secret.get('client', name) | json }}
    - targets: {{ co.targets | json }}
{%-     if lookup.libvirt_uri %}
    - uri: {{ lookup.libvirt_uri | json }}
{%-     endif %}
{%-   endfor %}
{%- endif %}
{%- if co.services.restart %}
{%-   set units = [] %}
{%-   if ids.controller %}
{%-     if co.cinder.backends %}{% do units.append('cinder_volume') %}{% endif %}
{%-     if co.cinder.backup %}{% do units.append('cinder_backup') %}{% endif %}
{%-     if co.glance %}{% do units.append('glance_api') %}{% endif %}
{%-   endif %}
{%-   for unit in units + (['nova_compute'] if ids.compute and co.nova else []) %}

ceph_openstack-rotate-service-{{ unit }}:
  service.running:
    - name: {{ lookup.services[unit] | json }}
    - watch:
{%-     for id in ids['compute' if unit == 'nova_compute' else 'controller'] %}
      - ceph_openstack: {{ id }}
{%-     endfor %}
{%-   endfor %}
{%- endif %}

ceph_openstack-rotate-node:
  test.succeed_without_changes:
    - name: {{ ('keyrings and secrets of ' ~ (rotate | join(', '))) | json }}
