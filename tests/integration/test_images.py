"""
Raw images into a real Glance, through the orchestration, and the copy-on-write chain.

After a rollout, a real glance-api (lab/glance.py) starts from the
glance-api.conf and the client.glance keyring the formula wrote on ctl1 and
stores into the lab cluster. The pillar then lists a qcow2 image; the
orchestration's images step converts and uploads it on ctl1 with
glanceimage.present. Everything is checked from outside: Glance's own API
over plain HTTP, the rbd CLI, and a clone made as client.cinder with the
keyring the formula wrote, which cephimage.clone_check (salt-run) reports.
"""

import hashlib
import json
import os
import subprocess
import urllib.request

import pytest

from lab.ceph import sandbox_client_conf
from lab.glance import CLOUD, GlanceLab, unsupported
from tests.integration.test_rollout import changed, orchestrate

MIB = 1 << 20
NAME = "cirros-lab"
RUNBOOK_PROPERTIES = {
    "hw_scsi_model": "virtio-scsi",
    "hw_disk_bus": "scsi",
    "hw_qemu_guest_agent": "yes",
    "os_require_quiesce": "yes",
}


def _glance(glance, path, method="GET"):
    request = urllib.request.Request(f"{glance.url}/v2{path}", method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body and path != "" and not path.endswith("/file") else body


def _images(glance, name=NAME):
    return _glance(glance, f"/images?name={name}")["images"]


def _refresh(salt_cli):
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")


@pytest.fixture(scope="module")
def sources(lab_dir):
    """A raw disk with a recognisable pattern, and the same disk as qcow2."""
    directory = lab_dir / "images"
    directory.mkdir(exist_ok=True)
    raw = directory / "disk.raw"
    raw.write_bytes(b"".join(bytes([i]) * MIB for i in range(1, 9)))  # 8 MiB
    qcow2 = directory / "cirros.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)],
                   check=True)
    return raw, qcow2


@pytest.fixture(scope="module")
def glance(salt_run_cli, salt_cli, lab_pillar, lab_dir, sandbox, ceph_lab):
    if unsupported(ceph_lab):
        pytest.skip(unsupported(ceph_lab))
    lab_pillar.edit({})
    _refresh(salt_cli)
    _, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    server = GlanceLab(lab_dir / "glance")
    server.up_for_controller(str(sandbox("ctl1")))
    try:
        yield server
    finally:
        server.down()
        lab_pillar.edit({})
        _refresh(salt_cli)


def _images_pillar(glance, source, **image):
    return {"ceph_openstack": {"images": {
        "cloud": CLOUD,
        "clouds_yaml": glance.clouds_yaml,
        "upload": {NAME: dict({"source": str(source), "min_disk": 1}, **image)},
    }}}


@pytest.fixture(scope="module")
def uploaded(glance, sources, salt_run_cli, salt_cli, lab_pillar, ceph_lab):
    """test=True, then the real upload: (predicted steps, real steps)."""
    lab_pillar.edit(_images_pillar(glance, sources[1]))
    _refresh(salt_cli)
    predicted, failed = orchestrate(salt_run_cli, test=True)
    assert not failed, failed
    assert _images(glance) == []
    real, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    return predicted, real


def test_dry_run_predicts_the_upload(uploaded):
    predicted, real = uploaded
    key = ("ctl1", f"ceph_openstack-image-{NAME}")
    assert changed(predicted)[key] == {
        "image": {"old": None, "new": NAME},
        "converted": {"old": "qcow2", "new": "raw"},
    }
    assert set(changed(real)[key]) == {"image", "converted"}
    assert "ceph_openstack-images" in real


def test_glance_holds_one_raw_image_with_the_runbook_settings(uploaded, glance, sources):
    (image,) = _images(glance)
    assert image["status"] == "active"
    assert (image["disk_format"], image["container_format"]) == ("raw", "bare")
    assert image["visibility"] == "public" and image["min_disk"] == 1
    for key, value in RUNBOOK_PROPERTIES.items():
        assert image[key] == value, key
    raw = sources[0].read_bytes()
    assert image["checksum"] == hashlib.md5(raw).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(raw).hexdigest()
    assert image["ceph_openstack_source_sha256"] == hashlib.sha256(
        sources[1].read_bytes()
    ).hexdigest()
    assert _glance(glance, f"/images/{image['id']}/file") == raw  # the converted bytes


def test_image_is_in_rbd_with_a_protected_snapshot(uploaded, glance, ceph_lab):
    (image,) = _images(glance)
    assert image["direct_url"] == f"rbd://{ceph_lab.fsid}/images/{image['id']}/snap"
    assert image["id"] in json.loads(ceph_lab.rbd("ls", "images", "--format", "json"))
    snaps = json.loads(ceph_lab.rbd("snap", "ls", f"images/{image['id']}", "--format", "json"))
    assert [(s["name"], s["protected"]) for s in snaps] == [("snap", "true")]


def test_no_raw_copy_is_left_behind(uploaded, lab_dir):
    work = lab_dir / "salt" / "roots"
    leftovers = [
        os.path.join(dirpath, name)
        for dirpath, _, names in os.walk(work)
        for name in names if name.endswith((".raw", ".raw.part"))
    ]
    assert leftovers == []


