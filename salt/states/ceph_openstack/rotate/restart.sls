{#- Rotation, on every OpenStack node, after the commit: the services that read a changed
    keyring or secret restart once, then each keyring logs in (a real cephx login). #}
{%- from "ceph_openstack/map.jinja" import co, roles, service_clients, rotating, ref
    with context %}
{%- set lookup = co.lookup %}
{%- set rotate = (pillar.get('ceph_openstack_rotate') or {}).get('clients') or [] %}
{#- The rotated clients this node holds, by reference (<client>@<cluster> on another
    cluster), as service_clients names them. #}
{%- set marked = [] %}
{%- for client in rotate if client in rotating.clients %}
{%-   set key = ref(client, rotating.name) | string %}
{%-   if roles | select('in', rotating.clients[client].get('roles', [])) | list %}
{%-     do marked.append(key) %}
{%-   endif %}

ceph_openstack-rotate-restart-{{ key }}:
  ceph_openstack_rotation.restart_due:
    - name: {{ key | json }}
    - targets: {{ rotating.targets | json }}
{%- endfor %}
{#- Each service restarts when the keyring of one of its own clients changed. #}
{%- set units = [] %}
{%- if co.services.restart %}
{%-   for role in ['controller', 'compute'] if role in roles %}
{%-     for unit, clients in service_clients[role].items() %}
{%-       set due = clients | select('in', marked) | list %}
{%-       if due %}{% do units.append((unit, due)) %}{% endif %}
{%-     endfor %}
{%-   endfor %}
{%- endif %}
{%- for unit, due in units %}

ceph_openstack-rotate-service-{{ unit }}:
  ceph_openstack.service_running:
    - name: {{ lookup.services[unit] | json }}
    - service: {{ unit | json }}
{%-     if (lookup.service_logs or {}).get(unit) %}
    - log: {{ (lookup.root ~ lookup.service_logs[unit]) | json }}
{%-     endif %}
    - watch:
{%-   for client in due %}
      - ceph_openstack_rotation: ceph_openstack-rotate-restart-{{ client }}
{%-   endfor %}
{%- endfor %}

ceph_openstack-rotation-logged-in:
  ceph_openstack_rotation.verified:
    - targets: {{ rotating.targets | json }}
    - login: True
