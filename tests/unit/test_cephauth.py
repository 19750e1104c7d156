"""
Unit tests of the cephauth execution and state modules.

Only ``cmd.run_all`` is replaced: it answers with ceph CLI output recorded from
the lab cluster (data/cephauth/ceph_cli.json, see record.py there); the
``ceph_cli`` and ``cephx`` helpers are the real ones.
"""

import grp
import json
import os
import pathlib
import pwd
import stat
from unittest import mock

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.modules import load

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECORDED = json.loads((ROOT / "tests/unit/data/cephauth/ceph_cli.json").read_text())
USERS = {
    entry["entity"]: entry for entry in json.loads(RECORDED["auth_ls"]["stdout"])["auth_dump"]
}
CINDER_KEY = USERS["client.cinder"]["key"]
NEW_KEY = "AQBhAAAAAAAAABAAvHOq2W2wbY4Wcf7yCmXw3Q=="  # valid, not any user's
CINDER_CAPS = USERS["client.cinder"]["caps"]
#: ``ceph mon dump`` of fresh Pacific, Reef (no auth_allowed_ciphers) and Tentacle clusters.
MON_DUMPS = json.loads((ROOT / "tests/unit/data/cephauth/mon_dump.json").read_text())
#: By ``ceph-authtool --gen-print-key`` of Ceph 20.2.4; nobody's.
AES256K_KEY = "AgArlwprFNSDJyAAydTd8MCxWw2zQCpIoDNTAqSDKxJy2zOQV9HPL9Qtm+k="


cephx = load("salt/_utils/cephx.py", "cephx_under_test")
cephauth = load("salt/_modules/cephauth.py", "cephauth_mod_under_test")
cephauth_state = load("salt/_states/cephauth.py", "cephauth_state_under_test")


class FakeRunAll:
    """``cmd.run_all`` answering each ``ceph auth <verb>`` with its recorded output.

    ``responses`` maps a verb to a recording name and can be changed per test;
    ``calls`` keeps the argv, stdin and keywords of every call."""

    def __init__(self):
        self.calls = []
        self.responses = {
            "ls": "auth_ls",
            "add": "auth_add",
            "caps": "auth_caps",
            "del": "auth_del",
            "import": "auth_import",
        }
        self.release = "pacific"

    def __call__(self, cmd, **kwargs):
        args = cmd[cmd.index("--connect-timeout") + 2:]
        if args[-2:] == ["--format", "json"]:
            args = args[:-2]
        self.calls.append({"argv": cmd, "args": args, "stdin": kwargs.get("stdin"), **kwargs})
        if args == ["mon", "dump"]:
            return dict(MON_DUMPS[self.release])
        assert args[0] == "auth", args
        response = self.responses[args[1]]
        return dict(RECORDED[response]) if isinstance(response, str) else dict(response)

    def auth_calls(self):
        """The ``ceph auth ...`` calls (without the ``mon dump`` of a key-type check)."""
        return [call for call in self.calls if call["args"][0] == "auth"]

    def verbs(self):
        return [call["args"][1] for call in self.auth_calls()]


@pytest.fixture
def run_all():
    return FakeRunAll()


@pytest.fixture
def config():
    return {"ceph_openstack:conf": "/etc/ceph/ceph.conf"}


@pytest.fixture
def configure_loader_modules(run_all, config):
    salt_funcs = {
        "cmd.run_all": run_all,
        "config.get": lambda key, default=None: config.get(key, default),
    }
    public = ("get", "exists", "get_key", "create", "set_caps", "import_key", "delete",
              "keyring", "allowed_key_types")
    state_salt = {f"cephauth.{name}": getattr(cephauth, name) for name in public}
    return {
        cephauth: {"__salt__": salt_funcs, "__context__": {},
                   "__opts__": {}},
        cephauth_state: {"__salt__": state_salt, "__context__": {},
                         "__opts__": {"test": False}},
    }


@pytest.fixture
def test_mode():
    with mock.patch.dict(cephauth_state.__opts__, {"test": True}):
        yield


def _all_argv(run_all):
    return [arg for call in run_all.calls for arg in call["argv"]]


def _assert_no_key(key, *things):
    for thing in things:
        assert key not in json.dumps(thing, default=repr), "the key leaked"


# -- execution module: reads ---------------------------------------------------------


def test_get_returns_caps_without_key(run_all):
    user = cephauth.get("client.cinder")
    assert user == {"entity": "client.cinder", "caps": CINDER_CAPS}
    assert run_all.calls[0]["args"] == ["auth", "ls"]
    # Output of auth ls holds every key: it must never be logged.
    assert run_all.calls[0]["output_loglevel"] == "quiet"