def test_second_rollout_changes_nothing(uploaded, glance, salt_run_cli):
    before = _images(glance)
    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert changed(steps) == {}
    assert _images(glance) == before


def test_clone_made_as_cinder_is_reported_by_clone_check(
    uploaded, glance, ceph_lab, sandbox, salt_run_cli
):
    """What Cinder does for a volume from an image, as client.cinder with the formula's
    keyring and ceph.conf from ctl1: a clone of images/<id>@snap. Plus a full copy."""
    (image,) = _images(glance)
    conf = sandbox_client_conf(str(sandbox("ctl1")), "cinder", ceph_lab.dir + "/cinder.conf")
    as_cinder = ["rbd", "-c", conf, "--id", "cinder"]
    clone, copy = f"volume-{image['id'][:8]}-clone", f"volume-{image['id'][:8]}-copy"
    subprocess.run(as_cinder + ["clone", f"images/{image['id']}@snap", f"volumes/{clone}"],
                   check=True, capture_output=True)
    subprocess.run(as_cinder + ["create", "--size", "8", f"volumes/{copy}"], check=True,
                   capture_output=True)
    try:
        assert salt_run_cli.run("saltutil.sync_runners").returncode == 0
        ret = salt_run_cli.run("cephimage.clone_check", image["id"])
        assert ret.returncode == 0, ret.stderr
        report = ret.data
        assert isinstance(report, dict), ret.stdout
        assert report["snapshot"] == {
            "name": f"images/{image['id']}@snap", "exists": True, "protected": True}
        assert [(c["name"], c["parent"], c["overlap"]) for c in report["clones"]] == [
            (f"volumes/{clone}", f"images/{image['id']}@snap", 8 * MIB)]
        assert f"volumes/{copy}" in [c["name"] for c in report["copies"]]
        parent = json.loads(subprocess.run(
            as_cinder + ["info", "--format", "json", f"volumes/{clone}"],
            check=True, capture_output=True, text=True).stdout)["parent"]
        assert (parent["pool"], parent["image"], parent["snapshot"]) == (
            "images", image["id"], "snap")
    finally:
        for volume in (clone, copy):
            subprocess.run(as_cinder + ["rm", f"volumes/{volume}"], capture_output=True)


def test_clone_check_takes_its_pools_from_the_pillar_and_fails_loudly(
    uploaded, glance, sources, salt_run_cli, salt_cli, lab_pillar
):
    """With a second Cinder backend on a pool that does not exist, the check (pools from
    the mons' pillar) fails on every mon, naming that pool, and salt-run exits non-zero."""
    (image,) = _images(glance)
    lab_pillar.edit({"ceph_openstack": {"cinder": {"backends": {
        "ceph2": {"pool": "no-such-volumes", "client": "cinder", "secret": "cinder"}}}}})
    _refresh(salt_cli)
    try:
        ret = salt_run_cli.run("cephimage.clone_check", image["id"])
        assert ret.returncode == 1, ret.stdout
        assert ret.data["retcode"] == 1
        assert set(ret.data["minions"]) == {"mon1", "mon2"}
        assert all("pool no-such-volumes does not exist" in str(answer)
                   for answer in ret.data["minions"].values()), ret.data
        # pools given on the command line win over the pillar
        ret = salt_run_cli.run("cephimage.clone_check", image["id"], "volumes_pool=volumes")
        assert ret.returncode == 0 and ret.data["image"] == f"images/{image['id']}"
    finally:
        lab_pillar.edit(_images_pillar(glance, sources[1]))
        _refresh(salt_cli)


def test_settings_change_is_predicted_then_made(
    uploaded, glance, sources, salt_run_cli, salt_cli, lab_pillar
):
    lab_pillar.edit(_images_pillar(glance, sources[1], min_disk=2,
                                   properties={"hw_disk_bus": "virtio", "os_distro": "cirros"}))
    _refresh(salt_cli)
    key = ("ctl1", f"ceph_openstack-image-{NAME}")
    (before,) = _images(glance)
    predicted, failed = orchestrate(salt_run_cli, test=True)
    assert not failed, failed
    assert changed(predicted) == {key: {
        "min_disk": {"old": 1, "new": 2},
        "properties": {
            "hw_disk_bus": {"old": "scsi", "new": "virtio"},
            "os_distro": {"old": None, "new": "cirros"},
        },
    }}
    assert _images(glance) == [before]
    real, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert changed(real) == changed(predicted)
    (after,) = _images(glance)
    assert (after["id"], after["min_disk"], after["hw_disk_bus"], after["os_distro"]) == (
        before["id"], 2, "virtio", "cirros")


def test_another_source_under_the_same_name_is_refused(
    uploaded, glance, sources, salt_run_cli, salt_cli, lab_pillar, lab_dir
):
    other = lab_dir / "images" / "other.raw"
    other.write_bytes(b"\x07" * MIB)
    lab_pillar.edit(_images_pillar(glance, other))
    _refresh(salt_cli)
    before = _images(glance)
    steps, failed = orchestrate(salt_run_cli)
    assert "ceph_openstack-images" in failed
    comment = steps["ceph_openstack-images"][2]["ctl1"][f"ceph_openstack-image-{NAME}"]["comment"]
    assert before[0]["id"] in comment and "new image name" in comment
    assert _images(glance) == before
