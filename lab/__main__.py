"""
The lab command: ``python -m lab up|down|status|demo [--dir DIR]``.

``up`` starts a one-node Ceph cluster, an unprivileged libvirtd and a Salt
master with the minions mon1, ctl1 and cmp1, all on 127.0.0.1 with all state
under DIR; with ``--clusters 2``, also a second one-node cluster (DIR/ceph2) and
its mon minion mon2; ``down`` stops every process it started, by PID; ``demo``
runs the whole rollout on a fresh lab and prints a summary (see lab/demo.py).
"""

import argparse
import concurrent.futures
import os
import sys
import time

from lab.ceph import CephLab
from lab.glance import GlanceLab
from lab.libvirt import LibvirtLab
from lab.nodes import NODES, NodeLab
from lab.release import RELEASES
from lab.salt import MINIONS, SECOND_MON, SaltLab

DEFAULT_DIR = os.environ.get("LAB_DIR", "/tmp/ceph_openstack-lab")


class Lab:
    """All parts of the lab under one directory."""

    def __init__(self, directory, ceph_release=None, nodes=None, clusters=None):
        self.dir = os.path.abspath(directory)
        self.ceph = CephLab(os.path.join(self.dir, "ceph"), ceph_release)
        #: The second cluster (same release), started by ``up`` when ``clusters`` is 2;
        #: ``down`` stops it whatever the count.
        self.ceph2 = CephLab(os.path.join(self.dir, "ceph2"), ceph_release)
        self.libvirt = LibvirtLab(os.path.join(self.dir, "libvirt"))
        #: "sandbox" (every minion a host process with a sandbox root) or "real" (the
        #: controller and the compute booted as Debian systems, lab/nodes.py)
        self.node_kind = nodes or self._recorded("nodes.kind") or "sandbox"
        #: 1, or 2: a second cluster, its mon minion (SECOND_MON) and the two-cluster pillar
        self.clusters = int(clusters or self._recorded("clusters") or 1)
        if self.clusters not in (1, 2):
            raise ValueError(f"the lab runs 1 or 2 Ceph clusters, not {self.clusters}")
        real = NODES if self.node_kind == "real" else {}
        minions = {m: r for m, r in MINIONS.items() if m not in real}
        self.salt = SaltLab(os.path.join(self.dir, "salt"), self.ceph, self.libvirt,
                            minions=minions, real_nodes=real,
                            ceph2=self.ceph2 if self.clusters == 2 else None)
        self.nodes = NodeLab(os.path.join(self.dir, "nodes"), nodes=real)
        # Started by the demo once a controller has its glance-api.conf (lab/glance.py).
        self.glance = GlanceLab(os.path.join(self.dir, "glance"))

    def up(self):
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)  # libvirtd runs unprivileged and must reach its subdirectory
        timings = {}
        start = time.monotonic()
        self.ceph.prepare()  # builds another release's root on first use
        timings["ceph root"] = time.monotonic() - start
        # The minions (and the demo) call this release's ceph, rbd and rados.
        os.environ["PATH"] = self.ceph.env()["PATH"]
        self._record("nodes.kind", self.node_kind)
        self._record("clusters", self.clusters)
        with concurrent.futures.ThreadPoolExecutor(1) as beside:
            # The second cluster needs no other part: it comes up beside them.
            second = beside.submit(_timed, self.ceph2.up) if self.clusters == 2 else None
            for name, part in (("ceph", self.ceph), ("libvirt", self.libvirt),
                               ("salt", self.salt)):
                timings[name] = _timed(part.up)
            if second is not None:
                timings["ceph2 (beside)"] = second.result()
        if self.nodes.nodes:
            start = time.monotonic()
            self.nodes.master_port = self.salt.ret_port()
            self.nodes.up()
            self.salt.wait_for_minions(self.nodes.nodes, timeout=120)
            timings["real nodes"] = time.monotonic() - start
        return timings

    def _recorded(self, name):
        """What ``up`` recorded in ``<dir>/<name>`` (the node kind, the cluster count)."""
        try:
            with open(os.path.join(self.dir, name)) as recorded:
                return recorded.read().strip() or None
        except OSError:
            return None

    def _record(self, name, value):
        with open(os.path.join(self.dir, name), "w") as out:
            out.write(f"{value}\n")

    def down(self):
        stopped = {}
        with concurrent.futures.ThreadPoolExecutor(1) as beside:
            second = beside.submit(self.ceph2.down)  # its daemons take seconds to stop
            for part in (self.glance, self.nodes, self.salt, self.libvirt, self.ceph):
                stopped.update(part.down())
            # Named apart: the second cluster's daemons have the first one's names.
            stopped.update({f"{name} (ceph2)": pid for name, pid in second.result().items()})
        return stopped

    def status(self):
        return {
            "ceph": self.ceph.rss_kib(),
            "ceph2": self.ceph2.rss_kib(),
            "libvirt": self.libvirt.rss_kib(),
            "salt": self.salt.rss_kib(),
            "glance": self.glance.rss_kib(),
            "nodes": self.nodes.rss_kib(),
        }


