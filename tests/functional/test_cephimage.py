"""
Functional tests of cephimage: the module synced and loaded by Salt's loader.

clone_check runs on the real lab cluster with the layout Glance and Cinder
make: Glance (as client.glance) imports an image into the images pool,
snapshots it as ``snap`` and protects the snapshot; Cinder (as client.cinder)
clones that snapshot into the volumes pool and creates a plain volume. The
two users are created by our cephauth module with the formula's default caps
(pillar/ceph_openstack.sls) and their keyrings written from cephauth.keyring,
so the test also proves those caps let client.cinder clone from images. Each
result is checked against ``rbd info`` directly.

convert runs the real qemu-img on a small generated qcow2.
"""

import json
import os
import shutil
import subprocess
import uuid

import pytest
from salt.exceptions import CommandExecutionError

pytestmark = pytest.mark.lab

MIB = 1 << 20


@pytest.fixture(scope="module", autouse=True)
def _cluster(ceph_lab):
    """Requested before ``loaders`` so the minion opts point at the lab cluster."""
    return ceph_lab


def caps(images, volumes, vms):
    """The formula's default caps (pillar/ceph_openstack.sls) for these pool names."""
    return {
        "cinder": {
            "mon": "profile rbd",
            "osd": f"profile rbd pool={volumes}, profile rbd pool={vms}, "
            f"profile rbd-read-only pool={images}",
            "mgr": f"profile rbd pool={volumes}, profile rbd pool={vms}",
        },
        "glance": {
            "mon": "profile rbd",
            "osd": f"profile rbd pool={images}",
            "mgr": f"profile rbd pool={images}",
        },
    }


class Layout:
    """Names of what the ``layout`` fixture made."""


