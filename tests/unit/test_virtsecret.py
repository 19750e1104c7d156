"""
Unit tests of the virtsecret execution module: loader dunders mocked, ``cmd.run_all``
(the virsh backend) and the libvirt binding (the API backend) replaced by fakes.
"""

import base64
import struct
import threading
import time
import types
import xml.etree.ElementTree as ET
from unittest.mock import MagicMock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from salt.exceptions import CommandExecutionError

from tests.support.modules import load



virtsecret = load("salt/_modules/virtsecret.py", "virtsecret_exec_under_test")
cephx = load("salt/_utils/cephx.py", "cephx_for_virtsecret_tests")

UUID = "691c3607-7ca3-433a-a0c0-5805cea8afa0"
KEY = "AQBhAAAAAAAAABAAvHOq2W2wbY4Wcf7yCmXw3Q=="
KEY2 = "AQCYt+5kAAAAABAAUVlpNpcjwE+VTpr3QMDclw=="
URI = "qemu+unix:///session?socket=/lab/sock"
USAGE = "client.cinder secret"


def _xml(uuid=UUID, usage=USAGE, private="no", ephemeral="no", extra=""):
    return (
        f"<secret ephemeral='{ephemeral}' private='{private}'><uuid>{uuid}</uuid>{extra}"
        f"<usage type='ceph'><name>{usage}</name></usage></secret>"
    )


def _ok(stdout=""):
    return {"retcode": 0, "stdout": stdout, "stderr": "", "pid": 1}


def _err(stderr, retcode=1):
    return {"retcode": retcode, "stdout": "", "stderr": stderr, "pid": 1}


@pytest.fixture
def run_all():
    return MagicMock(return_value=_ok())


@pytest.fixture
def config():
    """What ``config.get`` finds: the lab URI, the virsh backend unless a test says otherwise."""
    return {"ceph_openstack:libvirt:uri": URI, "ceph_openstack:libvirt:backend": "virsh"}


@pytest.fixture
def configure_loader_modules(run_all, config):
    return {
        virtsecret: {
            "__salt__": {
                "cmd.run_all": run_all,
                "config.get": lambda key, default=None: config.get(key, default),
            },
            "__opts__": {},
        }
    }


def _argv(call):
    return call.args[0]


# --- loading --------------------------------------------------------------------------------------


def test_virtual_needs_a_backend(monkeypatch):
    monkeypatch.setattr(virtsecret, "HAS_LIBVIRT", False)
    monkeypatch.setattr(virtsecret.salt.utils.path, "which", lambda name: None)
    result = virtsecret.__virtual__()
    assert result[0] is False and "virsh" in result[1]
    monkeypatch.setattr(virtsecret.salt.utils.path, "which", lambda name: "/usr/bin/virsh")
    assert virtsecret.__virtual__() == "virtsecret"
    monkeypatch.setattr(virtsecret.salt.utils.path, "which", lambda name: None)
    monkeypatch.setattr(virtsecret, "HAS_LIBVIRT", True)
    assert virtsecret.__virtual__() == "virtsecret"


def test_list_alias():
    assert virtsecret.__func_alias__ == {"list_": "list"}


# --- input checks before any call -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "691c3607-7ca3-433a-a0c0-5805cea8afa",
        "691c36077ca3433aa0c05805cea8afa0",
        "{691c3607-7ca3-433a-a0c0-5805cea8afa0}",
        "691c3607-7ca3-433a-a0c0-5805cea8afg0",
        " 691c3607-7ca3-433a-a0c0-5805cea8afa0",
        "691c3607-7ca3-433a-a0c0-5805cea8afa0\n",
        "",
        None,
        12,
    ],
)
def test_malformed_uuid_is_refused_before_any_call(run_all, bad):
    for func, args in (
        (virtsecret.get, ()),
        (virtsecret.define, (USAGE,)),
        (virtsecret.set_value, (KEY,)),
        (virtsecret.value_matches, (KEY,)),
        (virtsecret.undefine, ()),
    ):
        with pytest.raises(CommandExecutionError, match="^uuid must be a UUID"):
            func(bad, *args)
    run_all.assert_not_called()


def test_uuid_is_normalized_to_lower_case(run_all):
    run_all.return_value = _ok(_xml())
    virtsecret.get(UUID.upper())
    assert _argv(run_all.call_args)[-1] == UUID


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "two\nlines", "tab\there", " lead", "trail ", "nul\x00", None, 5],
)
def test_bad_usage_is_refused_before_any_call(run_all, bad):
    with pytest.raises(CommandExecutionError, match="^usage must"):
        virtsecret.define(UUID, bad)
    with pytest.raises(CommandExecutionError, match="^usage must"):
        virtsecret.find(bad)
    run_all.assert_not_called()


