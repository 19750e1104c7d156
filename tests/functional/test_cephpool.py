"""
Functional tests of cephpool: the modules synced and loaded by Salt's loader,
acting on the real lab cluster, checked with the ceph/rados CLIs directly.
"""

import subprocess
import time
import uuid

import pytest
from salt.exceptions import CommandExecutionError

from lab import proc

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module", autouse=True)
def _cluster(ceph_lab):
    """Requested before ``loaders`` so the minion opts point at the lab cluster."""
    return ceph_lab


@pytest.fixture
def pool(ceph_lab):
    """A fresh pool name, deleted after the test whatever happened (the lab has
    room for a limited number of PGs)."""
    name = f"cp-{uuid.uuid4().hex[:8]}"
    yield name
    ceph_lab.ceph(
        "osd", "pool", "delete", name, name, "--yes-i-really-really-mean-it", json_out=False
    )


def detail(ceph_lab, name):
    """The pool's entry of `ceph osd pool ls detail`, or None."""
    return next(
        (p for p in ceph_lab.ceph("osd", "pool", "ls", "detail") if p["pool_name"] == name), None
    )


def rbd_info(ceph_lab, name):
    """The content of the pool's rbd_info object (None when there is none)."""
    out = subprocess.run(
        ["rados", "--conf", ceph_lab.conf, "-p", name, "get", "rbd_info", "-"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout if out.returncode == 0 else None


def test_present_creates_enables_and_initialises(states, ceph_lab, pool):
    predicted = states.cephpool.present(pool, pg_num=16, max_objects=1000, test=True)
    assert predicted.result is None
    assert detail(ceph_lab, pool) is None  # test mode changed nothing

    ret = states.cephpool.present(pool, pg_num=16, max_objects=1000)
    assert ret.result is True, ret.comment
    assert (
        ret.changes
        == predicted.changes
        == {
            "pool": {"old": None, "new": pool},
            "pg_num": {"old": None, "new": 16},
            "max_objects": {"old": None, "new": 1000},
            "application": {"old": None, "new": ["rbd"]},
            "init": {"old": None, "new": True},
        }
    )
    entry = detail(ceph_lab, pool)
    assert entry["pg_num_target"] == 16 and entry["quota_max_objects"] == 1000
    assert entry["application_metadata"] == {"rbd": {}}
    assert rbd_info(ceph_lab, pool) == "overwrite validated"

    again = states.cephpool.present(pool, pg_num=16, max_objects=1000)
    assert (again.result, again.changes) == (True, {})
    assert again.comment == f"Pool {pool} is in the desired state."
    assert states.cephpool.present(pool, pg_num=16, max_objects=1000, test=True).result is True


def test_present_reconciles_a_runbook_pool(states, ceph_lab, pool):
    # what the runbook does: `ceph osd pool create NAME PG`, nothing else
    ceph_lab.ceph("osd", "pool", "create", pool, "8", json_out=False)
    rule = f"rule-{pool}"
    ceph_lab.ceph(
        "osd", "crush", "rule", "create-replicated", rule, "default", "osd", json_out=False
    )
    wanted = dict(
        pg_num=16,
        size=2,
        pg_autoscale_mode="warn",
        target_size_ratio=0.25,
        crush_rule=rule,
        max_objects=500,
        max_bytes="1G",
    )
    try:
        predicted = states.cephpool.present(pool, test=True, **wanted)
        assert predicted.result is None
        assert detail(ceph_lab, pool)["pg_num_target"] == 8  # nothing changed yet
        assert rbd_info(ceph_lab, pool) is None

        ret = states.cephpool.present(pool, **wanted)
        assert ret.result is True, ret.comment
        assert (
            ret.changes
            == predicted.changes
            == {
                "pg_autoscale_mode": {"old": "off", "new": "warn"},
                "pg_num": {"old": 8, "new": 16},
                "pgp_num": {"old": 8, "new": 16},
                "size": {"old": 1, "new": 2},  # min_size stays 1 (= size - size // 2)
                "crush_rule": {"old": "replicated_rule", "new": rule},
                "target_size_ratio": {"old": 0.0, "new": 0.25},
                "max_objects": {"old": 0, "new": 500},
                "max_bytes": {"old": 0, "new": 1 << 30},
                "application": {"old": [], "new": ["rbd"]},
                "init": {"old": False, "new": True},
            }
        )
        entry = detail(ceph_lab, pool)
        rules = {
            r["rule_name"]: r["rule_id"] for r in ceph_lab.ceph("osd", "crush", "rule", "dump")
        }
        assert (entry["pg_num_target"], entry["pg_placement_num_target"]) == (16, 16)
        assert (entry["size"], entry["min_size"]) == (2, 1)
        assert entry["pg_autoscale_mode"] == "warn"
        assert entry["options"]["target_size_ratio"] == 0.25
        assert entry["crush_rule"] == rules[rule]
        assert (entry["quota_max_objects"], entry["quota_max_bytes"]) == (500, 1 << 30)
        assert entry["application_metadata"] == {"rbd": {}}
        assert rbd_info(ceph_lab, pool) == "overwrite validated"

        again = states.cephpool.present(pool, **wanted)
        assert (again.result, again.changes) == (True, {})

        # back to one replica: Ceph wants --yes-i-really-mean-it for that
        ret = states.cephpool.present(pool, size=1)
        assert ret.result is True and ret.changes == {"size": {"old": 2, "new": 1}}
        assert (detail(ceph_lab, pool)["size"], detail(ceph_lab, pool)["min_size"]) == (1, 1)
    finally:
        ceph_lab.ceph("osd", "pool", "set", pool, "crush_rule", "replicated_rule", json_out=False)
        ceph_lab.ceph("osd", "crush", "rule", "rm", rule, json_out=False)


def test_a_pool_of_another_application_is_refused(states, ceph_lab, pool):
    ceph_lab.ceph("osd", "pool", "create", pool, "8", json_out=False)
    ceph_lab.ceph("osd", "pool", "application", "enable", pool, "rgw", json_out=False)
    before = detail(ceph_lab, pool)
    ret = states.cephpool.present(pool, pg_num=16, max_objects=10)
    assert ret.result is False and ret.changes == {}
    assert "application rgw is enabled on it already; refusing to enable rbd too" in ret.comment
    assert detail(ceph_lab, pool) == before  # nothing half-applied


def test_an_impossible_change_is_refused_whole(states, ceph_lab, pool):
    ceph_lab.ceph("osd", "pool", "create", pool, "8", json_out=False)
    before = detail(ceph_lab, pool)
    ret = states.cephpool.present(pool, min_size=2, max_objects=10)  # size is 1
    assert ret.result is False and ret.changes == {}
    assert "min_size 2 cannot exceed size 1" in ret.comment
    assert detail(ceph_lab, pool) == before


def test_ceph_refusing_a_write_is_reported(states, ceph_lab, pool):
    ceph_lab.ceph("osd", "pool", "create", pool, "8", json_out=False)
    ret = states.cephpool.present(pool, max_objects=10, pg_num=65536, init=False)
    assert ret.result is False and ret.changes == {}
    assert "setting pg_num failed" in ret.comment and "ERANGE" in ret.comment
    assert detail(ceph_lab, pool)["quota_max_objects"] == 0  # pg_num goes first


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"name": ""}, "name"),
        ({"name": "bad/name"}, "name"),
        ({"name": "ok", "pg_num": 0}, "pg_num"),
        ({"name": "ok", "pg_num": "lots"}, "pg_num"),
        ({"name": "ok", "replicas": 3}, "replicas"),
        ({"name": "ok", "application": "rgw"}, "init"),
    ],
)
def test_bad_input_fails_naming_the_argument(states, ceph_lab, kwargs, argument):
    pools = ceph_lab.ceph("osd", "pool", "ls")
    ret = states.cephpool.present(**kwargs)
    assert ret.result is False and ret.changes == {}
    assert ret.comment.startswith("Bad input for cephpool") and argument in ret.comment
    assert ceph_lab.ceph("osd", "pool", "ls") == pools


