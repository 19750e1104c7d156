"""
Unit tests of the virtsecret state module over a small in-memory libvirt that
behaves like the execution module (the same refusals as the real daemon).
"""

import base64
import copy
import struct
from unittest.mock import MagicMock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from salt.exceptions import CommandExecutionError

from tests.support.modules import load



state = load("salt/_states/virtsecret.py", "virtsecret_state_under_test")
cephx = load("salt/_utils/cephx.py", "cephx_for_virtsecret_state_tests")

UUID = "691c3607-7ca3-433a-a0c0-5805cea8afa0"
OTHER = "11111111-2222-3333-4444-555555555555"
KEY = "AQBhAAAAAAAAABAAvHOq2W2wbY4Wcf7yCmXw3Q=="
KEY2 = "AQCYt+5kAAAAABAAUVlpNpcjwE+VTpr3QMDclw=="
USAGE = "client.cinder secret"
FUNCS = ("get", "find", "value_matches", "define", "set_value", "undefine", "users")


class World:
    """The libvirt secrets, as the execution module shows them."""

    def __init__(self, secrets=None, domains=None):
        # uuid -> {usage, private, ephemeral, description, value}
        self.secrets = secrets or {}
        # domain name -> the secret UUIDs its XML references (running or shut off alike)
        self.domains = domains or {}
        self.fail = {}  # function name -> error to raise

    def _maybe_fail(self, name):
        if name in self.fail:
            raise CommandExecutionError(self.fail[name])

    def get(self, uuid, **_conn):
        self._maybe_fail("get")
        sec = self.secrets.get(uuid)
        if sec is None:
            return None
        return {
            "uuid": uuid,
            "usage_type": sec.get("usage_type", "ceph"),
            "usage": sec["usage"],
            "ephemeral": sec["ephemeral"],
            "private": sec["private"],
            "description": sec.get("description"),
        }

    def find(self, usage, **_conn):
        self._maybe_fail("find")
        for uuid, sec in self.secrets.items():
            if sec.get("usage_type", "ceph") == "ceph" and sec["usage"] == usage:
                return uuid
        return None

    def value_matches(self, uuid, value, **_conn):
        self._maybe_fail("value_matches")
        sec = self.secrets[uuid]
        if sec["private"]:
            return None
        return sec["value"] == value

    def define(self, uuid, usage, private=False, ephemeral=False, description=None, **_conn):
        self._maybe_fail("define")
        holder = self.find(usage)
        if holder not in (None, uuid) or (
            uuid in self.secrets and self.secrets[uuid]["usage"] != usage
        ):
            raise CommandExecutionError("internal error: already defined for use with ...")
        old = self.secrets.get(uuid)
        if old and old["private"] and not private:
            raise CommandExecutionError("cannot change private flag on existing secret")
        self.secrets[uuid] = {
            "usage": usage,
            "private": private,
            "ephemeral": ephemeral,
            "description": description,
            "value": old["value"] if old else None,
        }
        return True

    def set_value(self, uuid, value, **_conn):
        self._maybe_fail("set_value")
        self.secrets[uuid]["value"] = value
        return True

    def undefine(self, uuid, **_conn):
        self._maybe_fail("undefine")
        return self.secrets.pop(uuid, None) is not None

    def users(self, uuid, **_conn):
        self._maybe_fail("users")
        return sorted(name for name, uuids in self.domains.items() if uuid in uuids)


def _secret(usage=USAGE, value=KEY, private=False, ephemeral=False, description=None):
    return {
        "usage": usage,
        "value": value,
        "private": private,
        "ephemeral": ephemeral,
        "description": description,
    }


@pytest.fixture
def world():
    return World()


@pytest.fixture
def salt_funcs(world):
    return {f"virtsecret.{name}": MagicMock(side_effect=getattr(world, name)) for name in FUNCS}


@pytest.fixture
def opts():
    return {"test": False}


@pytest.fixture
def configure_loader_modules(salt_funcs, opts):
    return {
        state: {
            "__salt__": salt_funcs,
            "__opts__": opts,
        }
    }


def _called(salt_funcs):
    return {name for name in FUNCS if salt_funcs[f"virtsecret.{name}"].called}


def _assert_key_hidden(ret, *keys):
    for key in keys or (KEY, KEY2):
        assert key not in str(ret)


# --- present --------------------------------------------------------------------------------------


def test_virtual():
    assert state.__virtual__() == "virtsecret"


