"""
Several Ceph clusters, rendered by Salt's real state compiler: pillar.example with
pillar/two_clusters.sls merged in (a second cluster ``dr`` with its own mons, pools,
clients, a Cinder backend, the backup, a Glance store and a libvirt secret), and
pillar.example alone, which renders exactly the states and arguments it rendered before
the formula knew several clusters (tests/data/render/pillar.example.json).

To record that file anew after a deliberate change of the formula's output:
``RECORD_RENDER=1 ./run test tests/functional/test_several_clusters.py -k rendered_before``.
"""

import json
import os

import pytest
import yaml

from tests.conftest import ROOT
from tests.support.formula import formula_loaders, low_chunks, low_chunks_per_roles

#: Rendering asks nothing of Ceph.
pytestmark = pytest.mark.release_independent

RECORDED = ROOT / "tests" / "data" / "render" / "pillar.example.json"
DR_UUID = "0b7cdd0a-51a4-4c2e-9f49-1c5a0e3f6a27"


def merged(base, extra):
    """``extra`` merged into ``base`` as Salt merges pillar files (recursively)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def two_clusters():
    example = yaml.safe_load((ROOT / "pillar.example").read_text())
    return merged(example, yaml.safe_load((ROOT / "pillar" / "two_clusters.sls").read_text()))


@pytest.fixture
def pillar_file(tmp_path):
    path = tmp_path / "two_clusters.yaml"
    path.write_text(yaml.safe_dump(two_clusters()))
    return path


@pytest.fixture
def node(minion_opts, tmp_path, pillar_file):
    """A function giving the low chunks, by state ID, of a node with ``roles`` and
    ``grains`` (one loader per node: Salt 3006's modules keep their first grains)."""
    def render(roles, pillar=None, sls="ceph_openstack", **grains):
        loaders = formula_loaders(minion_opts, tmp_path / "pillar", pillar_file)
        loaders.grains.update(grains)
        kwargs = {"pillar": pillar} if pillar else {}
        return {chunk["__id__"]: chunk for chunk in low_chunks(loaders, roles, sls, **kwargs)}
    return render


def test_one_cluster_renders_what_it_rendered_before(minion_opts, tmp_path):
    loaders = formula_loaders(minion_opts, tmp_path / "pillar", ROOT / "pillar.example")
    pillar = yaml.safe_load((ROOT / "pillar.example").read_text())
    # The states and their arguments, without the bookkeeping of Salt's own that differs
    # between releases (3008 adds __sls_included_from__).
    found = {"+".join(roles): [{key: value for key, value in chunk.items()
                                if not key.startswith("__") or key in ("__id__", "__sls__")}
                               for chunk in chunks]
             for roles, chunks in low_chunks_per_roles(loaders, pillar).items()}
    found = json.loads(json.dumps(found, sort_keys=True, default=str))
    if os.environ.get("RECORD_RENDER"):
        RECORDED.parent.mkdir(exist_ok=True)
        RECORDED.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    assert found == json.loads(RECORDED.read_text())


def test_controller_gets_each_clusters_conf_keyrings_and_options(node):
    chunks = node(["controller"])
    conf = chunks["ceph_openstack-ceph-conf@dr"]
    assert (conf["name"], conf["ceph_cluster"]) == ("/etc/ceph/dr.conf", "dr")
    # librados opened with the conf and no cluster name finds dr's keyrings.
    assert conf["client"] == {"keyring": "/etc/ceph/dr.$name.keyring"}
    assert "client" not in chunks["ceph_openstack-ceph-conf"]
    assert chunks["ceph_openstack-ceph-conf"]["name"] == "/etc/ceph/ceph.conf"
    keyrings = {sid: (c["name"], c.get("ceph_cluster"), c["targets"]["mon"])
                for sid, c in chunks.items() if sid.startswith("ceph_openstack-keyring-")}
    main_mon = "G@role:mon and not G@ceph_cluster:dr"
    dr_mon = "G@role:mon and G@ceph_cluster:dr"
    assert keyrings == {
        "ceph_openstack-keyring-cinder": ("/etc/ceph/ceph.client.cinder.keyring", None, main_mon),
        "ceph_openstack-keyring-glance": ("/etc/ceph/ceph.client.glance.keyring", None, main_mon),
        "ceph_openstack-keyring-cinder-backup": (
            "/etc/ceph/ceph.client.cinder-backup.keyring", None, main_mon),
        "ceph_openstack-keyring-cinder@dr": ("/etc/ceph/dr.client.cinder.keyring", "dr", dr_mon),
        "ceph_openstack-keyring-cinder-backup@dr": (
            "/etc/ceph/dr.client.cinder-backup.keyring", "dr", dr_mon),
        "ceph_openstack-keyring-glance@dr": ("/etc/ceph/dr.client.glance.keyring", "dr", dr_mon),
    }
    cinder = chunks["ceph_openstack-cinder-conf"]["sections"]
    assert cinder["DEFAULT"]["enabled_backends"] == "ceph,ceph-dr"
    assert "rbd_cluster_name" not in cinder["ceph"]
    assert {k: cinder["ceph-dr"][k] for k in ("rbd_ceph_conf", "rbd_cluster_name", "rbd_user",
                                              "rbd_pool", "rbd_secret_uuid")} == {
        "rbd_ceph_conf": "/etc/ceph/dr.conf", "rbd_cluster_name": "dr", "rbd_user": "cinder",
        "rbd_pool": "volumes", "rbd_secret_uuid": DR_UUID}
    assert (cinder["DEFAULT"]["backup_ceph_conf"], cinder["DEFAULT"]["backup_ceph_user"]) == (
        "/etc/ceph/dr.conf", "cinder-backup")
    glance = chunks["ceph_openstack-glance-conf"]["sections"]
    assert glance["DEFAULT"]["enabled_backends"] == "ceph:rbd,dr:rbd"
    assert glance["glance_store"] == {"default_backend": "ceph"}
    assert (glance["ceph"]["rbd_store_ceph_conf"], glance["dr"]["rbd_store_ceph_conf"]) == (
        "/etc/ceph/ceph.conf", "/etc/ceph/dr.conf")
    assert glance["dr"]["rbd_store_chunk_size"] == 8


def test_each_service_watches_the_clusters_and_keyrings_it_reads(node):
    chunks = node(["controller"])
    watched = {unit: chunks[f"ceph_openstack-service-{unit}"]["watch"]
               for unit in ("cinder_volume", "cinder_backup", "glance_api")}
    conf = {"ceph_openstack": "ceph_openstack-ceph-conf"}
    conf_dr = {"ceph_openstack": "ceph_openstack-ceph-conf@dr"}
    assert watched["cinder_volume"][1:] == [conf, conf_dr,
                                           {"ceph_openstack": "ceph_openstack-keyring-cinder"},
                                           {"ceph_openstack": "ceph_openstack-keyring-cinder@dr"}]
    assert watched["cinder_backup"][1:] == [
        conf_dr, {"ceph_openstack": "ceph_openstack-keyring-cinder-backup@dr"}]
    assert watched["glance_api"][2:] == [conf, conf_dr,
                                        {"ceph_openstack": "ceph_openstack-keyring-glance"},
                                        {"ceph_openstack": "ceph_openstack-keyring-glance@dr"}]


def test_compute_gets_a_secret_per_cluster_and_nova_stays_on_its_own(node):
    chunks = node(["compute"])
    secrets = {sid: (c["name"], c["client"], c.get("ceph_cluster"))
               for sid, c in chunks.items() if sid.startswith("ceph_openstack-libvirt-secret-")}
    assert secrets == {
        "ceph_openstack-libvirt-secret-cinder": (
            "691c3607-7ca3-433a-a0c0-5805cea8afa0", "cinder", None),
        "ceph_openstack-libvirt-secret-cinder-dr": (DR_UUID, "cinder", "dr"),
    }
    # The guests' [client] options in both confs (QEMU opens volumes of either cluster).
    assert chunks["ceph_openstack-ceph-conf@dr"]["client"]["rbd cache"] is True
    assert chunks["ceph_openstack-ceph-conf@dr"]["client"]["keyring"] == "/etc/ceph/dr.$name.keyring"
    nova = chunks["ceph_openstack-nova-conf"]["sections"]["libvirt"]
    assert nova["images_rbd_ceph_conf"] == "/etc/ceph/ceph.conf"
    assert "ceph_openstack-keyring-cinder-backup@dr" not in chunks


@pytest.mark.parametrize("grains, expected", [
    ({}, {"ceph_openstack-pool-volumes", "ceph_openstack-pool-images",
          "ceph_openstack-pool-backups", "ceph_openstack-pool-vms",
          "ceph_openstack-client-cinder", "ceph_openstack-client-glance",
          "ceph_openstack-client-cinder-backup", "ceph_openstack-published"}),
    ({"ceph_cluster": "dr"}, {"ceph_openstack-pool-volumes@dr", "ceph_openstack-pool-images@dr",
                              "ceph_openstack-pool-backups@dr", "ceph_openstack-client-cinder@dr",
                              "ceph_openstack-client-glance@dr",
                              "ceph_openstack-client-cinder-backup@dr",
                              "ceph_openstack-published@dr"}),
], ids=["main", "dr"])
def test_a_mon_serves_only_the_clusters_whose_target_names_it(node, grains, expected):
    chunks = node(["mon"], **grains)
    mon = {sid for sid, c in chunks.items() if c["__sls__"] == "ceph_openstack.mon"}
    assert mon == expected
    dr = "dr" if grains else None
    published = chunks["ceph_openstack-published" + ("@dr" if dr else "")]
    assert published.get("ceph_cluster") == dr
    assert sorted(published["clients"]) == ["cinder", "cinder-backup", "glance"]
    for sid in expected - {published["__id__"]}:
        if sid.startswith("ceph_openstack-client-"):
            assert chunks[sid].get("ceph_cluster") == dr, sid


def test_a_mon_no_cluster_names_fails_saying_why(node):
    chunks = node(["mon"], pillar={"ceph_openstack": {"targets": {"mon": "L@elsewhere"}}})
    assert not [sid for sid in chunks if sid.startswith(("ceph_openstack-pool-",
                                                         "ceph_openstack-client-"))]
    assert chunks["ceph_openstack-mon-cluster"]["fun"] == "fail_without_changes"
    assert "no cluster's targets:mon names it" in chunks["ceph_openstack-mon-cluster"]["name"]


def test_a_retiring_node_loses_what_the_formula_wrote_there_on_every_cluster(node):
    """ceph_openstack.retire.node on a node that has left the targets and lost its roles:
    every keyring of both clusters, both secrets, each cluster's ceph.conf options, and
    exactly the ini keys a controller and a compute get written."""
    written = node(["controller", "compute"])
    chunks = node([], sls="ceph_openstack.retire.node", pillar={
        "ceph_openstack_retire": {"minions": ["cmp3"], "force": True}})
    keyrings = {c["name"]: (c["client"], c.get("ceph_cluster")) for sid, c in chunks.items()
                if sid.startswith("ceph_openstack-retire-keyring-")}
    assert keyrings == {
        f"/etc/ceph/{cluster}.client.{client}.keyring": (client, arg)
        for cluster, arg in (("ceph", None), ("dr", "dr"))
        for client in ("cinder", "glance", "cinder-backup")}
    assert all(chunk["fun"] == "keyring_absent" for sid, chunk in chunks.items()
               if sid.startswith("ceph_openstack-retire-keyring-"))
    secrets = {c["name"]: c.get("force") for sid, c in chunks.items()
               if sid.startswith("ceph_openstack-retire-secret-")}
    assert secrets == {"691c3607-7ca3-433a-a0c0-5805cea8afa0": True, DR_UUID: True}
    confs = {c["name"]: c["client"] for sid, c in chunks.items()
             if sid.startswith("ceph_openstack-retire-ceph-conf")}
    assert set(confs) == {"/etc/ceph/ceph.conf", "/etc/ceph/dr.conf"}
    assert "keyring" in confs["/etc/ceph/dr.conf"]
    assert "keyring" not in confs["/etc/ceph/ceph.conf"] and "admin socket" in confs[
        "/etc/ceph/ceph.conf"]
    for part in ("cinder", "glance", "nova"):
        removed = chunks[f"ceph_openstack-retire-{part}-conf"]
        present = written[f"ceph_openstack-{part}-conf"]
        assert removed["name"] == present["name"] and removed["drop_emptied"] is True
        assert {section: sorted(keys) for section, keys in removed["sections"].items()} == {
            section: sorted(options) for section, options in present["sections"].items()}
    # The options and secrets go before the keyrings: a keyring still named stays.
    requisites = chunks["ceph_openstack-retire-keyring-cinder@dr"]["require"]
    assert {"openstack_ini": "ceph_openstack-retire-nova-conf"} in requisites
    assert {"ceph_openstack": "ceph_openstack-retire-secret-cinder"} in requisites