@pytest.mark.parametrize(
    "bad",
    [
        "not a key",
        KEY[:-4] + "AAA=",  # 28 bytes but a wrong secret length field
        KEY.rstrip("="),
        base64.b64encode(b"\x01\x00" + b"\x00" * 26).decode(),  # secret length 0
        "",
        None,
    ],
)
def test_bad_value_is_refused_before_any_call(run_all, bad):
    for func in (virtsecret.set_value, virtsecret.value_matches):
        with pytest.raises(CommandExecutionError, match="^value is not a valid cephx key") as exc:
            func(UUID, bad)
        if bad:
            assert bad not in str(exc.value)
    run_all.assert_not_called()


@pytest.mark.parametrize("flag", ["private", "ephemeral"])
def test_flags_must_be_booleans(run_all, flag):
    with pytest.raises(CommandExecutionError, match=f"^{flag} must be true or false"):
        virtsecret.define(UUID, USAGE, **{flag: "yes"})
    run_all.assert_not_called()


def test_description_must_be_xml_text(run_all):
    with pytest.raises(CommandExecutionError, match="^description"):
        virtsecret.define(UUID, USAGE, description="bell\x07")
    run_all.assert_not_called()


# --- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backend": "libvirtd"}, "backend must be one of"),
        ({"timeout": 0}, "timeout must be a positive"),
        ({"timeout": -1}, "timeout must be a positive"),
        ({"timeout": "10"}, "timeout must be a positive"),
        ({"timeout": True}, "timeout must be a positive"),
        ({"uri": ""}, "uri must be"),
    ],
)
def test_bad_options(run_all, kwargs, message):
    with pytest.raises(CommandExecutionError, match=message):
        virtsecret.get(UUID, **kwargs)
    run_all.assert_not_called()


def test_uri_and_timeout_come_from_config(run_all, config):
    config["ceph_openstack:libvirt:timeout"] = 7
    run_all.return_value = _ok(_xml())
    virtsecret.get(UUID)
    assert _argv(run_all.call_args)[:4] == ["virsh", "--quiet", "--connect", URI]
    assert run_all.call_args.kwargs["timeout"] == 7


def test_keywords_win_over_config(run_all):
    run_all.return_value = _ok(_xml())
    virtsecret.get(UUID, uri="qemu:///other", timeout=3)
    assert _argv(run_all.call_args)[3] == "qemu:///other"
    assert run_all.call_args.kwargs["timeout"] == 3


def test_default_uri_is_qemu_system(run_all, config):
    del config["ceph_openstack:libvirt:uri"]
    run_all.return_value = _ok(_xml())
    virtsecret.get(UUID)
    assert _argv(run_all.call_args)[3] == "qemu:///system"
    assert run_all.call_args.kwargs["timeout"] == virtsecret.DEFAULT_TIMEOUT


def test_auto_backend_falls_back_to_virsh(monkeypatch, run_all, config):
    config["ceph_openstack:libvirt:backend"] = "auto"
    monkeypatch.setattr(virtsecret, "HAS_LIBVIRT", False)
    run_all.return_value = _ok(_xml())
    virtsecret.get(UUID)
    run_all.assert_called_once()


def test_api_backend_needs_libvirt_python(monkeypatch, run_all):
    monkeypatch.setattr(virtsecret, "HAS_LIBVIRT", False)
    with pytest.raises(CommandExecutionError, match="libvirt-python"):
        virtsecret.get(UUID, backend="api")
    run_all.assert_not_called()


# --- XML ------------------------------------------------------------------------------------------


def test_secret_xml():
    root = ET.fromstring(virtsecret._secret_xml(UUID, USAGE, True, False, "for nova"))
    assert root.tag == "secret"
    assert root.get("private") == "yes" and root.get("ephemeral") == "no"
    assert root.findtext("uuid") == UUID
    assert root.findtext("description") == "for nova"
    assert root.find("usage").get("type") == "ceph"
    assert root.findtext("usage/name") == USAGE


def test_parse_xml_of_other_usage_types():
    info = virtsecret._parse_xml(
        f"<secret ephemeral='yes' private='no'><uuid>{UUID}</uuid>"
        "<usage type='volume'><volume>/var/lib/x.img</volume></usage></secret>"
    )
    assert info == {
        "uuid": UUID,
        "usage_type": "volume",
        "usage": "/var/lib/x.img",
        "ephemeral": True,
        "private": False,
        "description": None,
    }


