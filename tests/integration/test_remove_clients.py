"""
Removing a client (pillar ``clients:<name>:absent: true``) through the orchestration,
asserted from outside: the ceph CLI, libvirt, the Salt mine and the files of every
minion's sandbox root.

- marked absent while the Cinder backup still uses it: refused before anything changes,
  the message naming the pillar key and the client;
- marked absent while cinder.conf still names it (``cinder:backup: null`` leaves the
  backup's options as they are): the controller keeps its keyring, and Ceph its user;
- the backup moved to another client, then the old one marked absent: ``test=True``
  predicts the run; its keyrings go from every node, its user from Ceph, its mine entry
  from the mine; no pool is deleted, no service restarted, and a second rollout changes
  nothing;
- a client and its libvirt secret marked absent while a libvirt domain uses the secret:
  the computes' step fails naming the domain, and nothing is deleted (secret, keyring,
  user); once the domain is gone, the same run withdraws them.
"""

import os

import pytest

from tests.integration.conftest import MINIONS
from tests.integration.test_rollout import by_state, changed, orchestrate, snapshot
from tests.support.guests import rbd_guest_xml

OLD = "cinder-backup"
NEW = "backup2"
BACKUPS_CAPS = {"mon": "profile rbd", "osd": "profile rbd pool=backups",
                "mgr": "profile rbd pool=backups"}
RETIRED = "retired"
RETIRED_UUID = "3c5e7a90-1b2d-4e6f-8a0b-c2d4e6f8a0b2"
GUEST = "remove-clients-guest"


def apply_pillar(salt_cli, lab_pillar, data):
    lab_pillar.edit(data)
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")


def keyrings(sandbox, client):
    """Every keyring file of ``client`` (any cluster) in every minion's sandbox root."""
    return sorted(str(path) for minion in MINIONS
                  for path in (sandbox(minion) / "etc/ceph").glob(f"*.client.{client}.keyring"))


def user_exists(ceph_lab, client):
    return any(entry["entity"] == f"client.{client}"
               for entry in ceph_lab.ceph("auth", "ls")["auth_dump"])


def mine_has(salt_cli, client):
    """Whether a mon publishes ``client``'s key in the mine (asked as mon1, which may read
    every key; the key itself is not kept)."""
    ret = salt_cli.run("mine.get", "G@role:mon", f"ceph_openstack_key_{client}", "compound",
                       minion_tgt="mon1")
    return bool(ret.data)


def failed_comments(steps, step):
    """Every comment of the failed states of an orchestration step, one text."""
    _, comment, minions = steps[step]
    found = [str(comment)]
    for states in minions.values():
        found += [str(sret.get("comment")) for sret in states.values()
                  if sret.get("result") is False]
    return "\n".join(found)


@pytest.fixture(scope="module")
def rolled_out(salt_run_cli, salt_cli, lab_pillar, ceph_lab, sandbox):
    apply_pillar(salt_cli, lab_pillar, {})
    _, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    yield
    # Back to pillar.example (cinder-backup made again), without the tests' own clients.
    apply_pillar(salt_cli, lab_pillar, {})
    _, failed = orchestrate(salt_run_cli)
    for client in (NEW, RETIRED):
        ceph_lab.ceph("auth", "del", f"client.{client}", check=False, json_out=False)
        for path in keyrings(sandbox, client):
            os.unlink(path)
    assert not failed, failed