def test_get_with_key_and_missing_user():
    assert cephauth.get("client.cinder", with_key=True)["key"] == CINDER_KEY
    assert cephauth.get("client.nobody-here") is None


def test_reads_share_one_auth_ls_per_connection(run_all):
    assert cephauth.exists("client.cinder")
    assert not cephauth.exists("client.nope")
    assert cephauth.get_key("client.glance") == USERS["client.glance"]["key"]
    cephauth.get("client.quoted")
    assert run_all.verbs() == ["ls"]
    cephauth.get("client.cinder", conf="/etc/ceph/other.conf")
    assert run_all.verbs() == ["ls", "ls"]
    assert "/etc/ceph/other.conf" in run_all.calls[1]["argv"]


def test_returned_caps_are_copies():
    cephauth.get("client.cinder")["caps"]["mon"] = "allow *"
    assert cephauth.get("client.cinder")["caps"] == CINDER_CAPS


def test_get_key_of_missing_user_fails():
    with pytest.raises(CommandExecutionError, match="client.nope does not exist"):
        cephauth.get_key("client.nope")


def test_keyring_text_with_given_key_needs_no_ceph(run_all):
    text = cephauth.keyring("client.cinder", key=NEW_KEY)
    assert text == f"[client.cinder]\n\tkey = {NEW_KEY}\n"
    assert run_all.calls == []


def test_keyring_text_from_ceph_with_caps():
    text = cephauth.keyring("client.quoted", with_caps=True)
    assert text == (
        "[client.quoted]\n"
        f"\tkey = {USERS['client.quoted']['key']}\n"
        '\tcaps mon = "allow command \\"osd blocklist\\", allow r"\n'
        '\tcaps osd = "allow rx pool=images"\n'
    )


# -- execution module: writes --------------------------------------------------------


def test_create_generates_key_with_auth_add(run_all):
    caps = {"osd": "profile rbd pool=images", "mon": "profile rbd"}
    ret = cephauth.create("client.new", caps)
    assert ret == {"entity": "client.new", "caps": caps}
    assert run_all.calls[1]["args"] == [
        "auth", "add", "client.new", "mon", "profile rbd", "osd", "profile rbd pool=images"
    ]
    # The write dropped the cache: the next read asks Ceph again.
    cephauth.exists("client.new")
    assert run_all.verbs() == ["ls", "add", "ls"]


def test_create_with_key_feeds_it_on_stdin(run_all):
    run_all.responses["add"] = "auth_add_with_key"
    ret = cephauth.create("client.new", {"mon": "profile rbd"}, key=NEW_KEY)
    assert "key" not in ret
    call = run_all.auth_calls()[1]
    # auth add checks the caps given on the command line (auth import would not).
    assert call["args"] == ["auth", "add", "client.new", "mon", "profile rbd", "-i", "-"]
    assert call["stdin"] == f"[client.new]\n\tkey = {NEW_KEY}\n"
    assert NEW_KEY not in _all_argv(run_all)


def test_create_with_key_reports_refused_caps(run_all):
    run_all.responses["add"] = "auth_add_bad_caps"
    with pytest.raises(CommandExecutionError, match="mon capability parse failed") as err:
        cephauth.create("client.bad", {"mon": "allow bogus"}, key=NEW_KEY)
    _assert_no_key(NEW_KEY, str(err.value), err.value.info)


def test_create_refuses_existing_user(run_all):
    with pytest.raises(CommandExecutionError, match="exists already"):
        cephauth.create("client.cinder", {"mon": "profile rbd"})
    assert run_all.verbs() == ["ls"]


# -- two mons creating the same user at once ------------------------------------------


def _created_by_another_mon(run_all, caps, add_answer):
    """After our ``auth ls``, another mon creates client.new with ``caps``: our ``auth add``
    answers ``add_answer`` and the next ``auth ls`` lists the user."""
    listing = json.loads(RECORDED["auth_ls"]["stdout"])
    listing["auth_dump"].append({"entity": "client.new", "key": NEW_KEY, "caps": caps})
    run_all.responses["add"] = add_answer
    original = run_all.__call__

    def call(cmd, **kwargs):
        ret = original(cmd, **kwargs)
        if run_all.verbs()[-1] == "add":
            run_all.responses["ls"] = {"retcode": 0, "stdout": json.dumps(listing), "stderr": ""}
        return ret

    return call


#: What the lab's ``auth add`` says of a user that exists with the same caps: nothing.
SILENT_ADD = {"retcode": 0, "stdout": "", "stderr": ""}


