"""
Key rotation (orch.ceph_openstack_rotate) through the real master, asserted from outside:
Ceph (a real cephx login with the old and the new keyring), every node's keyring, the
libvirt secret (same UUID), a guest-style librbd client reading the secret's value, and no
key in any argv, return, event or file during the rotation.

On Pacific (no pending keys) the new key replaces the old one at once after every check;
on Quincy and later a pending key is distributed and verified before it is committed.
"""

import contextlib
import json
import os
import subprocess
import tempfile
import time

import pytest

from tests.integration.test_faults import (assert_later_steps_skipped, chattr, failed_states,
                                          refresh_pillar, sandbox_files)
from tests.integration.test_rollout import SECRET_UUID, changed, orch_steps, orchestrate
from tests.integration.test_secrets import _allowed, _text_to_scan
from tests.support.argv_recorder import find_secret, record_argv
from tests.support.guests import mon_port, rbd_guest_xml
from tests.unit.test_cephauth import AES256K_KEY

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


def assert_one_mon_acts(steps, acting):
    """Plan, stage and commit ran on ``acting`` alone; publish on both mons."""
    for step, mons in (("plan", {acting}), ("stage", {acting}), ("commit", {acting}),
                       ("publish", {"mon1", "mon2"})):
        _, comment, states = steps[f"ceph_openstack-rotate-{step}"]
        assert {m for m in ("mon1", "mon2") if m in comment or m in states} == mons, step


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
    assert ("ctl1", "ceph_openstack-rotate-keyring-glance") not in predicted
    stage = steps["ceph_openstack-rotate-stage"][2]["mon1"]["ceph_openstack-rotation-staged"]
    if ceph_release == "pacific":
        assert "no pending keys" in stage["comment"], stage["comment"]
    else:
        assert "pending beside the old one" in stage["comment"], stage["comment"]
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
    with record_argv() as argvs:
        steps, failed, ret = rotate(salt_run_cli, ["cinder"])
    events = [e for e in event_listener.store if e.daemon_id == salt_master.id]
    return {"steps": steps, "failed": failed, "ret": ret, "old": old, "old_key": old_key,
            "new_key": key_of(ceph_lab, "cinder"), "argvs": argvs, "events": events,
            "configs": configs, "secrets": secrets}


def test_rotation_gives_every_node_the_new_key(rotation, ceph_lab, libvirt_lab, sandbox):
    assert not rotation["failed"], rotation["failed"]
    steps = rotation["steps"]
    # One mon acts (the first by ID); every mon publishes the new key afterwards.
    assert_one_mon_acts(steps, "mon1")
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


@pytest.mark.release_independent  # the orchestration's flow, the same on every release
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
    steps, failed, _ = rotate(salt_run_cli, ["cinder"])  # the same command completes it
    assert not failed, failed
    new = key_of(ceph_lab, "cinder")
    assert set(held_keys(sandbox, libvirt_lab, "cinder").values()) == {new}
    assert not ceph_lab.logs_in("client.cinder", old_copy)


@pytest.mark.release_independent  # the orchestration's flow, the same on every release
def test_offline_node_stops_the_run_before_any_key_changes_and_a_rerun_completes(
        rotation, salt_run_cli, minions, ceph_lab, libvirt_lab, sandbox):
    """cmp1's salt-minion is stopped: the rotation stops at its first step, naming cmp1,
    with no key made, set or distributed; started again, the same command completes it."""
    before = (sandbox_files(sandbox), ceph_lab.ceph("auth", "get", "client.cinder")[0])
    minions["cmp1"].terminate()
    try:
        steps, failed, _ = rotate(salt_run_cli, ["cinder"], min_age=0)
        first = next(step for step in steps if step in failed)
        assert first == "ceph_openstack-rotate-sync", failed
        assert "cmp1" in failed[first].split("Function saltutil.sync_all ran on")[0], failed
        assert changed(steps) == {}
        assert (sandbox_files(sandbox),
                ceph_lab.ceph("auth", "get", "client.cinder")[0]) == before  # no pending key
    finally:
        minions["cmp1"].start(start_timeout=120)
    steps, failed, _ = rotate(salt_run_cli, ["cinder"], min_age=0)
    assert not failed, failed
    new = key_of(ceph_lab, "cinder")
    assert new != before[1]["key"]
    assert set(held_keys(sandbox, libvirt_lab, "cinder").values()) == {new}


@pytest.mark.release_independent  # the orchestration's flow, the same on every release
def test_a_named_mon_acts_alone_and_a_named_non_mon_changes_nothing(
        rotation, salt_run_cli, ceph_lab, libvirt_lab, sandbox):
    """ceph_openstack_rotate:mon picks the acting mon (no ping); a minion that is not a mon
    is refused at the plan, naming the key, before anything changes."""
    before = (sandbox_files(sandbox), ceph_lab.ceph("auth", "get", "client.cinder")[0])
    steps, failed, _ = rotate(salt_run_cli, ["cinder"], min_age=0, mon="ctl1")
    first = next(step for step in steps if step in failed)
    assert first == "ceph_openstack-rotate-plan", failed
    assert_later_steps_skipped(steps, failed, first)
    assert "ceph_openstack_rotate:mon: ctl1 is not a mon" in str(
        failed_states(steps, "ceph_openstack-rotate-plan")), steps
    assert changed(steps) == {}
    assert (sandbox_files(sandbox),
            ceph_lab.ceph("auth", "get", "client.cinder")[0]) == before
    steps, failed, _ = rotate(salt_run_cli, ["cinder"], min_age=0, mon="mon2")
    assert not failed, failed
    assert_one_mon_acts(steps, "mon2")
    new = key_of(ceph_lab, "cinder")
    assert new != before[1]["key"]
    assert set(held_keys(sandbox, libvirt_lab, "cinder").values()) == {new}


