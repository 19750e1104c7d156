{#- Apply the parts for this minion's roles (grain `role`: a string or a list). #}
{%- from "ceph_openstack/map.jinja" import roles with context %}
include:
  - ceph_openstack.validate
  - ceph_openstack.common
{%- for role in ['mon', 'controller', 'compute'] if role in roles %}
  - ceph_openstack.{{ role }}
{%- endfor %}
