{#- Controller role: ceph.conf, keyrings for glance, cinder and cinder-backup, and the Ceph
    options of cinder.conf and glance-api.conf; services restart when those change, and
    must then stay up (ceph_openstack.service_running). #}
{%- from "ceph_openstack/map.jinja" import co, paths, problems, service_clients, clusters,
    glance_stores, watch_ceph with context %}
{%- set lookup = co.lookup %}
{%- set secrets = co.libvirt.secrets %}
{%- set glance = co.glance %}
{#- Where a part's cluster is: the conf of that cluster (default: the main one), and the
    `rbd_cluster_name` Cinder needs for a cluster not named `ceph`. #}
{%- macro conf_of(part) -%}
{{ clusters[part.get('cluster') or co.cluster].conf_real }}
{%- endmacro %}
include:
  - ceph_openstack.validate
  - ceph_openstack.client
{#- A pillar with a problem: nothing but the check of ceph_openstack.validate. #}
{%- if not problems %}

{#- cinder.conf: one section per RBD backend, listed in enabled_backends; backups on Ceph. #}
{%- set cinder = co.cinder %}
{%- set cinder_sections = {'DEFAULT': {}} %}
{%- if cinder.backends %}
{%-   do cinder_sections.DEFAULT.update({'enabled_backends': cinder.backends.keys() | join(',')}) %}
{%- endif %}
{%- for name, backend in cinder.backends.items() %}
{%-   set section = {
        'volume_driver': 'cinder.volume.drivers.rbd.RBDDriver',
        'volume_backend_name': name,
        'rbd_pool': backend.pool,
        'rbd_ceph_conf': conf_of(backend) | string,
        'rbd_user': backend.client,
      } %}
{%-   if (backend.get('cluster') or co.cluster) != 'ceph' %}
{%-     do section.update({'rbd_cluster_name': backend.get('cluster') or co.cluster}) %}
{%-   endif %}
{%-   if backend.secret %}
{%-     do section.update({'rbd_secret_uuid': secrets[backend.secret].uuid}) %}
{%-   endif %}
{%-   do section.update(backend.options) %}
{%-   do cinder_sections.update({name: section}) %}
{%- endfor %}
{%- if cinder.backup %}
{%-   do cinder_sections.DEFAULT.update({
        'backup_driver': 'cinder.backup.drivers.ceph.CephBackupDriver',
        'backup_ceph_conf': conf_of(cinder.backup) | string,
        'backup_ceph_user': cinder.backup.client,
        'backup_ceph_pool': cinder.backup.pool,
      }) %}
{%-   do cinder_sections.DEFAULT.update(cinder.backup.options) %}
{%- endif %}
{%- set cinder_sections = salt['slsutil.merge'](cinder_sections, cinder.conf,
                                              strategy='recurse') %}
{%- if cinder.backends or cinder.backup or cinder.conf %}

ceph_openstack-cinder-conf:
  openstack_ini.options_present:
    - name: {{ paths.cinder_conf | json }}
    - sections: {{ cinder_sections | json }}
    - require:
      - ceph_openstack: ceph_openstack-ceph-conf
{%- endif %}

{#- glance-api.conf in the multi-store form: [DEFAULT] enabled_backends = <name>:rbd, one
    section per store (the main one, then glance:stores), each on its own cluster. #}
{%- if glance %}
{%-   set enabled = [] %}
{%-   for name in glance_stores %}{% do enabled.append(name ~ ':rbd') %}{% endfor %}
{%-   set glance_sections = {
        'DEFAULT': {
          'enabled_backends': enabled | join(','),
          'show_image_direct_url': glance.show_image_direct_url,
        },
        'glance_store': {'default_backend': glance.backend},
      } %}
{%-   for name, store in glance_stores.items() %}
{%-     set section = {
          'rbd_store_pool': store.pool,
          'rbd_store_user': store.client,
          'rbd_store_ceph_conf': conf_of(store) | string,
          'rbd_store_chunk_size': store.chunk_size,
        } %}
{%-     do section.update(store.options) %}
{%-     do glance_sections.update({name: section}) %}
{%-   endfor %}
{%-   set glance_sections = salt['slsutil.merge'](glance_sections, glance.conf,
                                                strategy='recurse') %}

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
