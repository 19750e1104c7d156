"""
Functional tests of cephauth against the real lab cluster, through Salt's loader.

Every outcome is checked with the ceph CLI directly (``ceph_lab.ceph("auth", "get", ...)``),
not through the module under test. The leak test records the argv of every process
started on the machine while the states run.
"""

import grp
import logging
import os
import pathlib
import pwd
import shutil
import stat
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from lab.release import RELEASES  # noqa: E402
from tests.support.argv_recorder import assert_secret_absent, record_argv  # noqa: E402

pytestmark = pytest.mark.lab

CINDER_CAPS = {
    "mon": "profile rbd",
    "osd": "profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images",
    "mgr": "profile rbd pool=volumes, profile rbd pool=vms",
}
# The same grants, written differently.
CINDER_CAPS_REORDERED = {
    "osd": "profile rbd-read-only pool=images,profile rbd pool=vms,profile rbd pool=volumes",
    "mgr": "profile rbd pool=vms,  profile rbd pool=volumes",
    "mon": "profile rbd",
}
RUNBOOK_CAPS = ["mon", "allow r", "osd", "allow class-read object_prefix rbd_children, "
                "allow rwx pool=volumes", "mgr", "allow r"]


@pytest.fixture(scope="module", autouse=True)
def _cluster(ceph_lab):
    """Requested before ``loaders`` so the minion opts point at the lab cluster."""
    return ceph_lab


@pytest.fixture
def entity(ceph_lab):
    """A unique client name, deleted after the test."""
    name = f"client.t-{uuid.uuid4().hex[:10]}"
    yield name
    ceph_lab.ceph("auth", "del", name, json_out=False)


def new_key():
    return subprocess.run(["ceph-authtool", "--gen-print-key"], check=True,
                          capture_output=True, text=True).stdout.strip()


def auth_get(ceph_lab, name):
    """``{"caps": ..., "key": ...}`` straight from Ceph, or None."""
    out = ceph_lab.ceph("auth", "get", name, check=False)
    return {"caps": out[0]["caps"], "key": out[0]["key"]} if out else None


def assert_logs_in(states, ceph_lab, entity, tmp_path, key=None):
    """The module writes ``entity``'s keyring (with ``key``, else the key read from Ceph);
    the user then authenticates with it: a real cephx login on this release."""
    path = tmp_path / f"login.{entity}.keyring"
    ret = states.cephauth.keyring_present(name=str(path), entity=entity, key=key, mode="0600")
    assert ret.result is True, ret.comment
    assert ceph_lab.logs_in(entity, path), f"{entity} cannot log in with {path}"


#: ``ceph-authtool --gen-print-key`` of Ceph 16.2.15 (AES) and 20.2.4 (AES256K); nobody's.
AES_KEY = "AQArlwprssr2IRAAmspQiT9AGYd91T7bFi14cA=="
AES256K_KEY = "AgArlwprFNSDJyAAydTd8MCxWw2zQCpIoDNTAqSDKxJy2zOQV9HPL9Qtm+k="


@pytest.fixture(scope="module")
def minion_opts(minion_opts):
    """One ``ceph`` process per command (no ceph_session): this module checks each one's
    argv; tests/functional/test_ceph_session.py runs the same through a session."""
    minion_opts["ceph_openstack"]["session"] = False
    return minion_opts


def ceph_runs(execs, ceph_lab):
    """The ceph CLI runs against this session's lab cluster (the recorder sees the whole
    machine, and other test sessions may share it)."""
    return [argv for argv in execs.commands("ceph") if ceph_lab.conf in argv]


# -- present / absent --------------------------------------------------------------


def test_present_creates_then_a_rerun_changes_nothing(states, ceph_lab, entity, tmp_path):
    ret = states.cephauth.present(name=entity, caps=CINDER_CAPS)
    assert ret.result is True
    assert ret.changes == {"entity": {"old": None, "new": entity},
                           "caps": {"old": None, "new": CINDER_CAPS}}
    assert auth_get(ceph_lab, entity)["caps"] == CINDER_CAPS
    assert_logs_in(states, ceph_lab, entity, tmp_path)

    with record_argv() as execs:
        again = states.cephauth.present(name=entity, caps=CINDER_CAPS_REORDERED)
    assert again.result is True and again.changes == {}
    assert len(ceph_runs(execs, ceph_lab)) == 1  # one cached `auth ls`, nothing else


