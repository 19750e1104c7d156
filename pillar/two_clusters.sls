# A second Ceph cluster beside the main one of ceph_openstack.sls: add this file after
# ceph_openstack in top.sls (its keys merge into the main pillar). The main cluster keeps
# Nova's disks, a Cinder backend and Glance's default store; the cluster `dr` gets a second
# Cinder backend, the backups of every volume, and a second Glance store.
ceph_openstack:
  # Other clusters, by name: /etc/ceph/<name>.conf and <name>.client.<id>.keyring on the
  # nodes that use them. Each has its own mons (targets:mon, matched on the minion: a mon
  # applies the pools, users and key publishing of each cluster whose target names it),
  # pools and clients, shaped as the top-level ones (which are the main cluster's).
  # fsid and mon_host are optional, as at the top level.
  clusters:
    dr:
      targets:
        mon: 'G@role:mon and G@ceph_cluster:dr'
      pools:
        volumes: {pg_num: 32}
        backups: {pg_num: 32}
        images: {pg_num: 32}
      clients:
        cinder:
          caps:
            mon: profile rbd
            osd: profile rbd pool=volumes, profile rbd-read-only pool=images
            mgr: profile rbd pool=volumes
          roles: [controller, compute]
        cinder-backup:
          caps:
            mon: profile rbd
            osd: profile rbd pool=backups
            mgr: profile rbd pool=backups
          roles: [controller]
        glance:
          caps:
            mon: profile rbd
            osd: profile rbd pool=images
            mgr: profile rbd pool=images
          roles: [controller]

  # Each main-cluster mon must not match the other cluster's mons.
  targets:
    mon: 'G@role:mon and not G@ceph_cluster:dr'

  # Every compute gets one secret per (cluster, client): Cinder hands Nova the backend's
  # rbd_secret_uuid for each attach. Its usage name is 'dr.client.cinder secret'.
  libvirt:
    secrets:
      cinder-dr:
        uuid: 0b7cdd0a-51a4-4c2e-9f49-1c5a0e3f6a27
        client: cinder
        cluster: dr

  cinder:
    backends:
      ceph-dr:
        cluster: dr            # rbd_ceph_conf = /etc/ceph/dr.conf, rbd_cluster_name = dr
        pool: volumes
        client: cinder
        secret: cinder-dr
    # The backups of volumes on either cluster go to dr's backups pool.
    backup:
      cluster: dr
      pool: backups
      client: cinder-backup

  glance:
    stores:
      dr:
        cluster: dr
        pool: images
        client: glance
