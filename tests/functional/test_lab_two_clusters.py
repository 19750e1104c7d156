"""The lab's second Ceph cluster (``./run lab up --clusters 2``): its own fsid, its own mon
address on 127.0.0.1, the lab pillar that names it, and ``lab down`` stopping it."""

import os
import pathlib

import pytest
import yaml

from lab import proc
from lab import salt as salt_lab
from lab.__main__ import Lab, main

LOOPBACK = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it


def _listening(pid):
    """``{(address, port)}`` of the TCP sockets process ``pid`` listens on (IPv6 as '::')."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as sockets:
            for line in list(sockets)[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    address, port = fields[1].split(":")
                    found.add((address if table == "tcp" else "::", int(port, 16)))
    return found


def test_each_cluster_answers_with_its_own_fsid_at_its_own_mon_address(ceph_lab, ceph_lab2):
    assert ceph_lab.fsid != ceph_lab2.fsid
    ports = {}
    for cluster in (ceph_lab, ceph_lab2):
        # -m: this mon address alone, whatever the conf says.
        assert cluster.ceph("-m", cluster.mon_host, "fsid")["fsid"] == cluster.fsid
        listening = set()
        for pid in cluster.running().values():
            listening |= _listening(pid)
        assert listening and {address for address, _ in listening} == {LOOPBACK}, listening
        mons = cluster.ceph("mon", "dump")["mons"]
        ports[cluster.fsid] = {int(a["addr"].rsplit(":", 1)[1])
                               for a in mons[0]["public_addrs"]["addrvec"]}
        assert ports[cluster.fsid] <= {port for _, port in listening}
    assert not set.intersection(*ports.values())


@pytest.mark.release_independent
def test_the_lab_pillar_names_the_second_cluster_only_when_there_are_two(tmp_path):
    one = tmp_path / "one"
    salt_lab.write_pillar(str(one))
    assert "two_clusters" not in (one / "pillar" / "top.sls").read_text()

    two = tmp_path / "two"
    roots = salt_lab.write_pillar(str(two), clusters=2)
    top = (two / "pillar" / "top.sls").read_text()
    assert top.index("- ceph_openstack") < top.index("- two_clusters") < top.index("- overrides")
    # The project's own example, as a user adds it: its mon targets match mon2's grain.
    example = yaml.safe_load((pathlib.Path(roots[1]) / "two_clusters.sls").read_text())
    dr = example["ceph_openstack"]["clusters"][salt_lab.SECOND_CLUSTER]
    grains = salt_lab.minion_overrides(str(two), salt_lab.SECOND_MON, ["mon"],
                                       cluster=salt_lab.SECOND_CLUSTER)["grains"]
    assert dr["targets"]["mon"] == f"G@role:mon and G@ceph_cluster:{grains['ceph_cluster']}"

    # Back to one cluster.
    salt_lab.write_pillar(str(two))
    assert "two_clusters" not in (two / "pillar" / "top.sls").read_text()


def test_lab_status_shows_both_clusters_and_lab_down_stops_both(lab_dir, ceph_release, capsys):
    directory = str(lab_dir / "two-clusters-lab")
    lab = Lab(directory, ceph_release, clusters=2)
    assert set(lab.salt.minions) >= {"mon1", salt_lab.SECOND_MON}
    assert lab.salt.minion_config(salt_lab.SECOND_MON)["ceph_openstack"]["conf"] \
        == lab.ceph2.conf
    try:
        # The Ceph parts alone: Salt and libvirtd are not what this is about.
        lab.ceph.up()
        lab.ceph2.up()
        pids = [*lab.ceph.running().values(), *lab.ceph2.running().values()]
        assert len(pids) == 6
        assert main(["status", "--dir", directory]) == 0
        out = capsys.readouterr().out
        assert f"ceph2 health: HEALTH_OK (fsid {lab.ceph2.fsid}" in out
        assert "ceph2    ceph-mon" in out
        assert main(["down", "--dir", directory]) == 0
        assert "ceph-mon (ceph2)" in capsys.readouterr().out
        assert not any(proc.alive(pid) for pid in pids)
        assert not lab.ceph.running() and not lab.ceph2.running()
    finally:
        lab.ceph.down()
        lab.ceph2.down()
