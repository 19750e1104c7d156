"""
Salt master and minions for the lab: configuration, sandbox roots, pillar.

The same configuration serves the demo (plain daemons started here, tracked by
PID files) and the integration tests (handed to pytest-salt-factories as
overrides). Every minion gets a sandbox root that stands in for its ``/``:
the formula's ``lookup:root`` points there, so /etc/ceph, /etc/nova and the
other config trees of the lab live under the lab directory.
"""

import json
import os
import shutil
import subprocess
import sys

import yaml

from lab import proc

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STOCK_CONFIGS = os.path.join(PROJECT, "lab", "files")

#: minion id -> roles (the ``role`` grain)
MINIONS = {"mon1": ["mon"], "ctl1": ["controller"], "cmp1": ["compute"]}

#: A lab with two Ceph clusters: the second one's name in the pillar (the project's
#: pillar/two_clusters.sls, as a user adds it) and its mon minion, whose grain
#: ``ceph_cluster`` that pillar's targets:mon match.
SECOND_CLUSTER = "dr"
SECOND_MON = "mon2"

#: The stock config files each role's sandbox root starts with.
ROLE_FILES = {
    "controller": ["etc/cinder/cinder.conf", "etc/glance/glance-api.conf"],
    "compute": ["etc/nova/nova.conf"],
}


def file_roots(project=PROJECT):
    """The master's file_roots: the SLS tree and the extension modules of ``project``'s
    salt/ (the checkout, or a copy of it)."""
    return {"base": [os.path.join(project, "salt", "states"), os.path.join(project, "salt")]}


def factory_master_overrides(formula_project, pillar_roots):
    """salt-factories overrides of a test master serving ``formula_project``'s salt/."""
    return {
        "interface": "127.0.0.1",
        "file_roots": file_roots(str(formula_project)),
        "pillar_roots": {"base": pillar_roots},
        "auto_accept": True,
        "open_mode": False,
    }


def sandbox_root(directory, minion_id):
    """The directory that stands in for ``/`` on lab minion ``minion_id``."""
    return os.path.join(directory, "roots", minion_id)


def prepare_sandbox(directory, minion_id, roles):
    """Create the minion's sandbox root with stock-looking OpenStack config files."""
    root = sandbox_root(directory, minion_id)
    for role in roles:
        for relpath in ROLE_FILES.get(role, []):
            target = os.path.join(root, relpath)
            if not os.path.exists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(os.path.join(STOCK_CONFIGS, os.path.basename(relpath)), target)
    os.makedirs(os.path.join(root, "etc", "ceph"), exist_ok=True)
    hosts = os.path.join(root, "etc", "hosts")
    if not os.path.exists(hosts):
        with open(hosts, "w") as out:
            out.write(f"127.0.0.1\tlocalhost\n127.0.1.1\t{minion_id}\n")
    return root


def connection_opts(ceph=None, libvirt=None):
    """Minion options that point the modules' connection defaults at the lab."""
    opts = {}
    if ceph is not None:
        opts.update({"conf": ceph.conf, "keyring": ceph.admin_keyring})
    if libvirt is not None:
        opts["libvirt"] = {"uri": libvirt.uri}
    return opts


def minion_overrides(directory, minion_id, roles, ceph=None, libvirt=None, cluster=None):
    """Options of one lab minion beyond what the master connection needs; ``cluster``: the
    name of the pillar's cluster this mon serves, as grain ``ceph_cluster`` (none: the
    main one)."""
    conn = connection_opts(ceph if "mon" in roles else None,
                           libvirt if "compute" in roles else None)
    grains = {"role": roles if len(roles) > 1 else roles[0]}
    if cluster:
        grains["ceph_cluster"] = cluster
    return {
        "id": minion_id,
        "grains": grains,
        "ceph_openstack": conn,
        "file_roots": file_roots(),
        "mine_interval": 60,
        # Salt's hosts module edits this file instead of the real /etc/hosts.
        "hosts.file": os.path.join(sandbox_root(directory, minion_id), "etc", "hosts"),
    }


