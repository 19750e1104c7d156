"""Unit tests of the state module salt/_states/openstack_ini.py: Salt's state contract."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest_ini import (  # noqa: E402,F401
    exec_mod,
    ini,
    read_bytes,
    state_mod,
    state_opts,
    write_text,
)

CINDER = "[DEFAULT]\nenabled_backends = lvm\n\n[lvm]\nvolume_driver = lvm\n"
SECTIONS = {
    "DEFAULT": {"enabled_backends": ["lvm", "ceph"]},
    "ceph": {"rbd_pool": "volumes", "rbd_secret_uuid": "691c3607-7ca3-433a-a0c0-5805cea8afa0"},
}
EXPECTED_CHANGES = {
    "DEFAULT/enabled_backends": {"old": "lvm", "new": "lvm,ceph"},
    "ceph/rbd_pool": {"old": None, "new": "volumes"},
    "ceph/rbd_secret_uuid": {"old": None, "new": ini.MASK},
}


@pytest.fixture
def conf(tmp_path):
    return write_text(tmp_path / "cinder.conf", CINDER)


def test_virtual(state_mod):
    assert state_mod.__virtual__() == "openstack_ini"


def test_present_changes_then_converges(state_mod, conf):
    ret = state_mod.options_present(conf, SECTIONS)
    assert set(ret) == {"name", "result", "changes", "comment"}
    assert ret["name"] == conf
    assert ret["result"] is True
    assert ret["changes"] == EXPECTED_CHANGES
    assert "ceph/rbd_pool" in ret["comment"]
    assert "691c3607" not in str(ret)

    again = state_mod.options_present(conf, SECTIONS)
    assert again == {
        "name": conf,
        "result": True,
        "changes": {},
        "comment": "{} already has the requested values".format(conf),
    }


def test_test_mode_predicts_and_writes_nothing(state_mod, state_opts, conf):
    state_opts["test"] = True
    mtime = os.stat(conf).st_mtime_ns
    ret = state_mod.options_present(conf, SECTIONS)
    assert ret["result"] is None
    assert ret["changes"] == EXPECTED_CHANGES
    assert "would change" in ret["comment"]
    assert read_bytes(conf) == CINDER.encode()
    assert os.stat(conf).st_mtime_ns == mtime

    state_opts["test"] = False
    assert state_mod.options_present(conf, SECTIONS)["changes"] == ret["changes"]

    state_opts["test"] = True
    converged = state_mod.options_present(conf, SECTIONS)
    assert (converged["result"], converged["changes"]) == (True, {})


def test_secret_keys_and_mode_pass_through(state_mod, conf):
    os.chmod(conf, 0o644)
    ret = state_mod.options_present(
        conf, {"ceph": {"rbd_user": "cinder"}}, secret_keys=["ceph/rbd_user"], mode="0640"
    )
    assert ret["changes"] == {
        "ceph/rbd_user": {"old": None, "new": ini.MASK},
        "mode": {"old": "0644", "new": "0640"},
    }


NOVA = ("[DEFAULT]\ntransport_url = rabbit://nova:0ld=pw@ctl:5672/\n"
        "[database]\nconnection = mysql+pymysql://nova:0lddb@db/nova\n")
NOVA_SECRETS = {
    "DEFAULT": {"transport_url": "rabbit://nova:s3cr=t@ctl:5672,nova2:s3cr2@ctl2:5672/"},
    "database": {"connection": "mysql+pymysql://nova:n3wdb@db/nova"},
    "glance": {"api_servers": "http://svc:ap1pw@ctl:9292"},
}


@pytest.mark.parametrize("test", [True, False])
def test_no_password_in_changes_or_comment(state_mod, state_opts, tmp_path, test):
    conf = write_text(tmp_path / "nova.conf", NOVA)
    state_opts["test"] = test
    ret = state_mod.options_present(conf, NOVA_SECRETS)
    assert ret["result"] is (None if test else True)
    assert ret["changes"] == {
        "DEFAULT/transport_url": {"old": ini.MASK, "new": ini.MASK},
        "database/connection": {"old": ini.MASK, "new": ini.MASK},
        "glance/api_servers": {"old": None, "new": "http://svc:********@ctl:9292"},
    }
    for secret in ("0ld=pw", "0lddb", "s3cr=t", "s3cr2", "n3wdb", "ap1pw"):
        assert secret not in repr(ret)
    # the values themselves are written (or, under test=True, not yet)
    assert ("s3cr=t" in read_bytes(conf).decode()) is not test


@pytest.mark.parametrize(
    "sections",
    [
        {"ceph]": {"rbd_pool": "volumes"}},
        {"ceph": {"rbd_pool": "volumes\n[DEFAULT]"}},
        {"ceph": {"rbd\npool": "volumes"}},
        {"ceph": {"rbd_pool": None}},
        "not a mapping",
    ],
)
def test_bad_input_fails_cleanly(state_mod, state_opts, conf, sections):
    for test in (False, True):
        state_opts["test"] = test
        ret = state_mod.options_present(conf, sections)
        assert ret["result"] is False
        assert ret["changes"] == {}
        assert ret["comment"]
        assert read_bytes(conf) == CINDER.encode()


def test_missing_directory_predicted_under_test_and_fatal_in_a_real_run(
        state_mod, state_opts, tmp_path):
    """A fresh node: /etc/cinder comes with the cinder package, installed earlier in the
    same run. test=True predicts the new file and names the missing directory; a real run
    without it fails, naming it, and creates nothing."""
    conf = str(tmp_path / "etc" / "cinder" / "cinder.conf")
    state_opts["test"] = True
    ret = state_mod.options_present(conf, SECTIONS, mode="0640")
    assert ret["result"] is None
    assert ret["changes"] == {
        "DEFAULT/enabled_backends": {"old": None, "new": "lvm,ceph"},
        "ceph/rbd_pool": {"old": None, "new": "volumes"},
        "ceph/rbd_secret_uuid": {"old": None, "new": ini.MASK},
    }
    assert ret["comment"].endswith(
        "; directory {} does not exist yet".format(tmp_path / "etc" / "cinder"))
    assert "691c3607" not in repr(ret)

    state_opts["test"] = False
    ret = state_mod.options_present(conf, SECTIONS, mode="0640")
    assert (ret["result"], ret["changes"]) == (False, {})
    assert ret["comment"].startswith(
        "Directory {} does not exist: install the package".format(tmp_path / "etc" / "cinder"))
    assert not (tmp_path / "etc").exists()


def test_not_ini_file_fails_cleanly(state_mod, tmp_path):
    path = tmp_path / "binary.conf"
    path.write_bytes(b"\x00\x01\x02")
    ret = state_mod.options_present(str(path), {"a": {"b": 1}})
    assert ret["result"] is False
    assert "not an ini file" in ret["comment"]
    assert path.read_bytes() == b"\x00\x01\x02"


def test_absent_contract(state_mod, state_opts, conf):
    state_opts["test"] = True
    ret = state_mod.options_absent(conf, {"DEFAULT": ["enabled_backends"]})
    assert ret["result"] is None
    assert ret["changes"] == {"DEFAULT/enabled_backends": {"old": "lvm", "new": None}}
    assert read_bytes(conf) == CINDER.encode()

    state_opts["test"] = False
    ret = state_mod.options_absent(conf, {"DEFAULT": ["enabled_backends"]})
    assert (ret["result"], ret["changes"]) == (
        True,
        {"DEFAULT/enabled_backends": {"old": "lvm", "new": None}},
    )
    assert read_bytes(conf) == b"[DEFAULT]\n\n[lvm]\nvolume_driver = lvm\n"

    ret = state_mod.options_absent(conf, {"DEFAULT": ["enabled_backends"]})
    assert (ret["result"], ret["changes"]) == (True, {})


def test_absent_bad_input_fails_cleanly(state_mod, conf):
    ret = state_mod.options_absent(conf, {"DEFAULT": "enabled_backends\n"})
    assert ret["result"] is False
    assert read_bytes(conf) == CINDER.encode()
