"""
cephpool and cephauth through one ceph_session per run, against the lab cluster: the
same results as one ``ceph`` process per command, one helper process instead of many,
and keys only on the helper's stdin.
"""

import pathlib
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.support.argv_recorder import assert_secret_absent, record_argv  # noqa: E402

pytestmark = pytest.mark.lab

CAPS = {"mon": "profile rbd", "osd": "profile rbd pool=volumes"}


@pytest.fixture(scope="module", autouse=True)
def _cluster(ceph_lab):
    """Requested before ``loaders`` so the minion opts point at the lab cluster."""
    return ceph_lab


@pytest.fixture
def names(ceph_lab):
    """Unique pool and client names, removed after the test."""
    tag = uuid.uuid4().hex[:8]
    made = {"pools": [f"s{tag}-{n}" for n in range(3)],
            "clients": [f"client.s{tag}-{n}" for n in range(3)]}
    yield made
    for pool in made["pools"]:
        ceph_lab.ceph("osd", "pool", "delete", pool, pool, "--yes-i-really-really-mean-it",
                      json_out=False, check=False)
    for client in made["clients"]:
        ceph_lab.ceph("auth", "del", client, json_out=False, check=False)


def lab_processes(execs, ceph_lab):
    """(ceph CLI runs, session helpers) that this test started against the lab. Helpers
    are counted from strace's record where it has one (this process's descendants): the
    /proc poller also sees the helpers of other test sessions on the machine."""
    cli = [argv for argv in execs.commands("ceph") if ceph_lab.conf in argv]
    own = [item for item in execs if item.via == "strace"] if execs.straced else execs
    helpers = {item.pid for item in own
               if len(item.argv) > 2 and item.argv[1] == "-c" and "ceph_argparse" in item.argv[2]}
    return cli, helpers


def high_data(names):
    high = {}
    for pool in names["pools"]:
        high[pool] = {"cephpool": ["present", {"pg_num": 1}], "__env__": "base",
                      "__sls__": "session"}
    for client in names["clients"]:
        high[client] = {"cephauth": ["present", {"caps": CAPS}], "__env__": "base",
                        "__sls__": "session"}
    return high


def test_a_converge_uses_one_connection_and_a_rerun_changes_nothing(modules, ceph_lab, names):
    high = high_data(names)
    with record_argv() as execs:
        predicted = modules.state.high(high, test=True)
    assert all(ret["result"] is None and ret["changes"] for ret in predicted.raw.values())
    assert not set(names["pools"]) & set(ceph_lab.ceph("osd", "pool", "ls"))

    with record_argv() as execs:
        first = modules.state.high(high)
    assert all(ret["result"] is True for ret in first.raw.values()), first.raw
    for key, ret in first.raw.items():
        assert set(ret["changes"]) == set(predicted.raw[key]["changes"]), key
    cli, helpers = lab_processes(execs, ceph_lab)
    assert cli == [] and len(helpers) == 1
    # rbd pool init ran in the helper (librbd's pool_init): no rbd process either
    assert [argv for argv in execs.commands("rbd") if ceph_lab.conf in argv] == []
    for pool in names["pools"]:
        info = ceph_lab.rbd("pool", "stats", pool)
        assert "Total Images" in info
    pools = {p["pool_name"]: p for p in ceph_lab.ceph("osd", "pool", "ls", "detail")}
    for pool in names["pools"]:
        assert pools[pool]["pg_num"] == 1 and "rbd" in pools[pool]["application_metadata"]
    for client in names["clients"]:
        assert ceph_lab.ceph("auth", "get", client)[0]["caps"] == CAPS

    again = modules.state.high(high)
    assert all(ret["result"] is True and not ret["changes"] for ret in again.raw.values())


def test_failures_read_as_with_the_cli(modules, states, ceph_lab, names):
    pool = names["pools"][0]
    assert modules.cephpool.create(pool, pg_num=1)
    with pytest.raises(Exception, match="exists already"):
        modules.cephpool.create(pool, pg_num=1)
    assert modules.cephauth.get(names["clients"][0]) is None  # ENOENT is "no such user"
    ret = states.cephauth.present(name=names["clients"][1], caps={"mon": "allow bogus"})
    assert ret.result is False
    assert "Error EINVAL" in ret.comment or "capability parse failed" in ret.comment
    # A refused pool change still changes nothing (checked before the first write).
    ret = states.cephpool.present(name=pool, pg_num=1, size=1, min_size=2)
    assert ret.result is False and ret.changes == {}


def new_key():
    return subprocess.run(["ceph-authtool", "--gen-print-key"], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_keys_travel_in_the_request_only(states, ceph_lab, names):
    first, second = new_key(), new_key()
    client = names["clients"][2]
    with record_argv() as execs:
        created = states.cephauth.present(name=client, caps=CAPS, key=first)  # auth add -i -
        rotated = states.cephauth.present(name=client, caps=CAPS, key=second)  # auth import
    assert created.result is True and created.changes["key"] == "changed"
    assert rotated.result is True and rotated.changes == {"key": "changed"}
    assert ceph_lab.ceph("auth", "get", client)[0]["key"] == second
    cli, helpers = lab_processes(execs, ceph_lab)
    assert cli == [] and 1 <= len(helpers) <= 2  # a direct state call here: its own run
    for key in (first, second):
        assert_secret_absent(key, fragments=[key[-24:]], argv=execs,
                             returns=[created.full_return, rotated.full_return])
