"""
Two Ceph clusters on real OpenStack nodes: the lab's main cluster and a second one, ``dr``
(pillar/two_clusters.sls, as a user adds it: a second Cinder backend, every backup and a
second Glance store on dr; Nova's disks stay on the main cluster), with a mon minion each.
Debian's Glance, Cinder and Nova then do their work on both, with the formula's files,
and each cluster is asked from outside what landed in it.

Runs after test_openstack.py, on the same nodes (one set of real nodes per machine); the
tests run in file order, as one scenario.
"""

import json
import re

import pytest
import yaml

from lab import openstack
from lab.nodes import NODES
from lab.openstack import wait
from tests.conftest import ROOT
from tests.integration.test_rollout import SECRET_UUID, changed, orchestrate
from tests.real.test_openstack import CMP, CTL, converged, sh

pytestmark = [pytest.mark.integration, pytest.mark.real_nodes]

EXAMPLE = yaml.safe_load((ROOT / "pillar" / "two_clusters.sls").read_text())["ceph_openstack"]
DR_SECRET = EXAMPLE["libvirt"]["secrets"]["cinder-dr"]["uuid"]
DR_CLIENTS = sorted(EXAMPLE["clusters"]["dr"]["clients"])


@pytest.fixture(scope="module")
def rolled_out(two_clusters, nodes, salt_run_cli):
    """The rollout with the second cluster in pillar; the units' PIDs before it."""
    before = nodes.unit_pids()
    steps, failed = orchestrate(salt_run_cli)
    converged(steps, failed)
    return before


def test_the_second_cluster_restarts_what_uses_it_and_a_second_rollout_nothing(
        rolled_out, nodes, salt_run_cli):
    after = nodes.unit_pids()
    restarted = {unit for unit, pid in after.items() if pid != rolled_out.get(unit)}
    # cinder-volume (a new backend), cinder-backup (its cluster moved), glance-api (a new
    # store); nova-compute reads neither dr's conf nor dr's keyring.
    assert restarted == {(CTL, "cinder-volume"), (CTL, "cinder-backup"),
                         (CTL, "glance-api")}, restarted
    steps, failed = orchestrate(salt_run_cli)
    converged(steps, failed)
    assert not changed(steps), changed(steps)
    assert nodes.unit_pids() == after


def test_cinder_reports_a_backend_on_each_cluster_up(rolled_out):
    def both_up():
        services = {s["host"]: s["state"] for s in openstack.cinder_services()
                    if s["binary"] == "cinder-volume"}
        return services if services.get(f"{CTL}@ceph") == services.get(
            f"{CTL}@ceph-dr") == "up" else None
    wait("cinder-volume up on both backends", both_up, timeout=120)


@pytest.fixture(scope="module")
def dr_image(rolled_out):
    data = bytes(range(256)) * (4 << 12)  # 4 MiB, recognisable
    return {"id": openstack.upload_image("dr-image", data, store="dr"), "data": data}


def test_glance_stores_an_image_in_the_second_clusters_store(dr_image, ceph_lab, ceph_lab2):
    shown = openstack.image(dr_image["id"])
    assert shown["status"] == "active"
    assert shown["direct_url"] == f"rbd://{ceph_lab2.fsid}/images/{dr_image['id']}/snap"
    assert dr_image["id"] in ceph_lab2.rbd("ls", "images").split()
    assert dr_image["id"] not in ceph_lab.rbd("ls", "images").split()


@pytest.fixture(scope="module")
def dr_volume(dr_image):
    kind = openstack.volume_type("on-dr", "ceph-dr")
    return openstack.volume_from_image(dr_image["id"], "on-dr", volume_type=kind)


def test_a_volume_on_the_second_backend_is_a_clone_of_the_image_there(
        dr_volume, dr_image, ceph_lab2):
    assert dr_volume["os-vol-host-attr:host"].startswith(f"{CTL}@ceph-dr#")
    info = json.loads(ceph_lab2.rbd("info", f"volumes/volume-{dr_volume['id']}",
                                    "--format", "json"))
    assert info.get("parent", {}).get("pool") == "images", info
    assert (info["parent"]["image"], info["parent"]["snapshot"]) == (dr_image["id"], "snap")


@pytest.fixture(scope="module")
def main_volume(rolled_out):
    data = bytes(reversed(range(256))) * (4 << 12)
    image_id = openstack.upload_image("main-image", data, store="ceph")
    kind = openstack.volume_type("on-main", "ceph")
    return dict(openstack.volume_from_image(image_id, "on-main", volume_type=kind), data=data)