_USAGE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60
).filter(lambda text: text == text.strip() and text.strip())


@settings(max_examples=200, deadline=None)
@given(usage=_USAGE_TEXT, private=st.booleans(), ephemeral=st.booleans())
def test_xml_round_trips_any_valid_usage(usage, private, ephemeral):
    virtsecret._check_usage(usage)
    info = virtsecret._parse_xml(virtsecret._secret_xml(UUID, usage, private, ephemeral))
    assert info["usage"] == usage
    assert (info["private"], info["ephemeral"]) == (private, ephemeral)


# --- virsh backend --------------------------------------------------------------------------------


def _assert_quiet_call(call):
    assert call.kwargs["python_shell"] is False
    assert call.kwargs["output_loglevel"] == "quiet"
    assert call.kwargs["timeout"] > 0


def test_virsh_set_value_feeds_the_value_on_stdin_only(run_all):
    assert virtsecret.set_value(UUID, KEY) is True
    call = run_all.call_args
    assert _argv(call) == [
        "virsh",
        "--quiet",
        "--connect",
        URI,
        "secret-set-value",
        "--file",
        "/dev/stdin",
        UUID,
    ]
    assert call.kwargs["stdin"] == KEY
    assert "--base64" not in _argv(call)
    assert all(KEY not in arg for arg in _argv(call))
    _assert_quiet_call(call)


def test_virsh_define_feeds_xml_on_stdin(run_all):
    assert virtsecret.define(UUID, "a'b\"c&<d>", private=True, description="d") is True
    call = run_all.call_args
    assert _argv(call)[4:] == ["secret-define", "--file", "/dev/stdin"]
    info = virtsecret._parse_xml(call.kwargs["stdin"])
    assert info["uuid"] == UUID and info["usage"] == "a'b\"c&<d>" and info["private"] is True
    _assert_quiet_call(call)


def test_virsh_get(run_all):
    run_all.return_value = _ok(_xml(extra="<description>nova</description>"))
    assert virtsecret.get(UUID) == {
        "uuid": UUID,
        "usage_type": "ceph",
        "usage": USAGE,
        "ephemeral": False,
        "private": False,
        "description": "nova",
    }
    assert _argv(run_all.call_args)[4:] == ["secret-dumpxml", UUID]


def test_virsh_get_missing_is_none(run_all):
    run_all.return_value = _err(
        f"error: failed to get secret '{UUID}'\n"
        f"error: Secret not found: no secret with matching uuid '{UUID}'\n"
    )
    assert virtsecret.get(UUID) is None


@pytest.mark.parametrize(
    "ret, expected",
    [
        (_ok(KEY + "\n"), True),
        (_ok(KEY2 + "\n"), False),
        (_err(f"error: Secret not found: secret '{UUID}' does not have a value"), False),
        (_err("error: Invalid secret: secret is private"), None),
    ],
)
def test_virsh_value_matches(run_all, ret, expected):
    run_all.return_value = ret
    assert virtsecret.value_matches(UUID, KEY) is expected
    call = run_all.call_args
    assert _argv(call)[4:] == ["secret-get-value", UUID]
    _assert_quiet_call(call)


def test_virsh_value_matches_undefined_secret_fails(run_all):
    run_all.return_value = _err(f"error: Secret not found: no secret with matching uuid '{UUID}'")
    with pytest.raises(CommandExecutionError, match="not defined"):
        virtsecret.value_matches(UUID, KEY)


def test_virsh_garbage_value_is_not_shown(run_all):
    run_all.return_value = _ok("%%% not base64 %%%\n")
    with pytest.raises(CommandExecutionError) as exc:
        virtsecret.value_matches(UUID, KEY)
    assert "%%%" not in str(exc.value)


def test_virsh_errors_never_carry_the_value(run_all):
    run_all.return_value = _err(f"error: something odd about {KEY}")
    with pytest.raises(CommandExecutionError) as exc:
        virtsecret.set_value(UUID, KEY)
    assert KEY not in str(exc.value)
    assert "<redacted>" in str(exc.value)


def test_virsh_timeout_is_a_clear_error(run_all):
    run_all.return_value = {"retcode": 1, "stdout": "Timed out after 2 seconds", "stderr": ""}
    with pytest.raises(CommandExecutionError, match=r"did not answer within 2 s \(secret lookup\)"):
        virtsecret.get(UUID, timeout=2)


