#!/bin/sh
# The lab's OpenStack deployment on a real controller node, run once inside it as root
# (lab/nodes.py): what a user's deployment has before the formula runs, without Keystone.
# SQLite databases, RabbitMQ on 127.0.0.1, Cinder with auth_strategy noauth, Glance with
# no paste flavor (no Keystone middleware), one worker per API. Nothing here touches Ceph.
set -eu
ini=/usr/local/sbin/lab-ini
rabbit="rabbit://guest:guest@127.0.0.1:5672/"

# RabbitMQ and Erlang's port mapper on loopback only (the nodes share the host's network).
cat > /etc/rabbitmq/rabbitmq-env.conf <<'CONF'
NODE_IP_ADDRESS=127.0.0.1
NODENAME=rabbit@localhost
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
CONF
mkdir -p /etc/systemd/system/epmd.socket.d
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:4369\n' \
    > /etc/systemd/system/epmd.socket.d/loopback.conf
systemctl daemon-reload
systemctl restart epmd.socket
systemctl enable --now rabbitmq-server

$ini /etc/glance/glance-api.conf DEFAULT bind_host 127.0.0.1
$ini /etc/glance/glance-api.conf DEFAULT workers 1
$ini /etc/glance/glance-api.conf database connection sqlite:////var/lib/glance/glance.sqlite
$ini /etc/glance/glance-api.conf paste_deploy flavor ""
# No Keystone: every request is the admin's.
echo '"context_is_admin": ""' > /etc/glance/policy.yaml
su -s /bin/sh -c "glance-manage db_sync" glance

$ini /etc/cinder/cinder.conf DEFAULT auth_strategy noauth
$ini /etc/cinder/cinder.conf DEFAULT transport_url "$rabbit"
$ini /etc/cinder/cinder.conf DEFAULT osapi_volume_listen 127.0.0.1
$ini /etc/cinder/cinder.conf DEFAULT osapi_volume_workers 1
$ini /etc/cinder/cinder.conf DEFAULT glance_api_servers http://127.0.0.1:9292
$ini /etc/cinder/cinder.conf database connection sqlite:////var/lib/cinder/cinder.sqlite
su -s /bin/sh -c "cinder-manage db sync" cinder
# cinder-api runs under uWSGI: on loopback, one process.
echo 'DAEMON_ARGS="--http-socket 127.0.0.1:8776 --ini /etc/cinder/cinder-api-uwsgi.ini"' \
    > /etc/default/cinder-api
$ini /etc/cinder/cinder-api-uwsgi.ini uwsgi processes 1

# Placement (nova-compute does not start without it), noauth2: the token "admin" is admin.
$ini /etc/placement/placement.conf placement_database connection \
    sqlite:////var/lib/placement/placement.sqlite
$ini /etc/placement/placement.conf api auth_strategy noauth2
su -s /bin/sh -c "placement-manage db sync" placement
echo 'DAEMON_ARGS="--http-socket 127.0.0.1:8778 --ini /etc/placement/placement-api-uwsgi.ini"' \
    > /etc/default/placement-api
$ini /etc/placement/placement-api-uwsgi.ini uwsgi processes 1

nova="/etc/nova/nova.conf"
$ini $nova DEFAULT transport_url "$rabbit"
$ini $nova api_database connection sqlite:////var/lib/nova/nova_api.sqlite
$ini $nova database connection sqlite:////var/lib/nova/nova.sqlite
$ini $nova conductor workers 1
$ini $nova placement auth_type admin_token
$ini $nova placement endpoint http://127.0.0.1:8778
$ini $nova placement token admin
su -s /bin/sh -c "nova-manage api_db sync" nova
su -s /bin/sh -c "nova-manage cell_v2 map_cell0 --database_connection sqlite:////var/lib/nova/nova_cell0.sqlite" nova
su -s /bin/sh -c "nova-manage cell_v2 create_cell --name cell1" nova || true
su -s /bin/sh -c "nova-manage db sync" nova

systemctl enable --now glance-api cinder-api cinder-scheduler cinder-volume cinder-backup \
    placement-api nova-conductor
