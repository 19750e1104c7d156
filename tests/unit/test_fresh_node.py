"""
A fresh node: nothing installed yet, so no /etc/ceph (ceph-common creates it), no
/etc/cinder, /etc/nova (the OpenStack packages do) and no libvirt. Under ``test=True`` the
formula's file states predict the whole first run (result None, the changes a real run
makes once the packages are in, the missing directory named in the comment) and write
nothing; a real run fails there, naming the directory, and creates none.

The formula's states are wired to the real state and execution modules underneath
(ceph_openstack -> openstack_ini, cephauth.keyring_present; no virtsecret: libvirt is not
installed), with the keys given in pillar: nothing here runs a command.
"""

import contextlib
import os
from unittest import mock

import pytest

from tests.support.modules import load

state = load("salt/_states/ceph_openstack.py", "ceph_openstack_state_fresh_node")
ini_state = load("salt/_states/openstack_ini.py", "openstack_ini_state_fresh_node")
ini_exec = load("salt/_modules/openstack_ini.py", "openstack_ini_exec_fresh_node")
cephauth_state = load("salt/_states/cephauth.py", "cephauth_state_fresh_node")
MODULES = (state, ini_state, ini_exec, cephauth_state)

# A valid cephx key (base64 of crypto type 1, a stamp, length 16 and 16 bytes); nobody's.
KEY = "AQAA8VNlAAAAABAAAAECAwQFBgcICQoLDA0ODw=="
UUID = "691c3607-7ca3-433a-a0c0-5805cea8afa0"
FSID = "675c94fe-ac46-484e-bd88-2f7fc8d601a7"
MON_HOST = "[v2:192.0.2.145:3300,v1:192.0.2.145:6789]"
TARGETS = {"mon": "G@role:mon", "controller": "G@role:controller", "compute": "G@role:compute"}
CINDER = {"DEFAULT": {"enabled_backends": "ceph"},
          "ceph": {"volume_driver": "cinder.volume.drivers.rbd.RBDDriver", "rbd_pool": "volumes"}}
NOVA = {"libvirt": {"images_type": "rbd", "rbd_secret_uuid": UUID}}


@pytest.fixture
def configure_loader_modules():
    def mine_get(tgt, fun, tgt_type="glob"):
        return {}  # no mon has published anything: the keys and facts come from pillar

    return {
        state: {
            "__salt__": {"mine.get": mine_get},
            "__states__": {  # no virtsecret.present: its modules need libvirt
                "openstack_ini.options_present": ini_state.options_present,
                "cephauth.keyring_present": cephauth_state.keyring_present,
            },
            "__pillar__": {"ceph_openstack": {"clients": {"cinder": {"key": KEY}}}},
            "__grains__": {"id": "cmp1"},
            "__opts__": {"test": False},
            "__context__": {},
        },
        ini_state: {
            "__salt__": {f"openstack_ini.{name}": getattr(ini_exec, name)
                         for name in ("get", "options_present", "options_absent")},
            "__opts__": {"test": False},
        },
        ini_exec: {"__opts__": {"test": False}, "__context__": {}},
        cephauth_state: {"__salt__": {}, "__opts__": {"test": False},
                         "__context__": {}},
    }


@contextlib.contextmanager
def dry_run():
    """``test=True`` for every module, as ``state.apply ... test=True`` sets it."""
    with contextlib.ExitStack() as stack:
        for module in MODULES:
            stack.enter_context(mock.patch.dict(module.__opts__, {"test": True}))
        yield


@pytest.fixture
def test_mode():
    with dry_run():
        yield


@pytest.fixture
def node(tmp_path):
    """The root of a fresh node: an empty directory."""
    root = tmp_path / "node"
    root.mkdir()
    return root


def first_run(root):
    """The returns of the formula's file states of a controller + compute, by what they
    write (paths of a Debian node under ``root``)."""
    etc = f"{root}/etc"
    return {
        "ceph.conf": state.ceph_conf(f"{etc}/ceph/ceph.conf", TARGETS, fsid=FSID,
                                     mon_host=MON_HOST, client={"rbd cache": True}),
        "keyring": state.keyring(f"{etc}/ceph/ceph.client.cinder.keyring", "cinder", TARGETS,
                                 user=None, group=None, mode="0640"),
        "cinder.conf": ini_state.options_present(f"{etc}/cinder/cinder.conf", CINDER,
                                                 mode="0640"),
        "nova.conf": ini_state.options_present(f"{etc}/nova/nova.conf", NOVA),
        "secret": state.libvirt_secret(UUID, "cinder", TARGETS),
    }


def test_test_mode_predicts_the_whole_first_run(node, test_mode):
    rets = first_run(node)
    assert {what: ret["result"] for what, ret in rets.items()} == dict.fromkeys(rets)
    assert rets["ceph.conf"]["changes"] == {
        "global/fsid": {"old": None, "new": FSID},
        "global/mon host": {"old": None, "new": MON_HOST},
        "client/rbd cache": {"old": None, "new": "true"},
    }
    assert rets["keyring"]["changes"]["file"] == {
        "old": None, "new": f"{node}/etc/ceph/ceph.client.cinder.keyring"}
    assert rets["cinder.conf"]["changes"] == {
        "DEFAULT/enabled_backends": {"old": None, "new": "ceph"},
        "ceph/volume_driver": {"old": None, "new": "cinder.volume.drivers.rbd.RBDDriver"},
        "ceph/rbd_pool": {"old": None, "new": "volumes"},
    }
    assert set(rets["nova.conf"]["changes"]) == {"libvirt/images_type", "libvirt/rbd_secret_uuid"}
    for what, directory in (("ceph.conf", "ceph"), ("keyring", "ceph"),
                            ("cinder.conf", "cinder"), ("nova.conf", "nova")):
        assert f"directory {node}/etc/{directory} does not exist yet" in rets[what]["comment"]
    assert rets["secret"]["changes"] == {"defined": {"old": None, "new": UUID},
                                         "value": {"old": None, "new": "set"}}
    assert "libvirt is not installed yet" in rets["secret"]["comment"]
    assert KEY not in repr(rets)
    assert list(node.iterdir()) == []  # nothing written, no directory created


def test_a_real_run_fails_naming_the_missing_directory(node):
    rets = first_run(node)
    assert {what: ret["result"] for what, ret in rets.items()} == dict.fromkeys(rets, False)
    for what, directory in (("ceph.conf", "ceph"), ("keyring", "ceph"),
                            ("cinder.conf", "cinder"), ("nova.conf", "nova")):
        assert rets[what]["changes"] == {}
        comment = rets[what]["comment"].lower()
        assert f"directory {node}/etc/{directory} does not exist: install the package" \
            in comment, what
    assert "libvirt is not installed on this minion" in rets["secret"]["comment"]
    assert list(node.iterdir()) == []


def test_once_the_packages_made_the_directories_the_run_does_what_test_predicted(node):
    with dry_run():
        predicted = first_run(node)
    for directory in ("ceph", "cinder", "nova"):  # what ceph-common, cinder, nova create
        os.makedirs(node / "etc" / directory)
    done = first_run(node)
    for what in ("ceph.conf", "keyring", "cinder.conf", "nova.conf"):
        assert done[what]["result"] is True, done[what]
        assert done[what]["changes"] == predicted[what]["changes"], what
    assert (node / "etc/ceph/ceph.conf").read_text() == (
        f"[global]\nfsid = {FSID}\nmon host = {MON_HOST}\n\n[client]\nrbd cache = true\n")
    again = first_run(node)
    assert all(again[what]["changes"] == {} for what in ("ceph.conf", "keyring", "cinder.conf"))
