{#- Every node: /etc/hosts entries, the Ceph repository (optional) and client packages. #}
{%- from "ceph_openstack/map.jinja" import co, pkgs, problems with context %}
include:
  - ceph_openstack.validate
{#- A pillar with a problem: nothing but the check of ceph_openstack.validate. #}
{%- if not problems %}

{%- for host, address in co.hosts.items() %}
ceph_openstack-host-{{ host }}:
  host.present:
    - name: {{ host | json }}
    - ip: {{ address | json }}
{%- endfor %}

{%- if co.repo.manage %}
ceph_openstack-repo:
  pkgrepo.managed:
{%- if grains.os_family == 'Debian' %}
    - name: deb {{ co.lookup.repo.url.format(release=co.repo.release) }} {{ grains.oscodename }} main
    - file: /etc/apt/sources.list.d/ceph.list
    - key_url: {{ co.lookup.repo.key_url }}
{%- else %}
    - name: ceph
    - humanname: Ceph {{ co.repo.release }}
    - baseurl: {{ co.lookup.repo.url.format(release=co.repo.release) }}
    - gpgkey: {{ co.lookup.repo.key_url }}
    - gpgcheck: 1
{%- endif %}
{%- endif %}

{%- if pkgs %}
ceph_openstack-packages:
  pkg.installed:
    - pkgs: {{ pkgs | json }}
{%- if co.repo.manage %}
    - require:
      - pkgrepo: ceph_openstack-repo
{%- endif %}
{%- endif %}
{%- endif %}
