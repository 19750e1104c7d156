"""
Unit tests of cephimage (execution module and runner): the real ceph_cli helper,
with only ``cmd.run_all`` replaced by answers as the lab's rbd 16.2 printed them,
and the runner's LocalClient mocked.
"""

import json
import pathlib
import sys
from unittest import mock

import pytest
from salt.exceptions import CommandExecutionError

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "data" / "cephpool"))
import fake_ceph  # noqa: E402

cephimage = fake_ceph.load("salt/_modules/cephimage.py", "cephimage_exec_under_test")
runner = fake_ceph.load("salt/_runners/cephimage.py", "cephimage_runner_under_test")

CONFIG = {"ceph_openstack:conf": "/srv/lab/ceph.conf"}
IMG = "9c5a0e56-5cd0-4b4b-9c7d-2f3e4a1b6c7d"

# Recorded on the lab (rbd 16.2.15), names replaced.
SNAP_LS = [{"id": 4, "name": "snap", "size": 8388608, "protected": "true",
            "timestamp": "Wed Nov 25 12:59:15 2026"}]
LS_L = [
    {"image": "volume-b", "id": "101dcba277ad", "size": 8388608, "format": 2,
     "parent": {"pool": "images", "pool_namespace": "", "image": IMG, "snapshot": "snap"}},
    {"image": "volume-a", "id": "101f368264a4", "size": 4194304, "format": 2},
    {"image": "volume-a", "id": "101f368264a4", "snapshot": "s1", "snapshot_id": 4,
     "size": 4194304, "format": 2, "protected": "false"},
    {"image": "volume-c", "id": "1020aa", "size": 1048576, "format": 2,
     "parent": {"pool": "images", "pool_namespace": "", "image": "other", "snapshot": "snap"}},
]
INFO_CLONE = {"name": "volume-b", "size": 8388608, "format": 2,
              "parent": {"pool": "images", "pool_namespace": "", "image": IMG, "id": "1017",
                         "snapshot": "snap", "trash": False, "overlap": 6291456}}
ENOENT = {"retcode": 2, "stdout": "",
          "stderr": "rbd: error opening image x: (2) No such file or directory\n"}


class FakeRbd:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, cmd, **options):
        binary, _conn, args, _json = fake_ceph.split_argv(cmd)
        assert binary == "rbd" and options["python_shell"] is False
        self.calls.append(tuple(args))
        answer = self.answers[tuple(args)]
        if isinstance(answer, dict) and "retcode" in answer:
            return dict(answer)
        return fake_ceph.ok(json.dumps(answer))


@pytest.fixture
def rbd():
    return FakeRbd({
        ("snap", "ls", f"images/{IMG}"): SNAP_LS,
        ("ls", "-l", "volumes"): LS_L,
        ("info", "volumes/volume-b"): INFO_CLONE,
    })


@pytest.fixture
def configure_loader_modules(rbd):
    return {
        cephimage: {
            "__salt__": {"cmd.run_all": rbd, "config.get": fake_ceph.config_get(CONFIG)},
            "__context__": {},
            "__opts__": {},
            "__pillar__": {},
        },
        runner: {"__opts__": {"conf_file": "/etc/salt/master"}, "__context__": {}},
    }


def test_virtual_needs_rbd_or_qemu_img():
    with mock.patch("salt.utils.path.which", return_value="/usr/bin/rbd"):
        assert cephimage.__virtual__() == "cephimage"
    with mock.patch("salt.utils.path.which", return_value=None):
        loaded, reason = cephimage.__virtual__()
    assert loaded is False and "qemu-img" in reason and "rbd" in reason


def test_every_public_function_has_a_cli_example():
    for func in (cephimage.clone_check, cephimage.info, cephimage.convert, runner.clone_check):
        assert "CLI Example" in func.__doc__, func.__name__


def test_clone_check_sorts_clones_copies_and_other_clones(rbd):
    ret = cephimage.clone_check(IMG)
    assert ret == {
        "image": f"images/{IMG}",
        "image_exists": True,
        "snapshot": {"name": f"images/{IMG}@snap", "exists": True, "protected": True},
        "clones": [{"name": "volumes/volume-b", "parent": f"images/{IMG}@snap",
                    "overlap": 6291456, "size": 8388608}],
        "copies": [{"name": "volumes/volume-a", "size": 4194304}],
        "other_clones": [{"name": "volumes/volume-c", "parent": "images/other@snap",
                          "size": 1048576}],
        "summary": f"images/{IMG}@snap exists and is protected; volumes: 1 clone of it, "
                   "1 full copy, 1 clone of other images",
    }
    # one listing for the pool, one info per clone of our snapshot, nothing else
    assert rbd.calls == [("snap", "ls", f"images/{IMG}"), ("ls", "-l", "volumes"),
                         ("info", "volumes/volume-b")]


def test_clone_check_missing_image_is_reported_not_raised(rbd):
    rbd.answers[("snap", "ls", "images/gone")] = ENOENT
    ret = cephimage.clone_check("gone")
    assert ret["image_exists"] is False
    assert ret["snapshot"] == {"name": "images/gone@snap", "exists": False, "protected": False}
    assert ret["clones"] == [] and len(ret["other_clones"]) == 2
    assert ret["summary"].startswith("image images/gone does not exist;")


