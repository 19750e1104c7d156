"""
Two mons on the same cluster (mon1, mon2): the orchestration's mon step applies the
mon part on one after the other. Each pool and cephx user is created once, by one of them,
without a failed state; both publish the same keys; a client taken out of the pillar
has its key withdrawn from both. Seen from outside: Ceph, and mine.get as a minion.
"""

import uuid

import pytest

from tests.integration.test_key_access import digest, readable
from tests.integration.test_rollout import orchestrate

MONS = ("mon1", "mon2")
TAG = uuid.uuid4().hex[:6]
POOLS = [f"race-{TAG}-{n}" for n in range(3)]
CLIENTS = {
    f"race-{TAG}-{n}": {"caps": {"mon": "profile rbd", "osd": f"profile rbd pool={pool}"},
                        "roles": ["mon"]}  # no keyring on any OpenStack node
    for n, pool in enumerate(POOLS)
}


def _refresh(salt_cli):
    assert salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*").returncode == 0


def _published(salt_cli, client, minion="mon1"):
    """{mon: SHA-256 of client.<client>'s key} as ``minion`` reads the mons' mine."""
    return readable(salt_cli, minion, f"ceph_openstack_key_{client}", tgt="L@mon1,mon2")


@pytest.fixture(scope="module")
def both_mons(salt_run_cli, salt_cli, lab_pillar, ceph_lab):
    assert not set(POOLS) & set(ceph_lab.ceph("osd", "pool", "ls"))
    lab_pillar.edit({"ceph_openstack": {"pools": {pool: {"pg_num": 8} for pool in POOLS},
                                        "clients": CLIENTS}})
    _refresh(salt_cli)
    try:
        yield orchestrate(salt_run_cli)
    finally:
        lab_pillar.edit({})
        _refresh(salt_cli)
        for pool in POOLS:
            ceph_lab.ceph("osd", "pool", "delete", pool, pool, "--yes-i-really-really-mean-it",
                          json_out=False, check=False)
        for client in CLIENTS:
            ceph_lab.ceph("auth", "del", f"client.{client}", json_out=False, check=False)
        orchestrate(salt_run_cli)


def test_mon_step_ran_on_both_without_a_failure(both_mons):
    steps, failed = both_mons
    assert not failed, failed
    assert set(steps["ceph_openstack-mon"][2]) == set(MONS)


def test_each_pool_and_user_is_created_once(both_mons, ceph_lab):
    steps, _ = both_mons
    mon_step = steps["ceph_openstack-mon"][2]
    for pool in POOLS:
        creators = [mon for mon in MONS
                    if "pool" in mon_step[mon][f"ceph_openstack-pool-{pool}"]["changes"]]
        assert len(creators) == 1, (pool, {m: mon_step[m][f"ceph_openstack-pool-{pool}"]
                                           for m in MONS})
    for client, spec in CLIENTS.items():
        creators = [mon for mon in MONS
                    if "entity" in mon_step[mon][f"ceph_openstack-client-{client}"]["changes"]]
        assert len(creators) == 1, client
        caps = ceph_lab.ceph("auth", "get", f"client.{client}")[0]["caps"]
        assert caps == spec["caps"]
    pools = {p["pool_name"]: p for p in ceph_lab.ceph("osd", "pool", "ls", "detail")}
    for pool in POOLS:
        assert "rbd" in pools[pool]["application_metadata"] and pools[pool]["pg_num"] == 8


def test_both_mons_publish_the_same_keys(both_mons, salt_cli, ceph_lab):
    for client in list(CLIENTS) + ["cinder"]:
        key = ceph_lab.ceph("auth", "get-key", f"client.{client}", json_out=False).strip()
        assert _published(salt_cli, client) == {mon: digest(key) for mon in MONS}, client
    cinder = ceph_lab.ceph("auth", "get-key", "client.cinder", json_out=False).strip()
    assert _published(salt_cli, "cinder", "cmp1") == {mon: digest(cinder) for mon in MONS}
    assert _published(salt_cli, next(iter(CLIENTS)), "cmp1") == {}  # the mons' only


def test_a_client_taken_out_of_the_pillar_is_withdrawn_from_both(
    both_mons, salt_run_cli, salt_cli, lab_pillar
):
    gone = next(iter(CLIENTS))
    lab_pillar.edit({"ceph_openstack": {"pools": {pool: {"pg_num": 8} for pool in POOLS},
                                        "clients": {c: s for c, s in CLIENTS.items()
                                                    if c != gone}}})
    _refresh(salt_cli)
    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    for mon in MONS:
        published = steps["ceph_openstack-mon"][2][mon]["ceph_openstack-published"]
        assert published["changes"] == {"withdrawn": [f"ceph_openstack_key_{gone}"]}, mon
    assert _published(salt_cli, gone) == {}
    assert set(_published(salt_cli, list(CLIENTS)[1])) == set(MONS)
