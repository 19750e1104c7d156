"""The orchestration's steps (salt/_states/ceph_openstack_rollout.py): the pillar's waits
reach Salt's client, and a node that never answered is told apart from one whose states
failed, in every shape Salt's client reports it (no return, "Minion did not return", an
empty batch return, left out of a batch)."""

from unittest import mock

import pytest
import salt.utils.state

from tests.support.modules import ROOT, load

steps = load("salt/_states/ceph_openstack_rollout.py", "ceph_openstack_rollout_under_test")

TGT = "G@role:compute"


def states(*results, changes=None):
    """One node's state return: a state per result, the first with ``changes``."""
    found = {}
    for index, result in enumerate(results):
        sid = f"state-{index}"
        comment = ("One or more requisite failed: x" if result is False and index else "done")
        found[f"file_|-{sid}_|-/etc/{sid}_|-managed"] = {
            "__id__": sid, "__run_num__": index, "result": result, "comment": comment,
            "changes": (changes or {}) if index == 0 else {}}
    return found


@pytest.fixture
def cmd():
    """``saltutil.cmd``: answers from ``cmd.answers``, calls kept in ``cmd.calls``."""
    fake = mock.Mock(return_value={})
    fake.answers = {}
    fake.side_effect = lambda tgt, fun, **kw: fake.answers
    return fake


@pytest.fixture
def expected():
    """The minions the master expects to match the target."""
    return []


@pytest.fixture
def opts():
    return {"test": False, "timeout": 5, "gather_job_timeout": 10}


@pytest.fixture(autouse=True)
def loader(cmd, expected, opts):
    ckminions = mock.Mock()
    ckminions.return_value.check_minions.side_effect = lambda tgt, tgt_type: {
        "minions": list(expected), "missing": []}
    patches = {"__salt__": {"saltutil.cmd": cmd},
               "__utils__": {"state.check_result": salt.utils.state.check_result},
               "__opts__": opts}
    with mock.patch.object(steps.salt.utils.minions, "CkMinions", ckminions):
        with mock.patch.multiple(steps, create=True, **patches):
            yield


def apply(**kwargs):
    args = {"name": "ceph_openstack-computes", "tgt": TGT, "tgt_type": "compound",
            "sls": "ceph_openstack", "timeout": 60, "gather_job_timeout": 30}
    args.update(kwargs)
    return steps.state(**args)


def test_the_waits_and_the_batch_reach_salts_client(cmd, expected):
    expected[:] = ["cmp1"]
    cmd.answers = {"cmp1": {"ret": states(True), "jid": "2026"}}
    ret = apply(batch=10, pillar={"a": 1})
    (tgt, fun), kwargs = cmd.call_args
    assert (tgt, fun) == (TGT, "state.sls")
    assert kwargs["arg"] == ["ceph_openstack"]
    assert kwargs["timeout"] == 60 and kwargs["gather_job_timeout"] == 30
    assert kwargs["batch"] == "10" and kwargs["expect_minions"] is True
    assert kwargs["tgt_type"] == "compound"
    assert kwargs["kwarg"] == {"queue": False, "concurrent": False, "pillar": {"a": 1}}
    assert ret["__jid__"] == "2026"


def test_without_waits_the_masters_own_settings_apply(cmd, expected):
    expected[:] = ["cmp1"]
    cmd.answers = {"cmp1": {"ret": states(True)}}
    ret = apply(timeout=None, gather_job_timeout=None)
    assert (cmd.call_args[1]["timeout"], cmd.call_args[1]["gather_job_timeout"]) == (5, 10)
    assert "batch" not in cmd.call_args[1]
    assert ret["result"] is True


def test_all_converged(cmd, expected):
    expected[:] = ["cmp1", "cmp2"]
    cmd.answers = {"cmp1": {"ret": states(True, changes={"diff": "new"})},
                   "cmp2": {"ret": states(True, True)}}
    ret = apply()
    assert ret["result"] is True
    assert ret["comment"] == "States ran successfully. Updating cmp1. No changes made to cmp2."
    assert list(ret["changes"]["ret"]) == ["cmp1"]
    assert ret["changes"]["out"] == "highstate"


@pytest.mark.parametrize("silent", [
    {"failed": True},                                            # cmd_iter, expect_minions
    {"out": "no_return", "ret": "Minion did not return. [No response]"},
    {"out": "highstate", "ret": {}},                             # a batch's timed-out node
    None,                                                        # left out of a batch
], ids=["failed", "no_return", "empty-batch-return", "not-in-the-batch"])
def test_a_node_that_never_answered_is_named_with_the_wait(cmd, expected, silent):
    expected[:] = ["cmp1", "cmp2"]
    cmd.answers = {"cmp2": {"ret": states(True, changes={"diff": "new"})}}
    if silent is not None:
        cmd.answers["cmp1"] = silent
    ret = apply(batch=10)
    assert ret["result"] is False
    lines = ret["comment"].splitlines()
    assert lines[0] == ("cmp1 did not answer in 90 s (rollout:timeout 60 s, then "
                        "rollout:gather_job_timeout 30 s for Salt's find_job)")
    assert lines[1:] == ["States ran successfully on cmp2."]
    assert "states failed" not in ret["comment"]
    # The node's entry says it too (lab/report.py shows a node's non-state return).
    assert ret["changes"]["ret"]["cmp1"] == lines[0]
    assert ret["changes"]["ret"]["cmp2"]["file_|-state-0_|-/etc/state-0_|-managed"]