def test_present_sets_caps_of_existing_user_exactly(states, ceph_lab, entity):
    ceph_lab.ceph("auth", "add", entity, *RUNBOOK_CAPS, json_out=False)
    before = auth_get(ceph_lab, entity)
    wanted = {"mon": "profile rbd", "osd": "profile rbd pool=volumes"}  # mgr goes away
    ret = states.cephauth.present(name=entity, caps=wanted)
    assert ret.result is True
    assert ret.changes == {"caps": {"old": before["caps"], "new": wanted}}
    after = auth_get(ceph_lab, entity)
    assert after["caps"] == wanted
    assert after["key"] == before["key"]
    assert states.cephauth.present(name=entity, caps=wanted).changes == {}


def test_present_imports_a_given_key_keeping_caps(states, ceph_lab, entity, tmp_path):
    ceph_lab.ceph("auth", "add", entity, *RUNBOOK_CAPS, json_out=False)
    caps = auth_get(ceph_lab, entity)["caps"]
    key = new_key()
    ret = states.cephauth.present(name=entity, caps=caps, key=key)
    assert ret.result is True
    assert ret.changes == {"key": "changed"}
    assert auth_get(ceph_lab, entity) == {"caps": caps, "key": key}
    assert states.cephauth.present(name=entity, caps=caps, key=key).changes == {}
    assert_logs_in(states, ceph_lab, entity, tmp_path, key=key)


def test_present_creates_with_a_given_key(states, ceph_lab, entity, tmp_path):
    key = new_key()
    ret = states.cephauth.present(name=entity, caps={"mon": "profile rbd"}, key=key)
    assert ret.result is True and ret.changes["key"] == "changed"
    assert auth_get(ceph_lab, entity) == {"caps": {"mon": "profile rbd"}, "key": key}
    assert_logs_in(states, ceph_lab, entity, tmp_path, key=key)


def test_key_types_follow_the_release(states, modules, ceph_lab, entity, tmp_path):
    """A key of a type this release's cluster lets log in is imported and logs in; any other
    is refused before the import, naming why, and nothing changes."""
    allowed = modules.cephauth.allowed_key_types()
    assert allowed == (["aes256k"] if ceph_lab.release == "tentacle" else ["aes"])
    assert f"ceph version {RELEASES[ceph_lab.release][1]}" in ceph_lab.version()
    for key in (AES_KEY, AES256K_KEY):
        kind = "aes" if key == AES_KEY else "aes256k"
        user = f"{entity}-{kind}"
        for test in (True, False):
            ret = states.cephauth.present(name=user, caps={"mon": "profile rbd"}, key=key,
                                          test=test)
            if kind in allowed:
                assert ret.result is (None if test else True), ret.comment
            else:
                assert ret.result is False and ret.changes == {}
                assert f"allows only {allowed[0].upper()} keys" in ret.comment
                assert key not in ret.comment
        if kind in allowed:
            assert auth_get(ceph_lab, user)["key"] == key
            assert_logs_in(states, ceph_lab, user, tmp_path, key=key)
        else:
            assert auth_get(ceph_lab, user) is None
        ceph_lab.ceph("auth", "del", user, json_out=False, check=False)


