#!/bin/sh
# The lab's OpenStack deployment on a real compute node, run once inside it as root
# (lab/nodes.py): nova-compute reaching the controller's conductor through RabbitMQ on
# 127.0.0.1 (the nodes share the host's network), libvirtd in system mode. The node's
# cgroup tree is read-only inside systemd-nspawn, so QEMU guests get no cgroup controllers.
set -eu
ini=/usr/local/sbin/lab-ini
nova=/etc/nova/nova.conf
$ini $nova DEFAULT transport_url "rabbit://guest:guest@127.0.0.1:5672/"
# The controller's Placement (noauth2: the token "admin" is admin).
$ini $nova placement auth_type admin_token
$ini $nova placement endpoint http://127.0.0.1:8778
$ini $nova placement token admin
echo "cgroup_controllers = [ ]" >> /etc/libvirt/qemu.conf
systemctl enable --now libvirtd
systemctl enable nova-compute
systemctl start --no-block nova-compute
