"""Removing a client (pillar ``clients:<name>:absent: true``): the node states that
withdraw its keyring and libvirt secret, the check of the config files that still use it,
and the key rotation's refusal. (The pillar check: tests/data/bad_pillars.yaml.)"""

from unittest import mock

import pytest

from tests.support.modules import load

state = load("salt/_states/ceph_openstack.py", "ceph_openstack_state_remove_clients")
module = load("salt/_modules/ceph_openstack.py", "ceph_openstack_module_remove_clients")
rotation = load("salt/_states/ceph_openstack_rotation.py",
                "ceph_openstack_rotation_remove_clients")

PATHS = {"cinder_conf": "/etc/cinder/cinder.conf", "glance_conf": "/etc/glance/glance-api.conf",
         "nova_conf": "/etc/nova/nova.conf", "ceph_conf_real": "/etc/ceph/ceph.conf"}
CINDER = {
    "DEFAULT": {"enabled_backends": "ceph,ceph-dr",
                "backup_driver": "cinder.backup.drivers.ceph.CephBackupDriver",
                "backup_ceph_user": "cinder-backup", "backup_ceph_pool": "backups",
                "backup_ceph_conf": "/etc/ceph/ceph.conf"},
    "ceph": {"rbd_user": "cinder", "rbd_pool": "volumes"},
    "ceph-dr": {"rbd_user": "cinder", "rbd_pool": "volumes", "rbd_ceph_conf": "/etc/ceph/dr.conf"},
}
FILES = {PATHS["cinder_conf"]: CINDER}
KEYRING = "/etc/ceph/ceph.client.cinder-backup.keyring"


@pytest.fixture
def calls():
    """The calls a run made to the states it delegates to."""
    return []


@pytest.fixture
def configure_loader_modules(calls):
    opts = {"test": False}
    def file_absent(name):
        calls.append(("file.absent", name))
        if opts["test"]:
            return {"name": name, "result": None, "changes": {"removed": name},
                    "comment": f"File {name} is set for removal"}
        return {"name": name, "result": True, "changes": {"removed": name},
                "comment": f"Removed file {name}"}

    def secret_absent(name, **kwargs):
        calls.append(("virtsecret.absent", name, kwargs))
        return {"name": name, "result": True, "changes": {}, "comment": "absent"}

    def ini_get(path, unmask=False):
        return FILES.get(path)

    salt = {
        "slsutil.renderer": lambda *args, **kwargs: {"paths": PATHS, "roles": ["controller"]},
        "openstack_ini.get": ini_get,
    }
    salt["ceph_openstack.client_uses"] = lambda *args, **kwargs: module.client_uses(
        *args, **kwargs)
    return {
        state: {"__salt__": salt, "__opts__": opts,
                "__states__": {"file.absent": file_absent,
                               "virtsecret.absent": secret_absent}},
        module: {"__salt__": salt},
        rotation: {"__pillar__": {}, "__opts__": opts},
    }


def test_client_uses_names_each_file_and_cluster():
    assert module.client_uses("cinder-backup") == [
        "/etc/cinder/cinder.conf: client.cinder-backup on pool backups"]
    assert module.client_uses("cinder") == [
        "/etc/cinder/cinder.conf: client.cinder on pool volumes"]
    assert module.client_uses("cinder", ceph_cluster="dr") == [
        "/etc/cinder/cinder.conf: client.cinder on pool volumes"]
    assert module.client_uses("glance") == []
    assert module.client_uses("cinder-backup", ceph_cluster="dr") == []


def test_a_keyring_still_used_is_kept_naming_the_file(calls, tmp_path):
    keyring = tmp_path / "ceph.client.cinder-backup.keyring"
    keyring.write_text("[client.cinder-backup]\n")
    ret = state.keyring_absent(str(keyring), "cinder-backup")
    assert ret["result"] is False and ret["changes"] == {}
    assert "client.cinder-backup is marked absent in pillar, but " in ret["comment"]
    assert "/etc/cinder/cinder.conf: client.cinder-backup on pool backups" in ret["comment"]
    assert calls == [] and keyring.exists()


def test_a_keyring_no_file_uses_is_removed(calls, tmp_path):
    keyring = tmp_path / "ceph.client.glance.keyring"
    keyring.write_text("[client.glance]\n")
    ret = state.keyring_absent(str(keyring), "glance")
    assert ret["result"] is True
    assert calls == [("file.absent", str(keyring))]


def test_a_missing_keyring_asks_no_file(calls):
    with mock.patch.dict(state.__salt__, {"ceph_openstack.client_uses": None}):
        ret = state.keyring_absent(KEYRING, "cinder-backup")  # does not exist here
    assert ret["result"] is True
    assert calls == [("file.absent", KEYRING)]


def test_test_mode_predicts_the_removal_after_this_runs_file_changes(calls, tmp_path):
    keyring = tmp_path / "ceph.client.cinder-backup.keyring"
    keyring.write_text("[client.cinder-backup]\n")
    state.__opts__["test"] = True
    # cinder.conf would change earlier in this run: its use is not a refusal yet.
    running = {"openstack_ini_|-ceph_openstack-cinder-conf_|-/etc/cinder/cinder.conf_|-"
               "options_present": {"name": "/etc/cinder/cinder.conf", "result": None,
                                   "changes": {"DEFAULT/backup_ceph_user": {}}}}
    with mock.patch.object(state, "__running__", running, create=True):
        ret = state.keyring_absent(str(keyring), "cinder-backup")
    assert ret["result"] is None and ret["changes"] == {"removed": str(keyring)}
    assert "once this run has changed /etc/cinder/cinder.conf" in ret["comment"]
    # Nothing pending: the refusal is predicted.
    with mock.patch.object(state, "__running__", {}, create=True):
        ret = state.keyring_absent(str(keyring), "cinder-backup")
    assert ret["result"] is False
    assert keyring.exists()


def test_an_absent_secret_is_undefined_by_virtsecret_absent(calls):
    ret = state.libvirt_secret_absent("691C3607-7ca3-433a-a0c0-5805cea8afa0",
                                      uri="qemu:///session")
    assert ret["result"] is True
    assert calls == [("virtsecret.absent", "691C3607-7ca3-433a-a0c0-5805cea8afa0",
                      {"uri": "qemu:///session"})]


def test_without_libvirt_there_is_no_secret_to_undefine(calls):
    with mock.patch.dict(state.__states__, clear=True):
        ret = state.libvirt_secret_absent("691c3607-7ca3-433a-a0c0-5805cea8afa0")
    assert ret["result"] is True and ret["changes"] == {}
    assert "libvirt is not installed here" in ret["comment"]
    assert calls == []


def test_an_absent_client_is_not_rotated():
    pillar = {"ceph_openstack": {"clients": {"cinder": {"caps": {}, "roles": ["compute"]},
                                             "cinder-backup": {"absent": True}}}}
    with mock.patch.dict(rotation.__pillar__, pillar):
        problems = rotation._request_problems({"clients": ["cinder", "cinder-backup"]})
    assert problems == [
        "ceph_openstack_rotate:clients: cinder-backup is marked absent "
        "(ceph_openstack:clients:cinder-backup:absent): it is being withdrawn, not rotated"]