def test_a_client_still_used_is_refused_then_withdrawn_everywhere(
        rolled_out, salt_run_cli, salt_cli, lab_pillar, ceph_lab, libvirt_lab, sandbox):
    assert keyrings(sandbox, OLD) and user_exists(ceph_lab, OLD) and mine_has(salt_cli, OLD)
    pools = ceph_lab.ceph("osd", "pool", "ls")

    # Marked absent while the backup uses it: refused before anything changes.
    before = snapshot(ceph_lab, libvirt_lab, sandbox)
    apply_pillar(salt_cli, lab_pillar, {"ceph_openstack": {"clients": {OLD: {"absent": True}}}})
    steps, failed = orchestrate(salt_run_cli)
    assert "ceph_openstack-validate" in failed, failed
    assert {"ceph_openstack-mon", "ceph_openstack-controllers",
            "ceph_openstack-computes"} <= set(failed)  # not run
    said = failed_comments(steps, "ceph_openstack-validate")
    assert (f"ceph_openstack:cinder:backup:client: uses client '{OLD}', which is marked absent "
            f"(ceph_openstack:clients:{OLD}:absent)") in said
    assert snapshot(ceph_lab, libvirt_lab, sandbox) == before
    assert mine_has(salt_cli, OLD)

    # The backup left to itself (null): cinder.conf still names the client, so the
    # controller keeps its keyring and Ceph keeps the user.
    apply_pillar(salt_cli, lab_pillar, {"ceph_openstack": {
        "clients": {OLD: {"absent": True}}, "cinder": {"backup": None}}})
    steps, failed = orchestrate(salt_run_cli)
    assert "ceph_openstack-controllers" in failed, failed
    assert "ceph_openstack-absent" in failed  # not run
    said = failed_comments(steps, "ceph_openstack-controllers")
    assert f"client.{OLD} is marked absent in pillar, but " in said
    assert f"etc/cinder/cinder.conf: client.{OLD} on pool backups" in said
    controller_keyring = str(sandbox("ctl1") / f"etc/ceph/ceph.client.{OLD}.keyring")
    assert keyrings(sandbox, OLD) == [controller_keyring]
    assert user_exists(ceph_lab, OLD)

    # The backup on another client, then the old one marked absent: predicted, then
    # withdrawn everywhere.
    moved = {"ceph_openstack": {
        "clients": {NEW: {"caps": BACKUPS_CAPS, "roles": ["controller"]}},
        "cinder": {"backup": {"client": NEW}}}}
    apply_pillar(salt_cli, lab_pillar, moved)
    _, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert user_exists(ceph_lab, NEW) and keyrings(sandbox, NEW)
    moved["ceph_openstack"]["clients"][OLD] = {"absent": True}
    apply_pillar(salt_cli, lab_pillar, moved)
    before = snapshot(ceph_lab, libvirt_lab, sandbox)
    steps, failed = orchestrate(salt_run_cli, test=True)
    assert not failed, failed
    assert snapshot(ceph_lab, libvirt_lab, sandbox) == before
    predicted = changed(steps)
    assert predicted[("ctl1", f"ceph_openstack-keyring-absent-{OLD}")] == {
        "removed": controller_keyring}
    assert by_state(predicted)[("mons", f"ceph_openstack-client-absent-{OLD}")] == {"entity"}

    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert list(steps)[-1] == "ceph_openstack-absent"
    assert by_state(changed(steps)) == by_state(predicted)
    assert keyrings(sandbox, OLD) == []
    assert not user_exists(ceph_lab, OLD)
    assert not mine_has(salt_cli, OLD)
    assert ceph_lab.ceph("osd", "pool", "ls") == pools
    assert user_exists(ceph_lab, NEW) and keyrings(sandbox, NEW)
    # Nothing reads the withdrawn keyring: no service restarted.
    assert not [sid for (_, sid) in changed(steps) if sid.startswith("ceph_openstack-service")]

    before = snapshot(ceph_lab, libvirt_lab, sandbox)
    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert changed(steps) == {}
    assert snapshot(ceph_lab, libvirt_lab, sandbox) == before


def test_a_secret_a_domain_uses_is_kept_and_nothing_is_deleted(
        rolled_out, salt_run_cli, salt_cli, lab_pillar, ceph_lab, libvirt_lab, sandbox,
        tmp_path):
    present = {"ceph_openstack": {
        "clients": {RETIRED: {"caps": {"mon": "profile rbd", "osd": "profile rbd pool=vms"},
                              "roles": ["compute"]}},
        "libvirt": {"secrets": {RETIRED: {"uuid": RETIRED_UUID}}}}}
    apply_pillar(salt_cli, lab_pillar, present)
    _, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    compute_keyring = str(sandbox("cmp1") / f"etc/ceph/ceph.client.{RETIRED}.keyring")
    assert keyrings(sandbox, RETIRED) == [compute_keyring]
    assert RETIRED_UUID in libvirt_lab.virsh("secret-list")

    xml = tmp_path / "domain.xml"
    xml.write_text(rbd_guest_xml(GUEST, f"volumes/{GUEST}", RETIRED, RETIRED_UUID))
    libvirt_lab.virsh("define", str(xml))
    try:
        apply_pillar(salt_cli, lab_pillar, {"ceph_openstack": {
            "clients": {RETIRED: {"absent": True}},
            "libvirt": {"secrets": {RETIRED: {"uuid": RETIRED_UUID, "absent": True}}}}})
        steps, failed = orchestrate(salt_run_cli)
        assert "ceph_openstack-computes" in failed, failed
        assert "ceph_openstack-absent" in failed  # not run
        said = failed_comments(steps, "ceph_openstack-computes")
        assert f"secret {RETIRED_UUID} is used by domains {GUEST}; refusing" in said
        assert RETIRED_UUID in libvirt_lab.virsh("secret-list")
        assert keyrings(sandbox, RETIRED) == [compute_keyring]
        assert user_exists(ceph_lab, RETIRED)
    finally:
        libvirt_lab.virsh("undefine", GUEST, check=False)

    # The domain gone, the same run withdraws the secret, the keyring and the user.
    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    assert RETIRED_UUID not in libvirt_lab.virsh("secret-list")
    assert keyrings(sandbox, RETIRED) == []
    assert not user_exists(ceph_lab, RETIRED)
    assert not mine_has(salt_cli, RETIRED)