def test_virsh_connection_error_is_shown(run_all):
    run_all.return_value = _err(
        "error: failed to connect to the hypervisor\n"
        "error: Failed to connect socket to '/lab/sock': No such file or directory\n"
    )
    with pytest.raises(CommandExecutionError, match="Failed to connect socket to '/lab/sock'"):
        virtsecret.get(UUID)


def test_virsh_undefine(run_all):
    assert virtsecret.undefine(UUID) is True
    assert _argv(run_all.call_args)[4:] == ["secret-undefine", UUID]
    run_all.return_value = _err(f"error: Secret not found: no secret with matching uuid '{UUID}'")
    assert virtsecret.undefine(UUID) is False


SECRET_LIST = (
    f" {UUID}   ceph {USAGE}\n"
    " 11111111-2222-3333-4444-555555555555   ceph client.cinder\n"
    " 21111111-2222-3333-4444-555555555555   ceph client.cinder secret two\n"
    " 31111111-2222-3333-4444-555555555555   volume /var/lib/img\n"
)


@pytest.mark.parametrize(
    "usage, expected",
    [
        (USAGE, UUID),
        ("client.cinder", "11111111-2222-3333-4444-555555555555"),
        ("client.cinder secret two", "21111111-2222-3333-4444-555555555555"),
        ("/var/lib/img", None),  # a volume usage is not a ceph usage
        ("client", None),
    ],
)
def test_virsh_find_matches_exactly(run_all, usage, expected):
    run_all.return_value = _ok(SECRET_LIST)
    assert virtsecret.find(usage) == expected
    assert _argv(run_all.call_args)[4:] == ["secret-list"]


def test_virsh_list_skips_secrets_undefined_meanwhile(run_all):
    missing = "11111111-2222-3333-4444-555555555555"
    run_all.side_effect = [
        _ok(f" {UUID}   ceph {USAGE}\n {missing}   ceph gone\n"),
        _ok(_xml()),
        _err(f"error: Secret not found: no secret with matching uuid '{missing}'"),
    ]
    assert [sec["uuid"] for sec in virtsecret.list_()] == [UUID]


# --- API backend (a fake libvirt binding) ---------------------------------------------------------


class FakeError(Exception):
    def __init__(self, message, code):
        super().__init__(message)
        self.code = code

    def get_error_code(self):
        return self.code


class FakeSecret:
    def __init__(self, xml, value=None):
        self.xml = xml
        self.val = value
        self.undefined = False

    def UUIDString(self):  # noqa: N802 (libvirt's names)
        return ET.fromstring(self.xml).findtext("uuid")

    def XMLDesc(self):  # noqa: N802
        return self.xml

    def value(self):
        if ET.fromstring(self.xml).get("private") == "yes":
            raise FakeError("Invalid secret: secret is private", 65)
        if self.val is None:
            raise FakeError("Secret not found: secret does not have a value", 66)
        return self.val

    def setValue(self, raw):  # noqa: N802
        self.val = raw

    def undefine(self):
        self.undefined = True


class FakeConn:
    def __init__(self, secrets):
        self.secrets = secrets
        self.defined = []
        self.closed = False

    def secretLookupByUUIDString(self, uuid):  # noqa: N802
        if uuid not in self.secrets:
            raise FakeError("Secret not found: no secret with matching uuid", 66)
        return self.secrets[uuid]

    def secretLookupByUsage(self, usage_type, usage):  # noqa: N802
        for secret in self.secrets.values():
            if usage_type == 2 and ET.fromstring(secret.xml).findtext("usage/name") == usage:
                return secret
        raise FakeError("Secret not found: no secret with matching usage", 66)

    def secretDefineXML(self, xml):  # noqa: N802
        self.defined.append(xml)
        return FakeSecret(xml)

    def listAllSecrets(self):  # noqa: N802
        return list(self.secrets.values())

    def close(self):
        self.closed = True


@pytest.fixture
def fake_libvirt(monkeypatch, config):
    config["ceph_openstack:libvirt:backend"] = "api"
    conn = FakeConn({UUID: FakeSecret(_xml(), base64.b64decode(KEY))})
    fake = types.SimpleNamespace(
        libvirtError=FakeError,
        VIR_ERR_NO_SECRET=66,
        VIR_ERR_INVALID_SECRET=65,
        VIR_ERR_OPERATION_DENIED=55,
        VIR_SECRET_USAGE_TYPE_CEPH=2,
        registerErrorHandler=MagicMock(),
        open=MagicMock(return_value=conn),
        conn=conn,
    )
    monkeypatch.setattr(virtsecret, "libvirt", fake, raising=False)
    monkeypatch.setattr(virtsecret, "HAS_LIBVIRT", True)
    return fake


