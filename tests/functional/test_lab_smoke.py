"""The lab's parts answer from the outside, before any project module is involved."""

import uuid


def test_ceph_pool_create_and_list(ceph_lab):
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    ceph_lab.ceph("osd", "pool", "create", name, "8")
    assert name in ceph_lab.ceph("osd", "pool", "ls")
    status = ceph_lab.ceph("status")
    assert status["osdmap"]["num_up_osds"] == 1


def test_libvirt_secret_round_trip(libvirt_lab, tmp_path):
    secret_uuid = str(uuid.uuid4())
    xml = tmp_path / "secret.xml"
    xml.write_text(
        f"<secret ephemeral='no' private='no'><uuid>{secret_uuid}</uuid>"
        f"<usage type='ceph'><name>smoke {secret_uuid} secret</name></usage></secret>"
    )
    libvirt_lab.virsh("secret-define", str(xml))
    value = "AQBhAAAAAAAAABAAvHOq2W2wbY4Wcf7yCmXw3Q=="
    libvirt_lab.virsh("secret-set-value", secret_uuid, "--file", "/dev/stdin", stdin=value)
    assert libvirt_lab.virsh("secret-get-value", secret_uuid).strip() == value
    libvirt_lab.virsh("secret-undefine", secret_uuid)


def test_loaders_see_synced_utils(loaders):
    assert "ceph_cli.run" in loaders.utils
