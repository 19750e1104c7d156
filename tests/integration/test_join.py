"""
A node joins on its own (reactor/ceph_openstack_join.sls, orch.ceph_openstack_join): a lab
master with the reactor the README gives, computes named by minion-ID targets. A compute
added to the targets after the mons published, started with ``startup_states: highstate``,
gets its keys republished and converges with no operator step; a compute the targets do
not name gets nothing. Proof from outside: the files in the sandbox roots, the mine as each
minion reads it, and the orchestrations the reactor started (the master's job cache).
"""

import os
import time

import pytest
import yaml

from lab import report
from lab.libvirt import LibvirtLab
from lab.salt import SaltLab, sandbox_root

pytestmark = pytest.mark.integration

REACTOR = [{"salt/minion/*/start": ["salt://reactor/ceph_openstack_join.sls"]}]


class JoinLab(SaltLab):
    """The lab's master with the reactor; minions in ``startup`` run a highstate when they
    start, as a new node's configuration has it."""

    startup = ("cmp2", "cmp3")

    def master_config(self):
        return dict(super().master_config(), reactor=REACTOR)

    def minion_config(self, minion_id):
        config = super().minion_config(minion_id)
        if minion_id in self.startup:
            config["startup_states"] = "highstate"
        return config

    def targets(self, computes):
        """Name ``computes`` (minion IDs) as the computes, as an operator edits pillar."""
        overrides = os.path.join(os.path.dirname(self.dir), "pillar", "overrides.sls")
        os.makedirs(os.path.dirname(overrides), exist_ok=True)
        with open(overrides, "w") as out:
            yaml.safe_dump({"ceph_openstack": {"targets": {
                "mon": "G@role:mon", "controller": "L@ctl1",
                "compute": "L@" + ",".join(computes)}}}, out)

    def keyring(self, minion):
        return os.path.join(sandbox_root(os.path.dirname(self.dir), minion), "etc", "ceph",
                            "ceph.client.cinder.keyring")

    def joins(self, minion):
        """The steps of each finished orchestration the reactor ran for ``minion``."""
        jobs = self.salt_run("jobs.list_jobs", "search_function=runner.state.orchestrate")
        found = []
        for jid in sorted(jobs):
            job = next(iter(self.salt_run("jobs.lookup_jid", jid).values()), {})
            asked = [args.get("pillar", {}).get("ceph_openstack_join", {}).get("minion")
                     for args in job.get("fun_args") or [] if isinstance(args, dict)]
            if minion in asked and isinstance(job.get("return"), dict):
                found.append({step.id: step for step in report.steps(job["return"])})
        return found


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(3)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture(scope="module")
def join_lab(lab_dir, ceph_lab):
    directory = lab_dir / "join"
    libvirt = LibvirtLab(str(directory / "libvirt"))
    lab = JoinLab(str(directory / "salt"), ceph=ceph_lab, libvirt=libvirt)
    lab.targets(["cmp1"])
    try:
        libvirt.up()
        lab.up(timeout=300)
        # The reactor has started one orchestration per minion: let them end first.
        for minion in ("mon1", "ctl1", "cmp1"):
            wait_for(lambda: lab.joins(minion), 300, f"the reactor's orchestration for {minion}")
        steps = report.steps(lab.salt_run("state.orchestrate", "orch.ceph_openstack"))
        assert all(step.result for step in steps), [(s.id, s.comment) for s in steps]
        yield lab
    finally:
        lab.down()
        libvirt.down()


def test_a_compute_added_to_minion_id_targets_joins_with_no_operator_step(join_lab, ceph_lab):
    join_lab.targets(["cmp1", "cmp2"])  # the operator's only step: pillar names cmp2
    join_lab.minions["cmp2"] = ["compute"]
    join_lab.up(timeout=300)  # cmp2 starts; its startup highstate and the reactor do the rest

    key = ceph_lab.ceph("auth", "get-key", "client.cinder", json_out=False).strip()
    wait_for(lambda: os.path.exists(join_lab.keyring("cmp2")), 300, "cmp2's cinder keyring")
    assert f"key = {key}" in open(join_lab.keyring("cmp2")).read()
    assert join_lab.salt("cmp2", "ceph_openstack.missing_keys")["cmp2"] == []
    nova = os.path.join(sandbox_root(os.path.dirname(join_lab.dir), "cmp2"), "etc", "nova",
                        "nova.conf")
    assert "images_type = rbd" in open(nova).read()

    (join,) = wait_for(lambda: join_lab.joins("cmp2"), 60, "the reactor's orchestration")
    said = {step_id: (step.result, step.comment) for step_id, step in join.items()}
    assert list(said) == ["ceph_openstack_join-sync", "ceph_openstack_join-mon",
                          "ceph_openstack_join-highstate"], said
    assert all(result for result, _ in said.values()), said
    # a later highstate (a reboot's) finds nothing to do
    ret = join_lab.salt("cmp2", "state.highstate", timeout=300)["cmp2"]
    assert all(state["result"] for state in ret.values())
    assert [sid for sid, state in ret.items() if state["changes"]] == []


def test_a_compute_the_targets_do_not_name_gets_nothing(join_lab):
    join_lab.minions["cmp3"] = ["compute"]
    join_lab.up(timeout=300)
    (join,) = wait_for(lambda: join_lab.joins("cmp3"), 120, "the reactor's orchestration")
    assert list(join) == ["ceph_openstack_join"] and join["ceph_openstack_join"].result
    assert join["ceph_openstack_join"].comment == (
        "cmp3 is not a controller or compute of ceph_openstack:targets: nothing to do")
    assert not os.path.exists(join_lab.keyring("cmp3"))
    assert join_lab.salt("cmp3", "ceph_openstack.missing_keys")["cmp3"] == ["cinder"]