def test_present_defines_and_sets(world, salt_funcs):
    ret = state.present(UUID, usage=USAGE, value=KEY)
    assert ret["result"] is True
    assert ret["changes"] == {
        "defined": {"old": None, "new": UUID},
        "value": {"old": None, "new": "set"},
    }
    assert world.secrets[UUID]["value"] == KEY
    assert world.secrets[UUID]["usage"] == USAGE
    _assert_key_hidden(ret)
    # a new secret has nothing to compare with
    assert not salt_funcs["virtsecret.value_matches"].called


def test_present_test_mode_predicts_and_changes_nothing(world, salt_funcs, opts):
    opts["test"] = True
    ret = state.present(UUID, usage=USAGE, value=KEY)
    assert ret["result"] is None
    assert ret["changes"] == {
        "defined": {"old": None, "new": UUID},
        "value": {"old": None, "new": "set"},
    }
    assert world.secrets == {}
    assert _called(salt_funcs) == {"get", "find"}


def test_present_in_desired_state(world, salt_funcs, opts):
    world.secrets[UUID] = _secret()
    for test in (False, True):
        opts["test"] = test
        ret = state.present(UUID, usage=USAGE, value=KEY)
        assert ret["result"] is True
        assert ret["changes"] == {}
        assert "desired state" in ret["comment"]
    assert _called(salt_funcs) == {"get", "find", "value_matches"}


def test_present_rotation_sets_in_place(world, salt_funcs):
    world.secrets[UUID] = _secret(value=KEY)
    ret = state.present(UUID, usage=USAGE, value=KEY2)
    assert ret["result"] is True
    assert ret["changes"] == {"value": {"old": "different", "new": "changed"}}
    assert world.secrets[UUID]["value"] == KEY2
    # in place: never undefined, never redefined
    assert not salt_funcs["virtsecret.undefine"].called
    assert not salt_funcs["virtsecret.define"].called
    _assert_key_hidden(ret)


def test_present_value_none_leaves_the_value_alone(world, salt_funcs):
    world.secrets[UUID] = _secret(value=KEY)
    ret = state.present(UUID, usage=USAGE)
    assert ret["result"] is True and ret["changes"] == {}
    assert not salt_funcs["virtsecret.value_matches"].called


def test_present_uppercase_uuid_is_the_same_secret(world):
    world.secrets[UUID] = _secret()
    ret = state.present(UUID.upper(), usage=USAGE, value=KEY)
    assert ret["result"] is True and ret["changes"] == {}
    assert ret["name"] == UUID.upper()


def test_present_private_secret_sets_and_says_so(world, salt_funcs, opts):
    world.secrets[UUID] = _secret(private=True)
    opts["test"] = True
    ret = state.present(UUID, usage=USAGE, value=KEY, private=True)
    assert ret["result"] is None
    assert ret["changes"] == {"value": {"old": "unknown (private)", "new": "set"}}
    assert not salt_funcs["virtsecret.set_value"].called
    opts["test"] = False
    ret = state.present(UUID, usage=USAGE, value=KEY2, private=True)
    assert ret["result"] is True
    assert ret["changes"] == {"value": {"old": "unknown (private)", "new": "set"}}
    assert "value set (private secret: cannot compare)" in ret["comment"]
    assert world.secrets[UUID]["value"] == KEY2
    _assert_key_hidden(ret)


def test_present_private_cannot_be_switched_off(world, salt_funcs):
    world.secrets[UUID] = _secret(private=True)
    ret = state.present(UUID, usage=USAGE, value=KEY, private=False)
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert "private" in ret["comment"] and UUID in ret["comment"]
    assert not {"define", "set_value", "undefine"} & _called(salt_funcs)


def test_present_making_private_compares_first_then_redefines(world, salt_funcs):
    world.secrets[UUID] = _secret(value=KEY, description="set by hand")
    ret = state.present(UUID, usage=USAGE, value=KEY2, private=True)
    assert ret["result"] is True
    assert ret["changes"] == {
        "private": {"old": False, "new": True},
        "value": {"old": "different", "new": "changed"},
    }
    sec = world.secrets[UUID]
    assert sec["private"] is True and sec["value"] == KEY2
    assert sec["description"] == "set by hand"  # a redefinition keeps the description


def test_present_flag_change_keeps_value(world, salt_funcs):
    world.secrets[UUID] = _secret(value=KEY)
    ret = state.present(UUID, usage=USAGE, value=KEY, ephemeral=True)
    assert ret["changes"] == {"ephemeral": {"old": False, "new": True}}
    assert not salt_funcs["virtsecret.set_value"].called
    assert world.secrets[UUID]["value"] == KEY