def test_clone_check_unprotected_and_old_rbd_without_the_field(rbd):
    rbd.answers[("snap", "ls", f"images/{IMG}")] = [{"id": 4, "name": "snap", "size": 1}]
    rbd.answers[("info", f"images/{IMG}@snap")] = {"name": IMG, "protected": "false"}
    ret = cephimage.clone_check(IMG)
    assert ret["snapshot"]["protected"] is False
    assert "NOT protected" in ret["summary"]


def test_clone_check_missing_volumes_pool_names_the_argument(rbd):
    rbd.answers[("ls", "-l", "nope")] = dict(
        ENOENT, stderr="rbd: listing images failed: (2) No such file or directory\n"
    )
    with pytest.raises(CommandExecutionError, match="volumes_pool: pool nope does not exist"):
        cephimage.clone_check(IMG, volumes_pool="nope")


PILLAR = {"ceph_openstack": {
    "glance": {"pool": "glance-images", "client": "glance"},
    "cinder": {"backends": {
        "fast": {"pool": "ssd-volumes", "client": "cinder"},
        "slow": {"pool": "hdd-volumes", "client": "cinder"},
        "again": {"pool": "ssd-volumes", "client": "cinder"},
    }},
}}


def test_clone_check_takes_its_pools_from_the_pillar(rbd):
    rbd.answers[("snap", "ls", f"glance-images/{IMG}")] = SNAP_LS
    rbd.answers[("ls", "-l", "ssd-volumes")] = []
    rbd.answers[("ls", "-l", "hdd-volumes")] = [
        dict(LS_L[0], parent=dict(LS_L[0]["parent"], pool="glance-images"))]
    rbd.answers[("info", "hdd-volumes/volume-b")] = INFO_CLONE
    with mock.patch.dict(cephimage.__pillar__, PILLAR):
        ret = cephimage.clone_check(IMG)
    assert ret["image"] == f"glance-images/{IMG}"
    assert [c["name"] for c in ret["clones"]] == ["hdd-volumes/volume-b"]
    assert ret["summary"].endswith("ssd-volumes, hdd-volumes: 1 clone of it, 0 full copies")
    assert rbd.calls == [("snap", "ls", f"glance-images/{IMG}"), ("ls", "-l", "ssd-volumes"),
                         ("ls", "-l", "hdd-volumes"), ("info", "hdd-volumes/volume-b")]


def test_clone_check_pools_given_win_over_the_pillar(rbd):
    with mock.patch.dict(cephimage.__pillar__, PILLAR):
        ret = cephimage.clone_check(IMG, images_pool="images", volumes_pool="volumes")
    assert ret["image"] == f"images/{IMG}" and len(ret["clones"]) == 1


@pytest.mark.parametrize("arg, value", [
    ("image_id", ""), ("image_id", "a/b"), ("images_pool", "-x"), ("snap", "a@b"),
    ("volumes_pool", "has space"),
])
def test_clone_check_bad_names_fail_before_any_call(rbd, arg, value):
    kwargs = {"image_id": IMG, arg: value}
    with pytest.raises(CommandExecutionError, match=arg):
        cephimage.clone_check(**kwargs)
    assert rbd.calls == []


def test_clone_check_rejects_unknown_keywords(rbd):
    with pytest.raises(CommandExecutionError, match="unknown keyword.*user"):
        cephimage.clone_check(IMG, user="cinder")
    # Salt's __pub_* keywords are fine
    assert cephimage.clone_check(IMG, __pub_jid="1")["image_exists"] is True


def test_convert_rejects_unknown_format():
    with pytest.raises(CommandExecutionError, match="fmt must be one of"):
        cephimage.convert("/dev/null", "/tmp", fmt="iso")


# -- runner ----------------------------------------------------------------------


def _client(returns):
    client = mock.Mock()
    client.cmd.return_value = returns
    return mock.patch("salt.client.get_local_client", return_value=client), client


def test_runner_returns_the_first_good_answer():
    good = {"snapshot": {"exists": True}}
    patcher, client = _client({
        "mon2": {"ret": good, "retcode": 0},
        "mon1": {"ret": "ERROR: rbd: no answer", "retcode": 1},
    })
    with patcher:
        ret = runner.clone_check(IMG, volumes_pool="cinder", __pub_user="root")
    assert ret == {"minion": "mon2", **good}
    client.cmd.assert_called_once_with(
        "G@role:mon", "cephimage.clone_check", arg=[IMG], kwarg={"volumes_pool": "cinder"},
        tgt_type="compound", timeout=30, full_return=True,
    )
    assert "retcode" not in runner.__context__


def test_runner_reports_failures_and_silence():
    patcher, _client_mock = _client({"mon1": {"ret": "ERROR: boom", "retcode": 1}})
    with patcher:
        ret = runner.clone_check(IMG)
    assert ret == {"error": "cephimage.clone_check failed on every targeted minion",
                   "minions": {"mon1": "ERROR: boom"}, "retcode": 1}
    assert runner.__context__["retcode"] == 1
    patcher, _client_mock = _client({})
    with patcher:
        silent = runner.clone_check(IMG)
    assert "no minion matching 'G@role:mon'" in silent["error"] and silent["retcode"] == 1
