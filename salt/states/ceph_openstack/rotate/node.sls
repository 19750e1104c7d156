{#- Rotation, on each controller and compute: the keyrings (and libvirt secrets, same UUID)
    of the clients being rotated get the staged key. Paths and owners are those of
    ceph_openstack.client. Services restart in rotate.restart, after the commit. #}
{%- from "ceph_openstack/map.jinja" import co, roles, keyring_path, keyring_owners
    with context %}
{%- set lookup = co.lookup %}
{%- set rotate = (pillar.get('ceph_openstack_rotate') or {}).get('clients') or [] %}
{%- for client, owner in keyring_owners.items() if client in rotate %}

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

ceph_openstack-rotate-node:
  test.succeed_without_changes:
    - name: {{ ('keyrings and secrets of ' ~ (rotate | join(', '))) | json }}