def test_create_of_a_user_created_meanwhile_with_the_same_caps_says_so(run_all):
    caps = {"mon": "profile rbd"}
    racing = _created_by_another_mon(run_all, caps, SILENT_ADD)
    with mock.patch.dict(cephauth.__salt__, {"cmd.run_all": racing}):
        with pytest.raises(CommandExecutionError, match="created meanwhile") as err:
            cephauth.create("client.new", caps)
    assert err.value.info == {"exists": True}


def test_create_of_a_user_created_meanwhile_with_other_caps_says_so(run_all):
    racing = _created_by_another_mon(run_all, {"mon": "allow r"}, "auth_add_mismatch")
    with mock.patch.dict(cephauth.__salt__, {"cmd.run_all": racing}):
        with pytest.raises(CommandExecutionError, match="created meanwhile") as err:
            cephauth.create("client.new", {"mon": "profile rbd"})
    assert err.value.info == {"exists": True}
    assert run_all.verbs() == ["ls", "add", "ls"]


def test_present_converges_a_user_another_mon_created_meanwhile(run_all):
    caps = {"mon": "profile rbd"}
    racing = _created_by_another_mon(run_all, caps, SILENT_ADD)
    with mock.patch.dict(cephauth.__salt__, {"cmd.run_all": racing}):
        ret = cephauth_state.present("client.new", caps)
    assert ret == {"name": "client.new", "result": True, "changes": {},
                   "comment": "cephx user client.new is in the desired state"}


def test_present_sets_the_caps_of_a_user_created_meanwhile_with_others(run_all):
    racing = _created_by_another_mon(run_all, {"mon": "allow r"}, "auth_add_mismatch")
    with mock.patch.dict(cephauth.__salt__, {"cmd.run_all": racing}):
        ret = cephauth_state.present("client.new", {"mon": "profile rbd"})
    assert ret["result"] is True
    assert ret["changes"] == {"caps": {"old": {"mon": "allow r"}, "new": {"mon": "profile rbd"}}}
    assert run_all.verbs() == ["ls", "add", "ls", "caps"]
    _assert_no_key(NEW_KEY, ret)


def test_set_caps_sets_the_whole_set(run_all):
    caps = {"mon": "profile rbd", "osd": "profile rbd pool=volumes"}
    assert cephauth.set_caps("client.cinder", caps) == {"entity": "client.cinder", "caps": caps}
    assert run_all.calls[1]["args"] == [
        "auth", "caps", "client.cinder", "mon", "profile rbd", "osd", "profile rbd pool=volumes"
    ]


def test_set_caps_of_missing_user_fails_before_writing(run_all):
    with pytest.raises(CommandExecutionError, match="client.missing does not exist"):
        cephauth.set_caps("client.missing", {"mon": "allow r"})
    assert run_all.verbs() == ["ls"]


def test_set_caps_reports_ceph_refusal(run_all):
    run_all.responses["caps"] = "auth_caps_bad_grant"
    with pytest.raises(CommandExecutionError, match="mon capability parse failed") as err:
        cephauth.set_caps("client.cinder", {"mon": "allow bogus"})
    assert err.value.info["retcode"] == 22
    # A failed write may have changed something: the cache is dropped anyway.
    cephauth.exists("client.cinder")
    assert run_all.verbs() == ["ls", "caps", "ls"]


def test_import_key_keeps_existing_caps(run_all):
    ret = cephauth.import_key("client.quoted", NEW_KEY)
    assert ret == {"entity": "client.quoted", "caps": USERS["client.quoted"]["caps"]}
    stdin = run_all.auth_calls()[1]["stdin"]
    assert stdin == (
        f"[client.quoted]\n\tkey = {NEW_KEY}\n"
        '\tcaps mon = "allow command \\"osd blocklist\\", allow r"\n'
        '\tcaps osd = "allow rx pool=images"\n'
    )
    assert NEW_KEY not in _all_argv(run_all)


def test_import_key_of_missing_user_fails(run_all):
    with pytest.raises(CommandExecutionError, match="does not exist") as err:
        cephauth.import_key("client.missing", NEW_KEY)
    assert NEW_KEY not in str(err.value)
    assert run_all.verbs() == ["ls"]


