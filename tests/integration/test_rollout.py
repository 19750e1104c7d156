"""
The orchestrated rollout through a real master, asserted from outside: the
ceph CLI, libvirt, and the files in each minion's sandbox root.
"""

import os
import pwd
import stat

import pytest
import yaml

from lab.salt import PROJECT
from tests.support import oslo_check

ORCH = "orch.ceph_openstack"
EXAMPLE = yaml.safe_load(open(os.path.join(PROJECT, "pillar.example")))["ceph_openstack"]
SECRET_UUID = EXAMPLE["libvirt"]["secrets"]["cinder"]["uuid"]


def orch_steps(ret):
    """{step id: (result, comment, {minion: {state id: state return}})} of an orchestration."""
    data = ret.data
    if isinstance(data, dict) and "data" in data:
        data = data["data"]
    if isinstance(data, dict) and len(data) == 1:
        data = next(iter(data.values()))
    steps = {}
    for key, step in data.items():
        minions = (step.get("changes") or {}).get("ret") or {}
        states = {
            minion: {
                sid.split("_|-")[1]: sret for sid, sret in rets.items()
                if isinstance(sret, dict) and "result" in sret
            }
            for minion, rets in minions.items() if isinstance(rets, dict)
        }
        steps[key.split("_|-")[1]] = (step["result"], step.get("comment"), states)
    return steps


def changed(steps):
    """{(minion, state id): changes} of every state that changed (or would change)."""
    return {
        (minion, sid): sret["changes"]
        for _, _, minions in steps.values()
        for minion, states in minions.items()
        for sid, sret in states.items() if sret.get("changes")
    }


MONS = ("mon1", "mon2")


def by_state(changes):
    """{(minion, state id): names of what changed}, with the mons' states merged under
    "mons": the mon part runs on every mon at once, and which of them changes a pool or a
    user first is a race (the other then finds it done)."""
    merged = {}
    for (minion, sid), change in changes.items():
        merged.setdefault(("mons" if minion in MONS else minion, sid), set()).update(change)
    return merged


def orchestrate(salt_run_cli, test=False):
    args = ["state.orchestrate", ORCH] + (["test=True"] if test else [])
    ret = salt_run_cli.run(*args)
    steps = orch_steps(ret)
    failed = {k: v[1] for k, v in steps.items() if v[0] is False}
    return steps, failed


def snapshot(ceph_lab, libvirt_lab, sandbox):
    """Everything a run may change, seen from outside: Ceph, libvirt and file bytes."""
    files = {}
    for minion in ("mon1", "ctl1", "cmp1"):
        root = sandbox(minion)
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as handle:
                    files[path] = handle.read()
    pools = ceph_lab.ceph("osd", "pool", "ls", "detail")
    return {
        "pools": {p["pool_name"]: (p["pg_num"], p["application_metadata"]) for p in pools},
        "auth": ceph_lab.ceph("auth", "ls")["auth_dump"],
        "secrets": libvirt_lab.virsh("secret-list"),
        "files": files,
    }


@pytest.fixture(scope="module")
def first_rollout(salt_run_cli, salt_cli, lab_pillar):
    lab_pillar.edit({})
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
    return orchestrate(salt_run_cli)


def test_first_rollout_converges_and_verifies(first_rollout):
    steps, failed = first_rollout
    assert not failed, failed
    assert list(steps) == [
        "ceph_openstack-sync", "ceph_openstack-validate", "ceph_openstack-mon",
        "ceph_openstack-controllers", "ceph_openstack-computes", "ceph_openstack-verify",
    ]
    assert steps["ceph_openstack-verify"][0] is True


def test_pools_exist_with_rbd_application(first_rollout, ceph_lab):
    pools = {p["pool_name"]: p for p in ceph_lab.ceph("osd", "pool", "ls", "detail")}
    for name, props in EXAMPLE["pools"].items():
        assert name in pools
        assert "rbd" in pools[name]["application_metadata"]
        assert pools[name]["pg_num"] == props["pg_num"]
        # rbd pool init wrote the rbd_info object
        info = ceph_lab.rbd("pool", "stats", name)
        assert "Total Images" in info


def test_users_have_exact_caps(first_rollout, ceph_lab):
    for client, spec in EXAMPLE["clients"].items():
        entry = ceph_lab.ceph("auth", "get", f"client.{client}")[0]
        caps = {k: ", ".join(sorted(g.strip() for g in v.split(","))) for k, v in entry["caps"].items()}
        want = {k: ", ".join(sorted(g.strip() for g in v.split(","))) for k, v in spec["caps"].items()}
        assert caps == want