def _timed(call):
    """Seconds that ``call()`` took."""
    start = time.monotonic()
    call()
    return time.monotonic() - start


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lab", description=__doc__.strip().splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "demo"])
    parser.add_argument("--dir", default=DEFAULT_DIR, help=f"lab directory ({DEFAULT_DIR})")
    parser.add_argument("--keep", action="store_true", help="demo: leave the lab running")
    parser.add_argument("--nodes", choices=["sandbox", "real"], default=None,
                        help="controller and compute of a new lab: sandbox roots (default, "
                             "fast) or real Debian nodes with OpenStack (lab/nodes.py); an "
                             "existing lab keeps its own")
    parser.add_argument("--ceph", choices=sorted(RELEASES), default=None,
                        help="Ceph release of a new lab (default: $CEPH_RELEASE, else the "
                             "host's packages); an existing lab keeps its own")
    parser.add_argument("--clusters", type=int, choices=[1, 2], default=None,
                        help="Ceph clusters of a new lab (default: $LAB_CLUSTERS, else 1); "
                             f"the second has its own mon minion, {SECOND_MON}; an existing "
                             "lab keeps its own")
    args = parser.parse_args(argv)
    # up and demo make a lab of the release asked for; status and down find a lab's own.
    wanted, nodes, clusters = args.ceph, args.nodes, args.clusters
    if args.command in ("up", "demo"):
        wanted = wanted or os.environ.get("CEPH_RELEASE")
        nodes = nodes or os.environ.get("LAB_NODES")
        clusters = clusters or os.environ.get("LAB_CLUSTERS")
    lab = Lab(args.dir, wanted, nodes, clusters)

    if args.command == "up":
        timings = lab.up()
        print(f"lab up in {lab.dir}: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        _print_status(lab)
    elif args.command == "down":
        stopped = lab.down()
        print(f"stopped {len(stopped)} processes: {', '.join(sorted(stopped)) or 'none'}")
    elif args.command == "status":
        _print_status(lab)
    else:
        from lab.demo import run_demo

        return run_demo(lab, keep=args.keep)
    return 0


def _print_status(lab):
    print(f"  ceph release: {lab.ceph.release}"
          + ("" if lab.ceph.bindir is None else f" (from {lab.ceph.bindir})"))
    for name, cluster in (("ceph", lab.ceph), ("ceph2", lab.ceph2)):
        if cluster.running():
            checks = cluster.health_checks()
            print(f"  {name} health: " + ("HEALTH_OK" if not checks else "; ".join(
                f"{code}: {summary}" for code, summary in checks.items()))
                  + f" (fsid {cluster.fsid}, mon {cluster.mon_host})")
    total = 0
    for part, processes in lab.status().items():
        for name, rss in sorted(processes.items()):
            total += rss
            print(f"  {part:8} {name:22} {rss / 1024:7.1f} MiB RSS")
    print(f"  total {total / 1024:.0f} MiB RSS")


if __name__ == "__main__":
    sys.exit(main())
