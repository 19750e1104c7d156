ceph_openstack: {}
