"""
Two Ceph clusters from one pillar (issue 22), through a real master: the main cluster
(``ceph_lab``, mon1) and ``dr`` (``ceph_lab2``, mon2), with the project's
pillar/two_clusters.sls (dr: volumes, backups, images; clients cinder, cinder-backup,
glance; Cinder backend ceph-dr, the backup and a Glance store on dr, a libvirt secret
cinder-dr; Nova stays on the main cluster).

Everything is asserted from outside: each cluster's own ceph/rbd CLI, cephx logins with
the keyrings the formula wrote, file bytes in the sandbox roots, virsh, the master's mine
and a real glance-api.
"""

import configparser
import hashlib
import json
import os
import subprocess

import pytest
import requests
import yaml

from lab import openstack
from lab.ceph import client_conf
from lab.glance import GlanceLab, unsupported
from lab.salt import PROJECT
from tests.integration.test_faults import failed_states, refresh_pillar
from tests.integration.test_key_access import digest, readable
from tests.integration.test_rollout import SECRET_UUID, changed, orchestrate, snapshot
from tests.integration.test_rotation import key_of, rotate
from tests.integration.two_clusters.conftest import DR_SECRET_UUID, TWO_CLUSTERS
from tests.support.argv_recorder import find_secret

MAIN = yaml.safe_load(open(os.path.join(PROJECT, "pillar.example")))["ceph_openstack"]
DR = TWO_CLUSTERS["clusters"]["dr"]
MINIONS = ("mon1", "mon2", "ctl1", "cmp1")
#: The clients whose keyrings each OpenStack node holds, per cluster (their roles).
HELD = {
    "ctl1": {"ceph": ["cinder", "cinder-backup", "glance"],
             "dr": ["cinder", "cinder-backup", "glance"]},
    "cmp1": {"ceph": ["cinder"], "dr": ["cinder"]},
}
#: The pool each client reads in the lab pillar (what its caps allow).
POOL_OF = {"cinder": "volumes", "cinder-backup": "backups", "glance": "images"}
OPENSTACK_CONFS = {"ctl1": ["etc/cinder/cinder.conf", "etc/glance/glance-api.conf"],
                   "cmp1": ["etc/nova/nova.conf"]}


def _caps(caps):
    """Caps with each grant list in a canonical order (Ceph keeps the given order)."""
    return {kind: ", ".join(sorted(g.strip() for g in grants.split(",")))
            for kind, grants in caps.items()}


