"""The formula glue states: keys from pillar or the mine, one mine.get per run."""

from unittest import mock

import pytest

from tests.support.modules import load

state = load("salt/_states/ceph_openstack.py", "ceph_openstack_state_under_test")

KEY = "AQBhAAAAAAAAABAAvHOq2W2wbY4Wcf7yCmXw3Q=="
TARGETS = {"mon": "G@role:mon", "controller": "G@role:controller", "compute": "G@role:compute"}
PILLAR = {"ceph_openstack": {"clients": {"cinder": {}, "glance": {}}}}


@pytest.fixture
def mine():
    return {}


@pytest.fixture
def calls():
    return []


@pytest.fixture
def configure_loader_modules(mine, calls):
    def mine_get(tgt, fun, tgt_type="glob"):
        calls.append(("mine.get", tgt, tuple(fun)))
        return {alias: values for alias, values in mine.items() if alias in fun}

    def keyring_present(name, **kwargs):
        calls.append(("keyring_present", name, kwargs.get("key") == KEY))
        return {"name": name, "result": True, "changes": {}, "comment": ""}

    return {
        state: {
            "__salt__": {"mine.get": mine_get},
            "__states__": {"cephauth.keyring_present": keyring_present},
            "__pillar__": PILLAR,
            "__grains__": {"id": "cmp1"},
            "__opts__": {"test": False},
            "__context__": {},
        }
    }


def test_keys_come_from_the_mine_with_one_mine_get_per_run(mine, calls):
    mine["ceph_openstack_key_cinder"] = {"mon1": KEY}
    mine["ceph_openstack_key_glance"] = {"mon1": KEY}
    for client in ("cinder", "glance"):
        ret = state.keyring(f"/etc/ceph/ceph.client.{client}.keyring", client, TARGETS)
        assert ret["result"] is True
    assert [c[0] for c in calls].count("mine.get") == 1
    assert all(c[2] for c in calls if c[0] == "keyring_present")  # the key was handed on


def test_a_key_not_published_yet_says_what_to_run(calls):
    ret = state.keyring("/etc/ceph/ceph.client.cinder.keyring", "cinder", TARGETS)
    assert ret["result"] is False
    assert "salt -C 'G@role:mon' state.apply ceph_openstack" in ret["comment"]
    assert "ceph_openstack:clients:cinder:key" in ret["comment"]
    assert not [c for c in calls if c[0] == "keyring_present"]


def test_a_pillar_key_wins_without_asking_the_mine(calls):
    pillar = {"ceph_openstack": {"clients": {"cinder": {"key": KEY}}}}
    with mock.patch.dict(state.__pillar__, pillar):
        ret = state.keyring("/etc/ceph/ceph.client.cinder.keyring", "cinder", TARGETS)
    assert ret["result"] is True
    assert [c[0] for c in calls] == ["keyring_present"]


def test_no_key_ever_in_a_return(mine):
    mine["ceph_openstack_key_cinder"] = {"mon1": KEY}
    ret = state.keyring("/etc/ceph/ceph.client.cinder.keyring", "cinder", TARGETS)
    assert KEY not in repr(ret)