def test_a_backup_of_a_main_volume_lands_in_the_second_cluster_and_restores(
        main_volume, ceph_lab, ceph_lab2, tmp_path):
    assert main_volume["os-vol-host-attr:host"].startswith(f"{CTL}@ceph#")
    backup = openstack.backup(main_volume["id"], "main-to-dr")
    assert any(main_volume["id"] in name for name in ceph_lab2.rbd("ls", "backups").split())
    assert not any(main_volume["id"] in name for name in ceph_lab.rbd("ls", "backups").split())
    restored = openstack.restore(backup["id"], "restored-from-dr")
    host = restored["os-vol-host-attr:host"]
    cluster = ceph_lab2 if host.startswith(f"{CTL}@ceph-dr#") else ceph_lab
    out = tmp_path / "restored.raw"
    cluster.rbd("export", f"volumes/volume-{restored['id']}", str(out), timeout=300)
    with open(out, "rb") as disk:
        assert disk.read(len(main_volume["data"])) == main_volume["data"]


def _mon_v1_port(cluster):
    return re.search(r"v1:127\.0\.0\.1:(\d+)", cluster.mon_host).group(1)


def test_a_guest_reads_a_disk_on_each_cluster_with_each_clusters_secret(
        nodes, main_volume, dr_volume, ceph_lab, ceph_lab2):
    disks = [(ceph_lab, f"volumes/volume-{main_volume['id']}", SECRET_UUID, "vda"),
             (ceph_lab2, f"volumes/volume-{dr_volume['id']}", DR_SECRET, "vdb")]
    devices = "".join(
        f"""<disk type='network' device='disk'><driver name='qemu' type='raw'/>
          <source protocol='rbd' name='{name}'><host name='127.0.0.1'
            port='{_mon_v1_port(cluster)}'/></source>
          <auth username='cinder'><secret type='ceph' uuid='{secret}'/></auth>
          <target dev='{dev}' bus='virtio'/></disk>""" for cluster, name, secret, dev in disks)
    xml = f"""<domain type='qemu'><name>two-cluster-guest</name><memory unit='MiB'>96</memory>
      <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{devices}</devices></domain>"""
    nodes.run(CMP, ["sh", "-c", "cat > /tmp/two-cluster-guest.xml"], stdin=xml)
    sh(nodes, CMP, "virsh define /tmp/two-cluster-guest.xml && virsh start two-cluster-guest")
    try:
        for cluster, name, _, _ in disks:
            assert wait(f"the guest's watcher on {name}", lambda: json.loads(
                cluster.rbd("status", name, "--format", "json")).get("watchers"), timeout=30)
        assert "running" in sh(nodes, CMP, "virsh domstate two-cluster-guest")
        usages = sh(nodes, CMP, f"virsh secret-dumpxml {DR_SECRET}")
        assert "<usage type='ceph'>" in usages and "dr.client.cinder secret" in usages
    finally:
        sh(nodes, CMP, "virsh destroy two-cluster-guest; virsh undefine two-cluster-guest",
           check=False)


def _client_entities(cluster):
    return sorted(entry["entity"] for entry in cluster.ceph("auth", "ls")["auth_dump"]
                  if entry["entity"].startswith("client.")
                  and entry["entity"] != "client.admin"
                  and not entry["entity"].startswith("client.bootstrap"))


def test_each_cluster_lists_only_its_own_users(rolled_out, ceph_lab2):
    assert _client_entities(ceph_lab2) == [f"client.{name}" for name in DR_CLIENTS]


def test_no_key_of_one_cluster_is_in_the_other_clusters_files(rolled_out, nodes, ceph_lab,
                                                              ceph_lab2):
    keys = {name: {cluster: c.ceph("auth", "get-key", f"client.{name}", json_out=False).strip()
                   for cluster, c in (("ceph", ceph_lab), ("dr", ceph_lab2))}
            for name in DR_CLIENTS}
    for node in NODES:
        files = {path: sh(nodes, node, f"cat {path}") for path in
                 sh(nodes, node, "ls -d /etc/ceph/*").split()}
        for name, by_cluster in keys.items():
            assert by_cluster["ceph"] != by_cluster["dr"]
            for cluster, key in by_cluster.items():
                other = [path for path, text in files.items()
                         if key in text and not path.startswith(f"/etc/ceph/{cluster}.")]
                assert not other, (node, name, cluster, other)


def test_verify_checks_every_user_against_its_own_cluster(rolled_out, salt_cli):
    ret = salt_cli.run("ceph_openstack.verify", minion_tgt=CTL)
    report = ret.data
    assert report["ok"], report
    dr = [label for label in report["checks"] if label.endswith(" of cluster dr")]
    assert sorted(label.split("client.")[1].split()[0] for label in dr) == [
        "cinder", "cinder-backup", "glance"], report["checks"]
