{#- The old manual runbook, step by step, as cmd.run + unless states: the baseline the
    ceph_openstack formula is benchmarked against (bench/run.py). Not for production. #}
{%- set roles = grains.get('role', []) %}
{%- if roles is string %}{% set roles = [roles] %}{% endif %}
include:
  - naive_runbook.common
{%- for role in ['mon', 'controller', 'compute'] if role in roles %}
  - naive_runbook.{{ role }}
{%- endfor %}
