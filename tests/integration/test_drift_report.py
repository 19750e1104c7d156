"""
The drift report (``salt-run ceph_openstack.report``) through a real master, against the
converged lab: clean after the rollout; after a hand edit of cinder.conf on the
controller, a pool size changed with the ceph CLI and a keyring deleted on the compute,
it names each (node, item, fixing command) and exits 1; it runs one job per node and
changes nothing (file bytes, pools, users, libvirt secrets, the osdmap epoch); a node that
does not answer is missing.
"""

import json
import os
import subprocess
import time

import pytest

from tests.integration.test_faults import timed  # noqa: F401 (a fixture)
from tests.integration.test_rollout import orchestrate

NODES = ["cmp1", "ctl1", "mon1", "mon2"]
REPORT = "ceph_openstack.report"
FUNCTION = "ceph_openstack_report.drift"

#: The pillar of this module: pillar.example, with the volumes pool's size given (the lab
#: makes every pool with size 1), so that a size changed by hand is a drift.
PILLAR = {"ceph_openstack": {"pools": {"volumes": {"pg_num": 32, "size": 1}}}}
POOL_KEYS = ("size", "min_size", "pg_num", "pgp_num", "crush_rule", "application_metadata",
             "quota_max_bytes", "quota_max_objects", "pg_autoscale_mode")


def refresh_pillar(salt_cli):
    ret = salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
    assert ret.returncode == 0, ret


def outside(ceph_lab, libvirt_lab, sandbox):
    """What the report must not change, seen from outside: every file of the sandbox
    roots (bytes and mode), the pools' settings, the users and their caps, the libvirt
    secrets, and the osdmap epoch."""
    files = {}
    for minion in NODES:
        for dirpath, _, names in os.walk(sandbox(minion)):
            for name in names:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as handle:
                    files[path] = (handle.read(), os.stat(path).st_mode)
    pools = {pool["pool_name"]: {key: pool.get(key) for key in POOL_KEYS}
             for pool in ceph_lab.ceph("osd", "pool", "ls", "detail")}
    return {
        "files": files,
        "pools": pools,
        "auth": ceph_lab.ceph("auth", "ls")["auth_dump"],
        "secrets": libvirt_lab.virsh("secret-list"),
        "epoch": ceph_lab.ceph("osd", "dump")["epoch"],
    }


def run_report(salt_run_cli, *args):
    ret = salt_run_cli.run(REPORT, *args)
    assert isinstance(ret.data, dict), ret.stdout + ret.stderr
    return ret


def items_of(doc):
    """{(node, kind, what): item} of every node item of a report document."""
    return {(item["node"], item["kind"], item["what"]): item
            for entry in doc["nodes"].values() for item in entry["items"]}


@pytest.fixture(scope="module")
def converged(salt_master, salt_run_cli, salt_cli, lab_pillar):
    """The lab converged with this module's pillar, the master's runners and outputters
    synced (as a user does once; the master fixture has synced already)."""
    lab_pillar.edit(PILLAR)
    refresh_pillar(salt_cli)
    synced = salt_run_cli.run("saltutil.sync_all")
    assert synced.returncode == 0, synced
    extmods = salt_master.config["extension_modules"]
    for path in ("runners/ceph_openstack.py", "output/ceph_openstack_report.py"):
        assert os.path.isfile(os.path.join(extmods, path)), path
    _, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    yield
    lab_pillar.edit({})
    refresh_pillar(salt_cli)


def test_clean_after_the_rollout(converged, salt_run_cli, timed):
    with timed("report, converged lab"):
        ret = run_report(salt_run_cli)
    doc = ret.data
    print(json.dumps(doc["summary"]), "node seconds:",
          {node: entry.get("seconds") for node, entry in doc["nodes"].items()})
    assert ret.returncode == 0, json.dumps(doc, indent=1)
    assert doc["retcode"] == 0 and doc["drift"] is False
    assert doc["summary"] == {"ok": NODES, "drift": [], "missing": [], "failed": [],
                              "items": 0}
    assert doc["targets"]["mon"] == ["G@role:mon"]
    # one view of the lab's one cluster, from its first mon, with every formula user's key
    (view,) = doc["clusters"].values()
    assert view["mon"] == "mon1"
    assert view["items"] == []
    assert sorted(view["keys"]) == ["client.cinder", "client.cinder-backup", "client.glance"]
    for key in view["keys"].values():
        assert key["type"] in ("aes", "aes256k")
        assert key["created"] <= time.time() and key["age_days"] >= 0


