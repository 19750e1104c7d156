"""
Key rotation (orch.ceph_openstack_rotate) through the real master, asserted from outside:
Ceph (a real cephx login with the old and the new keyring), every node's keyring, the
libvirt secret (same UUID), a guest-style librbd client reading the secret's value, and no
key in any argv, return, event or file during the rotation.

On Pacific (no pending keys) the new key replaces the old one at once after every check;
on Quincy and later a pending key is distributed and verified before it is committed.
"""

import json
import os
import subprocess
import tempfile

import pytest

from tests.integration.test_faults import chattr, failed_states, refresh_pillar, sandbox_files
from tests.integration.test_rollout import SECRET_UUID, changed, orch_steps, orchestrate
from tests.integration.test_secrets import _allowed, _text_to_scan
from tests.support.argv_recorder import find_secret, record_argv

ROTATE = "orch.ceph_openstack_rotate"
NODES = {"ctl1": ["cinder", "glance", "cinder-backup"], "cmp1": ["cinder"]}


def rotate(salt_run_cli, clients, test=False, **extra):
    """(steps, failed, ret) of one rotation orchestration."""
    request = {"ceph_openstack_rotate": dict(extra, clients=clients)}
    args = ["state.orchestrate", ROTATE, f"pillar={json.dumps(request)}"]
    ret = salt_run_cli.run(*(args + (["test=True"] if test else [])))
    steps = orch_steps(ret)
    failed = {k: v[1] for k, v in steps.items() if v[0] is False}
    return steps, failed, ret


def key_of(ceph_lab, client):
    return ceph_lab.ceph("auth", "get-key", f"client.{client}", json_out=False).strip()


def keyring(sandbox, minion, client):
    return sandbox(minion) / f"etc/ceph/ceph.client.{client}.keyring"


def held_keys(sandbox, libvirt_lab, client):
    """{place: key} of every copy of client.<client>'s key on the nodes."""
    found = {}
    for minion, clients in NODES.items():
        if client in clients:
            text = keyring(sandbox, minion, client).read_text()
            found[f"{minion} keyring"] = text.split("key = ", 1)[1].split()[0]
    if client == "cinder":
        found["cmp1 secret"] = libvirt_lab.virsh("secret-get-value", SECRET_UUID).strip()
    return found


def copy_keyring(sandbox, minion, client, directory):
    """A copy of a node's keyring as it is now (to log in with the old key later)."""
    path = os.path.join(directory, f"{minion}.{client}.keyring")
    with open(path, "w") as out:
        out.write(keyring(sandbox, minion, client).read_text())
    os.chmod(path, 0o600)
    return path


