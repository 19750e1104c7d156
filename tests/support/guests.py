"""Libvirt domains for the tests: a QEMU guest whose disk is an RBD image opened with a
client's key from a libvirt secret."""


def rbd_guest_xml(name, image, client, secret_uuid, mon_port=6789):
    """The XML of domain ``name`` (64 MiB, one vCPU) with RBD disk ``image`` (``pool/name``)
    on the mon at 127.0.0.1:``mon_port``, read as client.<client> with the key in libvirt
    secret ``secret_uuid``. Defined, it uses the secret; started, it reads its value."""
    return f"""<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>
<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='network' device='disk'><driver name='qemu' type='raw'/>
<source protocol='rbd' name='{image}'><host name='127.0.0.1' port='{mon_port}'/></source>
<auth username='{client}'><secret type='ceph' uuid='{secret_uuid}'/></auth>
<target dev='vda' bus='virtio'/></disk></devices></domain>"""


def mon_port(ceph_lab):
    """The v1 port of the lab cluster's mon (QEMU's librbd takes a host and a port)."""
    return ceph_lab.mon_host.split("v1:127.0.0.1:")[1].split("]")[0]
