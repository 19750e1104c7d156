"""
The drift report with two Ceph clusters (pillar.example plus pillar/two_clusters.sls; mon1
serves the main cluster, mon2 the second one, dr): each cluster is seen from its own mon,
and a drift of dr (a user's caps changed with dr's ceph CLI, a dr keyring deleted on the
controller) is named with dr's pillar keys and its fix.
"""

import json

import pytest

from tests.integration.test_rollout import orchestrate

NODES = ["cmp1", "ctl1", "mon1", "mon2"]


def refresh_pillar(salt_cli):
    ret = salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
    assert ret.returncode == 0, ret


def report(salt_run_cli):
    ret = salt_run_cli.run("ceph_openstack.report")
    assert isinstance(ret.data, dict), ret.stdout + ret.stderr
    return ret


@pytest.fixture(scope="module")
def converged(salt_run_cli, salt_cli, lab_pillar):
    lab_pillar.edit({})
    refresh_pillar(salt_cli)
    assert salt_run_cli.run("saltutil.sync_all").returncode == 0
    _, failed = orchestrate(salt_run_cli)
    assert not failed, failed


def test_each_cluster_is_seen_from_its_own_mon(converged, salt_run_cli):
    ret = report(salt_run_cli)
    doc = ret.data
    assert ret.returncode == 0, json.dumps(doc, indent=1)
    assert doc["summary"]["ok"] == NODES
    assert doc["targets"]["mon"] == ["G@role:mon and not G@ceph_cluster:dr",
                                     "G@role:mon and G@ceph_cluster:dr"]
    assert {name: view["mon"] for name, view in doc["clusters"].items()} == {
        "ceph": "mon1", "dr": "mon2"}
    assert sorted(doc["clusters"]["dr"]["keys"]) == [
        "client.cinder", "client.cinder-backup", "client.glance"]


def test_a_drift_of_dr_is_named_with_drs_pillar_keys(converged, salt_run_cli, ceph_lab2,
                                                     sandbox):
    keyring = sandbox("ctl1") / "etc/ceph/dr.client.cinder.keyring"
    caps = ceph_lab2.ceph("auth", "get", "client.cinder")[0]["caps"]
    ceph_lab2.ceph("auth", "caps", "client.cinder", "mon", "profile rbd", "osd",
                   "profile rbd pool=volumes", json_out=False)
    keyring.unlink()
    try:
        ret = report(salt_run_cli)
        doc = ret.data
        print(json.dumps(doc["nodes"], indent=1))
        assert ret.returncode == 1
        found = {(item["node"], item["kind"], item["what"]): item
                 for entry in doc["nodes"].values() for item in entry["items"]}
        assert set(found) == {("mon2", "user", "client.cinder"),
                              ("ctl1", "keyring", f"{keyring} (cluster dr)")}
        user = found[("mon2", "user", "client.cinder")]
        assert (user["cluster"], user["pillar"], user["fix"]) == (
            "dr", "ceph_openstack:clusters:dr:clients:cinder",
            "salt-run state.orchestrate orch.ceph_openstack")
        assert any(line.startswith("caps") for line in user["detail"])
        dr_keyring = found[("ctl1", "keyring", f"{keyring} (cluster dr)")]
        assert dr_keyring["pillar"] == "ceph_openstack:clusters:dr:clients:cinder"
        assert dr_keyring["fix"] == "salt ctl1 state.apply ceph_openstack"
        # the fix the report gives for the user
        _, failed = orchestrate(salt_run_cli)
        assert not failed, failed
        assert report(salt_run_cli).returncode == 0
        assert ceph_lab2.ceph("auth", "get", "client.cinder")[0]["caps"] == caps
    finally:
        if not keyring.exists():
            orchestrate(salt_run_cli)
