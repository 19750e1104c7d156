"""
Unit tests of cephauth's pending-key functions (key rotation), against a fake ``ceph``
CLI that behaves as measured on the lab (README "Key rotation"): only ``cmd.run_all`` is
replaced.
"""

import json

import pytest
from salt.exceptions import CommandExecutionError

from tests.unit.test_cephauth import AES256K_KEY, NEW_KEY, cephauth

OLD = NEW_KEY  # AES
ENTITY = "client.cinder"


class FakeCluster:
    """A cluster's auth database and monmap, driven through argv as ``ceph`` is."""

    def __init__(self, release=17, preferred="aes", allowed=("aes",)):
        self.release, self.preferred, self.allowed = release, preferred, list(allowed)
        self.users = {ENTITY: {"key": OLD, "pending": None}}
        self.config_keys = {}
        self.calls = []

    def _new_key(self):
        return AES256K_KEY if self.preferred == "aes256k" else OLD.replace("vHOq", "wHOq")

    def __call__(self, cmd, **kwargs):
        if cmd[0] == "ceph-authtool":
            self.calls.append(cmd)
            return {"retcode": 0, "stdout": OLD.replace("vHOq", "xHOq") + "\n", "stderr": ""}
        args = cmd[cmd.index("--connect-timeout") + 2:]
        if args[-2:] == ["--format", "json"]:
            args = args[:-2]
        self.calls.append(args)
        ok = {"retcode": 0, "stdout": "", "stderr": ""}
        if args == ["mon", "dump"]:
            dump = {"min_mon_release": self.release}
            if self.release >= 20:
                dump["auth_preferred_cipher"] = {"name": self.preferred}
                dump["auth_allowed_ciphers"] = [{"name": name} for name in self.allowed]
            return dict(ok, stdout=json.dumps(dump))
        if args[:3] == ["mon", "set", "auth_preferred_cipher"]:
            self.preferred = args[3]
            return ok
        if args[:2] == ["config-key", "get"]:
            if args[2] not in self.config_keys:
                return {"retcode": 2, "stdout": "", "stderr": "Error ENOENT"}
            return dict(ok, stdout=self.config_keys[args[2]])
        if args[:2] == ["config-key", "set"]:
            self.config_keys[args[2]] = args[3]
            return ok
        verb, entity = args[1], args[2]
        user = self.users[entity]
        if verb == "get":
            entry = {"entity": entity, "key": user["key"], "caps": {}}
            if user["pending"]:
                entry["pending_key"] = user["pending"]
            return dict(ok, stdout=json.dumps([entry]))
        if self.release < 17:
            return {"retcode": 22, "stdout": "", "stderr": "no valid command found"}
        if verb == "get-or-create-pending":
            user["pending"] = user["pending"] or self._new_key()
            pair = {"key": user["key"], "pending_key": user["pending"]}
            return dict(ok, stdout=json.dumps([pair]))
        if verb == "commit-pending":
            user["key"], user["pending"] = user["pending"] or user["key"], None
        elif verb == "clear-pending":
            user["pending"] = None
        return ok


@pytest.fixture
def cluster():
    return FakeCluster()


@pytest.fixture
def configure_loader_modules(cluster):
    return {cephauth: {"__salt__": {"cmd.run_all": cluster,
                                    "config.get": lambda key, default=None: default},
                       "__context__": {}, "__opts__": {}}}


def _argv_text(cluster):
    return json.dumps(cluster.calls)


def test_pending_keys_follow_min_mon_release(cluster):
    assert cephauth.pending_keys_supported() is True
    cluster.release = 16
    cephauth.__context__.clear()
    assert cephauth.pending_keys_supported() is False
    with pytest.raises(CommandExecutionError, match="no pending keys"):
        cephauth.create_pending(ENTITY)


def test_create_commit_and_clear_never_show_a_key(cluster):
    info = cephauth.create_pending(ENTITY)
    assert info["pending"]["type"] == "aes" and info["key"]["type"] == "aes"
    assert cephauth.create_pending(ENTITY) == info  # the same pending key again
    assert [c[1] for c in cluster.calls if c[0] == "auth"].count("get-or-create-pending") == 1
    pending = cluster.users[ENTITY]["pending"]
    assert cephauth.get_pending_key(ENTITY) == pending
    assert cephauth.commit_pending(ENTITY) is True
    assert cluster.users[ENTITY] == {"key": pending, "pending": None}
    assert cephauth.commit_pending(ENTITY) is False
    assert cephauth.clear_pending(ENTITY) is False
    for key in (OLD, pending):
        assert key not in json.dumps(info) and key not in _argv_text(cluster)


def test_upgraded_tentacle_gets_aes256k_and_keeps_its_preference(cluster):
    cluster.release, cluster.preferred, cluster.allowed = 20, "aes", ["aes", "aes256k"]
    info = cephauth.create_pending(ENTITY, key_type="aes256k")
    assert info["pending"]["type"] == "aes256k"
    assert cluster.preferred == "aes"  # set for the one command, then back
    sets = [c[3] for c in cluster.calls if c[:2] == ["mon", "set"]]
    assert sets == ["aes256k", "aes"]


def test_a_pending_key_of_another_type_is_made_again(cluster):
    cluster.release, cluster.allowed = 20, ["aes", "aes256k"]
    cephauth.create_pending(ENTITY)
    assert cephauth.key_info(ENTITY)["pending"]["type"] == "aes"
    assert cephauth.create_pending(ENTITY, key_type="aes256k")["pending"]["type"] == "aes256k"
    assert ["auth", "clear-pending", ENTITY] in cluster.calls


def test_rotation_record_round_trip(cluster):
    assert cephauth.rotation_record(ENTITY) is None
    record = cephauth.record_rotation(ENTITY)
    assert cephauth.rotation_record(ENTITY) == record
    assert record["key_created"] == cephauth.key_info(ENTITY)["key"]["created"]


def test_generate_key_reads_stdout_only(cluster):
    key = cephauth.generate_key()
    assert cephauth.key_info  # loaded
    assert key not in _argv_text(cluster)
    with pytest.raises(CommandExecutionError, match="key_type"):
        cephauth.generate_key(key_type="des")