def _ini(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(path)
    return parser


def _clusters(ceph_lab, ceph_lab2):
    """{pillar cluster name: the lab cluster that serves it}."""
    return {"ceph": ceph_lab, "dr": ceph_lab2}


def _all_keys(cluster):
    """Every cephx key the cluster knows ({entity: key}), daemons' and admin's included."""
    return {e["entity"]: e["key"] for e in cluster.ceph("auth", "ls")["auth_dump"]}


def _keyring(sandbox, minion, cluster, client):
    return sandbox(minion) / f"etc/ceph/{cluster}.client.{client}.keyring"


def _key_in(path):
    return path.read_text().split("key = ", 1)[1].split()[0]


def _login_conf(sandbox, minion, cluster, client, directory):
    """A copy of ``minion``'s ``<cluster>.conf`` naming its ``<cluster>.client.<client>``
    keyring in the sandbox (the formula's files name /etc/ceph, the lab's lie elsewhere)."""
    root = sandbox(minion)
    dest = os.path.join(directory, f"{minion}-{cluster}-{client}.conf")
    return client_conf(str(root / f"etc/ceph/{cluster}.conf"), client,
                       str(_keyring(sandbox, minion, cluster, client)), dest)


def _rbd_ls(cluster, conf, client, pool):
    """``rbd ls --pool <pool>`` as client.<client> with ``conf``: a real cephx login."""
    return subprocess.run([cluster.tool("rbd"), "--conf", conf, "--id", client,
                           "--client_mount_timeout", "10", "ls", "--pool", pool],
                          capture_output=True, text=True, timeout=60)


def _snapshot(ceph_lab, ceph_lab2, libvirt_lab, sandbox):
    """test_rollout's snapshot (main cluster, libvirt, mon1/ctl1/cmp1's files) plus dr's
    pools and users and mon2's files."""
    state = snapshot(ceph_lab, libvirt_lab, sandbox)
    state["dr pools"] = {p["pool_name"]: (p["pg_num"], p["application_metadata"])
                         for p in ceph_lab2.ceph("osd", "pool", "ls", "detail")}
    state["dr auth"] = ceph_lab2.ceph("auth", "ls")["auth_dump"]
    for dirpath, _, names in os.walk(sandbox("mon2")):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                state["files"][path] = handle.read()
    return state


def _ran_on(steps, step):
    """The mons an orchestration step ran on (its comment names them; its states are there
    only when something changed)."""
    _, comment, states = steps[step]
    return {mon for mon in ("mon1", "mon2") if mon in str(comment) or mon in states}


@pytest.fixture(scope="module")
def rollout(salt_run_cli, salt_cli, lab_pillar):
    """The orchestrated rollout with both clusters in pillar: no step failed."""
    lab_pillar.edit({})
    refresh_pillar(salt_cli)
    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert _ran_on(steps, "ceph_openstack-mon") == {"mon1", "mon2"}
    return steps


def test_each_cluster_has_its_own_pools_and_users_with_the_pillars_caps(
        rollout, ceph_lab, ceph_lab2):
    """dr holds exactly dr's pools (no vms) and, besides admin and its daemons, exactly
    dr's users, with dr's caps; the main cluster holds the main pillar's pools and users."""
    for cluster, spec in ((ceph_lab, MAIN), (ceph_lab2, DR)):
        pools = {p["pool_name"]: p for p in cluster.ceph("osd", "pool", "ls", "detail")}
        for name, props in spec["pools"].items():
            assert name in pools, (cluster.dir, name)
            assert "rbd" in pools[name]["application_metadata"], (cluster.dir, name)
            assert pools[name]["pg_num"] == props["pg_num"], (cluster.dir, name)
        for client, wanted in spec["clients"].items():
            entry = cluster.ceph("auth", "get", f"client.{client}")[0]
            assert _caps(entry["caps"]) == _caps(wanted["caps"]), (cluster.dir, client)
    # dr: nothing else. (The main cluster is the session's: other packages may leave
    # pools of their own on it.)
    dr_pools = {p["pool_name"] for p in ceph_lab2.ceph("osd", "pool", "ls", "detail")}
    ceph_own = {"device_health_metrics", ".mgr"}
    assert dr_pools - ceph_own == set(DR["pools"]) == {"volumes", "backups", "images"}
    assert "vms" not in dr_pools and "vms" in {p["pool_name"] for p in ceph_lab.ceph(
        "osd", "pool", "ls", "detail")}
    entities = {e["entity"] for e in ceph_lab2.ceph("auth", "ls")["auth_dump"]}
    users = {e for e in entities if e.startswith("client.")
             and e != "client.admin" and not e.startswith("client.bootstrap-")}
    assert users == {f"client.{c}" for c in DR["clients"]}
    assert all(e.split(".")[0] in ("client", "mon", "mgr", "osd") for e in entities), entities


def test_each_keyring_holds_its_own_clusters_key_and_no_file_the_others(
        rollout, ceph_lab, ceph_lab2, sandbox):
    """ceph.client.X keyrings hold the main cluster's key, dr.client.X ones dr's; the two
    clusters' keys differ; no file of one cluster under any etc/ceph holds a key of the
    other, and no OpenStack conf holds any key."""
    clusters = _clusters(ceph_lab, ceph_lab2)
    for minion, held in HELD.items():
        for name, clients in held.items():
            for client in clients:
                path = _keyring(sandbox, minion, name, client)
                assert _key_in(path) == key_of(clusters[name], client), path
        assert sorted(p.name for p in (sandbox(minion) / "etc/ceph").glob("*.keyring")) == \
            sorted(f"{n}.client.{c}.keyring" for n, cs in held.items() for c in cs), minion
    for client in DR["clients"]:
        assert key_of(ceph_lab, client) != key_of(ceph_lab2, client), client
    keys = {name: _all_keys(cluster) for name, cluster in clusters.items()}
    found = []
    for minion in MINIONS:
        for path in sorted((sandbox(minion) / "etc/ceph").iterdir()):
            own = path.name.split(".", 1)[0]
            assert own in keys, path  # every file there is of one of the two clusters
            for other in set(keys) - {own}:
                for entity, key in keys[other].items():
                    if find_secret(key, path):
                        found.append((str(path), f"{other} {entity}"))
        for relpath in OPENSTACK_CONFS.get(minion, []):
            for name in keys:
                for entity, key in keys[name].items():
                    if find_secret(key, sandbox(minion) / relpath):
                        found.append((relpath, f"{name} {entity}"))
    assert found == []


def test_dr_conf_names_drs_cluster_and_keyrings_and_the_services_use_it(
        rollout, ceph_lab, ceph_lab2, sandbox):
    """dr.conf carries dr's fsid and mon host and [client] keyring =
    /etc/ceph/dr.$name.keyring; ceph.conf the main one's (no keyring line); cinder.conf's
    ceph-dr backend and the backup, and glance-api.conf's dr store name /etc/ceph/dr.conf;
    Nova stays on the main cluster."""
    for minion in ("ctl1", "cmp1"):
        dr = _ini(sandbox(minion) / "etc/ceph/dr.conf")
        assert dr["global"]["fsid"] == ceph_lab2.fsid, minion
        assert dr["global"]["mon host"] == ceph_lab2.mon_host, minion
        assert dr["client"]["keyring"] == "/etc/ceph/dr.$name.keyring", minion
        main = _ini(sandbox(minion) / "etc/ceph/ceph.conf")
        assert main["global"]["fsid"] == ceph_lab.fsid, minion
        assert main["global"]["mon host"] == ceph_lab.mon_host, minion
        assert "keyring" not in (sandbox(minion) / "etc/ceph/ceph.conf").read_text(), minion
    assert ceph_lab.fsid != ceph_lab2.fsid

    cinder = _ini(sandbox("ctl1") / "etc/cinder/cinder.conf")
    backends = [b.strip() for b in cinder["DEFAULT"]["enabled_backends"].split(",")]
    assert sorted(backends) == ["ceph", "ceph-dr"]
    ceph_dr = cinder["ceph-dr"]
    assert (ceph_dr["rbd_ceph_conf"], ceph_dr["rbd_cluster_name"], ceph_dr["rbd_pool"],
            ceph_dr["rbd_user"], ceph_dr["rbd_secret_uuid"]) == (
        "/etc/ceph/dr.conf", "dr", "volumes", "cinder", DR_SECRET_UUID)
    assert cinder["ceph"].get("rbd_ceph_conf", "/etc/ceph/ceph.conf") == "/etc/ceph/ceph.conf"
    assert cinder["ceph"]["rbd_secret_uuid"] == SECRET_UUID
    default = cinder["DEFAULT"]
    assert (default["backup_ceph_conf"], default["backup_ceph_user"],
            default["backup_ceph_pool"]) == ("/etc/ceph/dr.conf", "cinder-backup", "backups")

    glance = _ini(sandbox("ctl1") / "etc/glance/glance-api.conf")
    stores = [s.strip() for s in glance["DEFAULT"]["enabled_backends"].split(",")]
    assert stores == ["ceph:rbd", "dr:rbd"]
    assert glance["glance_store"]["default_backend"] == "ceph"
    assert (glance["dr"]["rbd_store_ceph_conf"], glance["dr"]["rbd_store_pool"],
            glance["dr"]["rbd_store_user"]) == ("/etc/ceph/dr.conf", "images", "glance")
    assert glance["ceph"].get("rbd_store_ceph_conf",
                              "/etc/ceph/ceph.conf") == "/etc/ceph/ceph.conf"

    nova = _ini(sandbox("cmp1") / "etc/nova/nova.conf")["libvirt"]
    assert nova.get("images_rbd_ceph_conf", "/etc/ceph/ceph.conf") == "/etc/ceph/ceph.conf"
    assert nova["rbd_secret_uuid"] == SECRET_UUID


def test_each_keyring_logs_in_to_its_own_cluster_only(
        rollout, ceph_lab, ceph_lab2, sandbox, tmp_path):
    """A real cephx login (rbd ls of the client's pool) with every keyring the formula
    wrote, against its own cluster: it works; the same keyring against the other cluster
    is refused (the dr keyring does not log in to the main cluster, nor the reverse)."""
    clusters = _clusters(ceph_lab, ceph_lab2)
    refused = []
    for minion, held in HELD.items():
        for name, clients in held.items():
            other = "dr" if name == "ceph" else "ceph"
            for client in clients:
                own = _login_conf(sandbox, minion, name, client, str(tmp_path))
                out = _rbd_ls(clusters[name], own, client, POOL_OF[client])
                assert out.returncode == 0, (minion, name, client, out.stderr)
                # The other cluster's conf, naming this keyring.
                cross = client_conf(str(sandbox(minion) / f"etc/ceph/{other}.conf"), client,
                                    str(_keyring(sandbox, minion, name, client)),
                                    str(tmp_path / f"{minion}-{name}-{client}-on-{other}.conf"))
                out = _rbd_ls(clusters[other], cross, client, POOL_OF[client])
                if out.returncode == 0:
                    refused.append((minion, f"{name}.client.{client}.keyring", other))
    assert refused == []
    # And the plainest form, for the compute's volume user: the lab's own login check.
    dr_keyring = _keyring(sandbox, "cmp1", "dr", "cinder")
    assert ceph_lab2.logs_in("client.cinder", dr_keyring)
    assert not ceph_lab.logs_in("client.cinder", dr_keyring)
    assert ceph_lab.logs_in("client.cinder", _keyring(sandbox, "cmp1", "ceph", "cinder"))


def test_compute_has_a_secret_per_cluster_with_its_own_key_and_usage(
        rollout, ceph_lab, ceph_lab2, libvirt_lab):
    """cmp1's secret 0b7c... holds dr's client.cinder key with usage 'dr.client.cinder
    secret'; the main secret 691c... keeps the main key and its usage."""
    assert libvirt_lab.virsh("secret-get-value", DR_SECRET_UUID).strip() == \
        key_of(ceph_lab2, "cinder")
    assert libvirt_lab.virsh("secret-get-value", SECRET_UUID).strip() == \
        key_of(ceph_lab, "cinder")
    dr_xml = libvirt_lab.virsh("secret-dumpxml", DR_SECRET_UUID)
    assert "<usage type='ceph'>" in dr_xml
    assert "<name>dr.client.cinder secret</name>" in dr_xml
    main_xml = libvirt_lab.virsh("secret-dumpxml", SECRET_UUID)
    assert "<name>client.cinder secret</name>" in main_xml


def _mine_aliases(salt_master, minion):
    """The aliases of ``minion``'s mine entries in the master's cache (never the values)."""
    import salt.cache

    cache = salt.cache.factory(salt_master.config)
    data = cache.fetch("mine", minion)  # Salt 3008
    if not data:
        data = cache.fetch(f"minions/{minion}", "mine")  # Salt 3006
    return set(data or {})


#: mine.get run on a minion, returning the values (cluster facts: no secret in them).
_VALUES = ("{{ salt['mine.get'](tgt, alias, tgt_type='compound') | json }}")


def test_each_mon_publishes_its_own_clusters_mine_entries(
        rollout, salt_master, salt_cli, ceph_lab, ceph_lab2):
    """mon2 published ceph_openstack_key_cinder@dr (dr's key) and ceph_openstack_cluster@dr
    (dr's fsid); mon1 published the main entries and no @dr entry; mon2 no main entry."""
    mons = "L@mon1,mon2"
    assert readable(salt_cli, "cmp1", "ceph_openstack_key_cinder@dr", tgt=mons) == {
        "mon2": digest(key_of(ceph_lab2, "cinder"))}
    assert readable(salt_cli, "cmp1", "ceph_openstack_key_cinder", tgt=mons) == {
        "mon1": digest(key_of(ceph_lab, "cinder"))}
    for alias, cluster, mon in (("ceph_openstack_cluster@dr", ceph_lab2, "mon2"),
                                ("ceph_openstack_cluster", ceph_lab, "mon1")):
        template = "{%- set tgt, alias = " + json.dumps([mons, alias]) + " %}" + _VALUES
        ret = salt_cli.run("slsutil.renderer", f"string={template}", minion_tgt="ctl1")
        assert ret.returncode == 0, ret
        found = json.loads(ret.data) if isinstance(ret.data, str) else ret.data
        assert list(found) == [mon], (alias, found)
        assert cluster.fsid in json.dumps(found[mon]), (alias, found)
    # Every entry each mon published: the facts, the access record and each client's key
    # of its own cluster, nothing of the other.
    main = {"ceph_openstack_cluster", "ceph_openstack_access"} | {
        f"ceph_openstack_key_{client}" for client in MAIN["clients"]}
    assert _mine_aliases(salt_master, "mon1") == main
    assert _mine_aliases(salt_master, "mon2") == {
        "ceph_openstack_cluster@dr", "ceph_openstack_access@dr"} | {
        f"ceph_openstack_key_{client}@dr" for client in DR["clients"]}


def test_verify_is_ok_and_checks_the_dr_users(rollout, salt_cli):
    """ceph_openstack.verify is ok on ctl1 and cmp1; ctl1's checks log in as each dr user
    of cinder.conf and glance-api.conf on dr (labels '... of cluster dr'), cmp1's check the
    dr backend's secret."""
    ret = salt_cli.run("ceph_openstack.verify", minion_tgt="*")
    assert ret.returncode == 0, ret.stdout
    reports = ret.data
    for minion in ("ctl1", "cmp1"):
        assert reports[minion]["ok"] is True, reports[minion]
    dr_checks = {label.split(": ", 1)[1]: result
                 for label, result in reports["ctl1"]["checks"].items()
                 if label.endswith(" of cluster dr")}
    assert dr_checks == {
        "client.cinder on pool volumes of cluster dr": "ok",
        "client.cinder-backup on pool backups of cluster dr": "ok",
        "client.glance on pool images of cluster dr": "ok",
    }
    # Nova's disks are on the main cluster: the compute's checks name its user and secret.
    cmp1 = reports["cmp1"]["checks"]
    assert any(label.endswith("client.cinder on pool vms") for label in cmp1), cmp1
    assert any(label.endswith(f"libvirt secret {SECRET_UUID}") for label in cmp1), cmp1
    # And the secret of Cinder's dr backend, with its client's keyring logging in to dr.
    assert cmp1[f"libvirt secret {DR_SECRET_UUID} of client.cinder of cluster dr"] == "ok"


def test_verify_on_the_compute_sees_a_wrong_key_in_the_dr_secret(
        rollout, salt_cli, ceph_lab, ceph_lab2, libvirt_lab, tmp_path):
    """cmp1 holds dr's secret for the ceph-dr backend (Cinder hands Nova its UUID at
    attach time). With the main cluster's key in it, an attach of a dr volume would fail:
    cmp1's verify must say so, naming the secret."""
    value = tmp_path / "value"
    value.write_text(key_of(ceph_lab, "cinder"))  # base64, as virsh reads it
    libvirt_lab.virsh("secret-set-value", DR_SECRET_UUID, "--file", str(value))
    try:
        report = salt_cli.run("ceph_openstack.verify", minion_tgt="cmp1").data
        problems = {label: result for label, result in report["checks"].items()
                    if result != "ok"}
        assert report["ok"] is False, report
        assert any(DR_SECRET_UUID in label or DR_SECRET_UUID in result
                   for label, result in problems.items()), report
    finally:
        value.write_text(key_of(ceph_lab2, "cinder"))
        libvirt_lab.virsh("secret-set-value", DR_SECRET_UUID, "--file", str(value))
        value.unlink()
    assert libvirt_lab.virsh("secret-get-value", DR_SECRET_UUID).strip() == \
        key_of(ceph_lab2, "cinder")


def test_second_rollout_changes_nothing(rollout, salt_run_cli, ceph_lab, ceph_lab2,
                                        libvirt_lab, sandbox):
    """A re-run with two clusters changes no state, no Ceph user or pool of either
    cluster, no libvirt secret and no file byte."""
    before = _snapshot(ceph_lab, ceph_lab2, libvirt_lab, sandbox)
    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert changed(steps) == {}
    assert _snapshot(ceph_lab, ceph_lab2, libvirt_lab, sandbox) == before


# -- Glance: a store on each cluster ------------------------------------------------------


@pytest.fixture(scope="module")
def glance(rollout, package_dir, sandbox, ceph_lab, ceph_lab2):
    """A real glance-api from the glance-api.conf and keyrings the formula wrote on ctl1
    (each RBD store reaching its own cluster)."""
    for cluster in (ceph_lab, ceph_lab2):
        if unsupported(cluster):
            pytest.skip(unsupported(cluster))
    server = GlanceLab(package_dir / "glance")
    server.up_for_controller(str(sandbox("ctl1")))
    try:
        yield server
    finally:
        server.down()


def test_glance_stores_each_image_in_its_stores_cluster(glance, ceph_lab, ceph_lab2):
    """An image uploaded to store dr lands in dr's images pool (not the main one's), one
    uploaded to store ceph in the main cluster's images pool (not dr's)."""
    data = {"ceph": b"\x01" * (1 << 20), "dr": b"\x02" * (1 << 20)}
    images = {}
    try:
        for store, content in data.items():
            image_id = openstack.upload_image(f"two-clusters-{store}", content, store=store,
                                              glance=glance.url)
            images[store] = openstack.image(image_id, glance=glance.url)
        in_pool = {name: set(json.loads(cluster.rbd("ls", "images", "--format", "json")))
                   for name, cluster in _clusters(ceph_lab, ceph_lab2).items()}
        for store, image in images.items():
            other = "dr" if store == "ceph" else "ceph"
            assert image["status"] == "active", image
            assert image["stores"] == store, image
            assert image["checksum"] == hashlib.md5(data[store]).hexdigest()
            assert image["id"] in in_pool[store], (store, in_pool)
            assert image["id"] not in in_pool[other], (store, in_pool)
        assert images["dr"]["direct_url"].startswith(f"rbd://{ceph_lab2.fsid}/images/")
        assert images["ceph"]["direct_url"].startswith(f"rbd://{ceph_lab.fsid}/images/")
    finally:
        for image in images.values():
            requests.delete(f"{glance.url}/v2/images/{image['id']}", timeout=60)


# -- key rotation per cluster -------------------------------------------------------------


def _held(sandbox, libvirt_lab):
    """Every copy of client.cinder's key on the nodes, per cluster."""
    return {
        "dr": {"ctl1": _key_in(_keyring(sandbox, "ctl1", "dr", "cinder")),
               "cmp1": _key_in(_keyring(sandbox, "cmp1", "dr", "cinder")),
               "secret": libvirt_lab.virsh("secret-get-value", DR_SECRET_UUID).strip()},
        "ceph": {"ctl1": _keyring(sandbox, "ctl1", "ceph", "cinder").read_bytes(),
                 "cmp1": _keyring(sandbox, "cmp1", "ceph", "cinder").read_bytes(),
                 "secret": libvirt_lab.virsh("secret-get-value", SECRET_UUID).strip()},
    }


def test_rotation_of_dr_changes_drs_key_only_and_an_unknown_cluster_is_refused(
        rollout, salt_run_cli, ceph_lab, ceph_lab2, libvirt_lab, sandbox, tmp_path):
    """Rotating client.cinder on dr: dr's key changes (the old dr keyring no longer logs in),
    ctl1's and cmp1's dr keyrings and the dr secret hold the new key, dr's mon acts; the
    main cluster's key, keyrings and secret do not change. A rotation naming an unknown
    cluster fails at the plan, naming ceph_openstack_rotate:cluster, and changes nothing."""
    old_main, old_dr = key_of(ceph_lab, "cinder"), key_of(ceph_lab2, "cinder")
    before = _held(sandbox, libvirt_lab)
    old_keyring = tmp_path / "old-dr.client.cinder.keyring"
    old_keyring.write_bytes(_keyring(sandbox, "cmp1", "dr", "cinder").read_bytes())
    old_keyring.chmod(0o600)

    steps, failed, ret = rotate(salt_run_cli, ["cinder"], cluster="dr", min_age=0)
    assert not failed, failed
    for step in ("plan", "stage", "commit", "publish"):  # dr's mon acts, alone
        assert _ran_on(steps, f"ceph_openstack-rotate-{step}") == {"mon2"}, steps[
            f"ceph_openstack-rotate-{step}"][:2]
    new_dr = key_of(ceph_lab2, "cinder")
    assert new_dr != old_dr
    assert key_of(ceph_lab, "cinder") == old_main
    after = _held(sandbox, libvirt_lab)
    assert after["dr"] == {"ctl1": new_dr, "cmp1": new_dr, "secret": new_dr}
    assert after["ceph"] == before["ceph"]
    assert after["ceph"]["secret"] == old_main
    assert not ceph_lab2.logs_in("client.cinder", old_keyring)
    assert ceph_lab2.logs_in("client.cinder", _keyring(sandbox, "cmp1", "dr", "cinder"))
    assert not find_secret(new_dr, ret.stdout, ret.stderr)

    everything = _snapshot(ceph_lab, ceph_lab2, libvirt_lab, sandbox)
    steps, failed, _ = rotate(salt_run_cli, ["cinder"], cluster="nope", min_age=0)
    first = next((step for step in steps if step in failed), None)
    assert first == "ceph_openstack-rotate-plan", failed
    assert "ceph_openstack_rotate:cluster" in str(
        failed_states(steps, "ceph_openstack-rotate-plan")), steps
    assert changed(steps) == {}
    assert _snapshot(ceph_lab, ceph_lab2, libvirt_lab, sandbox) == everything
