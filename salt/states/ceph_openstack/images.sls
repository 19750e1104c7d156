{#- Raw images in Glance for copy-on-write clones (pillar ceph_openstack:images). Run on
    one controller at a time: two concurrent first runs would each upload the image. #}
{%- from "ceph_openstack/map.jinja" import co with context %}
{%- set images = co.images %}
include:
  - ceph_openstack.validate
{%- for name, image in images.upload.items() %}

ceph_openstack-image-{{ name }}:
  glanceimage.present:
    - name: {{ name | json }}
    - source: {{ image.source | json }}
    - cloud: {{ images.cloud | json }}
{%-   if images.clouds_yaml %}
    - config_file: {{ images.clouds_yaml | json }}
{%-   endif %}
{%-   if images.work_dir %}
    - work_dir: {{ images.work_dir | json }}
{%-   endif %}
    - visibility: {{ image.get('visibility', images.visibility) | json }}
{%-   if image.get('min_disk') is not none %}
    - min_disk: {{ image.min_disk | json }}
{%-   endif %}
{%-   for key in ('source_hash', 'format') if image.get(key) %}
    - {{ 'fmt' if key == 'format' else key }}: {{ image[key] | json }}
{%-   endfor %}
    - properties: {{ salt['slsutil.merge'](images.properties, image.get('properties') or {}) | json }}
    - require:
      - ceph_openstack: ceph_openstack-pillar
{%- endfor %}
