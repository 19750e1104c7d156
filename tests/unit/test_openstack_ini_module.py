"""Unit tests of the execution module salt/_modules/openstack_ini.py on real temp files."""

import logging
import os
import stat
import sys

import pytest
from salt.exceptions import CommandExecutionError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest_ini import exec_mod, ini, read_bytes, write_text  # noqa: E402,F401

NOVA = (
    "[DEFAULT]\ndebug = false\n\n"
    "[libvirt]\n#images_type = default\n\n"
    "[keystone_authtoken]\npassword = OLD_PASS\n"
)


@pytest.fixture
def conf(tmp_path):
    return write_text(tmp_path / "nova.conf", NOVA)


def leftovers(directory):
    """Temp files the atomic write may have left behind."""
    return [name for name in os.listdir(directory) if name.startswith(".")]


def test_virtual_needs_nothing(exec_mod):
    assert exec_mod.__virtual__() == "openstack_ini"


# --------------------------------------------------------------------------- get


def test_get_whole_file_section_and_key(exec_mod, conf):
    assert exec_mod.get(conf) == {
        "DEFAULT": {"debug": "false"},
        "libvirt": {},
        "keystone_authtoken": {"password": ini.MASK},
    }
    assert exec_mod.get(conf, "DEFAULT") == {"debug": "false"}
    assert exec_mod.get(conf, "DEFAULT", "debug") == "false"
    assert exec_mod.get(conf, "DEFAULT", "missing") is None
    assert exec_mod.get(conf, "missing") == {}


def test_get_masks_secrets_unless_asked(exec_mod, conf):
    assert exec_mod.get(conf, "keystone_authtoken", "password") == ini.MASK
    assert exec_mod.get(conf, "keystone_authtoken", "password", unmask=True) == "OLD_PASS"


def test_get_errors(exec_mod, conf, tmp_path):
    with pytest.raises(CommandExecutionError, match="does not exist"):
        exec_mod.get(str(tmp_path / "missing.conf"))
    with pytest.raises(CommandExecutionError, match="key needs a section"):
        exec_mod.get(conf, key="debug")
    with pytest.raises(CommandExecutionError, match="not an absolute path"):
        exec_mod.get("nova.conf")


# --------------------------------------------------------------------------- present


def test_present_writes_and_reports(exec_mod, conf):
    changes = exec_mod.options_present(
        conf, {"libvirt": {"images_type": "rbd"}, "DEFAULT": {"debug": True}}
    )
    assert changes == {
        "libvirt/images_type": {"old": None, "new": "rbd"},
        "DEFAULT/debug": {"old": "false", "new": "true"},
    }
    assert read_bytes(conf) == NOVA.replace("debug = false", "debug = true").replace(
        "#images_type = default\n", "#images_type = default\nimages_type = rbd\n"
    ).encode()
    assert leftovers(os.path.dirname(conf)) == []


def test_second_run_changes_nothing_and_does_not_write(exec_mod, conf):
    sections = {"libvirt": {"images_type": "rbd"}}
    exec_mod.options_present(conf, sections)
    before = os.stat(conf)
    assert exec_mod.options_present(conf, sections) == {}
    after = os.stat(conf)
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)


def test_test_mode_predicts_the_same_changes_and_writes_nothing(exec_mod, conf):
    sections = {"libvirt": {"images_type": "rbd"}, "new": {"k": [1, 2]}}
    before = os.stat(conf)
    predicted = exec_mod.options_present(conf, sections, test=True, mode="0600")
    after = os.stat(conf)
    assert read_bytes(conf) == NOVA.encode()
    assert (after.st_mtime_ns, after.st_ino, after.st_mode) == (
        before.st_mtime_ns,
        before.st_ino,
        before.st_mode,
    )
    assert predicted == exec_mod.options_present(conf, sections, mode="0600")
    assert "mode" in predicted