def test_test_mode_predicts_and_changes_nothing(states, ceph_lab, entity, tmp_path):
    ceph_lab.ceph("auth", "add", entity, *RUNBOOK_CAPS, json_out=False)
    before = auth_get(ceph_lab, entity)
    key = new_key()
    predicted = states.cephauth.present(name=entity, caps=CINDER_CAPS, key=key, test=True)
    assert predicted.result is None
    assert predicted.changes == {"caps": {"old": before["caps"], "new": CINDER_CAPS},
                                 "key": "changed"}
    assert auth_get(ceph_lab, entity) == before

    missing = f"{entity}-new"
    created = states.cephauth.present(name=missing, caps=CINDER_CAPS, test=True)
    assert created.result is None and created.changes["entity"]["new"] == missing
    assert auth_get(ceph_lab, missing) is None

    real = states.cephauth.present(name=entity, caps=CINDER_CAPS, key=key)
    assert real.result is True and real.changes == predicted.changes
    assert auth_get(ceph_lab, entity) == {"caps": CINDER_CAPS, "key": key}
    assert_logs_in(states, ceph_lab, entity, tmp_path, key=key)
    assert states.cephauth.present(name=entity, caps=CINDER_CAPS, key=key,
                                   test=True).result is True


def test_absent(states, ceph_lab, entity):
    ceph_lab.ceph("auth", "add", entity, "mon", "allow r", json_out=False)
    assert states.cephauth.absent(name=entity, test=True).result is None
    assert auth_get(ceph_lab, entity) is not None
    ret = states.cephauth.absent(name=entity)
    assert ret.result is True and ret.changes == {"entity": {"old": entity, "new": None}}
    assert auth_get(ceph_lab, entity) is None
    again = states.cephauth.absent(name=entity)
    assert again.result is True and again.changes == {}


@pytest.mark.parametrize("kwargs,message", [
    ({"name": "cinder", "caps": CINDER_CAPS},
     "name must be a cephx entity name such as 'client.cinder'"),
    ({"name": "client.x", "caps": {"mon": "allow r", "rgw": "allow"}}, "unknown cap type 'rgw'"),
    ({"name": "client.x", "caps": CINDER_CAPS, "key": "AQBhAAAAAAAAABAAvHOq2W2w"},
     "key is not a valid cephx key"),
])
def test_bad_input_fails_before_any_ceph_call(states, ceph_lab, kwargs, message):
    with record_argv() as execs:
        ret = states.cephauth.present(**kwargs)
    assert ret.result is False and ret.changes == {}
    assert message in ret.comment
    assert ceph_runs(execs, ceph_lab) == []
    assert "AQBhAAAAAAAAABAAvHOq2W2w" not in ret.comment


def test_connection_keywords_pass_through(states, modules, ceph_lab, entity, tmp_path):
    # A user that may read the mon map but not list users.
    reader = f"{entity}-ro"
    ceph_lab.ceph("auth", "add", reader, "mon", "allow r", json_out=False)
    keyring = tmp_path / "ro.keyring"
    keyring.write_text(ceph_lab.ceph("auth", "get", reader, json_out=False))
    try:
        ret = states.cephauth.present(name=entity, caps={"mon": "allow r"},
                                      client_id=reader.split(".", 1)[1], keyring=str(keyring))
        assert ret.result is False
        assert "Error EACCES" in ret.comment and f"client.{reader[7:]}" in ret.comment
        ret = states.cephauth.present(name=entity, caps={"mon": "allow r"},
                                      conf=str(tmp_path / "missing.conf"), timeout=3)
        assert ret.result is False and "failed on cluster 'ceph'" in ret.comment
        assert modules.cephauth.exists(entity) is False
        assert auth_get(ceph_lab, entity) is None
    finally:
        ceph_lab.ceph("auth", "del", reader, json_out=False)


# -- execution module ------------------------------------------------------------------


def test_import_key_rotates_the_key_keeping_caps(states, modules, ceph_lab, entity, tmp_path):
    modules.cephauth.create(entity, {"mon": "profile rbd", "osd": "profile rbd pool=vms"})
    assert_logs_in(states, ceph_lab, entity, tmp_path)
    old = tmp_path / "old.keyring"
    shutil.copy(tmp_path / f"login.{entity}.keyring", old)
    before = auth_get(ceph_lab, entity)
    key = new_key()
    ret = modules.cephauth.import_key(entity, key)
    assert ret == {"entity": entity, "caps": before["caps"]}
    assert auth_get(ceph_lab, entity) == {"caps": before["caps"], "key": key}
    assert modules.cephauth.get_key(entity) == key
    assert modules.cephauth.get(entity) == {"entity": entity, "caps": before["caps"]}
    assert_logs_in(states, ceph_lab, entity, tmp_path)
    assert not ceph_lab.logs_in(entity, old)  # the old key died with the import


