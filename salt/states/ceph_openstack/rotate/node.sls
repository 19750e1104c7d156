{#- Rotation, on each controller and compute: the keyrings (and libvirt secrets, same UUID)
    of the clients being rotated, on the rotated cluster, get the staged key. Paths and
    owners are those of ceph_openstack.client. Services restart in rotate.restart, after
    the commit. #}
{%- from "ceph_openstack/map.jinja" import co, roles, keyring_path, node_keyrings, rotating
    with context %}
{%- set lookup = co.lookup %}
{%- set rotate = (pillar.get('ceph_openstack_rotate') or {}).get('clients') or [] %}
{%- for key, keyring in node_keyrings.items()
      if keyring.cluster == rotating.name and keyring.client in rotate %}

ceph_openstack-rotate-keyring-{{ key }}:
  ceph_openstack_rotation.keyring:
    - name: {{ keyring_path(keyring.client, keyring.cluster) | json }}
    - client: {{ keyring.client | json }}
    - targets: {{ rotating.targets | json }}
    - user: {{ keyring.user | json }}
    - group: {{ keyring.group | json }}
    - mode: '0640'
{%- endfor %}
{%- if 'compute' in roles %}
{%-   for name, secret in co.libvirt.secrets.items()
        if (secret.get('cluster') or co.cluster) == rotating.name
        and secret.get('client', name) in rotate and secret.get('absent') is not sameas true %}

ceph_openstack-rotate-secret-{{ name }}:
  ceph_openstack_rotation.secret:
    - name: {{ secret.uuid | json }}
    - client: {{ secret.get('client', name) | json }}
    - targets: {{ rotating.targets | json }}
{%-     if lookup.libvirt_uri %}
    - uri: {{ lookup.libvirt_uri | json }}
{%-     endif %}
{%-   endfor %}
{%- endif %}

ceph_openstack-rotate-node:
  test.succeed_without_changes:
    - name: {{ ('keyrings and secrets of ' ~ (rotate | join(', '))) | json }}
