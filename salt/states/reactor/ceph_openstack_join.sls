{#- Reactor: a minion that starts is handed to orch.ceph_openstack_join, which gives a
    controller or compute named by ceph_openstack:targets the keys it cannot read yet and
    then runs its highstate (a minion not named gets nothing). Master configuration
    (README "A node joins on its own"):

        reactor:
          - 'salt/minion/*/start':
            - salt://reactor/ceph_openstack_join.sls #}
ceph_openstack_join:
  runner.state.orchestrate:
    - args:
      - mods: orch.ceph_openstack_join
      - pillar:
          ceph_openstack_join:
            minion: {{ data['id'] | json }}