def test_set_caps_and_delete(modules, ceph_lab, entity):
    modules.cephauth.create(entity, {"mon": "allow r", "osd": "allow r", "mgr": "allow r"})
    modules.cephauth.set_caps(entity, {"osd": "profile rbd pool=images"})
    assert auth_get(ceph_lab, entity)["caps"] == {"osd": "profile rbd pool=images"}
    assert modules.cephauth.delete(entity) is True
    assert auth_get(ceph_lab, entity) is None
    assert modules.cephauth.delete(entity) is False


# -- keyring files ---------------------------------------------------------------------


def test_keyring_present_with_given_key(states, ceph_lab, entity, tmp_path):
    key = new_key()
    states.cephauth.present(name=entity, caps={"mon": "profile rbd"}, key=key)
    path = str(tmp_path / f"ceph.{entity}.keyring")
    ret = states.cephauth.keyring_present(name=path, entity=entity, key=key,
                                          user="nobody", group="nogroup")
    assert ret.result is True
    assert ret.changes == {"file": {"old": None, "new": path},
                           "mode": {"old": None, "new": "0640"},
                           "user": {"old": None, "new": "nobody"},
                           "group": {"old": None, "new": "nogroup"}}
    info = os.stat(path)
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert info.st_uid == pwd.getpwnam("nobody").pw_uid
    assert info.st_gid == grp.getgrnam("nogroup").gr_gid
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(path)]  # no temp file left
    # The file works: the user authenticates with it.
    subprocess.run(["ceph", "--conf", ceph_lab.conf, "--id", entity[7:], "--keyring", path,
                    "mon", "stat"], check=True, capture_output=True, timeout=30)
    again = states.cephauth.keyring_present(name=path, entity=entity, key=key,
                                            user="nobody", group="nogroup")
    assert again.result is True and again.changes == {}


def test_keyring_present_reads_the_key_from_ceph(states, ceph_lab, entity, tmp_path):
    ceph_lab.ceph("auth", "add", entity, "mon", "profile rbd", json_out=False)
    path = str(tmp_path / "k.keyring")
    predicted = states.cephauth.keyring_present(name=path, entity=entity, mode="0600",
                                                test=True)
    assert predicted.result is None and not os.path.exists(path)
    ret = states.cephauth.keyring_present(name=path, entity=entity, mode="0600")
    assert ret.result is True and ret.changes == predicted.changes
    key = auth_get(ceph_lab, entity)["key"]
    assert pathlib.Path(path).read_text() == f"[{entity}]\n\tkey = {key}\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    # Rotate the key in Ceph: the file follows, reporting only that the key changed.
    ceph_lab.ceph("auth", "import", "-i", "-", json_out=False,
                  stdin=f'[{entity}]\n\tkey = {new_key()}\n\tcaps mon = "profile rbd"\n')
    ret = states.cephauth.keyring_present(name=path, entity=entity, mode="0640")
    assert ret.changes == {"key": "changed", "mode": {"old": "0600", "new": "0640"}}
    assert auth_get(ceph_lab, entity)["key"] in pathlib.Path(path).read_text()


def test_converge_with_nothing_to_do_costs_one_ceph_call(modules, ceph_lab, entity, tmp_path):
    # One state run (state.high): every state shares one `auth ls`.
    names = [f"{entity}-{n}" for n in range(3)]
    high = {}
    for name in names:
        high[name] = {"cephauth": ["present", {"caps": CINDER_CAPS}], "__env__": "base",
                      "__sls__": "cephauth"}
        high[str(tmp_path / name)] = {"cephauth": ["keyring_present", {"entity": name},
                                                   {"require": [{"cephauth": name}]}],
                                      "__env__": "base", "__sls__": "cephauth"}
    try:
        with record_argv() as execs:
            first = modules.state.high(high)
        assert all(ret["result"] is True and ret["changes"] for ret in first.raw.values())
        # one `auth ls`, then per user its `auth add` and the `auth ls` the next read needs
        assert len(ceph_runs(execs, ceph_lab)) == 7

        with record_argv() as execs:
            again = modules.state.high(high)
        assert all(ret["result"] is True and not ret["changes"] for ret in again.raw.values())
        assert [argv[-4:] for argv in ceph_runs(execs, ceph_lab)] == [
            ["auth", "ls", "--format", "json"]
        ]
    finally:
        for name in names:
            ceph_lab.ceph("auth", "del", name, json_out=False)


