"""
A real one-node Ceph cluster (1 mon, 1 mgr, 1 memstore OSD) for the lab.

Everything lives under one directory and listens on 127.0.0.1 only; nothing
is written to /etc/ceph, /var/lib/ceph or /var/log/ceph, and no systemd is
needed. Debian's ceph-mon, ceph-mgr, ceph-osd and ceph-common provide the
binaries: the host's own, or those of another release's root (lab/release.py),
reached through wrappers (``release.wrappers``) that the lab's minions and the
tests put first on ``PATH``.
"""

import json
import os
import subprocess
import uuid

from lab import proc, release

CLUSTER = "ceph"

_CONF = """\
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{v2},v1:127.0.0.1:{v1}]
public addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = {dir}/run
admin socket = $run_dir/$cluster-$name.asok
log file = {dir}/log/$cluster-$name.log
mon cluster log file = {dir}/log/$cluster.log
crash dir = {dir}/crash
mon data = {dir}/mon/$cluster-$id
mgr data = {dir}/mgr/$cluster-$id
osd data = {dir}/osd/$cluster-$id
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
auth allow insecure global id reclaim = false
osd objectstore = memstore
memstore device bytes = 2147483648
osd fast shutdown = false
# Propose mon updates at once instead of batching them for a second.
paxos propose interval = 0.01
paxos min wait = 0.001
mgr initial modules =

[mon]
keyring = $mon_data/keyring

[mgr]
keyring = $mgr_data/keyring

[osd]
keyring = $osd_data/keyring

[client.admin]
keyring = {dir}/{cluster}.client.admin.keyring
"""


def client_conf(ceph_conf, client, keyring, dest):
    """
    Write ``dest``: the ceph.conf ``ceph_conf`` plus ``[client.<client>] keyring``.

    The formula writes ceph.conf without keyring lines (Ceph finds
    ``/etc/ceph/<cluster>.client.<id>.keyring`` by default); in the lab the
    keyring lies under a minion's sandbox root, so a client of the lab names it.
    """
    with open(ceph_conf) as src, open(dest, "w") as out:
        out.write(src.read().rstrip("\n") + f"\n\n[client.{client}]\nkeyring = {keyring}\n")
    return dest


def sandbox_client_conf(root, client, dest):
    """``client_conf`` for the ceph.conf and client keyring the formula wrote under a lab
    minion's sandbox ``root``."""
    ceph_dir = os.path.join(root, "etc", "ceph")
    return client_conf(os.path.join(ceph_dir, f"{CLUSTER}.conf"), client,
                       os.path.join(ceph_dir, f"{CLUSTER}.client.{client}.keyring"), dest)


