"""
The demo as its user reads it: what each rollout changed in a Ceph/OpenStack operator's
words (from orchestration returns recorded in a real demo run), and a failing step ending
in one ``demo FAILED at <step>: <cause>`` line with the log to read, the lab stopped and
a non-zero status, never a traceback.
"""

import copy
import json
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from lab import demo, release, report  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parent / "data" / "demo"
LAB = "/tmp/ceph_openstack-lab"
ROOTS = {minion: f"{LAB}/roots/{minion}" for minion in ("mon1", "ctl1", "cmp1")}
SECRET_UUID = "691c3607-7ca3-433a-a0c0-5805cea8afa0"


def rollout(number):
    """The return of the demo's rollout ``number`` (1: first, 2: image upload, 3: no-op)."""
    return json.loads((DATA / f"rollout-{number}.json").read_text())


def flat(lines):
    """The lines with wrapping undone, to look for phrases."""
    return " ".join(" ".join(lines).split())


def test_the_first_rollout_says_what_changed_in_words_a_user_knows():
    lines, failure = report.summarize(rollout(1), ROOTS)
    text = flat(lines)
    assert failure is None
    for phrase in (
        "cmp1, ctl1, mon1: synced modules ceph_openstack, cephauth, cephimage, cephpool,",
        "utils atomic_file, ceph_cli,",
        "mon1: 11 of 12 states changed",
        "/etc/hosts entry controller1 (192.0.2.121)",
        "pool volumes created (pg_num 32)",
        "user client.cinder created",
        "published in the Salt mine: cluster facts (fsid, mons), key of client.cinder,",
        "/etc/ceph/ceph.conf [global] fsid, mon host",
        "keyring /etc/ceph/ceph.client.glance.keyring written",
        "glance-api.conf removed [glance_store] stores, default_store",
        "guest socket dir /var/run/ceph/guests created",
        "guest log dir /var/log/qemu created",
        f"libvirt secret {SECRET_UUID}: defined, value set",
        "nova.conf [libvirt] disk_cachemodes, hw_disk_discard, images_rbd_ceph_conf, "
        "images_rbd_pool, images_type,",
        "verify ok, no changes",
    ):
        assert phrase in text
    assert LAB not in text  # paths as on a real node
    assert all(len(row) <= report.WIDTH for line in lines for row in line.splitlines())


def test_the_image_rollout_and_the_no_op_rollout():
    lines, failure = report.summarize(rollout(2), ROOTS)
    text = flat(lines)
    assert failure is None
    assert "cmp1, ctl1, mon1: nothing new to sync" in text
    assert "mon ok, no changes" in text
    assert "ctl1: 1 of 2 states changed Glance image demo-image uploaded as " in text
    assert "(converted from qcow2 to raw)" in text
    assert len(report.changed(rollout(2), ROOTS)) == 1
    assert report.changed(rollout(3), ROOTS) == []
    assert report.summarize(rollout(3), ROOTS)[1] is None


def _failing_mon():
    ret = copy.deepcopy(rollout(1))
    steps = ret["data"]["master"]
    mon = steps["salt_|-ceph_openstack-mon_|-ceph_openstack-mon_|-state"]
    mon["result"] = False
    mon["comment"] = "Run failed on minions: mon1"
    state = mon["changes"]["ret"]["mon1"][
        "cephpool_|-ceph_openstack-pool-volumes_|-volumes_|-present"]
    state.update(result=False, changes={}, comment="Error EPERM: pool size 1 is not allowed")
    for key, step in steps.items():
        if step["__run_num__"] > mon["__run_num__"]:
            steps[key] = {"name": step["name"], "result": False, "changes": {},
                          "comment": "One or more requisite failed: orch.ceph_openstack.mon",
                          "__run_num__": step["__run_num__"], "__id__": step["__id__"]}
    return ret


def test_the_first_failed_state_is_the_failure():
    lines, failure = report.summarize(_failing_mon(), ROOTS)
    assert failure == ("mon", "mon1", "mon1: ceph_openstack-pool-volumes: "
                                      "Error EPERM: pool size 1 is not allowed")
    text = flat(lines)
    assert "mon FAILED" in text
    assert "mon1: FAILED ceph_openstack-pool-volumes: Error EPERM" in text
    assert "controllers FAILED One or more requisite failed" in text


def test_a_minion_that_did_not_return_is_the_failure():
    ret = copy.deepcopy(rollout(1))
    key = "salt_|-ceph_openstack-computes_|-ceph_openstack-computes_|-state"
    computes = ret["data"]["master"][key]
    computes["result"] = False
    computes["changes"]["ret"]["cmp1"] = "Minion did not return. [No response]"
    lines, failure = report.summarize(ret, ROOTS)
    assert failure == ("computes", "cmp1", "cmp1: return: Minion did not return. [No response]")
    assert "computes FAILED cmp1: FAILED return: Minion did not return." in flat(lines)


def test_a_return_without_steps_is_a_failure():
    assert report.summarize({}, ROOTS)[1] == ("orchestration", None, "{}")
    assert report.summarize("No minions matched", ROOTS)[1][2] == "No minions matched"


class _Part:
    """A lab part that records what the demo asks of it."""

    def __init__(self, directory):
        self.dir = str(directory)
        self.piddir = os.path.join(self.dir, "pids")
        self.logdir = os.path.join(self.dir, "log")
        self.master_dir = os.path.join(self.dir, "master")
        self.minions = {"mon1": ["mon"], "ctl1": ["controller"], "cmp1": ["compute"]}
        self.url = "http://127.0.0.1:9292"
        self.clouds_yaml = os.path.join(self.dir, "clouds.yaml")

    def running(self):
        return {}

    def start(self):
        os.makedirs(self.piddir, exist_ok=True)
        pathlib.Path(self.piddir, "daemon.pid").write_text("1")


