{#- Compute role: ceph.conf with the guests' [client] options, their socket and log
    directories, the client keyrings (ceph_openstack.client), the libvirt secrets (one per
    cluster and client), and nova.conf [libvirt] (Nova's disks on their own cluster). #}
{%- from "ceph_openstack/map.jinja" import co, paths, problems, service_clients, clusters,
    watch_ceph with context %}
{%- from "ceph_openstack/options.jinja" import nova_sections with context %}
{%- set lookup = co.lookup %}
{%- set secrets = co.libvirt.secrets %}
include:
  - ceph_openstack.validate
  - ceph_openstack.client
{#- A pillar with a problem: nothing but the check of ceph_openstack.validate. #}
{%- if not problems %}

{%- for kind, dir in [('socket', paths.guest_socket_dir), ('log', paths.guest_log_dir)] %}

ceph_openstack-guest-{{ kind }}-dir:
  file.directory:
    - name: {{ dir | json }}
    - user: {{ lookup.owners.qemu | json }}
    - group: {{ lookup.groups.qemu | json }}
    - mode: '0775'
    - makedirs: True
{%- endfor %}

{%- for name, secret in secrets.items() %}
{%-   if secret.get('absent') is sameas true %}

{#- Marked absent: undefined, unless a libvirt domain uses it (the state fails naming the
    domains, and the client's keyring here stays: ceph_openstack.client). #}
ceph_openstack-libvirt-secret-{{ name }}:
  ceph_openstack.libvirt_secret_absent:
    - name: {{ secret.uuid | json }}
{%-     if lookup.libvirt_uri %}
    - uri: {{ lookup.libvirt_uri | json }}
{%-     endif %}
{%-   else %}
{%-   set on = clusters[secret.get('cluster') or co.cluster] %}

ceph_openstack-libvirt-secret-{{ name }}:
  ceph_openstack.libvirt_secret:
    - name: {{ secret.uuid | json }}
    - client: {{ secret.client | json }}
    - targets: {{ on.targets | json }}
{%-   if on.arg %}
    - ceph_cluster: {{ on.arg | json }}
{%-   endif %}
{%-   if lookup.libvirt_uri %}
    - uri: {{ lookup.libvirt_uri | json }}
{%-   endif %}
{%-   endif %}
{%- endfor %}

{%- if nova_sections %}

ceph_openstack-nova-conf:
  openstack_ini.options_present:
    - name: {{ paths.nova_conf | json }}
    - sections: {{ nova_sections | json }}
    - require:
      - ceph_openstack: ceph_openstack-ceph-conf

{%-   if co.services.restart %}

ceph_openstack-service-nova_compute:
  ceph_openstack.service_running:
    - name: {{ lookup.services.nova_compute | json }}
    - service: nova_compute
{%-     if (lookup.service_logs or {}).get('nova_compute') %}
    - log: {{ (lookup.root ~ lookup.service_logs.nova_compute) | json }}
{%-     endif %}
    - watch:
      - openstack_ini: ceph_openstack-nova-conf
{{- watch_ceph(service_clients.compute.nova_compute) }}
{%-   endif %}
{%- endif %}
{%- endif %}