def test_api_get_find_list(fake_libvirt, run_all):
    assert virtsecret.get(UUID)["usage"] == USAGE
    assert virtsecret.get("11111111-2222-3333-4444-555555555555") is None
    assert virtsecret.find(USAGE) == UUID
    assert virtsecret.find("nobody") is None
    assert [sec["uuid"] for sec in virtsecret.list_()] == [UUID]
    fake_libvirt.open.assert_called_with(URI)
    assert fake_libvirt.conn.closed
    run_all.assert_not_called()


def test_api_auto_prefers_libvirt_python(fake_libvirt, config, run_all):
    config["ceph_openstack:libvirt:backend"] = "auto"
    assert virtsecret.get(UUID)["uuid"] == UUID
    run_all.assert_not_called()


def test_api_value_matches_in_process(fake_libvirt):
    assert virtsecret.value_matches(UUID, KEY) is True
    assert virtsecret.value_matches(UUID, KEY2) is False
    fake_libvirt.conn.secrets[UUID].val = None
    assert virtsecret.value_matches(UUID, KEY) is False
    fake_libvirt.conn.secrets[UUID].xml = _xml(private="yes")
    assert virtsecret.value_matches(UUID, KEY) is None
    with pytest.raises(CommandExecutionError, match="not defined"):
        virtsecret.value_matches("11111111-2222-3333-4444-555555555555", KEY)


def test_api_value_matches_uses_constant_time_compare(fake_libvirt, monkeypatch):
    compare = MagicMock(return_value=True)
    monkeypatch.setattr(virtsecret.hmac, "compare_digest", compare)
    assert virtsecret.value_matches(UUID, KEY) is True
    compare.assert_called_once_with(base64.b64decode(KEY), base64.b64decode(KEY))


def test_api_set_value_sends_raw_bytes(fake_libvirt):
    assert virtsecret.set_value(UUID, KEY2) is True
    assert fake_libvirt.conn.secrets[UUID].val == base64.b64decode(KEY2)


def test_api_define_and_undefine(fake_libvirt):
    assert virtsecret.define(UUID, USAGE, ephemeral=True) is True
    info = virtsecret._parse_xml(fake_libvirt.conn.defined[-1])
    assert info["ephemeral"] is True and info["usage"] == USAGE
    assert virtsecret.undefine(UUID) is True
    assert fake_libvirt.conn.secrets[UUID].undefined
    assert virtsecret.undefine("11111111-2222-3333-4444-555555555555") is False


def test_api_libvirt_errors_become_command_errors(fake_libvirt):
    fake_libvirt.open.side_effect = FakeError("Failed to connect socket to '/lab/sock'", 38)
    with pytest.raises(CommandExecutionError, match="Failed to connect socket"):
        virtsecret.get(UUID)


def test_api_hung_daemon_times_out(fake_libvirt):
    release = threading.Event()

    def hang(uri):
        release.wait(10)
        return fake_libvirt.conn

    fake_libvirt.open.side_effect = hang
    start = time.monotonic()
    try:
        with pytest.raises(CommandExecutionError, match=r"did not answer within 0.3 s"):
            virtsecret.get(UUID, timeout=0.3)
        assert time.monotonic() - start < 2
    finally:
        release.set()


# --- the key never leaves -------------------------------------------------------------------------


def _keys():
    return st.builds(
        lambda stamp, secret: base64.b64encode(
            struct.pack("<HIIH", 1, stamp, 0, 16) + secret
        ).decode(),
        st.integers(0, 2**32 - 1),
        st.binary(min_size=16, max_size=16),
    )


@settings(max_examples=50, deadline=None)
@given(key=_keys())
def test_virsh_key_only_on_stdin(key):
    run_all = MagicMock(return_value=_ok(key + "\n"))
    virtsecret.__salt__["cmd.run_all"] = run_all
    assert virtsecret.value_matches(UUID, key) is True
    virtsecret.set_value(UUID, key)
    for call in run_all.call_args_list:
        assert all(key not in arg for arg in _argv(call))
        assert call.kwargs["output_loglevel"] == "quiet"


# --- users: domains whose XML uses the secret ----------------------------------------------------

