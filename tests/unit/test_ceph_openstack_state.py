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


# --- published: every stale mine entry in one mine.update -----------------------------------

KEY2 = "AQCYt+5kAAAAABAAUVlpNpcjwE+VTpr3QMDclw=="
FACTS = {"fsid": "675c94fe-ac46-484e-bd88-3d7c4e2bf3a1", "mon_host": "[v2:127.0.0.1:3300]"}
CLIENTS = {"cinder": ["controller", "compute"], "glance": ["controller"]}


@pytest.fixture
def mon(mine, calls):
    """The mon's view: keys in Ceph, what mine.update stores."""
    keys = {"client.cinder": KEY, "client.glance": KEY2}

    def get_key(entity):
        if entity not in keys:
            raise state.CommandExecutionError(f"entity {entity} does not exist")
        return keys[entity]

    def update(mine_functions):
        calls.append(("mine.update", sorted(mine_functions)))
        for alias, definition in mine_functions.items():
            function = definition[0]["mine_function"]
            args = [item for item in definition if not isinstance(item, dict)]
            value = FACTS if function == "ceph_openstack.cluster_info" else get_key(*args)
            mine[alias] = {"mon1": value}
        return True

    funcs = {
        "ceph_openstack.cluster_info": lambda: FACTS,
        "cephauth.get_key": get_key,
        "mine.update": update,
    }
    with mock.patch.dict(state.__salt__, funcs), \
            mock.patch.dict(state.__grains__, {"id": "mon1"}):
        yield keys


def _updates(calls):
    return [c[1] for c in calls if c[0] == "mine.update"]


def test_published_sends_every_entry_in_one_update_then_nothing(mon, mine, calls):
    ret = state.published(clients=CLIENTS, targets=TARGETS)
    assert ret["result"] is True
    assert ret["changes"] == {"published": [
        "ceph_openstack_cluster", "ceph_openstack_key_cinder", "ceph_openstack_key_glance"]}
    assert _updates(calls) == [ret["changes"]["published"]]
    assert mine["ceph_openstack_key_glance"] == {"mon1": KEY2}
    assert KEY not in repr(ret) and KEY2 not in repr(ret)

    again = state.published(clients=CLIENTS, targets=TARGETS)
    assert again["result"] is True and again["changes"] == {}
    assert len(_updates(calls)) == 1


def test_published_acl_names_the_roles_and_the_mons(mon, mine, calls):
    captured = {}
    original = state.__salt__["mine.update"]

    def update(mine_functions):
        captured.update(mine_functions)
        return original(mine_functions)

    with mock.patch.dict(state.__salt__, {"mine.update": update}):
        state.published(clients=CLIENTS, targets=TARGETS)
    glance = dict(kv for item in captured["ceph_openstack_key_glance"] if isinstance(item, dict)
                  for kv in item.items())
    assert glance == {"mine_function": "cephauth.get_key", "allow_tgt_type": "compound",
                      "allow_tgt": "( G@role:mon ) or ( G@role:controller )"}
    assert "client.glance" in captured["ceph_openstack_key_glance"]


def test_published_rotated_key_only(mon, mine, calls):
    state.published(clients=CLIENTS, targets=TARGETS)
    mon["client.cinder"] = KEY2
    state.__context__.clear()
    ret = state.published(clients=CLIENTS, targets=TARGETS)
    assert ret["changes"] == {"published": ["ceph_openstack_key_cinder"]}
    assert _updates(calls)[-1] == ["ceph_openstack_key_cinder"]


def test_published_test_mode_predicts_and_sends_nothing(mon, mine, calls):
    del mon["client.glance"]  # created earlier in the same run, were it not test=True
    with mock.patch.dict(state.__opts__, {"test": True}):
        ret = state.published(clients=CLIENTS, targets=TARGETS)
    assert ret["result"] is None
    assert ret["changes"] == {"published": [
        "ceph_openstack_cluster", "ceph_openstack_key_cinder", "ceph_openstack_key_glance"]}
    assert "ceph_openstack_key_glance once its user exists" in ret["comment"]
    assert _updates(calls) == [] and mine == {}


def test_published_missing_user_fails_naming_it_after_publishing_the_rest(mon, mine, calls):
    del mon["client.glance"]
    ret = state.published(clients=CLIENTS, targets=TARGETS)
    assert ret["result"] is False
    assert ret["comment"].startswith("cannot read the key of client.glance:")
    assert "published ceph_openstack_cluster, ceph_openstack_key_cinder" in ret["comment"]
    assert set(mine) == {"ceph_openstack_cluster", "ceph_openstack_key_cinder"}