@pytest.mark.parametrize("test", [False, True])
def test_present_usage_held_by_another_uuid(world, salt_funcs, opts, test):
    opts["test"] = test
    world.secrets[OTHER] = _secret()
    before = copy.deepcopy(world.secrets)
    ret = state.present(UUID, usage=USAGE, value=KEY2)
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert OTHER in ret["comment"] and UUID in ret["comment"] and USAGE in ret["comment"]
    assert world.secrets == before
    assert not {"define", "set_value", "undefine"} & _called(salt_funcs)


def test_present_replace_undefines_an_unused_holder(world, salt_funcs, opts):
    """A changed UUID: test=True predicts exactly what the real run then does."""
    world.secrets[OTHER] = _secret()
    opts["test"] = True
    predicted = state.present(UUID, usage=USAGE, value=KEY, replace=True)
    assert predicted["result"] is None
    assert OTHER in world.secrets and UUID not in world.secrets
    assert not {"define", "set_value", "undefine"} & _called(salt_funcs)
    opts["test"] = False
    ret = state.present(UUID, usage=USAGE, value=KEY, replace=True)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == predicted["changes"] == {
        "replaced": {"old": OTHER, "new": UUID},
        "defined": {"old": None, "new": UUID},
        "value": {"old": None, "new": "set"},
    }
    assert ret["comment"] == (
        f"unused secret {OTHER} undefined; secret {UUID} defined with usage "
        f"ceph {USAGE!r}; value set"
    )
    assert set(world.secrets) == {UUID} and world.secrets[UUID]["value"] == KEY
    assert salt_funcs["virtsecret.users"].call_args.args == (OTHER,)
    _assert_key_hidden(ret)
    assert state.present(UUID, usage=USAGE, value=KEY, replace=True)["changes"] == {}


@pytest.mark.parametrize("test", [False, True])
def test_present_replace_refuses_a_holder_in_use(world, salt_funcs, opts, test):
    opts["test"] = test
    world.secrets[OTHER] = _secret()
    world.domains = {"web": {OTHER}, "db": {OTHER}}
    before = copy.deepcopy(world.secrets)
    ret = state.present(UUID, usage=USAGE, value=KEY, replace=True)
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"] == (
        f"usage ceph {USAGE!r} is already held by secret {OTHER}, which domains db, web use; "
        f"refusing to replace it with secret {UUID} (keep the old UUID until those guests "
        "use the new one); nothing changed"
    )
    assert world.secrets == before
    assert not {"define", "set_value", "undefine"} & _called(salt_funcs)


def test_present_replace_users_error_is_a_clean_failure(world, salt_funcs):
    world.secrets[OTHER] = _secret()
    world.fail["users"] = "libvirt at qemu:///system did not answer within 10 s (domain list)"
    ret = state.present(UUID, usage=USAGE, value=KEY, replace=True)
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"] == world.fail["users"]
    assert OTHER in world.secrets


def test_present_replace_then_define_failure_says_what_was_done(world, salt_funcs):
    world.secrets[OTHER] = _secret()
    world.fail["define"] = "internal error: cannot define"
    ret = state.present(UUID, usage=USAGE, value=KEY, replace=True)
    assert ret["result"] is False
    assert ret["changes"] == {"replaced": {"old": OTHER, "new": UUID}}
    assert ret["comment"] == "internal error: cannot define (already done: replaced)"


def test_present_replace_never_undefines_when_the_uuid_has_another_usage(world, salt_funcs):
    world.secrets[OTHER] = _secret()
    world.secrets[UUID] = _secret(usage="client.nova secret")
    ret = state.present(UUID, usage=USAGE, value=KEY, replace=True)
    assert ret["result"] is False and "client.nova secret" in ret["comment"]
    assert set(world.secrets) == {OTHER, UUID}
    assert not {"users", "undefine"} & _called(salt_funcs)


@pytest.mark.parametrize("test", [False, True])
def test_present_uuid_held_with_another_usage(world, salt_funcs, opts, test):
    opts["test"] = test
    world.secrets[UUID] = _secret(usage="client.nova secret")
    before = copy.deepcopy(world.secrets)
    ret = state.present(UUID, usage=USAGE, value=KEY2)
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert UUID in ret["comment"]
    assert "client.nova secret" in ret["comment"] and USAGE in ret["comment"]
    assert world.secrets == before
    assert not {"define", "set_value", "undefine"} & _called(salt_funcs)


