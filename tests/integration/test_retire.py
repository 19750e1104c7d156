"""
Retiring nodes (orch.ceph_openstack_retire) on a lab of its own with two Ceph clusters
(the project's two-cluster pillar: mon2 is the mon of ``dr``): mon1, ctl1 and three
computes named by minion-ID targets, cmp2 and cmp3 each with a libvirtd of its own (as
separate hosts have). Asserted from outside: each cluster (a real cephx login with the key
a node kept), the files of each sandbox root, each libvirtd's secrets and domains.

- cmp2, still named by the targets: refused, nothing changed;
- cmp2, taken out of the targets, with a QEMU guest using the formula's secret (paused;
  only defined on Tentacle): refused at the node's check naming the guest, nothing
  changed; ``test=True`` changes nothing;
- the guest gone: the keys cmp2 held are rotated on both clusters (its old copies no
  longer log in; the nodes that stay hold the new ones), cmp2 keeps no keyring, secret or
  ceph.conf of either, and its nova.conf is the stock file again, byte for byte; a second
  run changes nothing;
- cmp3, stopped for good, with cmp1, the last compute: refused while the compute target
  matches no minion, unless the request says they were the last (``last``); then cmp3 is
  retired from the cluster side, its keys rotated without waiting for it, the step naming
  it, and cmp1 cleaned; the rotation has no computes step.
"""

import json
import os
import shutil
import time

import pytest
import yaml

from lab import proc, report
from lab.libvirt import LibvirtLab
from lab.salt import PROJECT, STOCK_CONFIGS, SaltLab, sandbox_root
from tests.integration.test_rollout import SECRET_UUID
from tests.support.guests import mon_port, rbd_guest_xml

pytestmark = pytest.mark.integration

RETIRE = "orch.ceph_openstack_retire"
MINIONS = {"mon1": ["mon"], "ctl1": ["controller"], "cmp1": ["compute"],
           "cmp2": ["compute"], "cmp3": ["compute"]}
#: The second cluster's libvirt secret (the project's pillar/two_clusters.sls).
with open(os.path.join(PROJECT, "pillar", "two_clusters.sls")) as _two:
    DR_UUID = yaml.safe_load(_two)["ceph_openstack"]["libvirt"]["secrets"]["cinder-dr"]["uuid"]
GUEST = "retire-guest"
IMAGE = "volumes/retire-probe"
#: Waits short enough that a stopped minion costs little (a loaded lab still answers).
WAITS = {"timeout": 20, "gather_job_timeout": 20}


class RetireLab(SaltLab):
    """The lab's master and minions; computes in ``own_libvirt`` use a libvirtd of their
    own, the others the lab's."""

    def __init__(self, directory, ceph, ceph2, libvirt, own_libvirt):
        super().__init__(os.path.join(directory, "salt"), ceph=ceph, ceph2=ceph2,
                         libvirt=libvirt, minions=MINIONS)
        self.own_libvirt = own_libvirt

    def minion_config(self, minion_id):
        config = super().minion_config(minion_id)
        if minion_id in self.own_libvirt:
            config["ceph_openstack"]["libvirt"] = {"uri": self.own_libvirt[minion_id].uri}
        return config

    def targets(self, computes):
        """Name ``computes`` as the computes (minion IDs, or a compound target), as an
        operator edits pillar, and refresh every minion's pillar."""
        overrides = os.path.join(os.path.dirname(self.dir), "pillar", "overrides.sls")
        os.makedirs(os.path.dirname(overrides), exist_ok=True)
        with open(overrides, "w") as out:
            yaml.safe_dump({"ceph_openstack": {
                "targets": {"controller": "L@ctl1",
                            "compute": computes if isinstance(computes, str)
                                       else "L@" + ",".join(computes)},
                "rollout": WAITS}}, out)
        self.salt("*", "saltutil.refresh_pillar", "wait=True")

    def root(self, minion):
        return sandbox_root(os.path.dirname(self.dir), minion)

    def keyring(self, minion, client="cinder", cluster="ceph"):
        return os.path.join(self.root(minion), "etc", "ceph",
                            f"{cluster}.client.{client}.keyring")

    def retire(self, minions, test=False, **extra):
        """(steps by ID, seconds) of one retire orchestration."""
        request = {"ceph_openstack_retire": dict(extra, minions=minions)}
        args = ["state.orchestrate", RETIRE, f"pillar={json.dumps(request)}"]
        started = time.monotonic()
        ret = self.salt_run(*(args + (["test=True"] if test else [])))
        return {step.id: step for step in report.steps(ret)}, time.monotonic() - started


def failed(steps):
    return {sid: step.comment for sid, step in steps.items() if step.result is False}


def changes(steps):
    """{(step, minion, state id): changes} of every state that changed or would."""
    return {(sid, minion, state.id): state.changes
            for sid, step in steps.items() for minion, states in step.states.items()
            for state in states if state.changes}