def _gen_key(ceph_lab, key_type=None):
    cmd = [ceph_lab.tool("ceph-authtool"), "--gen-print-key"]
    if key_type:
        cmd += ["--key_type", key_type]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def test_pillar_key_rotates_and_a_refused_kind_changes_nothing(
        rotation, salt_run_cli, salt_cli, lab_pillar, ceph_lab, libvirt_lab, sandbox,
        ceph_release):
    # A kind the cluster does not allow: AES on a fresh Tentacle, AES256K before Tentacle.
    refused = _gen_key(ceph_lab, "aes") if ceph_release == "tentacle" else AES256K_KEY
    wanted = _gen_key(ceph_lab)
    before = key_of(ceph_lab, "cinder")
    try:
        lab_pillar.edit({"ceph_openstack": {"clients": {"cinder": {"key": refused}}}})
        refresh_pillar(salt_cli)
        steps, failed, ret = rotate(salt_run_cli, ["cinder"])
        assert "ceph_openstack-rotate-plan" in failed, failed
        states = failed_states(steps, "ceph_openstack-rotate-plan")
        assert "ceph_openstack:clients:cinder:key" in str(states), states
        assert key_of(ceph_lab, "cinder") == before
        assert not find_secret(refused, ret.stdout, ret.stderr)
        lab_pillar.edit({"ceph_openstack": {"clients": {"cinder": {"key": wanted}}}})
        refresh_pillar(salt_cli)
        steps, failed, ret = rotate(salt_run_cli, ["cinder"])
        assert not failed, failed
        assert key_of(ceph_lab, "cinder") == wanted
        assert set(held_keys(sandbox, libvirt_lab, "cinder").values()) == {wanted}
        assert not find_secret(wanted, ret.stdout, ret.stderr)
    finally:
        lab_pillar.edit({})
        refresh_pillar(salt_cli)


@contextlib.contextmanager
def _upgraded_tentacle(ceph_lab, salt_run_cli, clients):
    """The Tentacle lab as an upgrade leaves a cluster: AES keys allowed and preferred,
    and ``clients`` with AES keys, which the nodes then hold (a rollout)."""
    ceph_lab.ceph("mon", "set", "auth_allowed_ciphers", "aes,aes256k", json_out=False)
    ceph_lab.ceph("mon", "set", "auth_preferred_cipher", "aes", json_out=False)
    ceph_lab.ceph("config", "set", "mon", "mon_auth_allow_insecure_key", "true", json_out=False)
    try:
        for client in clients:
            entry = ceph_lab.ceph("auth", "get", f"client.{client}")[0]
            caps = "".join(f'\tcaps {t} = "{g}"\n' for t, g in sorted(entry["caps"].items()))
            text = f"[client.{client}]\n\tkey = {_gen_key(ceph_lab, 'aes')}\n{caps}"
            ceph_lab.ceph("auth", "import", "-i", "-", stdin=text, json_out=False)
        _, failed = orchestrate(salt_run_cli)
        assert not failed, failed
        yield
    finally:
        ceph_lab.ceph("config", "set", "mon", "mon_auth_allow_insecure_key", "false",
                      json_out=False)
        ceph_lab.ceph("mon", "set", "auth_preferred_cipher", "aes256k", json_out=False)


GUEST = "rotation-guest"


def _start_guest(libvirt_lab, tmp_path, ceph_lab):
    """A real QEMU guest (paused: no CPU spent) whose disk is an RBD image opened with
    client.cinder's key from the libvirt secret."""
    xml = tmp_path / "guest.xml"
    xml.write_text(rbd_guest_xml(GUEST, "volumes/rotation-probe", "cinder", SECRET_UUID,
                                 mon_port(ceph_lab)))
    libvirt_lab.virsh("define", str(xml))
    libvirt_lab.virsh("start", "--paused", GUEST, timeout=60)


def _stop_guest(libvirt_lab):
    libvirt_lab.virsh("destroy", GUEST, check=False)
    libvirt_lab.virsh("undefine", GUEST, check=False)


