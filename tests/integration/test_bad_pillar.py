"""
Every malformed pillar of tests/data/bad_pillars.yaml, through the formula on all three
minions: refused before anything changes, with a message naming the pillar key.
"""

import os

import pytest
import yaml

from lab.salt import PROJECT
from tests.integration.test_rollout import orchestrate, snapshot

CASES = yaml.safe_load(open(os.path.join(PROJECT, "tests", "data", "bad_pillars.yaml")))
# A CLI pillar override merges into the pillar, so cases that delete a key cannot be
# expressed that way; the unit tests cover them.
MERGEABLE = [case for case in CASES if not case.get("delete")]
MINIONS = ("mon1", "ctl1", "cmp1")


def override(case):
    """The pillar override for a case: each mutated path, nested."""
    data = {}
    for path, value in case["mutate"].items():
        keys = path.split(":")
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return data


@pytest.fixture(scope="module")
def local_client(salt_master):
    """An in-process client of the master: no CLI start-up for each of the many cases."""
    import salt.client

    client = salt.client.get_local_client(salt_master.config_file)
    yield client
    client.destroy()


@pytest.fixture(scope="module")
def converged(salt_run_cli, salt_cli, lab_pillar, ceph_lab, libvirt_lab, sandbox):
    lab_pillar.edit({})
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
    _, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    before = snapshot(ceph_lab, libvirt_lab, sandbox)
    yield
    assert snapshot(ceph_lab, libvirt_lab, sandbox) == before, "a bad pillar changed something"


def test_the_corpus_is_mostly_mergeable():
    assert len(MERGEABLE) >= 15


@pytest.mark.parametrize("case", MERGEABLE, ids=[case["id"] for case in MERGEABLE])
def test_bad_pillar_is_refused_before_any_change(converged, local_client, case):
    ret = local_client.cmd(list(MINIONS), "state.apply", ["ceph_openstack"],
                           kwarg={"pillar": override(case)}, tgt_type="list", timeout=120)
    assert set(ret) == set(MINIONS), ret
    for minion, states in ret.items():
        assert isinstance(states, dict), f"{minion}: {states}"
        ran = {sid.split("_|-")[1]: s for sid, s in states.items()
               if s.get("__run_num__") is not None and s.get("duration") is not None}
        pillar_state = ran.pop("ceph_openstack-pillar")
        assert pillar_state["result"] is False
        assert case["expect"] + ":" in pillar_state["comment"], pillar_state["comment"]
        if case.get("says"):
            assert case["says"] in pillar_state["comment"]
        assert not any(s.get("changes") for s in states.values()), minion