OTHER_UUID = "11111111-2222-3333-4444-555555555555"


def _domain_xml(name, secret_uuid=None, kind="auth"):
    """A domain with one disk: RBD with <auth><secret type='ceph'>, or LUKS <encryption>."""
    if kind == "auth":
        disk = (
            f"<disk type='network' device='disk'><source protocol='rbd' name='volumes/{name}'/>"
            f"<auth username='cinder'><secret type='ceph' uuid='{secret_uuid}'/></auth>"
        )
    elif kind == "encryption":
        disk = (
            f"<disk type='file' device='disk'><source file='/var/lib/{name}.img'>"
            f"<encryption format='luks'><secret type='passphrase' uuid='{secret_uuid}'/>"
            "</encryption></source>"
        )
    else:
        disk = f"<disk type='file' device='disk'><source file='/var/lib/{name}.img'/>"
    return (
        f"<domain type='kvm'><name>{name}</name><devices>{disk}"
        "<target dev='vda' bus='virtio'/></disk></devices></domain>"
    )


# name -> (running, xml)
DOMAINS = {
    "web": (True, _domain_xml("web", UUID)),
    "db": (False, _domain_xml("db", UUID.upper())),  # shut off; UUID case differs
    "vault": (False, _domain_xml("vault", UUID, kind="encryption")),
    "other": (True, _domain_xml("other", OTHER_UUID)),  # another secret: not counted
    "plain": (True, _domain_xml("plain", kind=None)),
}


class FakeVirsh:
    """``cmd.run_all`` for the virsh commands ``users`` and ``absent`` run."""

    def __init__(self, domains, secrets):
        self.domains = dict(domains)
        self.secrets = dict(secrets)  # uuid -> xml
        self.vanish = set()  # listed, but gone by the time of dumpxml

    def __call__(self, argv, **kwargs):
        args = argv[4:]
        if args == ["list", "--all", "--name"]:
            return _ok("".join(f"{name}\n" for name in self.domains) + "\n")
        if args == ["list", "--name"]:
            return _ok("".join(f"{n}\n" for n, (run, _x) in self.domains.items() if run) + "\n")
        if args[:3] == ["dumpxml", "--inactive", "--domain"]:
            if args[3] in self.vanish or args[3] not in self.domains:
                return _err(f"error: failed to get domain '{args[3]}'\n")
            return _ok(self.domains[args[3]][1])
        if args[0] in ("secret-dumpxml", "secret-undefine"):
            if args[1] not in self.secrets:
                return _err(f"error: Secret not found: no secret with matching uuid '{args[1]}'")
            if args[0] == "secret-undefine":
                del self.secrets[args[1]]
                return _ok()
            return _ok(self.secrets[args[1]])
        raise AssertionError(f"unexpected virsh call {argv}")


def test_uses_secret_parses_any_secret_element():
    assert virtsecret._uses_secret(_domain_xml("a", UUID), UUID)
    assert virtsecret._uses_secret(_domain_xml("a", UUID.upper()), UUID)
    assert virtsecret._uses_secret(_domain_xml("a", UUID, kind="encryption"), UUID)
    assert not virtsecret._uses_secret(_domain_xml("a", OTHER_UUID), UUID)
    assert not virtsecret._uses_secret(_domain_xml("a", kind=None), UUID)
    # the UUID as text elsewhere (a description, a usage-based secret) is not a use
    assert not virtsecret._uses_secret(
        f"<domain><description>{UUID}</description><devices><disk><auth>"
        "<secret type='ceph' usage='client.cinder secret'/></auth></disk></devices></domain>",
        UUID,
    )


def test_virsh_users(run_all):
    fake = FakeVirsh(DOMAINS, {})
    run_all.side_effect = fake
    assert virtsecret.users(UUID.upper(), timeout=4) == ["db", "vault", "web"]
    calls = [_argv(call)[4:] for call in run_all.call_args_list]
    assert calls[0] == ["list", "--all", "--name"]
    assert calls[1:] == [["dumpxml", "--inactive", "--domain", name] for name in DOMAINS]
    for call in run_all.call_args_list:
        _assert_quiet_call(call)
        assert call.kwargs["timeout"] == 4
    assert virtsecret.users(OTHER_UUID) == ["other"]
    assert virtsecret.users("21111111-2222-3333-4444-555555555555") == []


