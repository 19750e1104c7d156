"""
virtsecret against the real lab libvirtd, through both backends.

Every result is checked from the outside with ``virsh`` (``libvirt_lab.virsh``),
not with the module under test. ``backend`` is parametrized: ``api``
(libvirt-python) and ``virsh`` (forced with the ``backend`` keyword; the
config option ``ceph_openstack:libvirt:backend`` has its own test).
"""

import base64
import logging
import os
import pathlib
import signal
import struct
import sys
import time
import uuid as uuidlib

import pytest
from salt.exceptions import CommandExecutionError

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from lab.libvirt import LibvirtLab  # noqa: E402
from tests.support.argv_recorder import assert_secret_absent, record_argv  # noqa: E402

pytestmark = pytest.mark.lab

KEY = "AQBhAAAAAAAAABAAvHOq2W2wbY4Wcf7yCmXw3Q=="
KEY2 = "AQCYt+5kAAAAABAAUVlpNpcjwE+VTpr3QMDclw=="
# Not in the lab: no socket there at all.
NO_SOCKET_URI = "qemu+unix:///session?socket=/nonexistent/virtsecret/libvirt-sock"

BACKENDS = ["api", "virsh"]


@pytest.fixture(scope="module", autouse=True)
def _lab(libvirt_lab):
    """Request the daemon before ``loaders`` so the minion opts carry its URI."""
    return libvirt_lab


def _new():
    """A fresh UUID and usage name: the daemon is shared by the whole session."""
    secret_uuid = str(uuidlib.uuid4())
    return secret_uuid, f"client.test-{secret_uuid[:8]} secret"


def _listed(lab):
    """{uuid: usage text} as `virsh secret-list` shows it."""
    rows = {}
    for line in lab.virsh("secret-list").splitlines():
        if line.strip():
            uuid, usage = line.split(None, 1)
            rows[uuid] = usage
    return rows


def _value(lab, secret_uuid):
    return lab.virsh("secret-get-value", secret_uuid).strip()


def _random_key():
    """A fresh cephx key, so a leak found can only be this test's."""
    header = struct.pack("<HIIH", 1, int(time.time()), 0, 16)
    return base64.b64encode(header + os.urandom(16)).decode()


def _virsh_calls(execs, secret_uuid):
    """The virsh runs about this secret (the recorder also sees other tests' processes)."""
    return [argv for argv in execs.commands("virsh") if secret_uuid in argv]


