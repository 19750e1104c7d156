{#- Runbook, for the controller (glance-api, cinder-volume, cinder-backup):
      ssh controller sudo tee /etc/ceph/ceph.conf < /etc/ceph/ceph.conf
      ceph auth get-or-create client.glance | ssh controller sudo tee /etc/ceph/ceph.client.glance.keyring
      ssh controller sudo chown glance:glance /etc/ceph/ceph.client.glance.keyring   (same for cinder, cinder-backup)
      edit glance-api.conf and cinder.conf #}
{%- from "naive_runbook/vars.jinja" import nr, root, ceph, owner, ini_set with context %}
{%- set glance_conf = root ~ '/etc/glance/glance-api.conf' %}
{%- set cinder_conf = root ~ '/etc/cinder/cinder.conf' %}
{%- set c = nr.names %}

naive-ceph-conf:
  file.managed:
    - name: {{ root }}/etc/ceph/ceph.conf
    - source: {{ nr.conf }}
    - makedirs: True

{%- for client in [c.glance, c.cinder, c.cinder_backup] %}

naive-keyring-{{ client }}:
  cmd.run:
    - name: {{ ceph }} auth get-or-create client.{{ client }} | tee {{ root }}/etc/ceph/ceph.client.{{ client }}.keyring >/dev/null && chown {{ owner }} {{ root }}/etc/ceph/ceph.client.{{ client }}.keyring
    - creates: {{ root }}/etc/ceph/ceph.client.{{ client }}.keyring
{%- endfor %}

{#- glance-api.conf (multi-store form, the same settings the formula writes) #}
{{ ini_set(glance_conf, 'DEFAULT', 'show_image_direct_url', 'True') }}
{{ ini_set(glance_conf, 'DEFAULT', 'enabled_backends', 'ceph:rbd') }}
{{ ini_set(glance_conf, 'glance_store', 'default_backend', 'ceph') }}

naive-glance-ceph-section:
  file.append:
    - name: {{ glance_conf }}
    - text: |

        [ceph]
        rbd_store_pool = {{ c.images }}
        rbd_store_user = {{ c.glance }}
        rbd_store_ceph_conf = /etc/ceph/ceph.conf
        rbd_store_chunk_size = 8

{#- cinder.conf #}
{{ ini_set(cinder_conf, 'DEFAULT', 'enabled_backends', 'ceph') }}
{{ ini_set(cinder_conf, 'DEFAULT', 'backup_driver', 'cinder.backup.drivers.ceph.CephBackupDriver') }}
{{ ini_set(cinder_conf, 'DEFAULT', 'backup_ceph_conf', '/etc/ceph/ceph.conf') }}
{{ ini_set(cinder_conf, 'DEFAULT', 'backup_ceph_user', c.cinder_backup) }}
{{ ini_set(cinder_conf, 'DEFAULT', 'backup_ceph_chunk_size', '134217728') }}
{{ ini_set(cinder_conf, 'DEFAULT', 'backup_ceph_pool', c.backups) }}
{{ ini_set(cinder_conf, 'DEFAULT', 'backup_ceph_stripe_unit', '0') }}
{{ ini_set(cinder_conf, 'DEFAULT', 'backup_ceph_stripe_count', '0') }}
{{ ini_set(cinder_conf, 'DEFAULT', 'restore_discard_excess_bytes', 'true') }}

naive-cinder-ceph-section:
  file.append:
    - name: {{ cinder_conf }}
    - text: |

        [ceph]
        volume_driver = cinder.volume.drivers.rbd.RBDDriver
        volume_backend_name = ceph
        rbd_pool = {{ c.volumes }}
        rbd_ceph_conf = /etc/ceph/ceph.conf
        rbd_flatten_volume_from_snapshot = false
        rbd_max_clone_depth = 5
        rbd_store_chunk_size = 4
        rados_connect_timeout = -1
        rbd_user = {{ c.cinder }}
        rbd_secret_uuid = {{ nr.secret_uuid }}