def test_ceph_error_echoing_the_key_is_scrubbed(run_all):
    # Ceph echoes a keyring value it cannot parse ("val=not-a-key" in the recording);
    # here it echoes a (valid) key, as it would for any other parse error.
    recorded = RECORDED["auth_import_bad_key"]
    run_all.responses["import"] = dict(recorded,
                                       stderr=recorded["stderr"].replace("not-a-key", NEW_KEY))
    with pytest.raises(CommandExecutionError) as err:
        cephauth.import_key("client.cinder", NEW_KEY)
    assert "<key hidden>" in str(err.value)
    assert err.value.info["retcode"] == 22
    assert str(err.value).count("Additional info follows") == 1
    _assert_no_key(NEW_KEY, str(err.value), repr(err.value), err.value.info)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_delete(run_all):
    assert cephauth.delete("client.glance") is True
    assert run_all.calls[1]["args"] == ["auth", "del", "client.glance"]
    assert cephauth.delete("client.gone") is False
    assert run_all.verbs() == ["ls", "del", "ls"]


def test_delete_refuses_own_identity(run_all):
    with pytest.raises(CommandExecutionError, match="refusing to delete client.admin"):
        cephauth.delete("client.admin")
    with pytest.raises(CommandExecutionError, match="refusing"):
        cephauth.delete("client.glance", client_id="glance")
    assert run_all.calls == []


# -- execution module: bad input fails before any call -----------------------------------

BAD_ENTITIES = ["cinder", "client.", "client.a b", "client.x\n[client.admin]", "", None, 5]
BAD_CAPS = [
    ({"foo": "allow r"}, "unknown cap type 'foo'"),
    ({"mon": ""}, "caps.mon must be a non-empty string"),
    ({"mon": 5}, "caps.mon must be a non-empty string"),
    ({}, "non-empty mapping"),
    ("mon allow r", "non-empty mapping"),
    ({"mon": "allow r\n\tkey = x"}, "control characters"),
]
BAD_KEYS = ["abc", NEW_KEY[:-2], NEW_KEY + "A", "A" * 40, 12345, NEW_KEY[:-1] + "!"]


@pytest.mark.parametrize("entity", BAD_ENTITIES)
@pytest.mark.parametrize("call", [
    lambda e: cephauth.get(e),
    lambda e: cephauth.exists(e),
    lambda e: cephauth.get_key(e),
    lambda e: cephauth.create(e, {"mon": "allow r"}),
    lambda e: cephauth.set_caps(e, {"mon": "allow r"}),
    lambda e: cephauth.import_key(e, NEW_KEY),
    lambda e: cephauth.delete(e),
    lambda e: cephauth.keyring(e),
])
def test_bad_entity_fails_before_any_call(run_all, entity, call):
    with pytest.raises(CommandExecutionError, match="entity"):
        call(entity)
    assert run_all.calls == []


@pytest.mark.parametrize("caps,message", BAD_CAPS)
def test_bad_caps_fail_before_any_call(run_all, caps, message):
    for call in (lambda: cephauth.create("client.new", caps),
                 lambda: cephauth.create("client.new", caps, key=NEW_KEY),
                 lambda: cephauth.set_caps("client.cinder", caps)):
        with pytest.raises(CommandExecutionError, match=message):
            call()
    assert run_all.calls == []


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_key_fails_before_any_call_without_showing_it(run_all, key):
    for call in (lambda: cephauth.create("client.new", {"mon": "allow r"}, key=key),
                 lambda: cephauth.import_key("client.cinder", key),
                 lambda: cephauth.keyring("client.cinder", key=key)):
        with pytest.raises(CommandExecutionError, match="key is not a valid cephx key") as err:
            call()
        assert str(key) not in str(err.value)
    assert run_all.calls == []


def test_virtual_needs_the_ceph_cli():
    with mock.patch("salt.utils.path.which", return_value=None):
        assert cephauth.__virtual__() == (
            False, "cephauth: the ceph CLI is not installed (package ceph-common)"
        )
    with mock.patch("salt.utils.path.which", return_value="/usr/bin/ceph"):
        assert cephauth.__virtual__() == "cephauth"


# -- state: present / absent ---------------------------------------------------------

REORDERED_CINDER_CAPS = {
    "osd": "profile rbd-read-only pool=images,profile rbd pool=vms,  profile rbd pool=volumes",
    "mgr": "profile rbd pool=vms, profile rbd  pool=volumes",
    "mon": " profile rbd ",
}


def test_present_no_change_when_caps_only_reordered(run_all):
    ret = cephauth_state.present("client.cinder", REORDERED_CINDER_CAPS)
    assert ret == {"name": "client.cinder", "result": True, "changes": {},
                   "comment": "cephx user client.cinder is in the desired state"}
    assert run_all.verbs() == ["ls"]


def test_present_creates(run_all):
    caps = {"mon": "profile rbd"}
    ret = cephauth_state.present("client.new", caps)
    assert ret["result"] is True
    assert ret["changes"] == {"entity": {"old": None, "new": "client.new"},
                              "caps": {"old": None, "new": caps}}
    assert ret["comment"] == "cephx user client.new created"
    assert run_all.verbs() == ["ls", "add"]


