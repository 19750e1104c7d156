"""The formula glue states: keys from pillar or the mine, one mine.get per run; the
rotation's states read the acting mon's."""

from unittest import mock

import pytest

from tests.support.modules import load

state = load("salt/_states/ceph_openstack.py", "ceph_openstack_state_under_test")
rotation = load("salt/_states/ceph_openstack_rotation.py", "ceph_openstack_rotation_under_test")

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
        listed = tgt[2:].split(",") if tgt.startswith("L@") else None  # else: every minion
        return {alias: {m: v for m, v in values.items() if listed is None or m in listed}
                for alias, values in mine.items() if alias in fun}

    def keyring_present(name, **kwargs):
        calls.append(("keyring_present", name, kwargs.get("key") == KEY))
        return {"name": name, "result": True, "changes": {}, "comment": ""}

    context = {}  # one run's __context__: Salt's state loader gives all state modules one
    return {
        state: {
            "__salt__": {"mine.get": mine_get},
            "__states__": {"cephauth.keyring_present": keyring_present},
            "__pillar__": PILLAR,
            "__grains__": {"id": "cmp1"},
            "__opts__": {"test": False},
            "__context__": context,
        },
        rotation: {
            "__salt__": {"mine.get": mine_get},
            "__states__": {"ceph_openstack.keyring": state.keyring},
            "__pillar__": PILLAR,
            "__grains__": {"id": "cmp1"},
            "__opts__": {"test": False},
            "__context__": context,
        },
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
def mon_acls():
    return {}


@pytest.fixture
def mon(mine, calls, mon_acls):
    """The mon's view: keys in Ceph, what mine.update stores (values in ``mine``, each
    entry's allow_tgt in ``acls``, as the master keeps them)."""
    keys = {"client.cinder": KEY, "client.glance": KEY2}
    acls = mon_acls

    def get_key(entity):
        if entity not in keys:
            raise state.CommandExecutionError(f"entity {entity} does not exist")
        return keys[entity]

    def update(mine_functions):
        calls.append(("mine.update", sorted(mine_functions)))
        for alias, definition in mine_functions.items():
            function = definition[0]["mine_function"]
            args = [item for item in definition if not isinstance(item, dict)]
            value = {"ceph_openstack.cluster_info": lambda: FACTS, "test.echo": lambda t: t,
                     "cephauth.get_key": get_key}[function](*args)
            mine[alias] = {"mon1": value}
            acls[alias] = next(item["allow_tgt"] for item in definition
                               if isinstance(item, dict) and "allow_tgt" in item)
        return True

    def delete(alias):
        calls.append(("mine.delete", alias))
        mine.pop(alias, None)
        acls.pop(alias, None)
        return True

    funcs = {
        "ceph_openstack.cluster_info": lambda: FACTS,
        "cephauth.get_key": get_key,
        "mine.update": update,
        "mine.delete": delete,
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
    # and the access record, in the same update
    assert _updates(calls) == [sorted(ret["changes"]["published"] + ["ceph_openstack_access"])]
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
    assert set(mine) == {"ceph_openstack_cluster", "ceph_openstack_key_cinder",
                         "ceph_openstack_access"}
    assert "ceph_openstack_key_glance" not in mine["ceph_openstack_access"]["mon1"]


# --- key access follows targets and roles ----------------------------------------------------

LISTS = {"mon": "L@mon1", "controller": "L@ctl1", "compute": "L@cmp1,cmp2"}


def _again(**kwargs):
    """The next mon run: a new __context__, so the mine is read again."""
    state.__context__.clear()
    return state.published(**kwargs)


def test_a_new_compute_target_republishes_only_the_keys_computes_read(mon, mine, mon_acls, calls):
    state.published(clients=CLIENTS, targets=LISTS)
    glance_acl = mon_acls["ceph_openstack_key_glance"]
    ret = _again(clients=CLIENTS, targets=dict(LISTS, compute="L@cmp1,cmp2,cmp3"))
    assert ret["result"] is True
    assert ret["changes"] == {
        "published": ["ceph_openstack_key_cinder"],
        "access": {"ceph_openstack_key_cinder": {
            "old": "( L@mon1 ) or ( L@ctl1 ) or ( L@cmp1,cmp2 )",
            "new": "( L@mon1 ) or ( L@ctl1 ) or ( L@cmp1,cmp2,cmp3 )"}},
    }
    assert _updates(calls)[-1] == ["ceph_openstack_access", "ceph_openstack_key_cinder"]
    assert mon_acls["ceph_openstack_key_cinder"].endswith("( L@cmp1,cmp2,cmp3 )")
    assert mon_acls["ceph_openstack_key_glance"] == glance_acl
    assert KEY not in repr(ret)

    again = _again(clients=CLIENTS, targets=dict(LISTS, compute="L@cmp1,cmp2,cmp3"))
    assert again["changes"] == {} and len(_updates(calls)) == 2  # the no-op run sends nothing


def test_a_role_taken_from_a_client_narrows_its_key(mon, mine, mon_acls, calls):
    state.published(clients=CLIENTS, targets=LISTS)
    ret = _again(clients=dict(CLIENTS, cinder=["controller"]), targets=LISTS)
    assert ret["changes"]["published"] == ["ceph_openstack_key_cinder"]
    assert mon_acls["ceph_openstack_key_cinder"] == "( L@mon1 ) or ( L@ctl1 )"
    assert "ceph_openstack_key_cinder now readable by ( L@mon1 ) or ( L@ctl1 )" in ret["comment"]


def test_a_client_no_longer_in_pillar_is_withdrawn(mon, mine, mon_acls, calls):
    state.published(clients=CLIENTS, targets=LISTS)
    ret = _again(clients={"cinder": CLIENTS["cinder"]}, targets=LISTS)
    assert ret["changes"] == {"withdrawn": ["ceph_openstack_key_glance"]}
    assert ("mine.delete", "ceph_openstack_key_glance") in calls
    assert "ceph_openstack_key_glance" not in mine
    assert _updates(calls)[-1] == ["ceph_openstack_access"]
    assert _again(clients={"cinder": CLIENTS["cinder"]}, targets=LISTS)["changes"] == {}


def test_a_lost_access_record_republishes_every_key_once(mon, mine, mon_acls, calls):
    state.published(clients=CLIENTS, targets=LISTS)
    del mine["ceph_openstack_access"]
    ret = _again(clients=CLIENTS, targets=LISTS)
    assert ret["changes"] == {"published": ["ceph_openstack_key_cinder",
                                            "ceph_openstack_key_glance"]}
    assert _again(clients=CLIENTS, targets=LISTS)["changes"] == {}


def test_the_access_record_is_readable_by_the_mons_only(mon, mine, mon_acls):
    state.published(clients=CLIENTS, targets=LISTS)
    assert mon_acls["ceph_openstack_access"] == "L@mon1"
    assert mon_acls["ceph_openstack_cluster"] == "*"


def test_test_mode_predicts_a_new_access_rule_and_sends_nothing(mon, mine, mon_acls, calls):
    state.published(clients=CLIENTS, targets=LISTS)
    with mock.patch.dict(state.__opts__, {"test": True}):
        ret = _again(clients=CLIENTS, targets=dict(LISTS, controller="L@ctl1,ctl2"))
    assert ret["result"] is None
    assert ret["changes"]["published"] == ["ceph_openstack_key_cinder",
                                           "ceph_openstack_key_glance"]
    assert set(ret["changes"]["access"]) == set(ret["changes"]["published"])
    assert "would be readable by" in ret["comment"]
    assert len(_updates(calls)) == 1
    assert mon_acls["ceph_openstack_key_glance"] == "( L@mon1 ) or ( L@ctl1 )"


def test_a_key_that_cannot_be_read_keeps_its_entry(mon, mine, mon_acls, calls):
    state.published(clients=CLIENTS, targets=LISTS)
    del mon["client.glance"]
    ret = _again(clients=CLIENTS, targets=dict(LISTS, compute="L@cmp9"))
    assert ret["result"] is False
    assert ret["changes"]["published"] == ["ceph_openstack_key_cinder"]
    assert "withdrawn" not in ret["changes"]
    assert mine["ceph_openstack_key_glance"] == {"mon1": KEY2}
    assert ("mine.delete", "ceph_openstack_key_glance") not in calls


# --- rotation: one mon acts; the nodes read from it alone ------------------------------------

OLD_KEY = "AQBhAAAAAAAAABAAOLDOLDOLDOLDOLDOLDOLDw=="


def test_a_rotation_reads_the_acting_mons_key_not_another_mons_older_one(mine, calls):
    # mon2 still holds the key it published before the rotation; mon1 acts and staged it.
    mine["ceph_openstack_key_cinder"] = {"mon2": OLD_KEY, "mon1": KEY}
    request = {"ceph_openstack_rotate": {"clients": ["cinder"], "mon": "mon1"}}
    with mock.patch.dict(rotation.__pillar__, request):
        ret = rotation.keyring("/etc/ceph/ceph.client.cinder.keyring", "cinder", TARGETS)
    assert ret["result"] is True
    assert [c[1] for c in calls if c[0] == "mine.get"] == ["L@mon1"]
    assert [c[2] for c in calls if c[0] == "keyring_present"] == [True]  # KEY, not OLD_KEY


def test_without_an_acting_mon_the_targets_stay_as_given():
    assert rotation._rotation_targets(TARGETS) == TARGETS
    with mock.patch.dict(rotation.__pillar__, {"ceph_openstack_rotate": {"mon": "mon2"}}):
        assert rotation._rotation_targets(TARGETS) == dict(TARGETS, mon="L@mon2")
