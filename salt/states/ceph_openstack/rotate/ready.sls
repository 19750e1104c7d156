{#- Rotation, on every OpenStack node, before any key changes. #}
{%- from "ceph_openstack/map.jinja" import co, roles, rotating with context %}
{%- set secrets = {} %}
{%- if 'compute' in roles %}
{%-   for name, secret in co.libvirt.secrets.items()
        if (secret.get('cluster') or co.cluster) == rotating.name
        and secret.get('absent') is not sameas true %}
{%-     do secrets.update({secret.uuid: secret.get('client', name)}) %}
{%-   endfor %}
{%- endif %}
ceph_openstack-rotation-ready:
  ceph_openstack_rotation.ready:
    - targets: {{ rotating.targets | json }}
    - secrets: {{ secrets | json }}
{%- if co.lookup.libvirt_uri %}
    - uri: {{ co.lookup.libvirt_uri | json }}
{%- endif %}