def test_present_creates_with_key(run_all):
    run_all.responses["add"] = "auth_add_with_key"
    ret = cephauth_state.present("client.new", {"mon": "profile rbd"}, key=NEW_KEY)
    assert ret["changes"]["key"] == "changed"
    assert run_all.verbs() == ["ls", "add"]
    _assert_no_key(NEW_KEY, ret, _all_argv(run_all))


def test_present_sets_caps_exactly(run_all):
    caps = {"mon": "profile rbd", "osd": "profile rbd pool=volumes"}
    ret = cephauth_state.present("client.cinder", caps)
    assert ret["result"] is True
    assert ret["changes"] == {"caps": {"old": CINDER_CAPS, "new": caps}}
    assert ret["comment"] == "cephx user client.cinder: caps updated"
    assert run_all.calls[1]["args"][:3] == ["auth", "caps", "client.cinder"]


def test_present_changes_key_keeping_caps(run_all):
    ret = cephauth_state.present("client.cinder", REORDERED_CINDER_CAPS, key=NEW_KEY)
    assert ret["result"] is True
    assert ret["changes"] == {"key": "changed"}
    assert ret["comment"] == "cephx user client.cinder: key changed"
    # Equivalent caps are re-imported as Ceph holds them, not rewritten.
    assert run_all.auth_calls()[1]["stdin"] == cephx.keyring_text("client.cinder", NEW_KEY,
                                                                  CINDER_CAPS)
    _assert_no_key(NEW_KEY, ret, _all_argv(run_all))
    _assert_no_key(CINDER_KEY, ret)


def test_present_sets_caps_before_the_key(run_all):
    caps = {"mon": "allow r"}
    ret = cephauth_state.present("client.cinder", caps, key=NEW_KEY)
    assert ret["changes"] == {"caps": {"old": CINDER_CAPS, "new": caps}, "key": "changed"}
    assert ret["comment"] == "cephx user client.cinder: caps updated, key changed"
    # Ceph checks caps in `auth caps`, not in `auth import`: caps go first, and the
    # import re-reads them (the fake Ceph does not apply writes, so it sees the old ones).
    assert run_all.verbs() == ["ls", "caps", "ls", "import"]


def test_present_refused_caps_leave_the_key_alone(run_all):
    run_all.responses["caps"] = "auth_caps_bad_grant"
    ret = cephauth_state.present("client.cinder", {"mon": "allow bogus"}, key=NEW_KEY)
    assert ret["result"] is False and "mon capability parse failed" in ret["comment"]
    assert run_all.verbs() == ["ls", "caps"]


def test_present_same_key_is_no_change(run_all):
    ret = cephauth_state.present("client.cinder", CINDER_CAPS, key=CINDER_KEY)
    assert ret["result"] is True and ret["changes"] == {}
    _assert_no_key(CINDER_KEY, ret)


@pytest.mark.usefixtures("test_mode")
@pytest.mark.parametrize("name,caps,key,verb", [
    ("client.new", {"mon": "profile rbd"}, None, " would be created"),
    ("client.new", {"mon": "profile rbd"}, NEW_KEY, " would be created"),
    ("client.cinder", {"mon": "allow r"}, None, ": caps would be updated"),
    ("client.cinder", CINDER_CAPS, NEW_KEY, ": key would be changed"),
])
def test_present_test_mode_predicts_and_changes_nothing(run_all, name, caps, key, verb):
    predicted = cephauth_state.present(name, caps, key=key)
    assert predicted["result"] is None
    assert predicted["comment"] == f"cephx user {name}{verb}"
    assert run_all.verbs() == ["ls"]
    with mock.patch.dict(cephauth_state.__opts__, {"test": False}):
        cephauth.__context__.clear()
        real = cephauth_state.present(name, caps, key=key)
    assert real["changes"] == predicted["changes"]


@pytest.mark.usefixtures("test_mode")
def test_present_test_mode_no_change_is_true(run_all):
    ret = cephauth_state.present("client.cinder", REORDERED_CINDER_CAPS)
    assert ret["result"] is True and ret["changes"] == {}