def test_a_node_whose_states_failed_is_not_called_silent(cmd, expected):
    expected[:] = ["cmp1", "cmp2"]
    cmd.answers = {"cmp1": {"ret": states(True, False, False)},
                   "cmp2": {"ret": states(False, False)}}
    ret = apply()
    assert ret["result"] is False
    # cmp1: state-1 failed, state-2 only for its requisite; cmp2: its cause first
    assert ret["comment"].splitlines() == ["states failed on cmp1: state-1, state-2",
                                           "states failed on cmp2: state-0"]
    assert "did not answer" not in ret["comment"]


def test_silent_and_failed_nodes_in_one_step(cmd, expected):
    expected[:] = ["cmp1", "cmp2", "cmp3"]
    cmd.answers = {"cmp1": {"failed": True}, "cmp2": {"ret": states(False)},
                   "cmp3": {"ret": ["Rendering SLS 'base:ceph_openstack' failed"]}}
    ret = apply()
    assert ret["comment"].splitlines() == [
        "cmp1 did not answer in 90 s (rollout:timeout 60 s, then rollout:gather_job_timeout "
        "30 s for Salt's find_job)",
        "states failed on cmp2: state-0",
        "cmp3 returned errors: Rendering SLS 'base:ceph_openstack' failed",
    ]
    assert ret["result"] is False


def test_an_empty_return_outside_a_batch_is_an_answer(cmd, expected):
    expected[:] = ["cmp1"]
    cmd.answers = {"cmp1": {"ret": {}}}
    ret = apply()
    assert (ret["result"], ret["comment"]) == (False, "cmp1 returned no state results")


def test_no_node_matched(cmd):
    ret = apply()
    assert ret["result"] is False
    assert "No minions matched" in ret["comment"]


def test_test_mode_predicts(cmd, expected, opts):
    opts["test"] = True
    expected[:] = ["cmp1"]
    cmd.answers = {"cmp1": {"ret": states(None, changes={"diff": "new"})}}
    ret = apply()
    assert cmd.call_args[1]["kwarg"]["test"] is True
    assert ret["result"] is None


def test_a_function_step(cmd, expected):
    expected[:] = ["cmp1", "cmp2", "ctl1"]
    cmd.answers = {"cmp2": {"ret": {"modules": []}, "retcode": 0},
                   "ctl1": {"ret": "'saltutil.sync_all' failed", "retcode": 1}}
    ret = steps.function("saltutil.sync_all", "cmp1,cmp2,ctl1", tgt_type="list",
                         kwarg={"refresh": True}, timeout=60, gather_job_timeout=30)
    (tgt, fun), kwargs = cmd.call_args
    assert (fun, kwargs["kwarg"], kwargs["timeout"], kwargs["gather_job_timeout"]) == (
        "saltutil.sync_all", {"refresh": True}, 60, 30)
    assert ret["result"] is False
    assert ret["comment"].splitlines() == [
        "cmp1 did not answer in 90 s (rollout:timeout 60 s, then rollout:gather_job_timeout "
        "30 s for Salt's find_job)",
        "saltutil.sync_all failed on ctl1",
        "Function saltutil.sync_all ran on cmp2, ctl1.",
    ]


def test_a_function_step_that_ran_everywhere(cmd, expected, opts):
    expected[:] = ["cmp1"]
    cmd.answers = {"cmp1": {"ret": {"modules": []}, "retcode": 0}}
    ret = steps.function("saltutil.sync_all", "cmp1", tgt_type="list")
    assert ret["result"] is True
    assert ret["comment"] == "Function ran successfully. Function saltutil.sync_all ran on cmp1."
    opts["test"] = True
    cmd.reset_mock()
    assert steps.function("saltutil.sync_all", "cmp1", tgt_type="list")["result"] is None
    cmd.assert_not_called()


ORCH_FILES = ["salt/states/orch/ceph_openstack.sls", "salt/states/orch/ceph_openstack_rotate.sls",
              "salt/states/orch/ceph_openstack_retire.sls", "salt/states/orch/rotation.jinja",
              "salt/states/orch/ceph_openstack_join.sls",
              "salt/states/orch/preflight.jinja"]


@pytest.mark.parametrize("path", ORCH_FILES)
def test_every_orchestration_step_passes_the_pillars_waits(path):
    """No step is left to Salt's salt.state / salt.function, which wait Salt's defaults; each
    of ours passes rollout:timeout and rollout:gather_job_timeout (the `waits` of
    orch/preflight.jinja)."""
    text = (ROOT / path).read_text()
    assert "salt.state:" not in text and "salt.function:" not in text
    checked = 0
    for block in text.split("ceph_openstack_rollout.")[1:]:
        if not block.startswith(("state:", "function:")):
            continue  # a requisite, or the module named in a comment
        body = block.split("\n\n")[0]
        assert "- timeout: {{ waits.timeout }}" in body, body
        assert "- gather_job_timeout: {{ waits.gather_job_timeout }}" in body, body
        checked += 1
    if path.endswith("preflight.jinja"):
        assert checked >= 2
    elif "rotation_steps(" not in text:  # the rotation's steps are rotation.jinja's
        assert checked >= 1