def test_virsh_users_no_domains_and_vanished_domains(run_all):
    fake = FakeVirsh({}, {})
    run_all.side_effect = fake
    assert virtsecret.users(UUID) == []
    assert run_all.call_count == 1  # the empty line after the list is no domain
    fake.domains = dict(DOMAINS)
    fake.vanish = {"web"}
    assert virtsecret.users(UUID) == ["db", "vault"]


def test_virsh_users_other_errors_fail(run_all):
    run_all.side_effect = [_ok("web\n"), _err("error: internal error: something broke")]
    with pytest.raises(CommandExecutionError, match="domain dumpxml failed.*something broke"):
        virtsecret.users(UUID)
    run_all.side_effect = None
    run_all.return_value = {"retcode": 1, "stdout": "Timed out after 2 seconds", "stderr": ""}
    with pytest.raises(CommandExecutionError, match=r"within 2 s \(domain list\)"):
        virtsecret.users(UUID, timeout=2)


def test_virsh_users_unreadable_xml_is_a_clear_error(run_all):
    run_all.side_effect = [_ok("web\n"), _ok("<domain><devices>")]
    with pytest.raises(CommandExecutionError, match="^domain web: unreadable XML"):
        virtsecret.users(UUID)


def test_users_refuses_a_bad_uuid_before_any_call(run_all):
    with pytest.raises(CommandExecutionError, match="^uuid must be a UUID"):
        virtsecret.users("nope")
    run_all.assert_not_called()


class FakeDomain:
    def __init__(self, name, running, xml):
        self._name, self.running, self.xml = name, running, xml
        self.xml_flags = []
        self.gone = False

    def name(self):
        return self._name

    def XMLDesc(self, flags):  # noqa: N802
        self.xml_flags.append(flags)
        if self.gone:
            raise FakeError("Domain not found: no domain with matching uuid", 42)
        return self.xml


def _list_all_domains(conn):
    """listAllDomains honouring libvirt's ACTIVE (1) / INACTIVE (2) filter flags."""

    def list_all(flags):
        conn.domain_flags.append(flags)
        wanted = {0: (True, False), 1: (True,), 2: (False,)}[flags & 3]
        return [dom for dom in conn.domains if dom.running in wanted]

    return list_all


@pytest.fixture
def fake_domains(fake_libvirt):
    conn = fake_libvirt.conn
    conn.domains = [FakeDomain(name, run, xml) for name, (run, xml) in DOMAINS.items()]
    conn.domain_flags = []
    conn.listAllDomains = _list_all_domains(conn)
    fake_libvirt.VIR_ERR_NO_DOMAIN = 42
    return conn


def test_api_users(fake_domains, run_all):
    assert virtsecret.users(UUID.upper()) == ["db", "vault", "web"]
    assert fake_domains.domain_flags == [0]
    assert all(dom.xml_flags == [0] for dom in fake_domains.domains)
    assert virtsecret.users(OTHER_UUID) == ["other"]
    fake_domains.domains = []
    assert virtsecret.users(UUID) == []
    assert fake_domains.closed
    run_all.assert_not_called()


def test_api_users_skips_vanished_domains_and_reports_other_errors(fake_domains):
    fake_domains.domains[0].gone = True  # web
    assert virtsecret.users(UUID) == ["db", "vault"]

    def broken(flags):
        raise FakeError("internal error: no", 1)

    fake_domains.domains[1].XMLDesc = broken
    with pytest.raises(CommandExecutionError, match="domain list failed: internal error: no"):
        virtsecret.users(UUID)


def test_api_users_hung_daemon_times_out(fake_domains):
    release = threading.Event()
    fake_domains.listAllDomains = lambda flags: release.wait(10)
    try:
        with pytest.raises(CommandExecutionError, match=r"within 0.3 s \(domain list\)"):
            virtsecret.users(UUID, timeout=0.3)
    finally:
        release.set()


# --- virtsecret.absent over each backend (the state on this module and its fakes) -----------------

state = load("salt/_states/virtsecret.py", "virtsecret_state_over_backends")