def test_write_is_atomic_rename_keeping_mode(exec_mod, conf):
    os.chmod(conf, 0o640)
    inode = os.stat(conf).st_ino
    exec_mod.options_present(conf, {"libvirt": {"images_type": "rbd"}})
    info = os.stat(conf)
    assert info.st_ino != inode  # a new file renamed over the old one
    assert stat.S_IMODE(info.st_mode) == 0o640


def test_failed_write_leaves_the_file_and_no_temp_file(exec_mod, conf, monkeypatch):
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exec_mod.os, "replace", broken_replace)
    with pytest.raises(CommandExecutionError, match="No space left"):
        exec_mod.options_present(conf, {"libvirt": {"images_type": "rbd"}})
    assert read_bytes(conf) == NOVA.encode()
    assert leftovers(os.path.dirname(conf)) == []


def test_mode_change_alone_does_not_rewrite(exec_mod, conf):
    os.chmod(conf, 0o644)
    inode = os.stat(conf).st_ino
    changes = exec_mod.options_present(conf, {"DEFAULT": {"debug": False}}, mode=640)
    assert changes == {"mode": {"old": "0644", "new": "0640"}}
    info = os.stat(conf)
    assert (info.st_ino, stat.S_IMODE(info.st_mode)) == (inode, 0o640)
    assert exec_mod.options_present(conf, {}, mode="0640") == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_owner_and_group_kept_or_set(exec_mod, conf):
    os.chown(conf, 65534, 65534)
    exec_mod.options_present(conf, {"libvirt": {"images_type": "rbd"}})
    info = os.stat(conf)
    assert (info.st_uid, info.st_gid) == (65534, 65534)
    changes = exec_mod.options_present(conf, {}, user="root", group=0)
    assert changes["user"]["new"] == "root"
    assert changes["group"]["new"] == "root"
    info = os.stat(conf)
    assert (info.st_uid, info.st_gid) == (0, 0)


def test_bad_owner_or_mode_fails_before_anything(exec_mod, conf):
    for kwargs in ({"user": "no-such-user-xyz"}, {"group": "no-such-group-xyz"}, {"mode": "999"}):
        with pytest.raises(CommandExecutionError):
            exec_mod.options_present(conf, {"libvirt": {"images_type": "rbd"}}, **kwargs)
        assert read_bytes(conf) == NOVA.encode()


def test_missing_file_is_created(exec_mod, tmp_path):
    path = str(tmp_path / "ceph.conf")
    assert exec_mod.options_present(path, {"client": {"rbd cache": True}}, test=True) == {
        "client/rbd cache": {"old": None, "new": "true"}
    }
    assert not os.path.exists(path)
    exec_mod.options_present(path, {"client": {"rbd cache": True}}, mode="0640")
    assert read_bytes(path) == b"[client]\nrbd cache = true\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_new_file_default_mode(exec_mod, tmp_path):
    path = str(tmp_path / "new.conf")
    exec_mod.options_present(path, {"a": {"b": 1}})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_missing_directory_is_an_error(exec_mod, tmp_path):
    missing = tmp_path / "no"
    with pytest.raises(CommandExecutionError,
                       match=f"Directory {missing} does not exist: install the package"):
        exec_mod.options_present(str(missing / "x.conf"), {"a": {"b": 1}})
    assert not missing.exists()  # no directory created either


def test_missing_directory_under_test_predicts_a_new_file(exec_mod, tmp_path):
    """A package installed earlier in the same run creates the directory (ceph-common
    creates /etc/ceph): the prediction is the new file's keys, and nothing is written."""
    path = tmp_path / "etc" / "ceph" / "ceph.conf"
    assert exec_mod.options_present(str(path), {"global": {"fsid": "f"}}, test=True) == {
        "global/fsid": {"old": None, "new": "f"}
    }
    assert not (tmp_path / "etc").exists()


