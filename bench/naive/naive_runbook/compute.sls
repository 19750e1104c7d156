{#- Runbook, for each compute node:
      ssh compute sudo tee /etc/ceph/ceph.conf < /etc/ceph/ceph.conf
      ceph auth get-or-create client.cinder | ssh compute sudo tee /etc/ceph/ceph.client.cinder.keyring
      ceph auth get-key client.cinder | ssh compute tee client.cinder.key
      cat > secret.xml <<EOF ... EOF
      sudo virsh secret-define --file secret.xml
      sudo virsh secret-set-value --secret UUID --base64 $(cat client.cinder.key)
      add the [client] section to ceph.conf; mkdir -p /var/run/ceph/guests/ /var/log/qemu/
      edit nova.conf [libvirt] #}
{%- from "naive_runbook/vars.jinja" import nr, root, ceph, virsh, owner, ini_set with context %}
{%- set nova_conf = root ~ '/etc/nova/nova.conf' %}
{%- set c = nr.names %}
{%- set uuid = nr.secret_uuid %}

naive-ceph-conf:
  file.managed:
    - name: {{ root }}/etc/ceph/ceph.conf
    - source: {{ nr.conf }}
    - makedirs: True
    - replace: False    {#- the [client] section below is appended to it #}

naive-ceph-conf-client:
  file.append:
    - name: {{ root }}/etc/ceph/ceph.conf
    - text: |
        [client]
            rbd cache = true
            rbd cache writethrough until flush = true
            admin socket = /var/run/ceph/guests/$cluster-$type.$id.$pid.$cctid.asok
            log file = /var/log/qemu/qemu-guest-$pid.log
            rbd concurrent management ops = 20
    - require:
      - file: naive-ceph-conf

naive-guest-dirs:
  cmd.run:
    - name: mkdir -p {{ root }}/var/run/ceph/guests/ {{ root }}/var/log/qemu/ && chown {{ owner }} {{ root }}/var/run/ceph/guests/ {{ root }}/var/log/qemu/
    - creates:
      - {{ root }}/var/run/ceph/guests
      - {{ root }}/var/log/qemu

naive-keyring-{{ c.cinder }}:
  cmd.run:
    - name: {{ ceph }} auth get-or-create client.{{ c.cinder }} | tee {{ root }}/etc/ceph/ceph.client.{{ c.cinder }}.keyring >/dev/null && chown {{ owner }} {{ root }}/etc/ceph/ceph.client.{{ c.cinder }}.keyring
    - creates: {{ root }}/etc/ceph/ceph.client.{{ c.cinder }}.keyring

naive-cinder-key:
  cmd.run:
    - name: mkdir -p {{ root }}/root && {{ ceph }} auth get-key client.{{ c.cinder }} | tee {{ root }}/root/client.{{ c.cinder }}.key >/dev/null
    - creates: {{ root }}/root/client.{{ c.cinder }}.key

naive-secret-xml:
  file.managed:
    - name: {{ root }}/root/secret.xml
    - makedirs: True
    - contents: |
        <secret ephemeral='no' private='no'>
          <uuid>{{ uuid }}</uuid>
          <usage type='ceph'>
            <name>client.{{ c.cinder }} secret</name>
          </usage>
        </secret>

naive-secret-define:
  cmd.run:
    - name: {{ virsh }} secret-define --file {{ root }}/root/secret.xml
    - unless: {{ virsh }} secret-list | grep -q {{ uuid }}
    - require:
      - file: naive-secret-xml

naive-secret-value:
  cmd.run:
    - name: {{ virsh }} secret-set-value --secret {{ uuid }} --base64 $(cat {{ root }}/root/client.{{ c.cinder }}.key)
    - unless: {{ virsh }} secret-get-value {{ uuid }} >/dev/null
    - require:
      - cmd: naive-secret-define
      - cmd: naive-cinder-key

{#- nova.conf [libvirt] #}
{{ ini_set(nova_conf, 'libvirt', 'images_type', 'rbd') }}
{{ ini_set(nova_conf, 'libvirt', 'images_rbd_pool', c.vms) }}
{{ ini_set(nova_conf, 'libvirt', 'images_rbd_ceph_conf', '/etc/ceph/ceph.conf') }}
{{ ini_set(nova_conf, 'libvirt', 'rbd_user', c.cinder) }}
{{ ini_set(nova_conf, 'libvirt', 'rbd_secret_uuid', uuid) }}
{{ ini_set(nova_conf, 'libvirt', 'disk_cachemodes', '"network=writeback"') }}
{{ ini_set(nova_conf, 'libvirt', 'inject_password', 'false') }}
{{ ini_set(nova_conf, 'libvirt', 'inject_key', 'false') }}
{{ ini_set(nova_conf, 'libvirt', 'inject_partition', '-2') }}
{{ ini_set(nova_conf, 'libvirt', 'hw_disk_discard', 'unmap') }}