@pytest.mark.parametrize("kwargs,message", [
    ({"name": "cinder", "caps": {"mon": "allow r"}},
     "name must be a cephx entity name such as 'client.cinder', not 'cinder'"),
    ({"name": "client.x", "caps": {"mon": "allow r", "rgw": "allow"}}, "unknown cap type 'rgw'"),
    ({"name": "client.x", "caps": None}, "caps must be a non-empty mapping"),
    ({"name": "client.x", "caps": {"mon": "allow r"}, "key": "AQB-short=="},
     "key is not a valid cephx key"),
])
def test_present_bad_input_fails_before_any_call(run_all, kwargs, message):
    ret = cephauth_state.present(**kwargs)
    assert ret["result"] is False and ret["changes"] == {}
    assert message in ret["comment"]
    assert run_all.calls == []
    assert "AQB-short" not in ret["comment"]


def test_present_reports_ceph_failure_without_traceback(run_all):
    run_all.responses["caps"] = "auth_caps_bad_grant"
    ret = cephauth_state.present("client.cinder", {"mon": "allow bogus"})
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith("ceph auth caps client.cinder failed on cluster 'ceph'")
    assert "mon capability parse failed" in ret["comment"]


def test_present_passes_connection_keywords(run_all):
    cephauth_state.present("client.cinder", CINDER_CAPS, cluster="openstack",
                           conf="/etc/ceph/openstack.conf", client_id="salt", timeout=3)
    argv = run_all.calls[0]["argv"]
    assert argv[:8] == ["ceph", "--cluster", "openstack", "--id", "salt",
                        "--conf", "/etc/ceph/openstack.conf", "--connect-timeout"]
    assert argv[8] == "3"


def test_absent(run_all):
    ret = cephauth_state.absent("client.glance")
    assert ret["result"] is True
    assert ret["changes"] == {"entity": {"old": "client.glance", "new": None}}
    assert run_all.verbs() == ["ls", "del"]
    ret = cephauth_state.absent("client.gone")
    assert ret["result"] is True and ret["changes"] == {}
    assert ret["comment"] == "cephx user client.gone is already absent"


@pytest.mark.usefixtures("test_mode")
def test_absent_test_mode(run_all):
    ret = cephauth_state.absent("client.glance")
    assert ret["result"] is None
    assert ret["changes"] == {"entity": {"old": "client.glance", "new": None}}
    assert run_all.verbs() == ["ls"]


def test_absent_refuses_own_identity(run_all):
    ret = cephauth_state.absent("client.admin")
    assert ret["result"] is False and "refusing to delete client.admin" in ret["comment"]
    assert run_all.verbs() == ["ls"]


def test_states_fail_cleanly_without_the_execution_module():
    with mock.patch.dict(cephauth_state.__salt__, {}, clear=True):
        ret = cephauth_state.present("client.x", {"mon": "allow r"})
    assert ret["result"] is False
    assert "cephauth execution module is not available" in ret["comment"]


# -- state: keyring_present ----------------------------------------------------------

NOBODY = pwd.getpwnam("nobody")
NOGROUP = grp.getgrnam("nogroup")


@pytest.fixture
def keyring_path(tmp_path):
    return str(tmp_path / "ceph.client.cinder.keyring")


def _keyring(name, **kwargs):
    kwargs.setdefault("entity", "client.cinder")
    return cephauth_state.keyring_present(name, **kwargs)


def test_keyring_present_writes_file_with_owner_and_mode(run_all, keyring_path):
    ret = _keyring(keyring_path, key=NEW_KEY, user="nobody", group="nogroup")
    assert ret["result"] is True
    assert ret["changes"] == {
        "file": {"old": None, "new": keyring_path},
        "mode": {"old": None, "new": "0640"},
        "user": {"old": None, "new": "nobody"},
        "group": {"old": None, "new": "nogroup"},
    }
    info = os.stat(keyring_path)
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert (info.st_uid, info.st_gid) == (NOBODY.pw_uid, NOGROUP.gr_gid)
    assert pathlib.Path(keyring_path).read_text() == f"[client.cinder]\n\tkey = {NEW_KEY}\n"
    assert os.listdir(os.path.dirname(keyring_path)) == ["ceph.client.cinder.keyring"]
    assert run_all.calls == []  # the key was given: no Ceph needed
    _assert_no_key(NEW_KEY, ret)

    again = _keyring(keyring_path, key=NEW_KEY, user="nobody", group="nogroup")
    assert again["result"] is True and again["changes"] == {}


def test_keyring_present_reports_key_mode_and_owner_changes(keyring_path):
    _keyring(keyring_path, key=CINDER_KEY, user="nobody", group="nogroup")
    ret = _keyring(keyring_path, key=NEW_KEY, user="root", group="root", mode="0600")
    assert ret["changes"] == {
        "key": "changed",
        "mode": {"old": "0640", "new": "0600"},
        "user": {"old": "nobody", "new": "root"},
        "group": {"old": "nogroup", "new": "root"},
    }
    info = os.stat(keyring_path)
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o600, 0, 0)
    _assert_no_key(NEW_KEY, ret)
    _assert_no_key(CINDER_KEY, ret)