def said(steps, sid):
    """The step's comment and every comment of its states, one text."""
    step = steps[sid]
    return "\n".join([step.comment] + [str(state.comment) for states in step.states.values()
                                       for state in states])


def key_of(ceph_lab, client="cinder"):
    """client.<client>'s key, asked of the cluster."""
    return ceph_lab.ceph("auth", "get-key", f"client.{client}", json_out=False).strip()


def kept_copy(lab, minion, directory, cluster="ceph"):
    """A copy of a node's cinder keyring as it is now: what a retired disk keeps."""
    path = os.path.join(directory, f"{minion}.{cluster}.cinder.keyring")
    shutil.copyfile(lab.keyring(minion, cluster=cluster), path)
    os.chmod(path, 0o600)
    return path


def node_state(lab, libvirt, minion):
    """What the formula put on a node, seen from outside: its /etc/ceph files and bytes,
    nova.conf's bytes, and its libvirtd's secrets."""
    ceph_dir = os.path.join(lab.root(minion), "etc", "ceph")
    files = {name: open(os.path.join(ceph_dir, name), "rb").read()
             for name in sorted(os.listdir(ceph_dir))}
    nova = open(os.path.join(lab.root(minion), "etc", "nova", "nova.conf"), "rb").read()
    return files, nova, libvirt.virsh("secret-list")


@pytest.fixture(scope="module")
def retire_lab(lab_dir, ceph_lab, ceph_lab2):
    directory = lab_dir / "retire"
    shared = LibvirtLab(str(directory / "libvirt"))
    own = {minion: LibvirtLab(str(directory / minion / "libvirt")) for minion in ("cmp2", "cmp3")}
    lab = RetireLab(str(directory), ceph_lab, ceph_lab2, shared, own)
    try:
        for libvirt in [shared, *own.values()]:
            libvirt.up()
        lab.up(timeout=300)
        lab.targets(["cmp1", "cmp2", "cmp3"])
        steps = report.steps(lab.salt_run("state.orchestrate", "orch.ceph_openstack"))
        assert all(step.result for step in steps), [(s.id, s.comment) for s in steps]
        ceph_lab.rbd("create", "--size", "8", IMAGE, check=False)
        yield lab
    finally:
        lab.down()
        for libvirt in [shared, *own.values()]:
            libvirt.down()
        ceph_lab.rbd("rm", IMAGE, check=False)


