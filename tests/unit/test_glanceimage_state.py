"""
Unit tests of the glanceimage state over an in-memory Glance that behaves
like the execution module (find / create / update), with a real source file
and a stand-in for cephimage's qemu-img calls.
"""

import copy
import hashlib
import os
import uuid
from unittest.mock import MagicMock

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.modules import load

state = load("salt/_states/glanceimage.py", "glanceimage_state_under_test")

PROPS = {"hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi"}


class Glance:
    def __init__(self):
        self.images = {}  # id -> image dict as the execution module returns it
        self.uploaded = {}  # id -> bytes uploaded
        self.fail = {}

    def _maybe_fail(self, name):
        if name in self.fail:
            raise CommandExecutionError(self.fail[name])

    def find(self, name, **_api):
        self._maybe_fail("find")
        return [copy.deepcopy(i) for i in self.images.values() if i["name"] == name]

    def create(self, name, path, disk_format, container_format, properties, upload_timeout,
               **fields):
        self._maybe_fail("create")
        fields = {k: v for k, v in fields.items() if k not in ("cloud", "config_file", "timeout")}
        image_id = str(uuid.uuid4())
        with open(path, "rb") as handle:
            self.uploaded[image_id] = handle.read()
        self.images[image_id] = dict(
            {"visibility": "shared", "min_disk": 0}, id=image_id, name=name, status="active",
            disk_format=disk_format, checksum=hashlib.md5(self.uploaded[image_id]).hexdigest(),
            properties=dict(properties), **fields,
        )
        return copy.deepcopy(self.images[image_id])

    def update(self, image_id, properties=None, **fields):
        self._maybe_fail("update")
        image = self.images[image_id]
        image["properties"].update(properties or {})
        api = ("cloud", "config_file", "timeout")
        image.update({k: v for k, v in fields.items() if k not in api})
        return copy.deepcopy(image)


@pytest.fixture
def glance():
    return Glance()


@pytest.fixture
def converted(tmp_path):
    """Sources whose name ends in .qcow2 are 'qcow2'; convert writes a .raw copy."""
    made = []

    def info(path, fmt=None):
        return {"format": fmt or ("qcow2" if path.endswith(".qcow2") else "raw")}

    def convert(path, work_dir, fmt=None, timeout=None):
        os.makedirs(work_dir, exist_ok=True)
        dest = os.path.join(work_dir, "image.raw")
        with open(path, "rb") as src, open(dest, "wb") as out:
            out.write(b"RAW:" + src.read())
        made.append(dest)
        return dest

    return {"info": info, "convert": convert, "made": made}


@pytest.fixture
def opts(tmp_path):
    return {"test": False, "cachedir": str(tmp_path / "cache")}


@pytest.fixture
def salt_funcs(glance, converted):
    return {
        "glanceimage.find": MagicMock(side_effect=glance.find),
        "glanceimage.create": MagicMock(side_effect=glance.create),
        "glanceimage.update": MagicMock(side_effect=glance.update),
        "cephimage.info": MagicMock(side_effect=converted["info"]),
        "cephimage.convert": MagicMock(side_effect=converted["convert"]),
        "cp.cache_file": MagicMock(return_value=False),
    }


@pytest.fixture
def configure_loader_modules(salt_funcs, opts):
    return {state: {"__salt__": salt_funcs, "__opts__": opts}}


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "cirros.qcow2"
    path.write_bytes(b"qcow2 data" * 100)
    return str(path)


