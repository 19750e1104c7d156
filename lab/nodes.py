"""
Real OpenStack nodes for the lab: the controller and the compute as Debian systems booted
with systemd as PID 1 (``systemd-nspawn --boot``), each with its own salt-minion.

Each node boots from its role's cached image (lab/images.py) through an overlay: the
image stays as built, the node's writes go to ``<dir>/<id>/upper`` (inspectable, and gone
with the lab). The overlay is mounted in a private mount namespace that only the node's
``systemd-nspawn`` lives in: nothing is mounted on the host. The nodes share the host's
network, as the lab's Ceph cluster and Salt master listen on 127.0.0.1: their services use
their usual ports (RabbitMQ 5672, Glance 9292, Cinder 8776), so one real-node lab runs on a
machine at a time (a lock says which).

On first boot the lab deploys OpenStack as a user's deployment has it, without Keystone
(files/deploy-<role>.sh inside the node): databases (SQLite), RabbitMQ, ``noauth``, then it
starts the units. The formula then does what it does on users' nodes: installs the Ceph
client packages, writes ceph.conf, keyrings, the libvirt secret and the Ceph options, and
restarts what changed. The node's salt-minion is the Salt the project's lock file pins,
installed in the image (lab/images.py), so a node of another Debian release than the
host's runs its own Python.
"""

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time

import yaml

from lab import images, proc

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = os.path.join(PROJECT, "lab", "files")

#: minion id -> role of the real nodes (the sandbox lab's ids, so pillar and tests match)
NODES = {"ctl1": "controller", "cmp1": "compute"}

#: The ports the nodes' services take on the shared network (127.0.0.1).
SERVICE_PORTS = {"rabbitmq-server": 5672, "glance-api": 9292, "cinder-api": 8776,
                 "placement-api": 8778, "epmd": 4369}

LOCK = "/run/lock/ceph_openstack-nodes.lock"


class NodeError(RuntimeError):
    """A node could not be built, booted or deployed; the message says where to look."""