def test_keyring_present_mode_only_change_keeps_owner(keyring_path):
    _keyring(keyring_path, key=NEW_KEY, user="nobody", group="nogroup")
    ret = _keyring(keyring_path, key=NEW_KEY, mode=600)  # Salt's YAML reads 0600 as 600
    assert ret["changes"] == {"mode": {"old": "0640", "new": "0600"}}
    info = os.stat(keyring_path)
    assert (info.st_uid, info.st_gid) == (NOBODY.pw_uid, NOGROUP.gr_gid)


def test_keyring_present_rewrites_other_content_without_a_diff(keyring_path):
    pathlib.Path(keyring_path).write_text(
        cephx.keyring_text("client.cinder", NEW_KEY, {"mon": "profile rbd"})
    )
    os.chmod(keyring_path, 0o640)
    ret = _keyring(keyring_path, key=NEW_KEY)
    assert ret["changes"] == {"content": "changed"}
    pathlib.Path(keyring_path).write_text(cephx.keyring_text("client.glance", NEW_KEY))
    ret = _keyring(keyring_path, key=NEW_KEY)
    assert ret["changes"] == {"entity": {"old": "client.glance", "new": "client.cinder"},
                              "content": "changed"}


def test_keyring_present_reads_key_from_ceph(run_all, keyring_path):
    ret = _keyring(keyring_path)
    assert ret["result"] is True
    assert pathlib.Path(keyring_path).read_text() == f"[client.cinder]\n\tkey = {CINDER_KEY}\n"
    assert run_all.verbs() == ["ls"]
    _assert_no_key(CINDER_KEY, ret)


def test_keyring_present_user_missing_in_ceph(run_all, keyring_path):
    ret = _keyring(keyring_path, entity="client.gone")
    assert ret["result"] is False
    assert "cephx user client.gone does not exist in Ceph" in ret["comment"]
    assert not os.path.exists(keyring_path)


@pytest.mark.usefixtures("test_mode")
def test_keyring_present_test_mode_changes_nothing(keyring_path):
    ret = _keyring(keyring_path, key=NEW_KEY, user="nobody", group="nogroup")
    assert ret["result"] is None
    assert ret["changes"]["file"] == {"old": None, "new": keyring_path}
    assert not os.path.exists(keyring_path)
    # A user a package would create in a real run is predicted, not an error.
    ret = _keyring(keyring_path, key=NEW_KEY, user="no-such-user-here")
    assert ret["result"] is None and "user no-such-user-here does not exist yet" in ret["comment"]
    ret = _keyring(keyring_path, entity="client.gone")
    assert ret["result"] is None and "does not exist in Ceph" in ret["comment"]


@pytest.mark.usefixtures("test_mode")
def test_keyring_present_test_mode_predicts_real_changes(keyring_path):
    with mock.patch.dict(cephauth_state.__opts__, {"test": False}):
        _keyring(keyring_path, key=CINDER_KEY, user="nobody", group="nogroup")
    predicted = _keyring(keyring_path, key=NEW_KEY, mode="0600")
    assert pathlib.Path(keyring_path).read_text().count(CINDER_KEY) == 1
    with mock.patch.dict(cephauth_state.__opts__, {"test": False}):
        real = _keyring(keyring_path, key=NEW_KEY, mode="0600")
    assert predicted["changes"] == real["changes"] == {
        "key": "changed", "mode": {"old": "0640", "new": "0600"}
    }


@pytest.mark.parametrize("kwargs,message", [
    ({"name": "relative/keyring"}, "name must be the absolute path"),
    ({"entity": "cinder"}, "entity must be a cephx entity name such as 'client.cinder'"),
    ({"key": "AQB-short=="}, "key is not a valid cephx key"),
    ({"mode": "0644"}, "mode 0644 would let every local user at the key"),
    ({"mode": "4640"}, "special bits"),
    ({"mode": "rw-r-----"}, "mode must be an octal file mode"),
    ({"user": "no-such-user-here"}, "user 'no-such-user-here' does not exist"),
    ({"group": "no-such-group-here"}, "group 'no-such-group-here' does not exist"),
])
def test_keyring_present_bad_input(run_all, keyring_path, kwargs, message):
    kwargs = {"name": keyring_path, "key": NEW_KEY, **kwargs}
    ret = _keyring(**kwargs)
    assert ret["result"] is False and message in ret["comment"]
    assert not os.path.exists(keyring_path)
    assert run_all.calls == []
    assert "AQB-short" not in ret["comment"]