def test_present_uuid_held_with_another_usage_type(world):
    world.secrets[UUID] = _secret(usage="/var/lib/img")
    world.secrets[UUID]["usage_type"] = "volume"
    ret = state.present(UUID, usage=USAGE, value=KEY)
    assert ret["result"] is False
    assert "volume '/var/lib/img'" in ret["comment"]


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"name": "691c3607-7ca3-433a-a0c0-5805cea8afa"}, "name"),
        ({"name": "691c36077ca3433aa0c05805cea8afa0"}, "name"),
        ({"name": UUID + "\n"}, "name"),
        ({"name": None}, "name"),
        ({"value": "c2VjcmV0"}, "value"),
        ({"value": KEY[:-4] + "AAA="}, "value"),
        ({"value": 42}, "value"),
        ({"usage": ""}, "usage"),
        ({"usage": "a\nb"}, "usage"),
        ({"usage": " padded"}, "usage"),
        ({"private": "no"}, "private"),
        ({"ephemeral": 1}, "ephemeral"),
        ({"replace": "yes"}, "replace"),
    ],
)
def test_present_bad_input_fails_before_any_call(salt_funcs, kwargs, named):
    args = {"name": UUID, "usage": USAGE, "value": KEY}
    args.update(kwargs)
    ret = state.present(**args)
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert ret["comment"].startswith(named)
    assert _called(salt_funcs) == set()
    if isinstance(kwargs.get("value"), str):
        assert kwargs["value"] not in ret["comment"]


@pytest.mark.parametrize("func", ["get", "find", "value_matches"])
def test_present_lookup_errors_are_clean_failures(world, salt_funcs, func):
    world.secrets[UUID] = _secret(value=KEY)
    world.fail[func] = "libvirt at qemu:///system did not answer within 10 s"
    ret = state.present(UUID, usage=USAGE, value=KEY2)
    assert ret == {
        "name": UUID,
        "result": False,
        "changes": {},
        "comment": "libvirt at qemu:///system did not answer within 10 s",
    }


def test_present_set_value_failure_reports_what_was_done(world):
    world.fail["set_value"] = "virsh at qemu:///system: set value failed"
    ret = state.present(UUID, usage=USAGE, value=KEY)
    assert ret["result"] is False
    assert ret["changes"] == {"defined": {"old": None, "new": UUID}}
    assert "set value failed" in ret["comment"] and "already done: defined" in ret["comment"]


def test_present_passes_connection_options(salt_funcs):
    state.present(UUID, usage=USAGE, value=KEY, uri="qemu:///x", backend="virsh", timeout=3)
    for name in ("get", "find", "define", "set_value"):
        kwargs = salt_funcs[f"virtsecret.{name}"].call_args.kwargs
        assert (kwargs["uri"], kwargs["backend"], kwargs["timeout"]) == ("qemu:///x", "virsh", 3)


# --- absent ---------------------------------------------------------------------------------------


def test_absent(world, salt_funcs, opts):
    world.secrets[UUID] = _secret()
    opts["test"] = True
    ret = state.absent(UUID)
    assert ret["result"] is None
    assert ret["changes"] == {"defined": {"old": UUID, "new": None}}
    assert UUID in world.secrets
    opts["test"] = False
    ret = state.absent(UUID)
    assert ret["result"] is True
    assert ret["changes"] == {"defined": {"old": UUID, "new": None}}
    assert UUID not in world.secrets
    for test in (False, True):
        opts["test"] = test
        ret = state.absent(UUID)
        assert ret["result"] is True and ret["changes"] == {}


def test_absent_bad_uuid_and_errors(world, salt_funcs):
    ret = state.absent("nope")
    assert ret["result"] is False and ret["comment"].startswith("name")
    ret = state.absent(UUID, force="yes")
    assert ret["result"] is False and ret["comment"].startswith("force must be true or false")
    assert _called(salt_funcs) == set()
    world.fail["get"] = "cannot connect"
    ret = state.absent(UUID)
    assert ret["result"] is False and ret["comment"] == "cannot connect"


def test_absent_unused_secret_is_undefined(world, salt_funcs):
    world.secrets[UUID] = _secret()
    world.domains = {"web": {OTHER}, "plain": set()}  # another secret's user does not count
    ret = state.absent(UUID)
    assert ret["result"] is True and UUID not in world.secrets
    assert salt_funcs["virtsecret.users"].call_args.args == (UUID,)