def test_keyrings_mode_owner_and_key(first_rollout, ceph_lab, sandbox):
    nobody = pwd.getpwnam("nobody").pw_uid
    expected = {"ctl1": ["cinder", "glance", "cinder-backup"], "cmp1": ["cinder"]}
    for minion, clients in expected.items():
        for client in clients:
            path = sandbox(minion) / f"etc/ceph/ceph.client.{client}.keyring"
            st = path.stat()
            assert stat.S_IMODE(st.st_mode) == 0o640, path
            assert st.st_uid == nobody, path
            key = ceph_lab.ceph("auth", "get-key", f"client.{client}", json_out=False).strip()
            assert f"key = {key}" in path.read_text()
    # the admin keyring never leaves the mons
    for minion in ("ctl1", "cmp1"):
        assert not (sandbox(minion) / "etc/ceph/ceph.client.admin.keyring").exists()
    # glance's key does not reach the compute
    assert not (sandbox("cmp1") / "etc/ceph/ceph.client.glance.keyring").exists()


def test_libvirt_secret_holds_cinder_key(first_rollout, ceph_lab, libvirt_lab):
    key = ceph_lab.ceph("auth", "get-key", "client.cinder", json_out=False).strip()
    assert libvirt_lab.virsh("secret-get-value", SECRET_UUID).strip() == key
    assert "client.cinder secret" in libvirt_lab.virsh("secret-list")


def test_ceph_conf_names_the_cluster(first_rollout, ceph_lab, sandbox):
    for minion in ("ctl1", "cmp1"):
        conf = sandbox(minion) / "etc/ceph/ceph.conf"
        text = conf.read_text()
        assert f"fsid = {ceph_lab.fsid}" in text
        assert f"mon host = {ceph_lab.mon_host}" in text
        assert stat.S_IMODE(conf.stat().st_mode) == 0o644
    assert "rbd cache = true" in (sandbox("cmp1") / "etc/ceph/ceph.conf").read_text()


@pytest.mark.parametrize("minion, relpath, service", [
    ("ctl1", "etc/cinder/cinder.conf", "cinder"),
    ("ctl1", "etc/glance/glance-api.conf", "glance-api"),
    ("cmp1", "etc/nova/nova.conf", "nova"),
])
def test_rendered_configs_pass_the_option_check(first_rollout, sandbox, minion, relpath, service):
    problems = oslo_check.check_file(str(sandbox(minion) / relpath), service)
    assert problems == []


def test_single_store_glance_options_are_removed(first_rollout, sandbox):
    glance = (sandbox("ctl1") / "etc/glance/glance-api.conf").read_text()
    assert "stores = " not in glance and "default_store = " not in glance
    assert "filesystem_store_datadir = /var/lib/glance/images/" in glance  # not ours: kept


@pytest.mark.parametrize("minion, service, watched", [
    ("ctl1", "ceph_openstack-service-cinder_volume", "ceph_openstack-cinder-conf"),
    ("ctl1", "ceph_openstack-service-glance_api", "ceph_openstack-glance-single-store-options"),
    ("cmp1", "ceph_openstack-service-nova_compute", "ceph_openstack-nova-conf"),
])
def test_services_restart_when_their_files_change(salt_cli, minion, service, watched):
    # The lab has no init system, so this checks the rendered state, not a restart.
    ret = salt_cli.run("state.show_sls", "ceph_openstack",
                       'pillar={"ceph_openstack": {"services": {"restart": true}}}',
                       minion_tgt=minion)
    state = ret.data[service]["ceph_openstack"]
    assert "service_running" in state  # restarts, then checks the unit stayed up
    watches = [next(iter(w.values())) for item in state if isinstance(item, dict)
               for w in item.get("watch", [])]
    assert watched in watches
    assert "ceph_openstack-ceph-conf" in watches
    assert any(w.startswith("ceph_openstack-keyring-") for w in watches)


def test_stock_lines_are_kept(first_rollout, sandbox):
    nova = (sandbox("cmp1") / "etc/nova/nova.conf").read_text()
    assert nova.count("device_spec = ") == 2  # oslo multi-valued option untouched
    assert "#images_type = default\nimages_type = rbd" in nova
    assert "password = NOVA_PASS" in nova


def test_second_rollout_changes_nothing(first_rollout, salt_run_cli, ceph_lab, libvirt_lab, sandbox):
    before = snapshot(ceph_lab, libvirt_lab, sandbox)
    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert changed(steps) == {}
    assert snapshot(ceph_lab, libvirt_lab, sandbox) == before


