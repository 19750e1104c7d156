"""
Key access follows the targets: with minion-ID targets (``L@...``, what the README
recommends), a compute added later reads the keys once it is in ``targets:compute`` and
the mons have run, converges with a plain highstate, and loses access when it leaves
the list. Access is asserted from outside: ``mine.get`` run as the minion itself.
"""

import hashlib
import json

import pytest

from tests.integration.conftest import start_minion
from tests.integration.test_rollout import assert_highstate_converges, orchestrate

MONS = ("mon1", "mon2")
LISTS = {"mon": "L@mon1,mon2", "controller": "L@ctl1", "compute": "L@cmp1"}
CINDER, GLANCE = "ceph_openstack_key_cinder", "ceph_openstack_key_glance"


def _targets(lab_pillar, salt_cli, **targets):
    lab_pillar.edit({"ceph_openstack": {"targets": dict(LISTS, **targets)}})
    assert salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*").returncode == 0


#: mine.get run on the minion, returning only each value's SHA-256: a key in a job's
#: return would reach the job cache and the logs (test_secrets scans them).
_DIGESTS = (
    "{%- set found = {} %}"
    "{%- for mon, value in salt['mine.get'](tgt, alias, tgt_type='compound').items() %}"
    "{%-   do found.update({mon: value | sha256}) %}"
    "{%- endfor %}{{ found | json }}"
)


def digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


def readable(salt_cli, minion, alias, tgt=LISTS["mon"]):
    """What ``minion`` reads of mine entry ``alias`` of the mons ``tgt``, through Salt's
    own ``mine.get`` as that minion: {mon: SHA-256 of the value}."""
    template = "{%- set tgt, alias = " + json.dumps([tgt, alias]) + " %}" + _DIGESTS
    ret = salt_cli.run("slsutil.renderer", f"string={template}", minion_tgt=minion)
    assert ret.returncode == 0, ret
    return ret.data


def apply_mons(salt_cli):
    """A plain state.apply on each mon; {mon: return of ceph_openstack.published}."""
    published = {}
    for mon in MONS:
        ret = salt_cli.run("state.apply", "ceph_openstack", minion_tgt=mon)
        assert ret.returncode == 0, ret.stdout
        failed = {sid: s["comment"] for sid, s in ret.data.items() if s["result"] is False}
        assert not failed, failed
        published[mon] = next(s for sid, s in ret.data.items()
                              if "_|-ceph_openstack-published_|-" in sid)
    return published


@pytest.fixture(scope="module")
def listed(salt_run_cli, salt_cli, lab_pillar):
    _targets(lab_pillar, salt_cli)
    steps, failed = orchestrate(salt_run_cli)
    try:
        yield steps, failed
    finally:
        lab_pillar.edit({})
        salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
        orchestrate(salt_run_cli)


def test_rollout_with_minion_id_targets(listed, salt_cli, ceph_lab):
    _, failed = listed
    assert not failed, failed
    key = digest(ceph_lab.ceph("auth", "get-key", "client.cinder", json_out=False).strip())
    assert readable(salt_cli, "cmp1", CINDER) == {mon: key for mon in MONS}
    assert readable(salt_cli, "cmp1", GLANCE) == {}  # glance's key is the controllers'
    assert set(readable(salt_cli, "ctl1", GLANCE)) == set(MONS)


def test_compute_added_later_converges_and_leaving_the_list_withdraws_its_keys(
    listed, salt_master, salt_cli, lab_pillar, lab_dir, ceph_lab, libvirt_lab, sandbox
):
    key = ceph_lab.ceph("auth", "get-key", "client.cinder", json_out=False).strip()
    hashed = {mon: digest(key) for mon in MONS}
    factory = start_minion(salt_master, lab_dir, "cmp3", ["compute"], ceph_lab, libvirt_lab)
    try:
        with factory.started(start_timeout=120):
            assert salt_cli.run("saltutil.sync_all", minion_tgt="cmp3").returncode == 0
            assert readable(salt_cli, "cmp3", CINDER) == {}  # not in targets:compute yet

            _targets(lab_pillar, salt_cli, compute="L@cmp1,cmp3")
            published = apply_mons(salt_cli)
            for mon, ret in published.items():
                assert ret["changes"]["published"] == [CINDER], (mon, ret)
                assert ret["changes"]["access"][CINDER]["new"].endswith("( L@cmp1,cmp3 )")
                assert key not in repr(ret)
            assert readable(salt_cli, "cmp3", CINDER) == hashed
            assert readable(salt_cli, "cmp3", GLANCE) == {}  # outside glance's rule

            assert_highstate_converges(salt_cli, "cmp3")
            keyring = sandbox("cmp3") / "etc/ceph/ceph.client.cinder.keyring"
            assert f"key = {key}" in keyring.read_text()
            assert not (sandbox("cmp3") / "etc/ceph/ceph.client.glance.keyring").exists()

            # A mon run with nothing to change publishes nothing.
            assert all(r["changes"] == {} for r in apply_mons(salt_cli).values())

            _targets(lab_pillar, salt_cli)  # cmp3 leaves targets:compute
            for mon, ret in apply_mons(salt_cli).items():
                assert ret["changes"]["access"][CINDER]["new"].endswith("( L@cmp1 )"), mon
            assert readable(salt_cli, "cmp3", CINDER) == {}
            assert readable(salt_cli, "cmp1", CINDER) == hashed
    finally:
        # A stopped minion whose key stays accepted makes every later '*' job wait.
        salt_master.salt_key_cli().run("-d", "cmp3", "-y")