def _sha(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_first_run_converts_uploads_and_removes_the_raw_copy(glance, converted, opts, source):
    opts["test"] = True
    predicted = state.present("cirros", source, visibility="public", min_disk=1,
                              properties=PROPS)
    assert predicted["result"] is None
    assert predicted["changes"] == {
        "image": {"old": None, "new": "cirros"},
        "converted": {"old": "qcow2", "new": "raw"},
    }
    assert glance.images == {} and converted["made"] == []

    opts["test"] = False
    ret = state.present("cirros", source, visibility="public", min_disk=1, properties=PROPS)
    assert ret["result"] is True, ret["comment"]
    assert set(ret["changes"]) == set(predicted["changes"])
    (image,) = glance.images.values()
    assert ret["changes"]["image"]["new"]["id"] == image["id"]
    assert image["disk_format"] == "raw" and image["visibility"] == "public"
    assert image["min_disk"] == 1
    assert image["properties"] == dict(PROPS, ceph_openstack_source_sha256=_sha(source))
    assert glance.uploaded[image["id"]].startswith(b"RAW:")  # the converted copy went up
    assert converted["made"] and not os.path.exists(converted["made"][0])
    assert converted["made"][0].startswith(opts["cachedir"])

    again = state.present("cirros", source, visibility="public", min_disk=1, properties=PROPS)
    assert again["result"] is True and again["changes"] == {}
    assert again["comment"] == f"image cirros ({image['id']}) is in the desired state"


def test_source_hash_is_recorded_and_redone_when_the_file_changes(source, opts, monkeypatch):
    hashed = []
    real = state.salt.utils.hashutils.get_hash
    monkeypatch.setattr(state.salt.utils.hashutils, "get_hash",
                        lambda path, form: hashed.append(path) or real(path, form))
    assert state.present("cirros", source)["result"] is True
    assert state.present("cirros", source)["changes"] == {}
    assert hashed == [source]  # the second run read the record
    with open(source, "ab") as handle:
        handle.write(b"more")
    ret = state.present("cirros", source)
    assert hashed == [source, source]
    assert ret["result"] is False and "not made from" in ret["comment"]  # a new source


def test_raw_source_is_uploaded_as_it_is(glance, converted, tmp_path, salt_funcs):
    raw = tmp_path / "disk.img"
    raw.write_bytes(b"\0" * 4096)
    ret = state.present("disk", str(raw))
    assert ret["result"] is True
    assert set(ret["changes"]) == {"image"}
    assert not salt_funcs["cephimage.convert"].called
    (image,) = glance.images.values()
    assert glance.uploaded[image["id"]] == b"\0" * 4096
    assert raw.exists()


def test_settings_are_converged_and_predicted(glance, opts, source):
    state.present("cirros", source, visibility="private", properties={"hw_disk_bus": "ide"})
    (image,) = glance.images.values()
    image["properties"]["owner_note"] = "kept"
    wanted = {"visibility": "public", "min_disk": 2, "properties": PROPS}
    opts["test"] = True
    predicted = state.present("cirros", source, **wanted)
    assert predicted["result"] is None
    assert predicted["changes"] == {
        "visibility": {"old": "private", "new": "public"},
        "min_disk": {"old": 0, "new": 2},
        "properties": {
            "hw_disk_bus": {"old": "ide", "new": "scsi"},
            "hw_scsi_model": {"old": None, "new": "virtio-scsi"},
        },
    }
    assert image["visibility"] == "private"
    opts["test"] = False
    ret = state.present("cirros", source, **wanted)
    assert ret["result"] is True and ret["changes"] == predicted["changes"]
    assert image["visibility"] == "public" and image["min_disk"] == 2
    assert image["properties"]["owner_note"] == "kept"
    assert state.present("cirros", source, **wanted)["changes"] == {}


def test_same_name_from_another_source_is_refused(glance, source, tmp_path, salt_funcs):
    state.present("cirros", source)
    other = tmp_path / "other.qcow2"
    other.write_bytes(b"another image")
    before = copy.deepcopy(glance.images)
    ret = state.present("cirros", str(other))
    assert ret["result"] is False and ret["changes"] == {}
    (image_id,) = before
    assert image_id in ret["comment"] and "new image name" in ret["comment"]
    assert glance.images == before
    assert salt_funcs["glanceimage.create"].call_count == 1


def test_two_images_from_the_same_source_are_ambiguous(glance, source):
    state.present("cirros", source)
    (image,) = glance.images.values()
    glance.images["dup"] = dict(copy.deepcopy(image), id="dup")
    ret = state.present("cirros", source)
    assert ret["result"] is False
    assert "2 images named cirros" in ret["comment"] and "dup" in ret["comment"]


def test_an_image_that_is_not_active_is_named(glance, source):
    state.present("cirros", source)
    (image,) = glance.images.values()
    image["status"] = "killed"
    ret = state.present("cirros", source)
    assert ret["result"] is False
    assert ret["comment"] == (
        f"image cirros ({image['id']}) is killed, not active; delete it and re-run")


def test_source_hash_mismatch_changes_nothing(glance, source, salt_funcs):
    ret = state.present("cirros", source, source_hash="0" * 64)
    assert ret["result"] is False and "not the expected" in ret["comment"]
    assert not salt_funcs["glanceimage.find"].called and glance.images == {}
    assert state.present("cirros", source, source_hash=_sha(source).upper())["result"] is True


def test_fetched_source_goes_through_cp_cache_file(salt_funcs, source, glance):
    salt_funcs["cp.cache_file"].return_value = source
    ret = state.present("cirros", "salt://images/cirros.qcow2", saltenv="prod")
    assert ret["result"] is True
    assert salt_funcs["cp.cache_file"].call_args.args == ("salt://images/cirros.qcow2", "prod")
    salt_funcs["cp.cache_file"].return_value = False
    ret = state.present("other", "https://example.invalid/x.img")
    assert ret["result"] is False
    assert ret["comment"] == "source https://example.invalid/x.img could not be fetched"


def test_upload_failure_removes_the_raw_copy_and_reports(glance, converted, source):
    glance.fail["create"] = "glance (cloud 'lab'): uploading failed: HTTP 413: too large"
    ret = state.present("cirros", source)
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"] == glance.fail["create"]
    assert not os.path.exists(converted["made"][0])


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"name": ""}, "name"),
        ({"properties": ["a"]}, "properties"),
        ({"properties": {"hw_qemu_guest_agent": True}}, "property hw_qemu_guest_agent"),
        ({"properties": {"ceph_openstack_source_sha256": "x"}}, "property ceph_openstack_source"),
        ({"visibility": "everyone"}, "visibility"),
        ({"min_disk": -1}, "min_disk"),
        ({"min_disk": True}, "min_disk"),
        ({"source_hash": "abc"}, "source_hash"),
    ],
)
def test_bad_input_fails_before_any_call(salt_funcs, source, kwargs, named):
    args = dict({"name": "cirros", "source": source}, **kwargs)
    ret = state.present(**args)
    assert ret["result"] is False
    assert ret["comment"].startswith(named), ret["comment"]
    assert not any(func.called for func in salt_funcs.values())
