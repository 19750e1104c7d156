{#- The rollout's last step: this node checks itself with its own keyrings. #}
ceph_openstack-verified:
  ceph_openstack.verified
