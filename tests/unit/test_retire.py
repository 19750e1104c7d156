"""Retiring a node (orch.ceph_openstack_retire): the node's check for guests, what it holds,
the removal of the formula's ceph.conf options and ini options (what the formula added
comes out whole: the stock files byte for byte), and the master's target matching."""

from unittest import mock

import pytest

from tests.support.modules import ROOT, load

retire = load("salt/_states/ceph_openstack_retire.py", "ceph_openstack_retire_under_test")
state = load("salt/_states/ceph_openstack.py", "ceph_openstack_state_retire")
module = load("salt/_modules/ceph_openstack.py", "ceph_openstack_module_retire")
rollout = load("salt/_modules/ceph_openstack_rollout.py", "ceph_openstack_rollout_retire")
ini = load("salt/_utils/openstack_ini.py", "openstack_ini_utils_retire")

UUID = "691c3607-7ca3-433a-a0c0-5805cea8afa0"
STOCK = ROOT / "lab" / "files"


@pytest.fixture
def users():
    """{uuid: [domain, ...]} as virtsecret.users reports them."""
    return {}


@pytest.fixture
def pillar():
    return {}


@pytest.fixture(autouse=True)
def retire_loader(users, pillar):
    salt = {"virtsecret.users": lambda uuid, **kwargs: users.get(uuid, [])}
    with mock.patch.multiple(retire, create=True, __salt__=salt, __pillar__=pillar,
                             __grains__={"id": "cmp3"}):
        yield


def test_a_node_without_guests_is_ready():
    ret = retire.ready(secrets={UUID: "cinder"})
    assert ret["result"] is True and ret["changes"] == {}
    assert ret["comment"] == "no libvirt domain on cmp3 uses a secret of the formula: ready to retire"


def test_a_guest_using_a_secret_stops_the_retirement_naming_it(users):
    users[UUID] = ["instance-0001", "instance-0002"]
    ret = retire.ready(secrets={UUID: "cinder"})
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith(
        f"on cmp3, domains instance-0001, instance-0002 use libvirt secret {UUID} "
        "(client.cinder). Retiring cmp3 undefines")
    assert "ceph_openstack_retire:force: true" in ret["comment"]
    assert ret["comment"].endswith("Nothing changed")


def test_force_goes_on_and_names_the_guests(users, pillar):
    users[UUID] = ["instance-0001"]
    pillar["ceph_openstack_retire"] = {"minions": ["cmp3"], "force": True}
    ret = retire.ready(secrets={UUID: "cinder"})
    assert ret["result"] is True
    assert "instance-0001" in ret["comment"] and "retired anyway" in ret["comment"]


def test_without_libvirt_a_node_is_ready():
    with mock.patch.dict(retire.__salt__, clear=True):
        assert retire.ready(secrets={UUID: "cinder"})["result"] is True


@pytest.fixture
def calls():
    return []


@pytest.fixture
def node(calls, tmp_path):
    """The node module and state with a keyring and a secret at paths under tmp_path."""
    keyring = tmp_path / "ceph.client.cinder.keyring"
    settings = {
        "libvirt_uri": "qemu:///session",
        "clients": {
            "cinder": {"client": "cinder", "cluster": "ceph", "keyring": str(keyring)},
            "glance": {"client": "glance", "cluster": "ceph",
                       "keyring": str(tmp_path / "ceph.client.glance.keyring")},
            "cinder@dr": {"client": "cinder", "cluster": "dr",
                          "keyring": str(tmp_path / "dr.client.cinder.keyring")},
        },
        "secrets": {UUID: "cinder", "3c5e7a90-1b2d-4e6f-8a0b-c2d4e6f8a0b2": "cinder@dr"},
    }
    defined = []

    def secret_list(**kwargs):
        calls.append(("virtsecret.list", kwargs))
        return [{"uuid": uuid} for uuid in defined]

    def file_absent(name):
        calls.append(("file.absent", name))
        return {"name": name, "result": True, "changes": {"removed": name}, "comment": ""}

    def options_absent(name, sections):
        calls.append(("openstack_ini.options_absent", name, sections))
        return {"name": name, "result": True, "changes": {}, "comment": ""}

    salt = {"slsutil.renderer": lambda *args, **kwargs: settings,
            "virtsecret.list": secret_list,
            "openstack_ini.get": lambda name: ini.to_dict(ini.parse(open(name).read()))}
    states = {"file.absent": file_absent, "openstack_ini.options_absent": options_absent}
    with mock.patch.multiple(module, create=True, __salt__=salt):
        with mock.patch.multiple(state, create=True, __salt__=salt, __states__=states,
                                 __opts__={"test": False}):
            yield keyring, defined