@pytest.mark.parametrize("test", [False, True])
def test_absent_refuses_a_secret_in_use(world, salt_funcs, opts, test):
    """Refused (and predicted refused under test=True), naming every user, changing nothing."""
    opts["test"] = test
    world.secrets[UUID] = _secret()
    world.domains = {"web": {UUID}, "db": {UUID, OTHER}, "other": {OTHER}}
    ret = state.absent(UUID.upper())
    assert ret == {
        "name": UUID.upper(),
        "result": False,
        "changes": {},
        "comment": f"secret {UUID} is used by domains db, web; refusing to undefine it "
        "(force=True to remove it anyway)",
    }
    assert UUID in world.secrets
    assert "undefine" not in _called(salt_funcs)


def test_absent_force_undefines_a_secret_in_use(world, salt_funcs, opts):
    world.secrets[UUID] = _secret()
    world.domains = {"web": {UUID}}
    opts["test"] = True
    ret = state.absent(UUID, force=True)
    assert ret["result"] is None
    assert ret["changes"] == {"defined": {"old": UUID, "new": None}}
    opts["test"] = False
    ret = state.absent(UUID, force=True)
    assert ret["result"] is True
    assert ret["changes"] == {"defined": {"old": UUID, "new": None}}
    assert UUID not in world.secrets


def test_absent_users_error_is_a_clean_failure(world, salt_funcs):
    world.secrets[UUID] = _secret()
    world.fail["users"] = "libvirt at qemu:///system did not answer within 10 s (domain list)"
    ret = state.absent(UUID)
    assert ret == {
        "name": UUID,
        "result": False,
        "changes": {},
        "comment": "libvirt at qemu:///system did not answer within 10 s (domain list)",
    }
    assert UUID in world.secrets


def test_absent_passes_connection_options(world, salt_funcs):
    world.secrets[UUID] = _secret()
    state.absent(UUID, uri="qemu:///x", backend="virsh", timeout=3)
    for name in ("get", "users", "undefine"):
        kwargs = salt_funcs[f"virtsecret.{name}"].call_args.kwargs
        assert (kwargs["uri"], kwargs["backend"], kwargs["timeout"]) == ("qemu:///x", "virsh", 3)


# --- properties over arbitrary starting points ----------------------------------------------------


def _key(stamp, secret):
    return base64.b64encode(struct.pack("<HIIH", 1, stamp, 0, 16) + secret).decode()


_KEYS = st.builds(_key, st.integers(0, 2**32 - 1), st.binary(min_size=16, max_size=16))
_USAGES = st.sampled_from([USAGE, "client.nova secret", "client.glance secret"])
_UUIDS = st.sampled_from([UUID, OTHER])
_SECRETS = st.dictionaries(
    _UUIDS,
    st.fixed_dictionaries(
        {
            "usage": _USAGES,
            "value": st.one_of(st.none(), _KEYS),
            "private": st.booleans(),
            "ephemeral": st.booleans(),
            "description": st.none(),
        }
    ),
    max_size=2,
).filter(lambda secs: len({sec["usage"] for sec in secs.values()}) == len(secs))


def _run(world, test, **kwargs):
    funcs = {f"virtsecret.{name}": MagicMock(side_effect=getattr(world, name)) for name in FUNCS}
    state.__salt__.clear()
    state.__salt__.update(funcs)
    state.__opts__["test"] = test
    return state.present(**kwargs)


@settings(max_examples=300, deadline=None)
@given(
    secrets=_SECRETS,
    name=_UUIDS,
    usage=_USAGES,
    value=_KEYS,
    private=st.booleans(),
    ephemeral=st.booleans(),
)
def test_present_properties(secrets, name, usage, value, private, ephemeral):
    kwargs = {
        "name": name,
        "usage": usage,
        "value": value,
        "private": private,
        "ephemeral": ephemeral,
    }
    world = World(copy.deepcopy(secrets))

    predicted = _run(world, True, **kwargs)
    assert world.secrets == secrets, "test=True changed something"
    done = _run(world, False, **kwargs)

    for ret in (predicted, done):
        _assert_key_hidden(ret, value, *(sec["value"] for sec in secrets.values() if sec["value"]))
    if done["result"] is False:
        assert predicted["result"] is False
        assert done["changes"] == {} and world.secrets == secrets
        return
    assert done["result"] is True
    assert predicted["changes"] == done["changes"]
    assert predicted["result"] is (None if done["changes"] else True)

    sec = world.secrets[name]
    assert (sec["usage"], sec["private"], sec["ephemeral"], sec["value"]) == (
        usage,
        private,
        ephemeral,
        value,
    )
    again = _run(world, False, **kwargs)
    if private:  # cannot compare: says so
        assert again["changes"] == {"value": {"old": "unknown (private)", "new": "set"}}
    else:
        assert again["changes"] == {} and again["result"] is True