class NodeLab:
    """The real nodes of one lab under ``directory``; ``master_port`` is the Salt master's
    ret port the nodes' minions connect to."""

    def __init__(self, directory, master_port=None, nodes=None, suite=None):
        self.dir = os.path.abspath(directory)
        #: Debian release of the nodes: the host's, or $NODE_SUITE (bookworm, trixie)
        self.suite = suite or images.default_suite()
        self.master_port = master_port
        self.nodes = dict(NODES if nodes is None else nodes)
        self.piddir = os.path.join(self.dir, "pids")
        self.logdir = os.path.join(self.dir, "log")
        self._lock = None

    # -- paths --------------------------------------------------------------------------

    def upper(self, node_id):
        """The node's writes; ``upper(id)/etc/...`` is what the node changed under /etc."""
        return os.path.join(self.dir, node_id, "upper")

    def root(self, node_id):
        """The node's ``/`` as mounted (only inside its own mount namespace)."""
        return os.path.join(self.dir, node_id, "root")

    # -- life cycle ---------------------------------------------------------------------

    def up(self, timeout=300):
        """Build the images (once), boot every node, deploy OpenStack on first boot and
        wait until each node's units are started and its minion runs."""
        self._take_lock()
        running = self.running()
        if not running:
            self._check_ports()
        for node_id, role in self.nodes.items():
            image = images.build(role, self.suite)
            if node_id in running:
                continue
            self._prepare(node_id, role)
            self._boot(node_id, image)
        for node_id in self.nodes:
            proc.wait_for(lambda n=node_id: self._booted(n), timeout, f"node {node_id} boot",
                          interval=1)
        # The controller first: the compute's nova-compute waits for its conductor.
        for node_id, role in sorted(self.nodes.items(), key=lambda item: item[1] != "controller"):
            self.deploy(node_id, role)
        return self

    def down(self, timeout=90):
        """Halt every node (SIGTERM to systemd-nspawn: a clean shutdown), then KILL."""
        recorded = {name: pid for name, pid in proc.pids(self.piddir).items()}
        for pid in recorded.values():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(proc.alive(p) for p in recorded.values()):
            time.sleep(0.2)
        stopped = proc.stop_all(self.piddir, timeout=5)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        return stopped

    def running(self):
        return {name[len("node-"):]: pid for name, pid in proc.pids(self.piddir).items()
                if proc.alive(pid)}

    def _take_lock(self):
        if self._lock is not None:
            return
        os.makedirs(os.path.dirname(LOCK), exist_ok=True)
        lock = open(LOCK, "a+")  # pylint: disable=consider-using-with
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise NodeError(f"another lab's real nodes hold {LOCK} ({lock.read().strip()}): "
                            "their services take the same ports; stop that lab first")
        lock.truncate(0)
        lock.write(f"{self.dir} pid {os.getpid()}\n")
        lock.flush()
        self._lock = lock

    @staticmethod
    def _check_ports():
        busy = []
        for service, port in SERVICE_PORTS.items():
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    busy.append(f"{port} ({service})")
        if busy:
            raise NodeError("the real nodes' services need ports that something on this "
                            f"machine already listens on: {', '.join(busy)}")

    # -- preparing and booting ----------------------------------------------------------

    def _prepare(self, node_id, role):
        """The node's first-boot files, written into its overlay's upper directory."""
        upper = self.upper(node_id)
        for sub in ("upper", "work", "root"):
            os.makedirs(os.path.join(self.dir, node_id, sub), exist_ok=True)
        minion = {
            "id": node_id,
            "master": "127.0.0.1",
            "master_port": self.master_port,
            "grains": {"role": role},
            "log_level_logfile": "info",
            "mine_interval": 60,
        }
        self._write(upper, "etc/salt/minion", yaml.safe_dump(minion, default_flow_style=False))
        self._write(upper, "etc/systemd/system/salt-minion.service", (
            "[Unit]\nDescription=Salt minion (the lab's Salt)\nAfter=network.target\n\n"
            f"[Service]\nExecStart={images.SALT_VENV}/bin/salt-minion -c /etc/salt\n"
            "Restart=on-failure\nKillMode=process\n\n[Install]\nWantedBy=multi-user.target\n"))
        wants = os.path.join(upper, "etc/systemd/system/multi-user.target.wants")
        os.makedirs(wants, exist_ok=True)
        link = os.path.join(wants, "salt-minion.service")
        if not os.path.lexists(link):
            os.symlink("/etc/systemd/system/salt-minion.service", link)
        self._write(upper, "etc/hostname", node_id + "\n")
        self._write(upper, "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{node_id}\n")
        ini = self._mkparent(upper, "usr/local/sbin/lab-ini")
        shutil.copyfile(os.path.join(FILES, "lab-ini"), ini)
        os.chmod(ini, 0o755)
        deploy = self._mkparent(upper, "usr/local/sbin/lab-deploy")
        shutil.copyfile(os.path.join(FILES, f"deploy-{role}.sh"), deploy)
        os.chmod(deploy, 0o755)

    @staticmethod
    def _mkparent(upper, relpath):
        path = os.path.join(upper, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def _write(self, upper, relpath, text):
        with open(self._mkparent(upper, relpath), "w") as out:
            out.write(text)

    def _boot(self, node_id, image):
        base = os.path.join(self.dir, node_id)
        mount = (f"lowerdir={image},upperdir={base}/upper,workdir={base}/work")
        script = (f'mount -t overlay overlay -o "$1" "$2" || exit 125; shift 2; '
                  'exec systemd-nspawn "$@"')
        argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                script, "sh", mount, self.root(node_id),
                "-D", self.root(node_id), "--boot", "--register=no", "--keep-unit",
                f"--machine={node_id}", "--console=passive"]
        proc.start_daemon(f"node-{node_id}", argv, self.piddir, self.logdir)

    def leader(self, node_id):
        """PID (on the host) of the node's PID 1: systemd-nspawn's child."""
        pid = self.running().get(node_id)
        if pid is None:
            raise NodeError(f"node {node_id} is not running (see {self.logdir}/node-{node_id}.out)")
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                            children.append(int(entry))
                except (OSError, ValueError, IndexError):
                    continue
        for child in children:
            try:
                with open(f"/proc/{child}/comm") as comm:
                    if comm.read().strip() == "systemd":
                        return child
            except OSError:
                continue
        raise NodeError(f"node {node_id}: systemd is not running yet")

    def run(self, node_id, argv, check=True, timeout=600, stdin=None):
        """Run ``argv`` inside the node (all its namespaces, as root); returns the
        CompletedProcess (text)."""
        cmd = ["nsenter", "-t", str(self.leader(node_id)), "-a", "--",
               "/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
               "/sbin:/bin", "LANG=C.UTF-8", *argv]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin)
        if check and done.returncode != 0:
            raise NodeError(f"{node_id}: {' '.join(argv)} exited {done.returncode}: "
                            f"{done.stdout[-1500:]} {done.stderr[-1500:]}")
        return done

    def _booted(self, node_id):
        try:
            state = self.run(node_id, ["systemctl", "is-system-running"], check=False).stdout
        except NodeError:
            return False
        return state.strip() in ("running", "degraded")

    def deploy(self, node_id, role):
        """OpenStack's own deployment on the node, once (files/deploy-<role>.sh)."""
        if self.run(node_id, ["test", "-e", "/var/lib/lab-deployed"], check=False).returncode == 0:
            return
        start = time.monotonic()
        self.run(node_id, ["/usr/local/sbin/lab-deploy"], timeout=900)
        self.run(node_id, ["touch", "/var/lib/lab-deployed"])
        print(f"node {node_id}: {role} deployed in {time.monotonic() - start:.0f} s",
              flush=True)

    # -- looking at a node from outside ---------------------------------------------------

    def unit(self, node_id, unit, *props):
        """``{prop: value}`` of a systemd unit in the node (``systemctl show``)."""
        props = props or ("ActiveState", "SubState", "MainPID", "NRestarts")
        out = self.run(node_id, ["systemctl", "show", "-p", ",".join(props), unit]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def unit_pids(self):
        """{(node, unit): MainPID} of every OpenStack unit the lab runs on the nodes."""
        return {(node_id, unit): self.unit(node_id, unit)["MainPID"]
                for node_id, role in self.nodes.items() for unit in images.ROLE_UNITS[role]}

    def read(self, node_id, path):
        """A file of the node, as the node sees it."""
        return self.run(node_id, ["cat", path]).stdout

    def rss_kib(self):
        return {f"node-{n}": proc.rss_kib(pid) for n, pid in self.running().items()}