def test_a_node_that_does_not_answer_is_missing(converged, minions, salt_run_cli, timed):
    """cmp1's salt-minion stopped: the report names it missing (with what to do) and exits 1;
    the other nodes are reported as usual."""
    minions["cmp1"].terminate()
    try:
        with timed("report with cmp1 stopped (timeout=10)"):
            ret = run_report(salt_run_cli, "timeout=10")
    finally:
        minions["cmp1"].start(start_timeout=120)
    doc = ret.data
    assert ret.returncode == 1
    assert doc["summary"]["missing"] == ["cmp1"]
    (item,) = doc["nodes"]["cmp1"]["items"]
    assert (item["kind"], item["what"]) == ("missing node", "no answer within 10 s")
    assert "salt cmp1 state.apply ceph_openstack" in item["fix"]
    assert {node: entry["status"] for node, entry in doc["nodes"].items()
            if node != "cmp1"} == {"ctl1": "ok", "mon1": "ok", "mon2": "ok"}


@pytest.fixture(scope="module")
def drifted(converged, salt_run_cli, salt_cli, ceph_lab, sandbox):
    """Three hand-made drifts: an option of cinder.conf on ctl1, the size of pool volumes,
    and client.cinder's keyring deleted on cmp1; all undone afterwards."""
    cinder_conf = sandbox("ctl1") / "etc/cinder/cinder.conf"
    keyring = sandbox("cmp1") / "etc/ceph/ceph.client.cinder.keyring"
    original = cinder_conf.read_bytes()
    assert b"\nrbd_pool = volumes\n" in original
    cinder_conf.write_bytes(original.replace(b"\nrbd_pool = volumes\n",
                                             b"\nrbd_pool = handmade\n", 1))
    ceph_lab.ceph("osd", "pool", "set", "volumes", "size", "2", json_out=False)
    keyring.unlink()
    try:
        yield {"cinder_conf": str(cinder_conf), "keyring": str(keyring)}
    finally:
        # test_the_fix_commands_clear_the_drift undoes them; this is for when it did not run
        # or failed.
        if ceph_lab.ceph("osd", "pool", "get", "volumes", "size")["size"] != 1:
            ceph_lab.ceph("osd", "pool", "set", "volumes", "size", "1",
                          "--yes-i-really-mean-it", json_out=False)
        cinder_conf.write_bytes(original)
        _, failed = orchestrate(salt_run_cli)  # writes the keyring again
        assert not failed, failed


@pytest.fixture(scope="module")
def drift_run(drifted, salt_run_cli, salt_master, event_listener, ceph_lab, libvirt_lab,
              sandbox):
    """The report over the drifted lab, with what it changed and the jobs it sent."""
    before = outside(ceph_lab, libvirt_lab, sandbox)
    start = time.time()
    ret = run_report(salt_run_cli)
    end = time.time()
    after = outside(ceph_lab, libvirt_lab, sandbox)
    time.sleep(1)  # the last events reach the listener
    events = [event for event in event_listener.get_events(
        [(salt_master.id, "salt/job/*")], after_time=start) if event.stamp.timestamp() <= end]
    return {"ret": ret, "before": before, "after": after, "events": events}


def test_drift_names_each_node_item_and_fix(drift_run, drifted):
    ret = drift_run["ret"]
    doc = ret.data
    print(json.dumps({node: entry["items"] for node, entry in doc["nodes"].items()}, indent=1))
    assert ret.returncode == 1
    assert doc["retcode"] == 1 and doc["drift"] is True
    assert doc["summary"]["drift"] == NODES and doc["summary"]["ok"] == []
    found = items_of(doc)
    assert set(found) == {
        ("ctl1", "options", drifted["cinder_conf"]),
        ("mon1", "pool", "pool volumes"),
        ("mon2", "pool", "pool volumes"),
        ("cmp1", "keyring", drifted["keyring"]),
    }
    options = found[("ctl1", "options", drifted["cinder_conf"])]
    assert options["detail"] == ["ceph/rbd_pool: handmade -> volumes"]
    assert options["pillar"] == "ceph_openstack:cinder"
    assert options["fix"] == "salt ctl1 state.apply ceph_openstack"
    for mon in ("mon1", "mon2"):
        pool = found[(mon, "pool", "pool volumes")]
        assert pool["detail"] == ["size: 2 -> 1"]
        assert pool["pillar"] == "ceph_openstack:pools:volumes"
        assert pool["fix"] == f"salt {mon} state.apply ceph_openstack"
    keyring = found[("cmp1", "keyring", drifted["keyring"])]
    assert keyring["pillar"] == "ceph_openstack:clients:cinder"
    assert keyring["fix"] == "salt cmp1 state.apply ceph_openstack"
    assert keyring["detail"]