def test_held_names_the_clients_with_a_keyring_or_a_defined_secret(node, calls):
    keyring, defined = node
    assert module.held() == {}
    keyring.write_text("[client.cinder]\n")
    assert module.held() == {"ceph": ["cinder"]}
    defined.append("3c5e7a90-1b2d-4e6f-8a0b-c2d4e6f8a0b2")
    assert module.held() == {"ceph": ["cinder"], "dr": ["cinder"]}
    assert ("virtsecret.list", {"uri": "qemu:///session"}) in calls


def test_a_ceph_conf_with_only_the_formulas_options_is_removed(node, calls, tmp_path):
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nfsid = x\nmon host = y\n\n[client]\nrbd cache = true\n")
    ret = state.ceph_conf_absent(str(conf), client=["rbd cache", "admin socket"])
    assert ret["result"] is True and calls == [("file.absent", str(conf))]


def test_a_ceph_conf_with_other_options_keeps_them(node, calls, tmp_path):
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nfsid = x\nmon host = y\nauth client required = cephx\n")
    state.ceph_conf_absent(str(conf), client=["rbd cache"])
    assert calls == [("openstack_ini.options_absent", str(conf),
                      {"global": ["fsid", "mon host"], "client": ["rbd cache"]})]


def test_a_missing_ceph_conf_is_absent(node, calls, tmp_path):
    ret = state.ceph_conf_absent(str(tmp_path / "dr.conf"))
    assert ret["result"] is True and ret["changes"] == {} and calls == []


def test_a_secret_in_use_is_undefined_when_forced():
    found = []
    with mock.patch.multiple(state, create=True, __states__={
            "virtsecret.absent": lambda name, **kwargs: found.append(kwargs) or {}}):
        state.libvirt_secret_absent(UUID, force=True)
        state.libvirt_secret_absent(UUID)
    assert found == [{"force": True}, {}]


#: What the formula adds to each stock file, as options.jinja shapes it.
ADDED = {
    "cinder.conf": {
        "DEFAULT": {"enabled_backends": "ceph,ceph-dr", "backup_ceph_user": "cinder-backup",
                    "backup_driver": "cinder.backup.drivers.ceph.CephBackupDriver"},
        "ceph": {"volume_driver": "cinder.volume.drivers.rbd.RBDDriver", "rbd_pool": "volumes"},
        "ceph-dr": {"rbd_pool": "volumes", "rbd_cluster_name": "dr"}},
    "glance-api.conf": {
        "DEFAULT": {"enabled_backends": "ceph:rbd", "show_image_direct_url": True},
        "glance_store": {"default_backend": "ceph"},
        "ceph": {"rbd_store_pool": "images", "rbd_store_chunk_size": 8}},
    "nova.conf": {"libvirt": {"images_type": "rbd", "rbd_user": "cinder",
                              "rbd_secret_uuid": UUID}},
}


@pytest.mark.parametrize("name", sorted(ADDED))
def test_the_formulas_options_come_out_whole(name):
    stock = (STOCK / name).read_text()
    doc = ini.parse(stock)
    ini.merge(doc, ADDED[name])
    written = ini.render(doc)
    assert written != stock
    doc = ini.parse(written)
    removed = ini.remove(doc, {section: list(keys) for section, keys in ADDED[name].items()},
                         drop_emptied=True)
    assert len(removed) == sum(len(keys) for keys in ADDED[name].values())
    assert ini.render(doc) == stock


def test_a_section_with_anything_but_blank_lines_stays():
    text = "[DEFAULT]\na = 1\n\n[ceph]\n# kept by the operator\nrbd_pool = volumes\n\n"
    doc = ini.parse(text)
    ini.remove(doc, {"ceph": ["rbd_pool"]}, drop_emptied=True)
    assert ini.render(doc) == "[DEFAULT]\na = 1\n\n[ceph]\n# kept by the operator\n\n"
    # Without drop_emptied, an emptied section's header stays.
    doc = ini.parse("[DEFAULT]\na = 1\n\n[ceph]\nrbd_pool = volumes\n")
    ini.remove(doc, {"ceph": ["rbd_pool"]})
    assert ini.render(doc) == "[DEFAULT]\na = 1\n\n[ceph]\n"


def test_the_master_matches_targets_in_its_own_data():
    ckminions = mock.Mock()
    ckminions.return_value.check_minions.return_value = {"minions": ["cmp3", "cmp1"],
                                                         "missing": []}
    with mock.patch.object(rollout.salt.utils.minions, "CkMinions", ckminions), \
            mock.patch.object(rollout, "__opts__", {}, create=True):
        assert rollout.matched("G@role:compute and L@cmp3") == ["cmp1", "cmp3"]
    ckminions.return_value.check_minions.assert_called_once_with(
        "G@role:compute and L@cmp3", "compound", greedy=False)