def test_absent_needs_confirm_then_deletes(states, ceph_lab, pool):
    ceph_lab.ceph("osd", "pool", "create", pool, "8", json_out=False)
    refused = states.cephpool.absent(pool)
    assert refused.result is False and "confirm: True" in refused.comment
    predicted = states.cephpool.absent(pool, confirm=True, test=True)
    assert predicted.result is None
    assert pool in ceph_lab.ceph("osd", "pool", "ls")

    ret = states.cephpool.absent(pool, confirm=True)
    assert ret.result is True and ret.changes == predicted.changes == {
        "pool": {"old": pool, "new": None}
    }
    assert pool not in ceph_lab.ceph("osd", "pool", "ls")
    again = states.cephpool.absent(pool, confirm=True)
    assert (again.result, again.changes) == (True, {})


def test_one_run_converges_several_pools(modules, ceph_lab):
    names = [f"cp-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    # one pool exists already (runbook style); one run creates the others and reads
    # the listing again after each write of its own
    ceph_lab.ceph("osd", "pool", "create", names[0], "8", json_out=False)
    high = {
        name: {
            "cephpool": ["present", {"pg_num": 8}, {"max_objects": 100 + i}],
            "__sls__": "t",
            "__env__": "base",
        }
        for i, name in enumerate(names)
    }
    try:
        first = modules.state.high(high)
        assert all(r.result is True for r in first), [r.comment for r in first]
        assert all(r.changes for r in first)
        for i, name in enumerate(names):
            entry = detail(ceph_lab, name)
            assert entry["quota_max_objects"] == 100 + i
            assert entry["application_metadata"] == {"rbd": {}}
        second = modules.state.high(high)
        assert all(r.result is True and r.changes == {} for r in second)
    finally:
        for name in names:
            ceph_lab.ceph(
                "osd", "pool", "delete", name, name, "--yes-i-really-really-mean-it", json_out=False
            )


def test_a_cluster_that_does_not_answer(states, ceph_lab, tmp_path):
    conf = tmp_path / "ceph.conf"  # a mon address nothing listens on
    conf.write_text(f"[global]\nfsid = {ceph_lab.fsid}\nmon host = 127.0.0.1:{proc.free_port()}\n")
    started = time.monotonic()
    ret = states.cephpool.present("volumes", pg_num=8, conf=str(conf), timeout=3)
    elapsed = time.monotonic() - started
    assert ret.result is False and ret.changes == {}
    assert "no answer from cluster 'ceph'" in ret.comment and "within 3 s" in ret.comment
    assert elapsed < 3 + 5 + 5  # Ceph's timeout + ceph_cli's kill grace: no hang


# -- the execution module ---------------------------------------------------------------


def test_execution_module_round_trip(modules, loaders, ceph_lab, pool):
    cephpool = modules.cephpool
    assert cephpool.exists(pool) is False
    assert cephpool.create(pool, pg_num=8, max_bytes="100M") == {
        "pg_num": 8,
        "max_bytes": 100 << 20,
    }
    assert pool in cephpool.list() and cephpool.exists(pool)
    assert pool in ceph_lab.ceph("osd", "pool", "ls")

    props = cephpool.get(pool)
    assert props["crush_rule"] == "replicated_rule" and props["max_bytes"] == 100 << 20
    assert props["pg_num"] == 8 and props["application_metadata"] == {}

    assert cephpool.set(pool, pg_num=16, test=True) == {
        "pg_num": {"old": 8, "new": 16},
        "pgp_num": {"old": 8, "new": 16},
    }
    assert detail(ceph_lab, pool)["pg_num_target"] == 8
    cephpool.set(pool, pg_num=16, target_size_ratio=0.5)
    entry = detail(ceph_lab, pool)
    assert entry["pg_num_target"] == 16 and entry["options"]["target_size_ratio"] == 0.5

    assert cephpool.initialized(pool) is False
    assert cephpool.application_enable(pool, "rbd") is True
    assert ceph_lab.ceph("osd", "pool", "application", "get", pool) == {"rbd": {}}
    assert cephpool.application_get(pool) == {"rbd": {}}
    assert cephpool.initialized(pool) is False  # rbd enabled, but not rbd_info yet
    assert cephpool.init(pool) is True
    assert rbd_info(ceph_lab, pool) == "overwrite validated"
    assert cephpool.initialized(pool) is True

    with pytest.raises(CommandExecutionError, match="pass confirm=True"):
        cephpool.delete(pool)
    assert pool in ceph_lab.ceph("osd", "pool", "ls")
    assert cephpool.delete(pool, confirm=True) is True
    assert pool not in ceph_lab.ceph("osd", "pool", "ls")
    assert cephpool.delete(pool, confirm=True) is False