@pytest.fixture(params=["api", "virsh"])
def absent_world(request, monkeypatch, config, run_all, fake_libvirt):
    """(state, opts, domains, is_defined): the state module wired to this exec module,
    over a fake daemon holding secret UUID and the domains of DOMAINS."""
    config["ceph_openstack:libvirt:backend"] = request.param
    domains = dict(DOMAINS)
    if request.param == "virsh":
        fake = FakeVirsh(domains, {UUID: _xml()})
        run_all.side_effect = fake

        def set_domains(new):
            fake.domains = dict(new)

        def is_defined():
            return UUID in fake.secrets

    else:
        conn = fake_libvirt.conn
        conn.domain_flags = []
        conn.listAllDomains = _list_all_domains(conn)
        fake_libvirt.VIR_ERR_NO_DOMAIN = 42

        def set_domains(new):
            conn.domains = [FakeDomain(name, run, xml) for name, (run, xml) in new.items()]

        def is_defined():
            return not conn.secrets[UUID].undefined

    set_domains(domains)
    opts = {"test": False}
    funcs = {f"virtsecret.{name}": getattr(virtsecret, name) for name in ("get", "users")}
    funcs["virtsecret.undefine"] = virtsecret.undefine
    monkeypatch.setattr(state, "__salt__", funcs, raising=False)
    monkeypatch.setattr(state, "__opts__", opts, raising=False)
    return types.SimpleNamespace(opts=opts, set_domains=set_domains, is_defined=is_defined)


REFUSED = (
    f"secret {UUID} is used by domains db, vault, web; refusing to undefine it "
    "(force=True to remove it anyway)"
)


def test_absent_refuses_a_secret_in_use(absent_world):
    for test in (True, False):  # test=True predicts the same refusal
        absent_world.opts["test"] = test
        ret = state.absent(UUID)
        assert ret == {"name": UUID, "result": False, "changes": {}, "comment": REFUSED}
        assert absent_world.is_defined()


def test_absent_refuses_for_a_shut_off_domain_alone(absent_world):
    absent_world.set_domains({"db": DOMAINS["db"], "other": DOMAINS["other"]})
    ret = state.absent(UUID)
    assert ret["result"] is False and "used by domains db;" in ret["comment"]
    assert absent_world.is_defined()


def test_absent_force_undefines_a_secret_in_use(absent_world):
    absent_world.opts["test"] = True
    ret = state.absent(UUID, force=True)
    assert ret["result"] is None
    assert ret["changes"] == {"defined": {"old": UUID, "new": None}}
    assert absent_world.is_defined()
    absent_world.opts["test"] = False
    ret = state.absent(UUID, force=True)
    assert ret["result"] is True
    assert ret["changes"] == {"defined": {"old": UUID, "new": None}}
    assert not absent_world.is_defined()


def test_absent_undefines_a_secret_only_other_secrets_users_use(absent_world):
    absent_world.set_domains({"other": DOMAINS["other"], "plain": DOMAINS["plain"]})
    absent_world.opts["test"] = True
    ret = state.absent(UUID)
    assert ret["result"] is None and ret["changes"] == {"defined": {"old": UUID, "new": None}}
    assert absent_world.is_defined()
    absent_world.opts["test"] = False
    ret = state.absent(UUID)
    assert ret["result"] is True
    assert ret["changes"] == {"defined": {"old": UUID, "new": None}}
    assert ret["comment"] == f"secret {UUID} undefined"
    assert not absent_world.is_defined()


# --- guests: running domains that use the secret, with their ids ---------------------------


def _live(name, dom_id, secret_uuid=UUID):
    """A running domain's live XML: its id on the root element, its UUID inside."""
    return _domain_xml(name, secret_uuid).replace(
        "<domain type='kvm'>", f"<domain type='kvm' id='{dom_id}'><uuid>uuid-{name}</uuid>")


def test_api_guests_lists_running_users_with_their_ids(fake_domains, fake_libvirt):
    fake_libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE = 1
    fake_domains.domains = [FakeDomain("web", True, _live("web", 7)),
                            FakeDomain("db", False, _domain_xml("db", UUID)),
                            FakeDomain("other", True, _live("other", 3, OTHER_UUID))]
    assert virtsecret.guests(UUID) == [{"name": "web", "uuid": "uuid-web", "id": "7"}]
    assert fake_domains.domain_flags == [1]  # running domains only


def test_virsh_guests_reads_live_xml_of_running_domains(run_all):
    fake = FakeVirsh({"web": (True, _live("web", 7)), "db": (False, _domain_xml("db", UUID))},
                     {})

    def run(argv, **kwargs):
        args = argv[4:]
        if args[:2] == ["dumpxml", "--domain"]:
            return _ok(fake.domains[args[2]][1])
        return fake(argv, **kwargs)

    run_all.side_effect = run
    assert virtsecret.guests(UUID) == [{"name": "web", "uuid": "uuid-web", "id": "7"}]
    calls = [_argv(call)[4:] for call in run_all.call_args_list]
    assert calls == [["list", "--name"], ["dumpxml", "--domain", "web"]]