# -- keys never leak ---------------------------------------------------------------------


@pytest.fixture
def minion_log(minion_opts, caplog):
    """Every log record, at every level (TRACE included), into the minion's log file."""
    path = pathlib.Path(minion_opts["log_file"])
    handler = logging.FileHandler(path, mode="w")
    handler.setLevel(1)
    handler.setFormatter(logging.Formatter("%(asctime)s [%(name)s][%(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(1)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()


def run_state(modules, fun, name, test=False, **kwargs):
    """Run one cephauth state in a state run of its own (state.high, as a highstate
    would), and return its result dict. Unlike ``states.cephauth.<fun>`` (the harness's
    state.single wrapper, which logs the arguments it is called with), nothing here
    logs the arguments on our behalf."""
    high = {name: {"cephauth": [fun, *({k: v} for k, v in kwargs.items())],
                   "__env__": "base", "__sls__": "leak"}}
    (ret,) = modules.state.high(high, test=test).raw.values()
    return ret


def test_keys_never_leak(modules, ceph_lab, entity, tmp_path, minion_log, caplog):
    first, second, third = new_key(), new_key(), new_key()
    path = str(tmp_path / "ceph.client.leak.keyring")
    results, errors = [], []
    with record_argv() as execs:
        # Create with a pre-generated key, rotate it twice (state and module), write keyrings
        # from the argument and from Ceph, under test=True and for real.
        results.append(run_state(modules, "present", entity, caps=CINDER_CAPS, key=first))
        results.append(run_state(modules, "present", entity, caps=CINDER_CAPS, key=second,
                                 test=True))
        results.append(run_state(modules, "present", entity, caps={"mon": "allow r"},
                                 key=second))
        results.append(run_state(modules, "keyring_present", path, entity=entity, key=second,
                                 user="nobody", group="nogroup"))
        results.append(modules.cephauth.import_key(entity, third))
        results.append(run_state(modules, "keyring_present", path, entity=entity, test=True))
        results.append(run_state(modules, "keyring_present", path, entity=entity))
        # Failures that carry a key: Ceph refuses the caps of a create; a missing user.
        results.append(run_state(modules, "present", f"{entity}-bad",
                                 caps={"mon": "allow bogus"}, key=first))
        for call in (lambda: modules.cephauth.import_key(f"{entity}-gone", first),
                     lambda: modules.cephauth.create(entity, {"mon": "allow r"}, key=second)):
            try:
                call()
            except Exception as exc:  # pylint: disable=broad-except
                errors.append(exc)

    assert [ret["result"] for ret in results if isinstance(ret, dict) and "result" in ret] == [
        True, None, True, True, None, True, False
    ]
    assert "capability parse failed" in results[-1]["comment"]
    assert auth_get(ceph_lab, entity) == {"caps": {"mon": "allow r"}, "key": third}
    assert f"key = {third}" in pathlib.Path(path).read_text()
    assert len(errors) == 2
    # The recorder did see the four calls that carried a key on stdin: create (auth add),
    # two rotations (auth import) and the refused create.
    fed = [argv for argv in ceph_runs(execs, ceph_lab) if argv[-4:-2] == ["-i", "-"]]
    assert [argv[argv.index("auth") + 1] for argv in fed] == ["add", "import", "import", "add"]

    log_text = minion_log.read_text()
    assert "Executing state cephauth.present" in log_text  # the log did capture the run
    for key in (first, second, third):
        assert_secret_absent(
            key,
            fragments=[key[-24:]],  # the random part: catches a truncated leak too
            argv=execs,
            returns=results,
            errors=errors,
            log=caplog.text,
            minion_log=minion_log,
        )