def test_symlink_is_written_through(exec_mod, conf, tmp_path):
    link = tmp_path / "link.conf"
    link.symlink_to(conf)
    exec_mod.options_present(str(link), {"libvirt": {"images_type": "rbd"}})
    assert link.is_symlink()
    assert b"images_type = rbd" in read_bytes(conf)


@pytest.mark.parametrize(
    "content",
    [
        b"\x7fELF\x02\x01\x01\x00\x00\x00",
        b"[a]\nk = \xff\xfe\n",
        b"<html><body>not ini</body></html>\n",
        b"key = value before any section\n",
    ],
)
def test_non_ini_file_is_refused_and_untouched(exec_mod, tmp_path, content):
    path = tmp_path / "weird.conf"
    path.write_bytes(content)
    with pytest.raises(CommandExecutionError, match="is not an ini file"):
        exec_mod.options_present(str(path), {"a": {"k": "v"}})
    with pytest.raises(CommandExecutionError, match="is not an ini file"):
        exec_mod.options_absent(str(path), {"a": ["k"]})
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    "sections",
    [
        {"bad\nsection": {"k": "v"}},
        {"bad]": {"k": "v"}},
        {"libvirt": {"bad\nkey": "v"}},
        {"libvirt": {"bad]key": "v"}},
        {"libvirt": {"images_type": "rbd", "k": "multi\nline"}},
        {"libvirt": "not a mapping"},
    ],
)
def test_bad_input_is_refused_and_file_untouched(exec_mod, conf, sections):
    with pytest.raises(CommandExecutionError):
        exec_mod.options_present(conf, sections)
    assert read_bytes(conf) == NOVA.encode()


def test_directory_is_not_a_file(exec_mod, tmp_path):
    with pytest.raises(CommandExecutionError, match="not a regular file|Cannot read"):
        exec_mod.options_present(str(tmp_path), {"a": {"b": 1}})


def test_secrets_are_masked_and_never_logged(exec_mod, conf, caplog):
    caplog.set_level(logging.DEBUG)
    changes = exec_mod.options_present(
        conf,
        {"keystone_authtoken": {"password": "NEW_PASS"}, "libvirt": {"rbd_user": "cinder"}},
        secret_keys=["rbd_user"],
    )
    assert changes == {
        "keystone_authtoken/password": {"old": ini.MASK, "new": ini.MASK},
        "libvirt/rbd_user": {"old": None, "new": ini.MASK},
    }
    assert b"password = NEW_PASS" in read_bytes(conf)
    for secret in ("NEW_PASS", "OLD_PASS", "cinder"):
        assert secret not in caplog.text


# --------------------------------------------------------------------------- absent


def test_absent_removes_and_is_idempotent(exec_mod, conf):
    assert exec_mod.options_absent(conf, {"DEFAULT": ["debug"]}, test=True) == {
        "DEFAULT/debug": {"old": "false", "new": None}
    }
    assert read_bytes(conf) == NOVA.encode()
    assert exec_mod.options_absent(conf, {"DEFAULT": ["debug"]}) == {
        "DEFAULT/debug": {"old": "false", "new": None}
    }
    assert read_bytes(conf) == NOVA.replace("debug = false\n", "").encode()
    mtime = os.stat(conf).st_mtime_ns
    assert exec_mod.options_absent(conf, {"DEFAULT": ["debug"]}) == {}
    assert os.stat(conf).st_mtime_ns == mtime


def test_absent_masks_secrets(exec_mod, conf):
    assert exec_mod.options_absent(conf, {"keystone_authtoken": ["password"]}) == {
        "keystone_authtoken/password": {"old": ini.MASK, "new": None}
    }


def test_absent_on_missing_file_is_nothing_but_still_validates(exec_mod, tmp_path):
    path = str(tmp_path / "missing.conf")
    assert exec_mod.options_absent(path, {"a": ["k"]}) == {}
    assert not os.path.exists(path)
    with pytest.raises(CommandExecutionError):
        exec_mod.options_absent(path, {"a]": ["k"]})