# --- execution module ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_exec_lifecycle(modules, libvirt_lab, backend):
    secret_uuid, usage = _new()
    vs = modules.virtsecret

    assert vs.get(secret_uuid, backend=backend) is None
    assert vs.define(secret_uuid, usage, backend=backend) is True
    assert _listed(libvirt_lab)[secret_uuid] == f"ceph {usage}"
    assert vs.get(secret_uuid, backend=backend) == {
        "uuid": secret_uuid,
        "usage_type": "ceph",
        "usage": usage,
        "ephemeral": False,
        "private": False,
        "description": None,
    }
    assert vs.find(usage, backend=backend) == secret_uuid
    assert vs.find(usage + " other", backend=backend) is None
    # No value yet: it does not match anything.
    assert vs.value_matches(secret_uuid, KEY, backend=backend) is False

    assert vs.set_value(secret_uuid, KEY, backend=backend) is True
    assert _value(libvirt_lab, secret_uuid) == KEY
    assert vs.value_matches(secret_uuid, KEY, backend=backend) is True
    assert vs.value_matches(secret_uuid, KEY2, backend=backend) is False

    listed = vs.list(backend=backend)
    assert secret_uuid in [sec["uuid"] for sec in listed]
    assert all("value" not in sec for sec in listed)

    assert vs.undefine(secret_uuid, backend=backend) is True
    assert secret_uuid not in _listed(libvirt_lab)
    assert vs.get(secret_uuid, backend=backend) is None
    assert vs.undefine(secret_uuid, backend=backend) is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_exec_value_matches_undefined_secret_fails(modules, backend):
    secret_uuid, _usage = _new()
    with pytest.raises(CommandExecutionError, match="not defined"):
        modules.virtsecret.value_matches(secret_uuid, KEY, backend=backend)
    with pytest.raises(CommandExecutionError, match="not defined"):
        modules.virtsecret.set_value(secret_uuid, KEY, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exec_usage_with_xml_characters_round_trips(modules, libvirt_lab, backend):
    secret_uuid, usage = _new()
    usage = usage + " q'\"&<>]]>"
    modules.virtsecret.define(secret_uuid, usage, backend=backend)
    try:
        assert _listed(libvirt_lab)[secret_uuid] == f"ceph {usage}"
        assert modules.virtsecret.get(secret_uuid, backend=backend)["usage"] == usage
        assert modules.virtsecret.find(usage, backend=backend) == secret_uuid
    finally:
        libvirt_lab.virsh("secret-undefine", secret_uuid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exec_private_secret_is_unknown(modules, libvirt_lab, backend):
    secret_uuid, usage = _new()
    modules.virtsecret.define(secret_uuid, usage, private=True, backend=backend)
    try:
        modules.virtsecret.set_value(secret_uuid, KEY, backend=backend)
        assert modules.virtsecret.get(secret_uuid, backend=backend)["private"] is True
        assert modules.virtsecret.value_matches(secret_uuid, KEY, backend=backend) is None
    finally:
        libvirt_lab.virsh("secret-undefine", secret_uuid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exec_libvirt_refuses_conflicts(modules, libvirt_lab, backend):
    secret_uuid, usage = _new()
    other_uuid, other_usage = _new()
    modules.virtsecret.define(secret_uuid, usage, backend=backend)
    try:
        with pytest.raises(CommandExecutionError, match="already defined"):
            modules.virtsecret.define(other_uuid, usage, backend=backend)
        with pytest.raises(CommandExecutionError, match="already defined"):
            modules.virtsecret.define(secret_uuid, other_usage, backend=backend)
        assert other_uuid not in _listed(libvirt_lab)
        assert _listed(libvirt_lab)[secret_uuid] == f"ceph {usage}"
    finally:
        libvirt_lab.virsh("secret-undefine", secret_uuid)


def test_config_option_selects_the_backend(loaders, modules, libvirt_lab):
    """``ceph_openstack:libvirt:backend`` (config.get) picks virsh or the API."""
    secret_uuid, usage = _new()
    libvirt_opts = loaders.opts["ceph_openstack"]["libvirt"]
    try:
        libvirt_opts["backend"] = "virsh"
        with record_argv() as execs:
            modules.virtsecret.define(secret_uuid, usage)
            assert modules.virtsecret.get(secret_uuid)["usage"] == usage
        assert ["secret-dumpxml", secret_uuid] == _virsh_calls(execs, secret_uuid)[0][-2:]

        libvirt_opts["backend"] = "api"
        with record_argv() as execs:
            assert modules.virtsecret.get(secret_uuid)["usage"] == usage
        assert _virsh_calls(execs, secret_uuid) == []
    finally:
        libvirt_opts.pop("backend", None)
        libvirt_lab.virsh("secret-undefine", secret_uuid)


# --- state module ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_present_defines_rotates_and_is_idempotent(states, libvirt_lab, backend):
    secret_uuid, usage = _new()
    vs = states.virtsecret

    # test=True predicts, changes nothing.
    ret = vs.present(secret_uuid, usage=usage, value=KEY, backend=backend, test=True)
    assert ret.result is None
    assert ret.changes == {
        "defined": {"old": None, "new": secret_uuid},
        "value": {"old": None, "new": "set"},
    }
    assert secret_uuid not in _listed(libvirt_lab)

    ret = vs.present(secret_uuid, usage=usage, value=KEY, backend=backend)
    assert ret.result is True, ret.comment
    assert ret.changes == {
        "defined": {"old": None, "new": secret_uuid},
        "value": {"old": None, "new": "set"},
    }
    assert _listed(libvirt_lab)[secret_uuid] == f"ceph {usage}"
    assert _value(libvirt_lab, secret_uuid) == KEY

    ret = vs.present(secret_uuid, usage=usage, value=KEY, backend=backend)
    assert ret.result is True
    assert ret.changes == {}
    ret = vs.present(secret_uuid, usage=usage, value=KEY, backend=backend, test=True)
    assert ret.result is True
    assert ret.changes == {}

    # Rotation: predicted, then done in place with the UUID kept.
    ret = vs.present(secret_uuid, usage=usage, value=KEY2, backend=backend, test=True)
    assert ret.result is None
    assert ret.changes == {"value": {"old": "different", "new": "changed"}}
    assert _value(libvirt_lab, secret_uuid) == KEY

    ret = vs.present(secret_uuid, usage=usage, value=KEY2, backend=backend)
    assert ret.result is True
    assert ret.changes == {"value": {"old": "different", "new": "changed"}}
    assert _listed(libvirt_lab)[secret_uuid] == f"ceph {usage}"
    assert _value(libvirt_lab, secret_uuid) == KEY2

    ret = vs.present(secret_uuid, usage=usage, value=KEY2, backend=backend)
    assert ret.result is True
    assert ret.changes == {}

    for text in (ret.comment, str(ret.changes)):
        assert KEY not in text and KEY2 not in text
    libvirt_lab.virsh("secret-undefine", secret_uuid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_present_flag_change_redefines_and_keeps_the_value(states, libvirt_lab, backend):
    secret_uuid, usage = _new()
    vs = states.virtsecret
    assert vs.present(secret_uuid, usage=usage, value=KEY, backend=backend).result is True
    try:
        ret = vs.present(secret_uuid, usage=usage, value=KEY, ephemeral=True, backend=backend)
        assert ret.result is True, ret.comment
        assert ret.changes == {"ephemeral": {"old": False, "new": True}}
        assert "ephemeral='yes'" in libvirt_lab.virsh("secret-dumpxml", secret_uuid)
        assert _value(libvirt_lab, secret_uuid) == KEY
    finally:
        libvirt_lab.virsh("secret-undefine", secret_uuid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_present_private_secret_reports_honestly(states, modules, libvirt_lab, backend):
    secret_uuid, usage = _new()
    vs = states.virtsecret
    try:
        ret = vs.present(secret_uuid, usage=usage, value=KEY, private=True, backend=backend)
        assert ret.result is True, ret.comment
        assert ret.changes == {
            "defined": {"old": None, "new": secret_uuid},
            "value": {"old": None, "new": "set"},
        }
        # libvirt will not show it to virsh either.
        with pytest.raises(RuntimeError, match="private"):
            libvirt_lab.virsh("secret-get-value", secret_uuid)

        # Cannot compare: sets again and says so.
        ret = vs.present(secret_uuid, usage=usage, value=KEY, private=True, backend=backend)
        assert ret.result is True
        assert ret.changes == {"value": {"old": "unknown (private)", "new": "set"}}
        assert "private secret: cannot compare" in ret.comment
        ret = vs.present(
            secret_uuid, usage=usage, value=KEY, private=True, backend=backend, test=True
        )
        assert ret.result is None
        assert ret.changes == {"value": {"old": "unknown (private)", "new": "set"}}

        # private cannot be switched off: refused before any change.
        ret = vs.present(secret_uuid, usage=usage, value=KEY, private=False, backend=backend)
        assert ret.result is False
        assert "private" in ret.comment and ret.changes == {}
        assert "private='yes'" in libvirt_lab.virsh("secret-dumpxml", secret_uuid)
    finally:
        libvirt_lab.virsh("secret-undefine", secret_uuid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_present_usage_conflicts_fail_naming_both(states, libvirt_lab, backend):
    holder_uuid, usage = _new()
    other_uuid, other_usage = _new()
    vs = states.virtsecret
    assert vs.present(holder_uuid, usage=usage, value=KEY, backend=backend).result is True
    try:
        before = _listed(libvirt_lab)

        # Another UUID wants the usage that holder_uuid holds.
        for test in (False, True):
            ret = vs.present(other_uuid, usage=usage, value=KEY2, backend=backend, test=test)
            assert ret.result is False
            assert ret.changes == {}
            assert holder_uuid in ret.comment and other_uuid in ret.comment
            assert usage in ret.comment

        # holder_uuid is asked to take another usage.
        ret = vs.present(holder_uuid, usage=other_usage, value=KEY2, backend=backend)
        assert ret.result is False
        assert ret.changes == {}
        assert holder_uuid in ret.comment
        assert usage in ret.comment and other_usage in ret.comment

        assert _listed(libvirt_lab) == before
        assert _value(libvirt_lab, holder_uuid) == KEY
    finally:
        libvirt_lab.virsh("secret-undefine", holder_uuid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_present_replace_moves_the_usage_to_a_new_uuid(states, libvirt_lab, backend):
    """A UUID changed in pillar: the old, unused secret goes, the new one holds the key."""
    old_uuid, usage = _new()
    new_uuid, _ = _new()
    vs = states.virtsecret
    assert vs.present(old_uuid, usage=usage, value=KEY, backend=backend).result is True
    try:
        before = _listed(libvirt_lab)
        predicted = vs.present(new_uuid, usage=usage, value=KEY, replace=True, backend=backend,
                               test=True)
        assert predicted.result is None, predicted.comment
        assert _listed(libvirt_lab) == before

        ret = vs.present(new_uuid, usage=usage, value=KEY, replace=True, backend=backend)
        assert ret.result is True, ret.comment
        assert ret.changes == predicted.changes == {
            "replaced": {"old": old_uuid, "new": new_uuid},
            "defined": {"old": None, "new": new_uuid},
            "value": {"old": None, "new": "set"},
        }
        listed = _listed(libvirt_lab)
        assert old_uuid not in listed and new_uuid in listed
        assert _value(libvirt_lab, new_uuid) == KEY
        assert listed[new_uuid] == f"ceph {usage}"
        again = vs.present(new_uuid, usage=usage, value=KEY, replace=True, backend=backend)
        assert again.result is True and again.changes == {}
    finally:
        for uuid in (old_uuid, new_uuid):
            if uuid in _listed(libvirt_lab):
                libvirt_lab.virsh("secret-undefine", uuid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_absent(states, libvirt_lab, backend):
    secret_uuid, usage = _new()
    vs = states.virtsecret
    assert vs.present(secret_uuid, usage=usage, value=KEY, backend=backend).result is True

    ret = vs.absent(secret_uuid, backend=backend, test=True)
    assert ret.result is None
    assert ret.changes == {"defined": {"old": secret_uuid, "new": None}}
    assert secret_uuid in _listed(libvirt_lab)

    ret = vs.absent(secret_uuid, backend=backend)
    assert ret.result is True
    assert ret.changes == {"defined": {"old": secret_uuid, "new": None}}
    assert secret_uuid not in _listed(libvirt_lab)

    for test in (False, True):
        ret = vs.absent(secret_uuid, backend=backend, test=test)
        assert ret.result is True
        assert ret.changes == {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_users_none_in_the_lab_and_absent_still_works(states, modules, libvirt_lab, backend):
    """The lab daemon has no domains (defining one needs a QEMU emulator, which the
    project does not install): no users, so absent undefines as before."""
    assert libvirt_lab.virsh("list", "--all", "--name").strip() == ""
    secret_uuid, usage = _new()
    assert states.virtsecret.present(secret_uuid, usage=usage, backend=backend).result is True
    try:
        assert modules.virtsecret.users(secret_uuid, backend=backend) == []
        ret = states.virtsecret.absent(secret_uuid, backend=backend, test=True)
        assert ret.result is None, ret.comment
        ret = states.virtsecret.absent(secret_uuid, backend=backend)
        assert ret.result is True, ret.comment
        assert ret.changes == {"defined": {"old": secret_uuid, "new": None}}
        assert secret_uuid not in _listed(libvirt_lab)
    finally:
        if secret_uuid in _listed(libvirt_lab):
            libvirt_lab.virsh("secret-undefine", secret_uuid)


_TEST_DOMAIN = """
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>{name}</name><memory>65536</memory><os><type>hvm</type></os>
    <devices>
      <disk type='network' device='disk'>
        <source protocol='rbd' name='volumes/{name}'><host name='127.0.0.1' port='6789'/></source>
        <auth username='cinder'><secret type='ceph' uuid='{uuid}'/></auth>
        <target dev='vda' bus='virtio'/>
      </disk>
    </devices>
    {runstate}
  </domain>"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_users_against_libvirt_test_driver(modules, tmp_path, backend):
    """Real libvirt with domains but no QEMU: its test driver (``test:///<file>``, no
    secrets there) runs one domain and keeps one shut off, both using the secret."""
    secret_uuid, other_uuid = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    domains = [
        ("web", secret_uuid.upper(), ""),
        ("db", secret_uuid, "<test:runstate>5</test:runstate>"),  # 5: shut off
        ("other", other_uuid, ""),
    ]
    node = tmp_path / "node.xml"
    node.write_text(
        "<node>"
        + "".join(
            _TEST_DOMAIN.format(name=name, uuid=uuid, runstate=runstate)
            for name, uuid, runstate in domains
        )
        + "</node>"
    )
    uri = f"test://{node}"
    assert modules.virtsecret.users(secret_uuid, uri=uri, backend=backend) == ["db", "web"]
    assert modules.virtsecret.users(other_uuid, uri=uri, backend=backend) == ["other"]
    assert modules.virtsecret.users(str(uuidlib.uuid4()), uri=uri, backend=backend) == []


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"name": "691c3607-7ca3-433a-a0c0-5805cea8afa"}, "name"),
        ({"name": "691c36077ca3433aa0c05805cea8afa0"}, "name"),
        ({"value": "not a key"}, "value"),
        ({"value": KEY[:-4] + "AAA="}, "value"),
        ({"usage": "two\nlines"}, "usage"),
        ({"usage": ""}, "usage"),
        ({"private": "yes"}, "private"),
    ],
)
def test_present_bad_input_fails_before_any_call(states, kwargs, named):
    # The URI has no daemon: reaching it would give a connection error instead.
    args = {"name": str(uuidlib.uuid4()), "usage": "client.x secret", "value": KEY}
    args.update(kwargs)
    ret = states.virtsecret.present(uri=NO_SOCKET_URI, **args)
    assert ret.result is False
    assert ret.comment.startswith(named), ret.comment
    assert ret.changes == {}
    assert "not a key" not in ret.comment


# --- unreachable daemons -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_socket_fails_fast(modules, states, backend):
    start = time.monotonic()
    with pytest.raises(CommandExecutionError, match="/nonexistent/virtsecret"):
        modules.virtsecret.get(str(uuidlib.uuid4()), uri=NO_SOCKET_URI, backend=backend, timeout=3)
    ret = states.virtsecret.present(
        str(uuidlib.uuid4()),
        usage="client.x secret",
        value=KEY,
        uri=NO_SOCKET_URI,
        backend=backend,
        timeout=3,
    )
    assert ret.result is False and ret.changes == {}
    assert "nonexistent" in ret.comment
    assert time.monotonic() - start < 3


@pytest.fixture(scope="module")
def stopped_daemon(lab_dir):
    """A second libvirtd, frozen with SIGSTOP: its socket accepts, nothing answers."""
    daemon = LibvirtLab(lab_dir / "virtsecret-stopped").up()
    pid = daemon.running()["libvirtd"]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield daemon
    finally:
        os.kill(pid, signal.SIGCONT)
        daemon.down()


@pytest.mark.parametrize("backend", BACKENDS)
def test_stopped_daemon_times_out_cleanly(modules, states, stopped_daemon, backend):
    assert os.path.exists(stopped_daemon.socket)
    start = time.monotonic()
    with pytest.raises(CommandExecutionError, match="did not answer within 2 s"):
        modules.virtsecret.get(
            str(uuidlib.uuid4()), uri=stopped_daemon.uri, backend=backend, timeout=2
        )
    assert 2 <= time.monotonic() - start < 5

    start = time.monotonic()
    ret = states.virtsecret.present(
        str(uuidlib.uuid4()),
        usage="client.x secret",
        value=KEY,
        uri=stopped_daemon.uri,
        backend=backend,
        timeout=2,
    )
    assert ret.result is False and ret.changes == {}
    assert "did not answer within 2 s" in ret.comment
    assert time.monotonic() - start < 5


# --- the key stays hidden ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_key_never_in_argv_changes_comment_or_logs(states, modules, libvirt_lab, caplog, backend):
    """present, rotation and a quiet re-run: the key is only on stdin / in the API call."""
    secret_uuid, usage = _new()
    key, key2 = _random_key(), _random_key()
    caplog.set_level(logging.DEBUG)
    with record_argv() as execs:
        rets = [
            states.virtsecret.present(secret_uuid, usage=usage, value=key, backend=backend),
            states.virtsecret.present(secret_uuid, usage=usage, value=key2, backend=backend),
            states.virtsecret.present(secret_uuid, usage=usage, value=key2, backend=backend),
        ]
        assert modules.virtsecret.value_matches(secret_uuid, key2, backend=backend) is True
    assert [bool(ret.changes) for ret in rets] == [True, True, False]
    assert _value(libvirt_lab, secret_uuid) == key2
    libvirt_lab.virsh("secret-undefine", secret_uuid)

    calls = _virsh_calls(execs, secret_uuid)
    if backend == "virsh":
        # The recorder really saw the values being set (twice): through stdin.
        set_calls = [argv for argv in calls if "secret-set-value" in argv]
        assert len(set_calls) == 2, calls
        assert all("/dev/stdin" in argv and "--base64" not in argv for argv in set_calls)
    else:
        assert calls == []
    # salt-factories' test wrapper logs the state.single call it makes (a test-harness
    # artefact; a real state run passes the key from pillar): every other record counts.
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name != "saltfactories.utils.functional"
    )
    assert "virtsecret" in logged
    for secret in (key, key2):
        assert_secret_absent(
            secret,
            argv=execs,
            returns=[ret.full_return for ret in rets],
            logs=logged,
        )