@pytest.fixture(scope="module")
def layout(ceph_lab, loaders, tmp_path_factory):
    tag = uuid.uuid4().hex[:8]
    lay = Layout()
    lay.images, lay.volumes, lay.vms = f"img-{tag}", f"vol-{tag}", f"vms-{tag}"
    lay.image_id = str(uuid.uuid4())  # a Glance image id
    lay.other_id = str(uuid.uuid4())  # an image whose snapshot is not protected
    lay.clone = f"volume-{uuid.uuid4()}"
    lay.plain = f"volume-{uuid.uuid4()}"
    lay.foreign = f"volume-{uuid.uuid4()}"  # a clone of the other image
    keydir = tmp_path_factory.mktemp("keyrings")
    users = {name: f"client.{name}-{tag}" for name in ("cinder", "glance")}
    pools = (lay.images, lay.volumes)
    try:
        for pool in pools:
            ceph_lab.ceph("osd", "pool", "create", pool, "8", json_out=False)
            ceph_lab.rbd("pool", "init", pool)
        lay.keyrings = {}
        for name, entity in users.items():
            loaders.modules.cephauth.create(entity, caps(*pools, lay.vms)[name])
            path = keydir / f"ceph.{entity}.keyring"
            path.write_text(loaders.modules.cephauth.keyring(entity))
            path.chmod(0o600)
            lay.keyrings[name] = (entity.split(".", 1)[1], str(path))

        def as_(name, *args):
            client_id, keyring = lay.keyrings[name]
            return ceph_lab.rbd(*args, client_id=client_id, keyring=keyring)

        lay.as_ = as_
        # Glance: the image data, a snapshot "snap", protected.
        data = keydir / "image.raw"
        data.write_bytes(b"glance!" * (MIB // 7) + b"\0" * (2 * MIB - 7 * (MIB // 7)))
        for image_id, protect in ((lay.image_id, True), (lay.other_id, False)):
            as_("glance", "import", str(data), f"{lay.images}/{image_id}")
            as_("glance", "snap", "create", f"{lay.images}/{image_id}@snap")
            if protect:
                as_("glance", "snap", "protect", f"{lay.images}/{image_id}@snap")
        # Cinder: a volume from the image (a clone), an empty volume, a clone of the other image.
        as_("cinder", "clone", f"{lay.images}/{lay.image_id}@snap", f"{lay.volumes}/{lay.clone}")
        as_("cinder", "create", "--size", "4M", f"{lay.volumes}/{lay.plain}")
        as_("cinder", "snap", "create", f"{lay.volumes}/{lay.plain}@backup")  # not a volume
        ceph_lab.rbd("snap", "protect", f"{lay.images}/{lay.other_id}@snap")
        as_("cinder", "clone", f"{lay.images}/{lay.other_id}@snap", f"{lay.volumes}/{lay.foreign}")
        yield lay
    finally:
        for entity in users.values():
            ceph_lab.ceph("auth", "del", entity, json_out=False, check=False)
        for pool in pools:
            ceph_lab.ceph(
                "osd", "pool", "delete", pool, pool, "--yes-i-really-really-mean-it",
                json_out=False, check=False,
            )


def rbd_info(ceph_lab, spec):
    return json.loads(ceph_lab.rbd("info", "--format", "json", spec))


def test_clone_check_sees_the_clone_the_copy_and_the_protected_snapshot(modules, ceph_lab, layout):
    lay = layout
    ret = modules.cephimage.clone_check(
        lay.image_id, images_pool=lay.images, volumes_pool=lay.volumes
    )
    snap_spec = f"{lay.images}/{lay.image_id}@snap"

    # straight from rbd
    snap_info = rbd_info(ceph_lab, snap_spec)
    clone_info = rbd_info(ceph_lab, f"{lay.volumes}/{lay.clone}")
    plain_info = rbd_info(ceph_lab, f"{lay.volumes}/{lay.plain}")
    assert snap_info["protected"] == "true"
    parent = clone_info["parent"]
    assert (parent["pool"], parent["image"], parent["snapshot"]) == (
        lay.images, lay.image_id, "snap",
    )
    assert "parent" not in plain_info

    assert ret["image"] == f"{lay.images}/{lay.image_id}" and ret["image_exists"] is True
    assert ret["snapshot"] == {"name": snap_spec, "exists": True, "protected": True}
    assert ret["clones"] == [
        {
            "name": f"{lay.volumes}/{lay.clone}",
            "parent": snap_spec,
            "overlap": parent["overlap"],
            "size": clone_info["size"],
        }
    ]
    assert parent["overlap"] == 2 * MIB
    assert ret["copies"] == [{"name": f"{lay.volumes}/{lay.plain}", "size": plain_info["size"]}]
    assert ret["other_clones"] == [
        {
            "name": f"{lay.volumes}/{lay.foreign}",
            "parent": f"{lay.images}/{lay.other_id}@snap",
            "size": 2 * MIB,
        }
    ]
    assert ret["summary"] == (
        f"{snap_spec} exists and is protected; {lay.volumes}: 1 clone of it, 1 full copy, "
        "1 clone of other images"
    )


def test_clone_check_as_client_cinder_and_cinder_cannot_write_images(modules, ceph_lab, layout):
    lay = layout
    client_id, keyring = lay.keyrings["cinder"]
    ret = modules.cephimage.clone_check(
        lay.image_id,
        images_pool=lay.images,
        volumes_pool=lay.volumes,
        client_id=client_id,
        keyring=keyring,
    )
    assert ret["snapshot"]["protected"] is True
    assert [c["name"] for c in ret["clones"]] == [f"{lay.volumes}/{lay.clone}"]
    # rbd-read-only on images: cinder clones from it but cannot change it
    with pytest.raises(RuntimeError, match="Operation not permitted|Permission denied|error"):
        lay.as_("cinder", "snap", "create", f"{lay.images}/{lay.image_id}@intruder")


def test_clone_check_reports_missing_and_unprotected(modules, ceph_lab, layout):
    lay = layout
    missing = modules.cephimage.clone_check(
        "no-such-image", images_pool=lay.images, volumes_pool=lay.volumes
    )
    assert missing["image_exists"] is False
    assert missing["snapshot"] == {
        "name": f"{lay.images}/no-such-image@snap", "exists": False, "protected": False,
    }
    assert missing["clones"] == []
    assert len(missing["copies"]) == 1 and len(missing["other_clones"]) == 2
    assert missing["summary"].startswith(f"image {lay.images}/no-such-image does not exist")

    no_snap = modules.cephimage.clone_check(
        lay.image_id, images_pool=lay.images, volumes_pool=lay.volumes, snap="other"
    )
    assert no_snap["image_exists"] is True and no_snap["snapshot"]["exists"] is False

    ceph_lab.rbd("snap", "create", f"{lay.images}/{lay.image_id}@loose")
    loose = modules.cephimage.clone_check(
        lay.image_id, images_pool=lay.images, volumes_pool=lay.volumes, snap="loose"
    )
    assert loose["snapshot"] == {
        "name": f"{lay.images}/{lay.image_id}@loose", "exists": True, "protected": False,
    }
    assert "NOT protected" in loose["summary"]


def test_clone_check_without_a_volumes_pool_raises(modules, layout):
    with pytest.raises(CommandExecutionError, match="volumes_pool: pool none-.* does not exist"):
        modules.cephimage.clone_check(
            layout.image_id, images_pool=layout.images, volumes_pool=f"none-{uuid.uuid4().hex[:6]}"
        )


# -- conversion ------------------------------------------------------------------


def qemu(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout


def test_convert_qcow2_to_raw_keeps_the_content(modules, tmp_path):
    # A raw disk with known bytes at known places, then that disk as qcow2.
    content = bytearray(8 * MIB)
    content[0:16] = b"BOOTSECTOR-HELLO"
    content[3 * MIB:3 * MIB + 11] = b"middle-data"
    content[-4:] = b"TAIL"
    seed = tmp_path / "seed.raw"
    seed.write_bytes(bytes(content))
    source = tmp_path / "cloud.qcow2"
    qemu("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(seed), str(source))
    if shutil.which("qemu-io"):  # and a write made inside the qcow2 itself
        qemu("qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a {5 * MIB} 4096", str(source))
        content[5 * MIB:5 * MIB + 4096] = b"\x5a" * 4096
    assert modules.cephimage.info(str(source))["format"] == "qcow2"

    work = tmp_path / "work"
    dest = modules.cephimage.convert(str(source), str(work))

    assert dest == str(work / "cloud.raw")
    assert open(dest, "rb").read() == bytes(content)
    assert json.loads(qemu("qemu-img", "info", "--output", "json", dest))["format"] == "raw"
    assert sorted(os.listdir(work)) == ["cloud.raw"]  # no temporary file left


def test_convert_leaves_raw_alone_and_refuses_what_it_cannot_do(modules, tmp_path):
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * MIB)
    assert modules.cephimage.convert(str(raw), str(tmp_path / "w")) == str(raw)

    huge = tmp_path / "huge.qcow2"
    qemu("qemu-img", "create", "-f", "qcow2", str(huge), "1P")
    work = tmp_path / "w2"
    with pytest.raises(CommandExecutionError, match="not enough space"):
        modules.cephimage.convert(str(huge), str(work))
    assert os.listdir(work) == []

    child = tmp_path / "child.qcow2"
    qemu("qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b", str(raw), str(child))
    with pytest.raises(CommandExecutionError, match="backing file"):
        modules.cephimage.convert(str(child), str(work))


def test_convert_removes_partial_output_on_failure(modules, tmp_path):
    seed = tmp_path / "seed.raw"
    seed.write_bytes(b"\x11" * 65536 + b"\0" * (4 * MIB - 65536))
    broken = tmp_path / "broken.qcow2"
    qemu("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(seed), str(broken))
    # Make the first L1 entry point at an unaligned L2 table: `qemu-img info` still reads
    # the image, the conversion fails with an I/O error when it reaches the data.
    data = bytearray(broken.read_bytes())
    l1 = int.from_bytes(data[40:48], "big")
    entry = int.from_bytes(data[l1:l1 + 8], "big")
    data[l1:l1 + 8] = (entry | 0x200).to_bytes(8, "big")
    broken.write_bytes(bytes(data))
    work = tmp_path / "w"
    with pytest.raises(CommandExecutionError, match="qemu-img convert failed"):
        modules.cephimage.convert(str(broken), str(work))
    assert work.is_dir() and os.listdir(work) == []  # it got as far as the work directory