class _Lab:
    """A lab whose parts start (or fail) as told, whose Salt answers with recorded
    returns, and whose Glance lists ``images``."""

    def __init__(self, directory, fail_in=None, images=(), health=(), ceph_release=None):
        self.dir = str(directory)
        self.ceph, self.libvirt, self.salt, self.glance = (
            _Part(directory / part) for part in ("ceph", "libvirt", "salt", "glance"))
        self.ceph.release = ceph_release or release.host_release()
        self.ceph.other_health_checks = lambda: list(health)
        self.salt.salt, self.salt.salt_run = self._salt, self._salt_run
        self.glance.up_for_controller = lambda root: None
        self.nodes, self.node_kind = _Part(directory / "nodes"), "sandbox"
        self.nodes.nodes = {}  # no real nodes
        self.fail_in, self.images, self.rollouts, self.stopped = fail_in, images, 0, False

    def up(self):
        for name in ("ceph", "libvirt", "salt"):
            getattr(self, name).start()
            if name == self.fail_in:
                raise TimeoutError(f"{name} not ready after 20 s")
        os.makedirs(os.path.join(self.dir, "pillar"), exist_ok=True)
        ceph_dir = os.path.join(self.dir, "roots", "ctl1", "etc", "ceph")
        os.makedirs(ceph_dir)
        pathlib.Path(ceph_dir, "ceph.conf").write_text("[global]\n")
        return {"ceph": 1.0, "libvirt": 1.0, "salt": 1.0}

    def down(self):
        self.stopped = True
        return {}

    def _salt(self, target, function, *args):
        if function == "ceph_openstack.verify":
            return {minion: {"ok": True, "checks": {"keyring": "ok"}}
                    for minion in self.salt.minions}
        if function == "glanceimage.find":
            return {"ctl1": list(self.images)}
        return {}

    def _salt_run(self, function, *args):
        assert function == "state.orchestrate" and args == (demo.ORCH,)
        self.rollouts += 1
        return rollout(self.rollouts)


def test_a_lab_part_that_does_not_come_up_ends_the_demo_with_its_log(tmp_path, capsys):
    lab = _Lab(tmp_path / "lab", fail_in="libvirt")
    assert demo.run_demo(lab) == 1
    out = capsys.readouterr().out
    assert "demo FAILED at lab up: TimeoutError: libvirt not ready after 20 s\n" in out
    assert f"read: {tmp_path}/lab/libvirt/log/libvirtd.out\n" in out
    assert out.endswith("./run demo --keep leaves it running\n")
    assert "lab stopped" in out and "Traceback" not in out
    assert lab.stopped


def test_a_failed_step_with_keep_leaves_the_lab_running(tmp_path, capsys):
    lab = _Lab(tmp_path / "lab", fail_in="ceph")
    assert demo.run_demo(lab, keep=True) == 1
    out = capsys.readouterr().out
    assert f"demo FAILED at lab up: TimeoutError: ceph not ready after 20 s\n" \
           f"   read: {tmp_path}/lab/ceph/log\n" in out
    assert f"lab left running in {tmp_path}/lab: ./run lab down --dir {tmp_path}/lab" in out
    assert not lab.stopped


def test_no_image_in_glance_fails_the_clone_check_step_not_with_a_traceback(tmp_path,
                                                                            capsys):
    lab = _Lab(tmp_path / "lab", health=["MGR_MODULE_DEPENDENCY"])
    assert demo.run_demo(lab) == 1
    out = capsys.readouterr().out
    assert "ceph reports other health checks (not waited on): MGR_MODULE_DEPENDENCY" in out
    assert "Glance image demo-image uploaded as" in out
    assert "== third rollout: nothing left to change" in out
    assert "demo FAILED at clone check: Glance has no image demo-image: []\n" in out
    assert f"read: {tmp_path}/lab/glance/log/glance-api.log" in out
    assert lab.stopped and lab.rollouts == 3
    saved = tmp_path / "lab" / "demo" / "rollout-3.json"
    assert json.loads(saved.read_text()) == rollout(3)


def test_on_tentacle_the_demo_leaves_out_glance_saying_why(tmp_path, capsys):
    if release.host_release() == "tentacle":
        pytest.skip("the host's own librbd reads Tentacle's keys")
    lab = _Lab(tmp_path / "lab", ceph_release="tentacle")
    replies = iter([rollout(1), rollout(3)])
    lab.salt.salt_run = lambda *args: next(replies)
    assert demo.run_demo(lab) == 0
    out = capsys.readouterr().out
    assert "== images and the clone check are left out: the lab's Glance uses the host's " \
           "librbd" in out
    assert "== second rollout: nothing left to change" in out
    assert "third rollout" not in out and "copy-on-write" not in out
    assert "demo succeeded" in out


@pytest.mark.parametrize("number", [1, 2])
def test_a_rollout_that_changes_something_on_the_last_run_fails_it(tmp_path, capsys, number):
    lab = _Lab(tmp_path / "lab")
    replies = iter([rollout(1), rollout(2), rollout(number)])
    lab.salt.salt_run = lambda *args: next(replies)
    status = demo.run_demo(lab)
    out = capsys.readouterr().out
    assert status == 1
    assert "demo FAILED at third rollout: a re-run changed " in out
    assert "Traceback" not in out