class CephLab:
    """
    A one-node Ceph cluster under ``directory``, of Ceph ``ceph_release`` (pacific,
    reef or tentacle); without it, the release the cluster was made with
    (``<dir>/release``), else ``$CEPH_RELEASE``, else the host's packages.
    """

    def __init__(self, directory, ceph_release=None):
        self.dir = os.path.abspath(directory)
        self.conf = os.path.join(self.dir, f"{CLUSTER}.conf")
        self.admin_keyring = os.path.join(self.dir, f"{CLUSTER}.client.admin.keyring")
        self.piddir = os.path.join(self.dir, "pids")
        self.logdir = os.path.join(self.dir, "log")
        self.release = release.selected(ceph_release or self._recorded_release())
        #: Directory of the release's wrappers (first on PATH), or None for the host's.
        self.bindir = release.bindir(self.release) if release.needs_root(self.release) else None

    def _recorded_release(self):
        try:
            with open(os.path.join(self.dir, "release")) as name:
                return name.read().strip() or None
        except FileNotFoundError:
            return None

    def prepare(self):
        """Record the release and, for another release's root, write its wrappers (building
        the root on first use). Done by ``up``; cheap when done already."""
        recorded = self._recorded_release()
        if self.exists() and recorded not in (None, self.release):
            raise RuntimeError(f"the cluster in {self.dir} runs Ceph {recorded}, not "
                               f"{self.release}: stop it and remove the directory first")
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "release"), "w") as out:
            out.write(self.release + "\n")
        if self.bindir:
            release.wrappers(self.release)
        return self

    def tool(self, name):
        """The path of Ceph binary ``name`` for this cluster's release."""
        return os.path.join(self.bindir, name) if self.bindir else name

    def env(self, base=None):
        """``base`` (default: ours) with this release's wrappers first on PATH."""
        env = dict(os.environ if base is None else base)
        if self.bindir:
            env["PATH"] = self.bindir + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        return env

    def version(self):
        """``ceph --version`` of this release's client."""
        return subprocess.run([self.tool("ceph"), "--version"], capture_output=True, text=True,
                              check=True).stdout.strip()

    # -- CLI ---------------------------------------------------------------

    def ceph(self, *args, stdin=None, check=True, timeout=30, json_out=True):
        """Run the ceph CLI as client.admin against this cluster; JSON is decoded."""
        cmd = [self.tool("ceph"), "--conf", self.conf, "--connect-timeout", "10", *args]
        if json_out:
            cmd += ["--format", "json"]
        out = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode:
            raise RuntimeError(f"ceph {' '.join(args)}: {out.stderr.strip()}")
        if not json_out:
            return out.stdout
        return json.loads(out.stdout) if out.stdout.strip() else None

    def rbd(self, *args, check=True, timeout=30, client_id="admin", keyring=None, conf=None):
        """Run the rbd CLI (as ``client_id``) against this cluster; returns stdout."""
        cmd = [self.tool("rbd"), "--conf", conf or self.conf, "--id", client_id]
        if keyring:
            cmd += ["--keyring", keyring]
        out = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout)
        if check and out.returncode:
            raise RuntimeError(f"rbd {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def logs_in(self, entity, keyring, conf=None):
        """True when ``entity`` authenticates with ``keyring`` (a real cephx login,
        ``mon stat``); False when the cluster refuses it."""
        out = subprocess.run([self.tool("ceph"), "--conf", conf or self.conf,
                              "--id", entity.split(".", 1)[1], "--keyring", str(keyring),
                              "--connect-timeout", "10", "mon", "stat"],
                             capture_output=True, text=True, timeout=30)
        return out.returncode == 0

    @property
    def fsid(self):
        with open(self.conf) as conf:
            for line in conf:
                if line.startswith("fsid ="):
                    return line.split("=", 1)[1].strip()
        raise RuntimeError(f"no fsid in {self.conf}")

    @property
    def mon_host(self):
        with open(self.conf) as conf:
            for line in conf:
                if line.startswith("mon host ="):
                    return line.split("=", 1)[1].strip()
        raise RuntimeError(f"no mon host in {self.conf}")

    # -- life cycle --------------------------------------------------------

    def exists(self):
        return os.path.exists(os.path.join(self.dir, "mon", f"{CLUSTER}-a", "store.db"))

    def running(self):
        return {name: pid for name, pid in proc.pids(self.piddir).items() if proc.alive(pid)}

    def up(self, timeout=90):
        """Create the cluster on first use, start its daemons and wait until ready."""
        self.prepare()
        if not self.exists():
            self._mkfs()
        self._start()
        self.wait_ready(timeout)
        return self

    def down(self):
        # The OSD first, while the mon can take its "going down"; after the mon it waits
        # osd_mon_shutdown_timeout (5 s) for an answer that never comes.
        stopped = proc.stop_all(self.piddir, names=["ceph-osd"])
        stopped.update(proc.stop_all(self.piddir))
        return stopped

    def _run(self, tool, *args):
        subprocess.run([self.tool(tool), *args], check=True, capture_output=True, text=True,
                       cwd="/")

    def _daemon(self, name, *args):
        # From /: a relative default path (Debian 13's osd class dir) must not depend on
        # where the lab was started.
        proc.start_daemon(name, [self.tool(name), "--conf", self.conf, "-f", *args],
                          self.piddir, self.logdir, cwd="/")

    def _mkfs(self):
        for sub in ("run", "log", "crash", "mon", "mgr", "osd"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        fsid = str(uuid.uuid4())
        v1, v2 = proc.free_port(), proc.free_port()
        with open(self.conf, "w") as conf:
            conf.write(_CONF.format(fsid=fsid, v1=v1, v2=v2, dir=self.dir, cluster=CLUSTER))

        mon_keyring = os.path.join(self.dir, "mon.keyring")
        self._run("ceph-authtool", "--create-keyring", mon_keyring, "--gen-key", "-n", "mon.",
                  "--cap", "mon", "allow *")
        self._run("ceph-authtool", "--create-keyring", self.admin_keyring, "--gen-key",
                  "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd", "allow *",
                  "--cap", "mds", "allow *", "--cap", "mgr", "allow *")
        os.chmod(self.admin_keyring, 0o600)
        mgr_dir = os.path.join(self.dir, "mgr", f"{CLUSTER}-x")
        os.makedirs(mgr_dir, exist_ok=True)
        mgr_keyring = os.path.join(mgr_dir, "keyring")
        self._run("ceph-authtool", "--create-keyring", mgr_keyring, "--gen-key", "-n", "mgr.x",
                  "--cap", "mon", "allow profile mgr", "--cap", "osd", "allow *",
                  "--cap", "mds", "allow *")
        # The mon learns the admin and mgr keys from its mkfs keyring.
        for keyring in (self.admin_keyring, mgr_keyring):
            self._run("ceph-authtool", mon_keyring, "--import-keyring", keyring)

        monmap = os.path.join(self.dir, "monmap")
        self._run("monmaptool", "--create", "--fsid", fsid,
                  "--addv", "a", f"[v2:127.0.0.1:{v2},v1:127.0.0.1:{v1}]", monmap)
        self._run("ceph-mon", "--conf", self.conf, "--mkfs", "-i", "a",
                  "--monmap", monmap, "--keyring", mon_keyring)
        self._start_mon()
        proc.wait_for(lambda: self.ceph("mon", "stat", check=False, timeout=15), 30, "ceph-mon")

        osd_uuid = str(uuid.uuid4())
        osd_id = self.ceph("osd", "new", osd_uuid)["osdid"]
        osd_dir = os.path.join(self.dir, "osd", f"{CLUSTER}-{osd_id}")
        os.makedirs(osd_dir, exist_ok=True)
        # The OSD key comes from the mon first, so the OSD's mkfs can authenticate.
        osd_keyring = os.path.join(osd_dir, "keyring")
        self.ceph("auth", "get-or-create", f"osd.{osd_id}", "osd", "allow *",
                  "mon", "allow profile osd", "mgr", "allow profile osd", "-o", osd_keyring,
                  json_out=False)
        self._run("ceph-osd", "--conf", self.conf, "-i", str(osd_id), "--mkfs",
                  "--osd-uuid", osd_uuid)

    def _start_mon(self):
        if "ceph-mon" not in self.running():
            self._daemon("ceph-mon", "-i", "a")

    def _start(self):
        self._start_mon()
        running = self.running()
        if "ceph-mgr" not in running:
            self._daemon("ceph-mgr", "-i", "x")
        if "ceph-osd" not in running:
            self._daemon("ceph-osd", "-i", "0")

    #: What ``ready`` waits for; any other health check is reported, not waited on.
    READY = "mon quorum, an active mgr, the OSD up and in, every PG active+clean"

    def ready(self):
        """Mon quorum, an active mgr, the OSD up and in, and every PG active+clean.

        Not HEALTH_OK as such: some releases raise checks a lab cannot cure (Debian 13's
        mgr modules that cannot load, ``MGR_MODULE_DEPENDENCY``); see ``other_health_checks``.
        """
        status = self.ceph("status", check=False, timeout=15)
        if not status or not status.get("quorum_names"):
            return False
        if not status.get("mgrmap", {}).get("available"):
            return False
        osdmap = status["osdmap"].get("osdmap", status["osdmap"])
        if osdmap.get("num_up_osds") != 1 or osdmap.get("num_in_osds") != 1:
            return False
        pgmap = status["pgmap"]
        clean = sum(s["count"] for s in pgmap.get("pgs_by_state", [])
                    if s["state_name"] == "active+clean")
        return clean == pgmap.get("num_pgs", 0)

    def wait_ready(self, timeout=90):
        proc.wait_for(self.ready, timeout,
                      f"Ceph cluster in {self.dir} ({self.READY}; see {self.logdir})",
                      interval=0.5)

    def health_checks(self):
        """``{code: summary}`` of the cluster's current health checks."""
        health = self.ceph("health", check=False, timeout=15) or {}
        return {code: (check.get("summary") or {}).get("message", "")
                for code, check in sorted((health.get("checks") or {}).items())}

    def other_health_checks(self):
        """Codes of the health checks raised now (empty on HEALTH_OK)."""
        return list(self.health_checks())

    def rss_kib(self):
        return {name: proc.rss_kib(pid) for name, pid in self.running().items()}