@pytest.mark.release_independent  # Salt's test=True through the orchestration
def test_dry_run_predicts_a_pillar_change_and_changes_nothing(
    first_rollout, salt_run_cli, salt_cli, lab_pillar, ceph_lab, libvirt_lab, sandbox
):
    new_uuid = "0b1e5c4d-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
    edit = {"ceph_openstack": {
        "pools": {"metrics": {"pg_num": 8}},
        "cinder": {"backends": {"ceph": {"options": {"rbd_max_clone_depth": 7}}}},
        "clients": {"glance": {"caps": {"osd": "profile rbd pool=images, profile rbd pool=metrics"}}},
        "libvirt": {"secrets": {"cinder": {"uuid": new_uuid}}},
    }}
    lab_pillar.edit(edit)
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
    try:
        before = snapshot(ceph_lab, libvirt_lab, sandbox)
        predicted_steps, failed = orchestrate(salt_run_cli, test=True)
        assert not failed, failed
        assert snapshot(ceph_lab, libvirt_lab, sandbox) == before
        predicted = changed(predicted_steps)
        assert ("mon1", "ceph_openstack-pool-metrics") in predicted
        assert ("mon1", "ceph_openstack-client-glance") in predicted
        assert ("ctl1", "ceph_openstack-cinder-conf") in predicted
        assert ("cmp1", "ceph_openstack-nova-conf") in predicted
        assert predicted[("cmp1", "ceph_openstack-libvirt-secret-cinder")] == {
            "replaced": {"old": SECRET_UUID, "new": new_uuid},
            "defined": {"old": None, "new": new_uuid},
            "value": {"old": None, "new": "set"},
        }

        real_steps, failed = orchestrate(salt_run_cli)
        assert not failed, failed
        real = changed(real_steps)
        assert by_state(real) == by_state(predicted)
        assert "metrics" in ceph_lab.ceph("osd", "pool", "ls")
        cinder_conf = (sandbox("ctl1") / "etc/cinder/cinder.conf").read_text()
        assert "rbd_max_clone_depth = 7" in cinder_conf
        assert f"rbd_secret_uuid = {new_uuid}" in cinder_conf
        nova_conf = (sandbox("cmp1") / "etc/nova/nova.conf").read_text()
        assert f"rbd_secret_uuid = {new_uuid}" in nova_conf
        secrets = libvirt_lab.virsh("secret-list")
        assert new_uuid in secrets and SECRET_UUID not in secrets
        key = ceph_lab.ceph("auth", "get-key", "client.cinder", json_out=False).strip()
        assert libvirt_lab.virsh("secret-get-value", new_uuid).strip() == key
    finally:
        lab_pillar.edit({})
        salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
        _, failed = orchestrate(salt_run_cli)
    assert not failed, failed  # and back: the example UUID replaces the new one
    assert SECRET_UUID in libvirt_lab.virsh("secret-list")



def assert_highstate_converges(salt_cli, minion):
    """A plain ``state.highstate`` on ``minion`` fails no state, and the node verifies."""
    ret = salt_cli.run("state.highstate", minion_tgt=minion)
    assert ret.returncode == 0, ret.stdout
    failed = [s["comment"] for s in ret.data.values() if s["result"] is False]
    assert not failed
    verify = salt_cli.run("ceph_openstack.verify", minion_tgt=minion).data
    assert verify["ok"], verify


@pytest.mark.release_independent  # a minion's own highstate, as on the first run
def test_new_compute_highstate_after_rollout(
    first_rollout, salt_master, salt_cli, lab_dir, ceph_lab, libvirt_lab, sandbox
):
    from tests.integration.conftest import start_minion

    mon_before = (ceph_lab.ceph("osd", "pool", "ls", "detail"), ceph_lab.ceph("auth", "ls"))
    factory = start_minion(salt_master, lab_dir, "cmp2", ["compute"], ceph_lab, libvirt_lab)
    try:
        with factory.started(start_timeout=120):
            assert salt_cli.run("saltutil.sync_all", minion_tgt="cmp2").returncode == 0
            assert_highstate_converges(salt_cli, "cmp2")
    finally:
        # A stopped minion whose key stays accepted makes every later '*' or grain-targeted
        # job wait for its timeout.
        salt_master.salt_key_cli().run("-d", "cmp2", "-y")
    keyring = sandbox("cmp2") / "etc/ceph/ceph.client.cinder.keyring"
    key = ceph_lab.ceph("auth", "get-key", "client.cinder", json_out=False).strip()
    assert f"key = {key}" in keyring.read_text()
    assert "images_type = rbd" in (sandbox("cmp2") / "etc/nova/nova.conf").read_text()
    assert (ceph_lab.ceph("osd", "pool", "ls", "detail"), ceph_lab.ceph("auth", "ls")) == mon_before
