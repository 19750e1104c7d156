"""
The orchestration syncs the formula's modules only to nodes whose copy differs, and a
module changed between two runs is synced and used in the very run that follows; verify
runs after a run that changed something (or always, with rollout:verify: always).
"""

import pytest

from tests.integration.test_rollout import changed, orchestrate, snapshot

MINIONS = ("mon1", "ctl1", "cmp1")
#: The validator in the master's copy of the formula (conftest.py's formula_tree).
VALIDATOR = "salt/_utils/ceph_openstack_pillar.py"
#: Appended to the validator for one run: every pillar gets one more problem.
PROBE = b'''

_BEFORE_PROBE = problems


def problems(pillar):  # appended by tests/integration/test_module_sync.py, removed after
    return list(_BEFORE_PROBE(pillar)) + ["ceph_openstack:probe: the changed validator ran"]
'''


@pytest.fixture(scope="module")
def converged(salt_run_cli, salt_cli, lab_pillar):
    lab_pillar.edit({})
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
    _, failed = orchestrate(salt_run_cli)
    assert not failed, failed


def test_a_noop_rollout_syncs_nothing_and_skips_verify(converged, salt_run_cli):
    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert changed(steps) == {}
    assert "saltutil.sync_all" not in steps["ceph_openstack-sync"][1]
    assert steps["ceph_openstack-validate"][2] == {}  # no validate job: checked in preflight
    assert "none of the onchanges" in steps["ceph_openstack-verify"][1]


def test_verify_always_runs_when_asked(converged, salt_run_cli, salt_cli, lab_pillar):
    lab_pillar.edit({"ceph_openstack": {"rollout": {"verify": "always"}}})
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
    try:
        steps, failed = orchestrate(salt_run_cli)
    finally:
        lab_pillar.edit({})
        salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
    assert not failed, failed
    assert steps["ceph_openstack-verify"][0] is True
    assert "States ran successfully" in steps["ceph_openstack-verify"][1]


def test_a_changed_module_is_synced_and_used_in_the_same_run(
    converged, salt_run_cli, ceph_lab, libvirt_lab, sandbox, formula_tree
):
    validator = formula_tree / VALIDATOR
    original = validator.read_bytes()
    before = snapshot(ceph_lab, libvirt_lab, sandbox)
    try:
        validator.write_bytes(original + PROBE)
        steps, failed = orchestrate(salt_run_cli)
    finally:
        validator.write_bytes(original)
    # Synced to every node, then used by the validate step of the same run: it refuses.
    assert steps["ceph_openstack-sync"][0] is True
    synced_on = steps["ceph_openstack-sync"][1].split("ran on")[-1]
    assert all(minion in synced_on for minion in MINIONS), steps["ceph_openstack-sync"]
    assert "ceph_openstack-validate" in failed
    for minion in MINIONS:
        comment = steps["ceph_openstack-validate"][2][minion]["ceph_openstack-pillar"]["comment"]
        assert "ceph_openstack:probe: the changed validator ran" in comment
    assert {"ceph_openstack-mon", "ceph_openstack-controllers",
            "ceph_openstack-computes"} <= set(failed)  # not run: they require validate
    assert snapshot(ceph_lab, libvirt_lab, sandbox) == before

    # The original module back: synced again, the run converges, verify runs (new modules).
    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert "saltutil.sync_all" in steps["ceph_openstack-sync"][1]
    assert changed(steps) == {}
    assert "States ran successfully" in steps["ceph_openstack-verify"][1]
    assert snapshot(ceph_lab, libvirt_lab, sandbox) == before


def test_the_master_must_hold_the_formulas_step_module(
    converged, salt_run_cli, ceph_lab, libvirt_lab, sandbox, formula_tree
):
    """The steps run the formula's state module on the master (salt-run saltutil.sync_all
    puts it there). When the formula's copy differs from the master's, the orchestration
    stops at its first step, naming the command, and nothing changes; once the master
    holds the same copy again the run converges."""
    module = formula_tree / "salt/_states/ceph_openstack_rollout.py"
    original = module.read_bytes()
    before = snapshot(ceph_lab, libvirt_lab, sandbox)
    try:
        module.write_bytes(original + b"\n# a newer formula\n")
        steps, failed = orchestrate(salt_run_cli)
    finally:
        module.write_bytes(original)
    assert list(steps) == ["ceph_openstack-master"], steps
    comment = steps["ceph_openstack-master"][1]
    assert steps["ceph_openstack-master"][0] is False
    assert "an old copy of _states/ceph_openstack_rollout.py" in comment, comment
    assert "run `salt-run saltutil.sync_all`" in comment, comment
    assert snapshot(ceph_lab, libvirt_lab, sandbox) == before

    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert changed(steps) == {}