def test_running_guest_stops_the_run_before_the_old_key_dies_and_a_rerun_completes(
        rotation, salt_run_cli, ceph_lab, libvirt_lab, sandbox, tmp_path, ceph_release):
    if not os.path.exists("/usr/bin/qemu-system-x86_64"):
        pytest.skip("qemu-system-x86 is not installed (a real guest is needed)")
    # The host's QEMU links the host's librbd, which cannot use AES256K keys: on Tentacle
    # the guest runs with an AES key, as on a cluster upgraded to Tentacle.
    with (_upgraded_tentacle(ceph_lab, salt_run_cli, ["cinder"])
          if ceph_release == "tentacle" else contextlib.nullcontext()):
        _guest_holds_the_old_key(salt_run_cli, ceph_lab, libvirt_lab, sandbox, tmp_path,
                                 ceph_release)


def _guest_holds_the_old_key(salt_run_cli, ceph_lab, libvirt_lab, sandbox, tmp_path,
                             ceph_release):
    old_copy = copy_keyring(sandbox, "cmp1", "cinder", str(tmp_path))
    old_key = key_of(ceph_lab, "cinder")
    assert len(old_key) == 40, "the host's QEMU needs an AES key"
    _start_guest(libvirt_lab, tmp_path, ceph_lab)
    try:
        before = sandbox_files(sandbox)
        steps, failed, ret = rotate(salt_run_cli, ["cinder"], min_age=0)
        if ceph_release == "pacific":
            # The old key would die at once: stopped before any key changes.
            comment = failed["ceph_openstack-rotate-ready"]
            states = failed_states(steps, "ceph_openstack-rotate-ready")
            assert list(states) == [("cmp1", "ceph_openstack-rotation-ready")], failed
            assert GUEST in str(states) and "Shut them down" in str(states), comment
            assert key_of(ceph_lab, "cinder") == old_key
            assert sandbox_files(sandbox) == before
            _stop_guest(libvirt_lab)  # what the message asks for
        else:
            states = failed_states(steps, "ceph_openstack-rotate-verify")
            assert list(states) == [("cmp1", "ceph_openstack-rotation-verified")], failed
            assert GUEST in str(states) and "Live-migrate or restart" in str(states)
            assert ROTATE in str(states)  # how to resume
            assert "ceph_openstack-rotate-commit" in failed
            assert ceph_lab.logs_in("client.cinder", old_copy)  # the old key still works
            pending = ceph_lab.ceph("auth", "get", "client.cinder")[0]["pending_key"]
            libvirt_lab.virsh("destroy", GUEST)
            if len(pending) == 40:  # restart it: it reads the new key
                libvirt_lab.virsh("start", "--paused", GUEST, timeout=60)
            # else (AES256K) the host's QEMU could not use the new key: left shut down
        assert not find_secret(old_key, ret.stdout, ret.stderr)
        # Pacific: nothing happened yet; elsewhere the same command completes the rotation.
        extra = {"min_age": 0} if ceph_release == "pacific" else {}
        steps, failed, _ = rotate(salt_run_cli, ["cinder"], **extra)
        assert not failed, failed
        assert not ceph_lab.logs_in("client.cinder", old_copy)
        assert set(held_keys(sandbox, libvirt_lab, "cinder").values()) == {
            key_of(ceph_lab, "cinder")}
    finally:
        _stop_guest(libvirt_lab)


def _insecure_entities(ceph_lab):
    """Entities named by the AUTH_INSECURE_CLIENT_KEY_TYPE health check."""
    checks = (ceph_lab.ceph("health", "detail") or {}).get("checks") or {}
    detail = (checks.get("AUTH_INSECURE_CLIENT_KEY_TYPE") or {}).get("detail") or []
    return {line["message"].split()[1] for line in detail if "entity" in line["message"]}


def _wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def test_after_a_tentacle_upgrade_rotation_gives_aes256k_and_clears_the_health_checks(
        rotation, salt_run_cli, ceph_lab, libvirt_lab, sandbox, ceph_release):
    if ceph_release != "tentacle":
        pytest.skip("AES256K keys and AUTH_INSECURE_* health checks are Tentacle's")
    clients = ["cinder", "glance", "cinder-backup"]
    with _upgraded_tentacle(ceph_lab, salt_run_cli, clients):
        assert _wait_for(lambda: {f"client.{c}" for c in clients} <= _insecure_entities(
            ceph_lab)), _insecure_entities(ceph_lab)

        steps, failed, _ = rotate(salt_run_cli, ["cinder"])
        assert not failed, failed
        assert len(key_of(ceph_lab, "cinder")) == 60  # AES256K
        assert set(held_keys(sandbox, libvirt_lab, "cinder").values()) == {
            key_of(ceph_lab, "cinder")}
        assert ceph_lab.ceph("mon", "dump")["auth_preferred_cipher"]["name"] == "aes"  # kept
        assert _wait_for(lambda: "client.cinder" not in _insecure_entities(ceph_lab))
        assert "client.glance" in _insecure_entities(ceph_lab)

        steps, failed, _ = rotate(salt_run_cli, clients)
        assert not failed, failed
        assert all(len(key_of(ceph_lab, c)) == 60 for c in clients)
        assert _wait_for(lambda: "AUTH_INSECURE_CLIENT_KEY_TYPE" not in ceph_lab.health_checks())
        for client in clients:
            for minion in (m for m, held in NODES.items() if client in held):
                assert ceph_lab.logs_in(f"client.{client}", keyring(sandbox, minion, client))