def write_pillar(directory, project_pillar=os.path.join(PROJECT, "pillar"), real_nodes=(),
                 clusters=1):
    """
    The lab's pillar tree: the project's example pillar plus a lab overlay that
    points each sandboxed minion's ``lookup:root`` at its sandbox and uses local users.
    Real nodes (``real_nodes``, minion IDs) get the project's pillar as a user's node does.
    With two ``clusters``, every minion also gets the project's pillar/two_clusters.sls
    (the cluster ``SECOND_CLUSTER``), right after the project's pillar.

    Returns the list of pillar roots (lab overlay first, so its top.sls wins).
    """
    lab_pillar = os.path.join(directory, "pillar")
    os.makedirs(lab_pillar, exist_ok=True)
    with open(os.path.join(lab_pillar, "top.sls"), "w") as top:
        # Rendered for each minion; overrides (the tests' edits) come last, so they win.
        top.write("base:\n  '*':\n    - ceph_openstack\n"
                  + ("    - two_clusters\n" if clusters == 2 else "")
                  + f"{{%- if grains['id'] not in {sorted(real_nodes)!r} %}}\n"
                  "    - lab\n{%- endif %}\n    - overrides\n")
    overrides = os.path.join(lab_pillar, "overrides.sls")
    if not os.path.exists(overrides):
        # Tests put their pillar edits here.
        with open(overrides, "w") as out:
            out.write("{}\n")
    overlay = (
        "ceph_openstack:\n"
        "  lookup:\n"
        f"    root: {directory}/roots/{{{{ grains['id'] }}}}\n"
        "    owners: {cinder: nobody, glance: nobody, nova: nobody, qemu: nobody}\n"
        "    groups: {cinder: nogroup, glance: nogroup, nova: nogroup, qemu: nogroup}\n"
        "  packages: {manage: false}\n"
        "  services: {restart: false}\n"
    )
    with open(os.path.join(lab_pillar, "lab.sls"), "w") as sls:
        sls.write(overlay)
    return [lab_pillar, project_pillar]


