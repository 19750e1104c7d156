{#- Retiring a node (orch.ceph_openstack_retire), on the node, before anything changes: no
    libvirt domain here may use a secret of the formula (unless ceph_openstack_retire:force).
    Every secret of the pillar counts, whatever the node's roles are now. #}
{%- from "ceph_openstack/map.jinja" import co, problems with context %}
include:
  - ceph_openstack.validate
{#- A pillar with a problem: nothing but the check of ceph_openstack.validate. #}
{%- if not problems %}
{%- set secrets = {} %}
{%- for name, secret in co.libvirt.secrets.items() if secret is mapping and secret.uuid %}
{%-   do secrets.update({secret.uuid: secret.get('client', name)}) %}
{%- endfor %}

ceph_openstack-retire-ready:
  ceph_openstack_retire.ready:
    - secrets: {{ secrets | json }}
{%- if co.lookup.libvirt_uri %}
    - uri: {{ co.lookup.libvirt_uri | json }}
{%- endif %}
{%- endif %}
