{#- Controller role: ceph.conf, keyrings for glance, cinder and cinder-backup, and the Ceph
    options of cinder.conf and glance-api.conf; services restart when those change, and
    must then stay up (ceph_openstack.service_running). #}
{%- from "ceph_openstack/map.jinja" import co, paths, problems, service_clients, watch_ceph
    with context %}
{%- from "ceph_openstack/options.jinja" import cinder_sections, glance_sections
    with context %}
{%- set lookup = co.lookup %}
include:
  - ceph_openstack.validate
  - ceph_openstack.client
{#- A pillar with a problem: nothing but the check of ceph_openstack.validate. #}
{%- if not problems %}

{#- cinder.conf: one section per RBD backend, listed in enabled_backends; backups on Ceph
    (options.jinja). #}
{%- set cinder = co.cinder %}
{%- if cinder_sections %}

ceph_openstack-cinder-conf:
  openstack_ini.options_present:
    - name: {{ paths.cinder_conf | json }}
    - sections: {{ cinder_sections | json }}
    - require:
      - ceph_openstack: ceph_openstack-ceph-conf
{%- endif %}

{#- glance-api.conf in the multi-store form (options.jinja). #}
{%- if glance_sections %}

ceph_openstack-glance-conf:
  openstack_ini.options_present:
    - name: {{ paths.glance_conf | json }}
    - sections: {{ glance_sections | json }}
    - require:
      - ceph_openstack: ceph_openstack-ceph-conf

{#- The single-store options the multi-store form replaces (deprecated for removal; an
    old runbook wrote them). #}
ceph_openstack-glance-single-store-options:
  openstack_ini.options_absent:
    - name: {{ paths.glance_conf | json }}
    - sections:
        glance_store: [stores, default_store]
    - require:
      - openstack_ini: ceph_openstack-glance-conf
{%- endif %}

{%- if co.services.restart %}
{#- Each service restarts when what it reads changes: its config file (less the options of
    the other Cinder service, listed in `ignore`), the ceph.conf of each cluster it uses, and
    the keyrings of its own clients. A backend option restarts cinder-volume alone, a backup option cinder-backup. #}
{%-   set backup_keys = [] %}
{%-   if cinder.backup %}
{%-     for key in cinder_sections.DEFAULT
          if key.startswith('backup_') or key in cinder.backup.options %}
{%-       do backup_keys.append('DEFAULT/' ~ key) %}
{%-     endfor %}
{%-   endif %}
{%-   set backend_keys = ['DEFAULT/enabled_backends'] %}
{%-   for name in cinder.backends %}{% do backend_keys.append(name ~ '/*') %}{% endfor %}
{%-   set confs = {
        'cinder_volume': (['ceph_openstack-cinder-conf'], backup_keys),
        'cinder_backup': (['ceph_openstack-cinder-conf'], backend_keys),
        'glance_api': (['ceph_openstack-glance-conf',
                        'ceph_openstack-glance-single-store-options'], []),
      } %}
{%-   for unit, clients in service_clients.controller.items() %}
{%-     set conf_ids, ignore = confs[unit] %}

ceph_openstack-service-{{ unit }}:
  ceph_openstack.service_running:
    - name: {{ lookup.services[unit] | json }}
    - service: {{ unit | json }}
{%-     if (lookup.service_logs or {}).get(unit) %}
    - log: {{ (lookup.root ~ lookup.service_logs[unit]) | json }}
{%-     endif %}
{%-     if ignore %}
    - ignore: {{ ignore | json }}
{%-     endif %}
    - watch:
{%-     for conf_id in conf_ids %}
      - openstack_ini: {{ conf_id }}
{%-     endfor %}
{{- watch_ceph(clients) }}
{%-   endfor %}
{%- endif %}
{%- endif %}