def rbd_with_keyfile(ceph_lab, client, key, *args):
    """A guest-style librbd client: the key comes from a file (as QEMU gets it from
    libvirt), never argv."""
    with tempfile.NamedTemporaryFile("w", prefix="rotkey-", delete=False) as keyfile:
        keyfile.write(key)
    try:
        cmd = [ceph_lab.tool("rbd"), "--conf", ceph_lab.conf, "--id", client,
               "--keyfile", keyfile.name, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(keyfile.name)


def config_bytes(sandbox):
    return {rel: (sandbox(m) / rel).read_bytes() for m, rel in (
        ("ctl1", "etc/cinder/cinder.conf"), ("ctl1", "etc/glance/glance-api.conf"),
        ("cmp1", "etc/nova/nova.conf"))}


@pytest.fixture(scope="module")
def converged(salt_run_cli, salt_cli, lab_pillar, ceph_lab):
    lab_pillar.edit({})
    refresh_pillar(salt_cli)
    _, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    ceph_lab.rbd("create", "--size", "8", "volumes/rotation-probe", check=False)
    yield
    lab_pillar.edit({})
    refresh_pillar(salt_cli)


def test_dry_run_lists_what_would_change_without_keys(converged, salt_run_cli, ceph_lab,
                                                      libvirt_lab, sandbox, ceph_release):
    before = (sandbox_files(sandbox), key_of(ceph_lab, "cinder"),
              ceph_lab.ceph("auth", "get", "client.cinder")[0].get("pending_key"))
    steps, failed, ret = rotate(salt_run_cli, ["cinder"], test=True)
    assert not failed, failed
    predicted = changed(steps)
    assert ("mon1", "ceph_openstack-rotation-staged") in predicted
    assert predicted[("ctl1", "ceph_openstack-rotate-keyring-cinder")] == {"key": "changed"}
    assert predicted[("cmp1", "ceph_openstack-rotate-keyring-cinder")] == {"key": "changed"}
    assert predicted[("cmp1", "ceph_openstack-rotate-secret-cinder")] == {"key": "changed"}
    assert not any(c == "glance" for _, sid in predicted for c in sid.split("-")[-1:])
    plan = steps["ceph_openstack-rotate-plan"][2]["mon1"]["ceph_openstack-rotation-planned"]
    if ceph_release == "pacific":
        assert "no pending keys" in plan["comment"], plan["comment"]
    else:
        assert "pending beside the old one" in plan["comment"], plan["comment"]
    after = (sandbox_files(sandbox), key_of(ceph_lab, "cinder"),
             ceph_lab.ceph("auth", "get", "client.cinder")[0].get("pending_key"))
    assert after == before
    assert not find_secret(before[1], ret.stdout, ret.stderr)


@pytest.fixture(scope="module")
def rotation(converged, salt_master, salt_run_cli, ceph_lab, libvirt_lab, sandbox,
             event_listener, tmp_path_factory):
    """One recorded rotation of client.cinder, with copies of the old keyrings."""
    directory = tmp_path_factory.mktemp("old-keyrings")
    old = {m: copy_keyring(sandbox, m, "cinder", directory) for m in NODES}
    old_key = key_of(ceph_lab, "cinder")
    configs = config_bytes(sandbox)
    secrets = libvirt_lab.virsh("secret-list")
    events_before = len(event_listener.store)
    with record_argv() as argvs:
        steps, failed, ret = rotate(salt_run_cli, ["cinder"])
    events = [e for e in list(event_listener.store)[events_before:]
              if e.daemon_id == salt_master.id]
    return {"steps": steps, "failed": failed, "ret": ret, "old": old, "old_key": old_key,
            "new_key": key_of(ceph_lab, "cinder"), "argvs": argvs, "events": events,
            "configs": configs, "secrets": secrets}


def test_rotation_gives_every_node_the_new_key(rotation, ceph_lab, libvirt_lab, sandbox):
    assert not rotation["failed"], rotation["failed"]
    new = rotation["new_key"]
    assert new != rotation["old_key"]
    assert set(held_keys(sandbox, libvirt_lab, "cinder").values()) == {new}
    assert "pending_key" not in ceph_lab.ceph("auth", "get", "client.cinder")[0]
    # same secret UUID, nova.conf and cinder.conf untouched
    assert libvirt_lab.virsh("secret-list") == rotation["secrets"]
    assert config_bytes(sandbox) == rotation["configs"]


def test_old_keyring_cannot_log_in_and_new_ones_can(rotation, ceph_lab, sandbox):
    for minion, path in rotation["old"].items():
        assert not ceph_lab.logs_in("client.cinder", path), minion
        assert ceph_lab.logs_in("client.cinder", keyring(sandbox, minion, "cinder")), minion


def test_guest_style_client_opens_an_image_with_the_secret_value(rotation, ceph_lab,
                                                                 libvirt_lab):
    value = libvirt_lab.virsh("secret-get-value", SECRET_UUID).strip()
    out = rbd_with_keyfile(ceph_lab, "cinder", value, "info", "volumes/rotation-probe")
    assert out.returncode == 0, out.stderr
    old = rbd_with_keyfile(ceph_lab, "cinder", rotation["old_key"], "info",
                           "volumes/rotation-probe")
    assert old.returncode != 0


def test_no_key_in_argv_returns_events_or_files(rotation, lab_dir):
    found = {}
    for label in ("old_key", "new_key"):
        where = find_secret(rotation[label], argv=rotation["argvs"],
                            stdout=rotation["ret"].stdout, stderr=rotation["ret"].stderr,
                            events=rotation["events"])
        for directory, _dirs, files in os.walk(lab_dir):
            for name in files:
                path = os.path.join(directory, name)
                if _allowed(path, str(lab_dir)) or os.path.islink(path) \
                        or not os.path.isfile(path):
                    continue
                if find_secret(rotation[label], _text_to_scan(path)):
                    where.append(path)
        if where:
            found[label] = where
    assert not found
    assert rotation["argvs"].commands("ceph")


def test_second_rotation_and_rollout_change_nothing(rotation, salt_run_cli, ceph_lab,
                                                   libvirt_lab, sandbox):
    before = (sandbox_files(sandbox), key_of(ceph_lab, "cinder"))
    steps, failed, _ = rotate(salt_run_cli, ["cinder"])
    assert not failed, failed
    assert changed(steps) == {}
    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert changed(steps) == {}
    assert (sandbox_files(sandbox), key_of(ceph_lab, "cinder")) == before


def test_failing_node_stops_before_the_old_key_dies_and_a_rerun_completes(
        rotation, salt_run_cli, ceph_lab, libvirt_lab, sandbox, tmp_path, ceph_release):
    """cmp1 cannot write its keyring: the run stops before the old key is invalidated
    (where the cluster has pending keys, the old key still logs in); fixed, the same
    command completes the rotation."""
    path = keyring(sandbox, "cmp1", "cinder")
    old_copy = copy_keyring(sandbox, "cmp1", "cinder", str(tmp_path))
    made = chattr("+i", path)
    if made.returncode:
        pytest.skip(f"chattr +i does not work here: {made.stderr.strip()}")
    try:
        steps, failed, _ = rotate(salt_run_cli, ["cinder"], min_age=0)
        assert "ceph_openstack-rotate-computes" in failed, failed
        assert "ceph_openstack-rotate-commit" in failed  # never ran
        assert steps["ceph_openstack-rotate-commit"][2] == {}
        if ceph_release != "pacific":
            assert ceph_lab.logs_in("client.cinder", old_copy)
    finally:
        chattr("-i", path)
    steps, failed, _ = rotate(salt_run_cli, ["cinder"], min_age=0)
    assert not failed, failed
    new = key_of(ceph_lab, "cinder")
    assert set(held_keys(sandbox, libvirt_lab, "cinder").values()) == {new}
    assert not ceph_lab.logs_in("client.cinder", old_copy)


def test_offline_node_stops_before_any_change_and_a_rerun_completes(
        rotation, salt_run_cli, minions, ceph_lab, libvirt_lab, sandbox):
    old_key = key_of(ceph_lab, "cinder")
    before = sandbox_files(sandbox)
    minions["cmp1"].terminate()
    try:
        steps, failed, _ = rotate(salt_run_cli, ["cinder"], min_age=0)
        assert failed, steps
        first = next(step for step in steps if step in failed)
        assert first in ("ceph_openstack-rotate-sync", "ceph_openstack-rotate-validate")
        assert "cmp1" in failed[first].split("ran on")[0]
        assert key_of(ceph_lab, "cinder") == old_key
        assert "pending_key" not in ceph_lab.ceph("auth", "get", "client.cinder")[0]
        assert sandbox_files(sandbox) == before
    finally:
        minions["cmp1"].start(start_timeout=120)
    steps, failed, _ = rotate(salt_run_cli, ["cinder"], min_age=0)
    assert not failed, failed
    assert set(held_keys(sandbox, libvirt_lab, "cinder").values()) == {key_of(ceph_lab,
                                                                              "cinder")}
    assert key_of(ceph_lab, "cinder") != old_key


def _gen_key(ceph_lab, key_type=None):
    cmd = [ceph_lab.tool("ceph-authtool"), "--gen-print-key"]
    if key_type:
        cmd += ["--key_type", key_type]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def test_pillar_key_rotates_and_a_refused_kind_changes_nothing(
        rotation, salt_run_cli, salt_cli, lab_pillar, ceph_lab, libvirt_lab, sandbox,
        ceph_release):
    refused = _gen_key(ceph_lab, "aes256k" if ceph_release == "pacific" else "aes") \
        if ceph_release != "tentacle" or "aes" not in json.dumps(
            ceph_lab.ceph("mon", "dump").get("auth_allowed_ciphers")) else None
    wanted = _gen_key(ceph_lab)
    before = key_of(ceph_lab, "cinder")
    try:
        if refused and ceph_release in ("pacific", "tentacle"):
            lab_pillar.edit({"ceph_openstack": {"clients": {"cinder": {"key": refused}}}})
            refresh_pillar(salt_cli)
            steps, failed, ret = rotate(salt_run_cli, ["cinder"])
            assert "ceph_openstack-rotate-plan" in failed, failed
            assert "ceph_openstack:clients:cinder:key" in failed["ceph_openstack-rotate-plan"]
            assert key_of(ceph_lab, "cinder") == before
            assert not find_secret(refused, ret.stdout, ret.stderr)
        lab_pillar.edit({"ceph_openstack": {"clients": {"cinder": {"key": wanted}}}})
        refresh_pillar(salt_cli)
        steps, failed, ret = rotate(salt_run_cli, ["cinder"])
        assert not failed, failed
        assert key_of(ceph_lab, "cinder") == wanted
        assert set(held_keys(sandbox, libvirt_lab, "cinder").values()) == {wanted}
        assert not find_secret(wanted, ret.stdout, ret.stderr)
        steps, failed, _ = rotate(salt_run_cli, ["cinder"])
        assert not failed and changed(steps) == {}, (failed, changed(steps))
    finally:
        lab_pillar.edit({})
        refresh_pillar(salt_cli)