def test_keyring_present_missing_directory(tmp_path):
    ret = _keyring(str(tmp_path / "nope" / "k.keyring"), key=NEW_KEY)
    assert ret["result"] is False and "directory" in ret["comment"]


def test_keyring_write_sets_owner_and_mode_before_the_rename(keyring_path):
    seen = {}
    real_replace = os.replace

    def replace(src, dst):
        info = os.stat(src)
        seen.update(dir=os.path.dirname(src), mode=stat.S_IMODE(info.st_mode),
                    owner=(info.st_uid, info.st_gid), text=pathlib.Path(src).read_text())
        return real_replace(src, dst)

    with mock.patch.object(cephauth_state.os, "replace", replace):
        _keyring(keyring_path, key=NEW_KEY, user="nobody", group="nogroup", mode="0600")
    assert seen["dir"] == os.path.dirname(keyring_path)
    assert seen["mode"] == 0o600
    assert seen["owner"] == (NOBODY.pw_uid, NOGROUP.gr_gid)
    assert seen["text"] == f"[client.cinder]\n\tkey = {NEW_KEY}\n"


def test_keyring_write_failure_leaves_no_temp_file(keyring_path):
    with mock.patch.object(cephauth_state.os, "replace", side_effect=OSError(28, "No space")):
        ret = _keyring(keyring_path, key=NEW_KEY)
    assert ret["result"] is False and ret["comment"] == f"cannot write {keyring_path}: No space"
    assert os.listdir(os.path.dirname(keyring_path)) == []


# -- key types the cluster accepts ---------------------------------------------------------


@pytest.mark.parametrize("release", ["pacific", "reef"])
def test_allowed_key_types_before_tentacle(run_all, release):
    run_all.release = release
    assert cephauth.allowed_key_types() == ["aes"]  # no such setting: AES only


def test_allowed_key_types_per_release(run_all):
    run_all.release = "tentacle"
    cephauth.__context__.clear()
    assert cephauth.allowed_key_types() == ["aes256k"]


def test_aes256k_key_is_created_and_imported_on_tentacle(run_all):
    run_all.release = "tentacle"
    cephauth.create("client.new", {"mon": "profile rbd"}, key=AES256K_KEY)
    cephauth.import_key("client.quoted", AES256K_KEY)
    assert run_all.verbs().count("add") == 1 and run_all.verbs().count("import") == 1
    assert AES256K_KEY not in _all_argv(run_all)


def test_aes256k_key_refused_before_tentacle(run_all):
    with pytest.raises(CommandExecutionError) as err:
        cephauth.import_key("client.quoted", AES256K_KEY)
    assert "allows only AES keys" in str(err.value)
    assert "import" not in run_all.verbs()
    _assert_no_key(AES256K_KEY, str(err.value))


@pytest.mark.parametrize("call", [
    lambda: cephauth.create("client.new", {"mon": "profile rbd"}, key=NEW_KEY),
    lambda: cephauth.import_key("client.quoted", NEW_KEY),
])
def test_aes_key_refused_before_any_write_where_only_aes256k_logs_in(run_all, call):
    run_all.release = "tentacle"
    with pytest.raises(CommandExecutionError) as err:
        call()
    assert "allows only AES256K" in str(err.value) and "--gen-print-key" in str(err.value)
    assert not {"add", "import"} & set(run_all.verbs())
    _assert_no_key(NEW_KEY, str(err.value))


def test_aes_key_still_imported_on_pacific(run_all):
    cephauth.create("client.new", {"mon": "profile rbd"}, key=NEW_KEY)
    assert "add" in run_all.verbs()


def test_present_refuses_unaccepted_key_type_and_changes_nothing(run_all):
    run_all.release = "tentacle"
    for test in (False, True):
        with mock.patch.dict(cephauth_state.__opts__, {"test": test}):
            ret = cephauth_state.present("client.new", {"mon": "profile rbd"}, key=NEW_KEY)
        assert ret["result"] is False and ret["changes"] == {}
        assert "allows only AES256K" in ret["comment"] and "client.new" in ret["comment"]
        _assert_no_key(NEW_KEY, ret)
    assert not {"add", "import", "caps"} & set(run_all.verbs())


def test_present_with_unchanged_key_needs_no_monmap(run_all):
    run_all.release = "tentacle"
    ret = cephauth_state.present("client.cinder", CINDER_CAPS, key=CINDER_KEY)
    assert ret["result"] is True and not ret["changes"]
    assert ["mon", "dump"] not in [call["args"] for call in run_all.calls]