def test_a_compute_is_retired_after_its_guests_leave_and_its_old_key_stops_working(
        retire_lab, ceph_lab, ceph_lab2, ceph_release, tmp_path):
    lab, cmp2 = retire_lab, retire_lab.own_libvirt["cmp2"]
    old_key, old_dr_key = key_of(ceph_lab), key_of(ceph_lab2)
    old_copy = kept_copy(lab, "cmp2", tmp_path)
    old_dr_copy = kept_copy(lab, "cmp2", tmp_path, cluster="dr")
    before = node_state(lab, cmp2, "cmp2")
    assert SECRET_UUID in before[2] and DR_UUID in before[2]
    assert {"ceph.client.cinder.keyring", "dr.client.cinder.keyring", "dr.conf"} <= set(before[0])

    # Still named by the targets: refused before anything.
    steps, _ = lab.retire(["cmp2"])
    assert list(steps) == ["retire"], steps
    assert ("cmp2 is still named by ceph_openstack:targets:compute (L@cmp1,cmp2,cmp3)"
            in steps["retire"].comment)
    assert key_of(ceph_lab) == old_key and node_state(lab, cmp2, "cmp2") == before

    # Out of the targets, with a guest whose disk uses the formula's secret: refused at
    # the node's check, naming it; nothing changed.
    lab.targets(["cmp1", "cmp3"])
    xml = tmp_path / "guest.xml"
    xml.write_text(rbd_guest_xml(GUEST, IMAGE, "cinder", SECRET_UUID, mon_port(ceph_lab)))
    cmp2.virsh("define", str(xml))
    try:
        # A real QEMU guest where one can run: the host's QEMU links the host's librbd,
        # which cannot use Tentacle's AES256K keys (there the domain is only defined).
        if os.path.exists("/usr/bin/qemu-system-x86_64") and ceph_release != "tentacle":
            cmp2.virsh("start", "--paused", GUEST, timeout=60)
        steps, _ = lab.retire(["cmp2"])
        assert "retire-ready" in failed(steps), failed(steps)
        assert (f"on cmp2, domains {GUEST} use libvirt secret {SECRET_UUID} (client.cinder)"
                in said(steps, "retire-ready"))
        assert "retire-ceph-plan" in failed(steps)  # not run
        assert key_of(ceph_lab) == old_key and node_state(lab, cmp2, "cmp2") == before
    finally:
        cmp2.virsh("destroy", GUEST, check=False)
        cmp2.virsh("undefine", GUEST, check=False)

    # test=True predicts and changes nothing.
    steps, _ = lab.retire(["cmp2"], test=True)
    assert not failed(steps), failed(steps)
    predicted = changes(steps)
    assert ("retire-node", "cmp2", "ceph_openstack-retire-keyring-cinder") in predicted
    assert ("retire-node", "cmp2", "ceph_openstack-retire-secret-cinder") in predicted
    assert key_of(ceph_lab) == old_key and node_state(lab, cmp2, "cmp2") == before

    steps, seconds = lab.retire(["cmp2"])
    print(f"retiring one compute took {seconds:.0f} s")
    assert not failed(steps), failed(steps)
    assert [sid for sid in steps if sid.startswith("retire-ceph-")] == [
        f"retire-ceph-{step}" for step in ("plan", "ready", "stage", "controllers", "computes",
                                           "verify", "commit", "publish", "restart")]
    assert [sid for sid in steps if sid.startswith("retire-dr-")] == [
        f"retire-dr-{step}" for step in ("plan", "ready", "stage", "controllers", "computes",
                                         "verify", "commit", "publish", "restart")]
    new_key, new_dr_key = key_of(ceph_lab), key_of(ceph_lab2)
    assert new_key != old_key and new_dr_key != old_dr_key
    # The copies the disk kept log in no more, on either cluster.
    assert not ceph_lab.logs_in("client.cinder", old_copy)
    assert not ceph_lab2.logs_in("client.cinder", old_dr_copy)
    for minion in ("ctl1", "cmp1", "cmp3"):
        assert f"key = {new_key}" in open(lab.keyring(minion)).read(), minion
        assert ceph_lab.logs_in("client.cinder", lab.keyring(minion)), minion
        assert ceph_lab2.logs_in("client.cinder", lab.keyring(minion, cluster="dr")), minion
    assert new_key == lab.libvirt.virsh("secret-get-value", SECRET_UUID).strip()
    assert new_dr_key == lab.libvirt.virsh("secret-get-value", DR_UUID).strip()
    files, nova, secrets = node_state(lab, cmp2, "cmp2")
    assert files == {} and SECRET_UUID not in secrets and DR_UUID not in secrets
    assert nova == open(os.path.join(STOCK_CONFIGS, "nova.conf"), "rb").read()
    # Only cinder's key was held there: glance's is untouched.
    assert "retire-ceph-plan" in steps and "client.glance" not in said(steps, "retire-ceph-plan")

    after = node_state(lab, cmp2, "cmp2")
    steps, _ = lab.retire(["cmp2"])
    assert not failed(steps), failed(steps)
    assert changes(steps) == {}
    assert not [sid for sid in steps if sid.startswith("retire-ceph-")]
    assert key_of(ceph_lab) == new_key and key_of(ceph_lab2) == new_dr_key
    assert node_state(lab, cmp2, "cmp2") == after


def test_a_node_gone_for_good_and_the_last_compute_are_retired(retire_lab, ceph_lab, ceph_lab2,
                                                               tmp_path):
    lab = retire_lab
    old_key, old_dr_key = key_of(ceph_lab), key_of(ceph_lab2)
    copies = {minion: kept_copy(lab, minion, tmp_path) for minion in ("cmp1", "cmp3")}
    lab.minions.pop("cmp3")
    proc.stop_all(lab.piddir, names=["salt-minion-cmp3"])
    # No compute stays: the computes are those of the grain, less the three retired ones
    # (which still carry it).
    leaving = "G@role:compute and not L@cmp1,cmp2,cmp3"
    lab.targets(leaving)

    steps, _ = lab.retire(["cmp1", "cmp3"])
    assert list(steps) == ["retire"], steps
    assert (f"ceph_openstack:targets:compute ({leaving}) matches no minion: no compute would "
            "get the new keys" in steps["retire"].comment)
    assert key_of(ceph_lab) == old_key

    steps, seconds = lab.retire(["cmp1", "cmp3"], last=True)
    print(f"retiring the last compute and a node that does not answer took {seconds:.0f} s")
    assert not failed(steps), failed(steps)
    assert "retire-ceph-computes" not in steps and "retire-ceph-controllers" in steps
    assert "retire-dr-computes" not in steps and "retire-dr-controllers" in steps
    assert steps["retire-offline"].comment.startswith("cmp3 did not answer in 40 s")
    assert list(steps["retire-node"].states) == ["cmp1"]
    assert key_of(ceph_lab) != old_key and key_of(ceph_lab2) != old_dr_key
    for minion, copy in copies.items():
        assert not ceph_lab.logs_in("client.cinder", copy), minion
    assert open(lab.keyring("cmp3")).read() == open(copies["cmp3"]).read()  # nothing waited for
    assert not os.path.exists(lab.keyring("cmp1"))
    assert SECRET_UUID not in lab.libvirt.virsh("secret-list")
    assert DR_UUID not in lab.libvirt.virsh("secret-list")
    assert ceph_lab.logs_in("client.cinder", lab.keyring("ctl1"))
    assert ceph_lab2.logs_in("client.cinder", lab.keyring("ctl1", cluster="dr"))
