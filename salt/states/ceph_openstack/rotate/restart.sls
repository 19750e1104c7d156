{#- Rotation, on every OpenStack node, after the commit: the services that read a changed
    keyring or secret restart once, then each keyring logs in (a real cephx login). #}
{%- from "ceph_openstack/map.jinja" import co, roles with context %}
{%- set lookup = co.lookup %}
{%- set rotate = (pillar.get('ceph_openstack_rotate') or {}).get('clients') or [] %}
{%- set due = {'controller': [], 'compute': []} %}
{%- for client in rotate if client in co.clients %}
{%-   for role in ['controller', 'compute']
        if role in roles and role in co.clients[client].get('roles', []) %}
{%-     do due[role].append('ceph_openstack-rotate-restart-' ~ client) %}
{%-   endfor %}

ceph_openstack-rotate-restart-{{ client }}:
  ceph_openstack.rotation_restart_due:
    - name: {{ client | json }}
    - targets: {{ co.targets | json }}
{%- endfor %}
{%- if co.services.restart %}
{%-   set units = [] %}
{%-   if due.controller %}
{%-     if co.cinder.backends %}{% do units.append(('cinder_volume', 'controller')) %}{% endif %}
{%-     if co.cinder.backup %}{% do units.append(('cinder_backup', 'controller')) %}{% endif %}
{%-     if co.glance %}{% do units.append(('glance_api', 'controller')) %}{% endif %}
{%-   endif %}
{%-   if due.compute and co.nova %}{% do units.append(('nova_compute', 'compute')) %}{% endif %}
{%-   for unit, role in units %}

ceph_openstack-rotate-service-{{ unit }}:
  ceph_openstack.service_running:
    - name: {{ lookup.services[unit] | json }}
    - service: {{ unit | json }}
{%-     if (lookup.service_logs or {}).get(unit) %}
    - log: {{ (lookup.root ~ lookup.service_logs[unit]) | json }}
{%-     endif %}
    - watch:
{%-     for id in due[role] | unique %}
      - ceph_openstack: {{ id }}
{%-     endfor %}
{%-   endfor %}
{%- endif %}

ceph_openstack-rotation-logged-in:
  ceph_openstack.rotation_verified:
    - targets: {{ co.targets | json }}
    - login: True