class SaltLab:
    """A Salt master and the lab minions as plain daemons under ``directory``; with
    ``ceph2`` (the second cluster), also its mon minion ``SECOND_MON`` and the two-cluster
    pillar."""

    def __init__(self, directory, ceph=None, libvirt=None, minions=None, real_nodes=(),
                 ceph2=None, bin_dir=None, roots=None):
        self.dir = os.path.abspath(directory)
        self.ceph = ceph
        self.ceph2 = ceph2
        self.libvirt = libvirt
        self.minions = dict(minions or MINIONS)
        if ceph2 is not None:
            self.minions[SECOND_MON] = ["mon"]
        #: minion IDs of real nodes (lab/nodes.py): not started here, pillar as a user's
        self.real_nodes = tuple(real_nodes)
        self.piddir = os.path.join(self.dir, "pids")
        self.logdir = os.path.join(self.dir, "log")
        self.master_dir = os.path.join(self.dir, "master")
        #: where the Salt commands are (another virtualenv's, for the installed package)
        self.bin = bin_dir or os.path.dirname(sys.executable)
        #: the master's file_roots (the installed package's: its SLS tree alone)
        self.file_roots = roots or file_roots()

    def _write_config(self, confdir, config):
        os.makedirs(confdir, exist_ok=True)
        name = "master" if confdir == self.master_dir else "minion"
        with open(os.path.join(confdir, name), "w") as out:
            yaml.safe_dump(config, out, default_flow_style=False)

    def master_config(self):
        ports = self._ports()
        return {
            "id": "master",
            "root_dir": self.master_dir,
            "interface": "127.0.0.1",
            "publish_port": ports["publish"],
            "ret_port": ports["ret"],
            "auto_accept": True,
            "file_roots": self.file_roots,
            "pillar_roots": {"base": write_pillar(
                os.path.dirname(self.dir), real_nodes=self.real_nodes,
                clusters=2 if self.ceph2 is not None else 1)},
            # Under root_dir: Salt prefixes root_dir to any path outside it.
            "log_file": os.path.join(self.master_dir, "var", "log", "salt", "master"),
            "log_level_logfile": "info",
            "worker_threads": 3,
        }

    def _ports(self):
        path = os.path.join(self.dir, "ports.json")
        if not os.path.exists(path):
            os.makedirs(self.dir, exist_ok=True)
            with open(path, "w") as out:
                json.dump({"publish": proc.free_port(), "ret": proc.free_port()}, out)
        with open(path) as ports:
            return json.load(ports)

    def minion_config(self, minion_id):
        roles = self.minions[minion_id]
        second = minion_id == SECOND_MON and self.ceph2 is not None
        config = minion_overrides(os.path.dirname(self.dir), minion_id, roles,
                                  self.ceph2 if second else self.ceph, self.libvirt,
                                  cluster=SECOND_CLUSTER if second else None)
        config.update({
            "root_dir": os.path.join(self.dir, "minions", minion_id),
            "master": "127.0.0.1",
            "master_port": self._ports()["ret"],
            "log_file": os.path.join(self.dir, "minions", minion_id, "var", "log", "salt",
                                     "minion"),
            "log_level_logfile": "info",
        })
        return config

    def ret_port(self):
        """The port minions connect to (real nodes' minions too)."""
        return self._ports()["ret"]

    def up(self, timeout=60):
        """Start the master and minions (once) and wait until every minion answers."""
        running = self.running()
        if "salt-master" not in running:
            self._write_config(self.master_dir, self.master_config())
            proc.start_daemon("salt-master", [os.path.join(self.bin, "salt-master"), "-c",
                                              self.master_dir, "-l", "quiet"],
                              self.piddir, self.logdir)
        for minion_id, roles in self.minions.items():
            prepare_sandbox(os.path.dirname(self.dir), minion_id, roles)
            if f"salt-minion-{minion_id}" not in running:
                confdir = os.path.join(self.dir, "minions", minion_id, "conf")
                self._write_config(confdir, self.minion_config(minion_id))
                proc.start_daemon(f"salt-minion-{minion_id}",
                                  [os.path.join(self.bin, "salt-minion"), "-c", confdir,
                                   "-l", "quiet"], self.piddir, self.logdir,
                                  env=self.minion_env(minion_id))
        self.wait_for_minions(self.minions, timeout)
        self.sync_master()
        return self

    def sync_master(self):
        """``salt-run saltutil.sync_all``: the master's own copy of the formula's runners and
        of the state module its orchestrations run (``_states/ceph_openstack_rollout.py``),
        as a user syncs them; the orchestrations stop, naming the command, without it."""
        synced = self.salt_run("saltutil.sync_all", timeout=300)
        synced = synced.get("data", synced) if isinstance(synced, dict) else synced
        if not isinstance(synced, dict) or not isinstance(synced.get("states"), list):
            raise RuntimeError(f"salt-run saltutil.sync_all on the lab master: {synced!r}"[:800])
        return synced

    def wait_for_minions(self, minion_ids, timeout=60):
        """Wait until every one of ``minion_ids`` answers a ping."""
        proc.wait_for(lambda: set(self.salt("*", "test.ping", timeout=5)) >= set(minion_ids),
                      timeout, "salt minions " + ", ".join(sorted(minion_ids)), interval=1)

    def minion_env(self, minion_id):  # pylint: disable=unused-argument
        """The environment of a minion daemon; None inherits ours (the bench overrides it)."""
        return None

    def down(self):
        return proc.stop_all(self.piddir)

    def running(self):
        return {name: pid for name, pid in proc.pids(self.piddir).items() if proc.alive(pid)}

    def _cli(self, script, *args, timeout=600):
        cmd = [os.path.join(self.bin, script), "-c", self.master_dir, "--out", "json", *args]
        if script == "salt":
            cmd.insert(-len(args), "--static")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        try:
            return json.loads(out.stdout) if out.stdout.strip() else {}
        except ValueError:
            raise RuntimeError(
                f"{script} {' '.join(args)}: {out.stdout[-2000:]} {out.stderr[-2000:]}"
            )

    def salt(self, target, *args, timeout=120):
        """``salt <target> <args>`` through the lab master; returns the JSON document."""
        return self._cli("salt", "-t", str(timeout), target, *args, timeout=timeout + 30)

    def salt_run(self, *args, timeout=900):
        """``salt-run <args>`` through the lab master; returns the JSON document."""
        return self._cli("salt-run", *args, timeout=timeout)

    def rss_kib(self):
        return {name: proc.rss_kib(pid) for name, pid in self.running().items()}
