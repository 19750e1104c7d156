{#- Rotation, on the mons: the new keys (pending where the cluster has pending keys), then
    published for the nodes. #}
{%- from "ceph_openstack/map.jinja" import co with context %}
ceph_openstack-rotation-staged:
  ceph_openstack.rotation_staged:
    - targets: {{ co.targets | json }}