def test_drift_report_changed_nothing(drift_run):
    before, after = drift_run["before"], drift_run["after"]
    assert after["files"].keys() == before["files"].keys()
    assert [path for path in before["files"] if after["files"][path] != before["files"][path]] \
        == []
    assert after["pools"] == before["pools"]
    assert after["pools"]["volumes"]["size"] == 2  # the drift is still there
    assert after["auth"] == before["auth"]
    assert after["secrets"] == before["secrets"]
    assert after["epoch"] == before["epoch"]


def test_drift_report_is_one_job_per_node(drift_run):
    """The master published one job, to every node, and each node answered it once."""
    new = [event for event in drift_run["events"] if event.tag.endswith("/new")]
    assert [(event.data["fun"], sorted(event.data["minions"])) for event in new] == [
        (FUNCTION, NODES)], [(e.tag, e.data.get("fun")) for e in new]
    (jid,) = [event.data["jid"] for event in new]
    answers = sorted(event.tag.rsplit("/", 1)[1] for event in drift_run["events"]
                     if event.tag.startswith(f"salt/job/{jid}/ret/"))
    assert answers == NODES


def test_drift_report_keeps_keys_out(drift_run, ceph_lab):
    text = drift_run["ret"].stdout
    for entity in ("client.cinder", "client.glance", "client.cinder-backup"):
        key = ceph_lab.ceph("auth", "get-key", entity, json_out=False).strip()
        assert key and key not in text


def test_table_by_default_and_exit_status(drift_run, drifted, salt_run_cli):
    """Without --out: the table, one row per item with its fix, and exit status 1."""
    cmdline = [arg for arg in salt_run_cli.cmdline(REPORT) if not arg.startswith("--out")]
    out = subprocess.run(cmdline, capture_output=True, text=True, timeout=300)
    print(out.stdout)
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("ceph_openstack drift report: DRIFT: 4 item(s); nodes: 4 drift")
    header = next(line for line in lines if line.startswith("NODE") and "FIX" in line)
    assert header.split() == ["NODE", "KIND", "ITEM", "WHAT", "DIFFERS", "PILLAR", "FIX"]
    rows = {tuple(line.split()[:2]): line for line in lines[lines.index(header) + 1:]
            if line.split()[:1] in (["ctl1"], ["cmp1"], ["mon1"], ["mon2"])}
    assert rows[("ctl1", "options")].endswith("salt ctl1 state.apply ceph_openstack")
    assert "ceph/rbd_pool: handmade -> volumes" in rows[("ctl1", "options")]
    assert "cinder.conf" in rows[("ctl1", "options")]
    assert "size: 2 -> 1" in rows[("mon1", "pool")]
    assert rows[("cmp1", "keyring")].endswith("salt cmp1 state.apply ceph_openstack")
    assert "ceph.client.cinder.keyring" in rows[("cmp1", "keyring")]
    assert any(line.startswith("cluster ceph (seen from mon1): health") for line in lines)
    assert any(line.startswith("client.cinder ") for line in lines)


def test_the_fix_commands_clear_the_drift(drift_run, drifted, salt_cli, salt_run_cli):
    """Each item's fix, run as it says, brings the lab back: the report is clean again and
    cinder.conf has its bytes of before the hand edit."""
    fixes = sorted({item["fix"] for item in items_of(drift_run["ret"].data).values()})
    assert fixes == [f"salt {node} state.apply ceph_openstack" for node in NODES]
    for fix in fixes:
        _, node, fun, sls = fix.split()
        ret = salt_cli.run(fun, sls, minion_tgt=node)
        assert ret.returncode == 0, ret
    ret = run_report(salt_run_cli)
    assert ret.returncode == 0, json.dumps(ret.data, indent=1)
    assert ret.data["summary"]["ok"] == NODES
    before = drift_run["before"]["files"][drifted["cinder_conf"]][0]
    with open(drifted["cinder_conf"], "rb") as handle:
        assert handle.read() == before.replace(b"rbd_pool = handmade", b"rbd_pool = volumes")
