"""
A real Glance API server for the lab, storing images in the lab's Ceph cluster.

Glance comes from PyPI in its own virtualenv (``.glance-venv``, made by
scripts/setup.sh from requirements-glance.lock on the system Python with
``--system-site-packages``, so Debian's python3-rbd and python3-rados serve
glance_store's RBD driver). It runs without Keystone (``[paste_deploy]
flavor`` empty: every request gets an unauthenticated context, which a
one-line policy makes admin) on a SQLite database, listening on 127.0.0.1.

Glance 31.1.0 (2025.2) runs its own ``glance-api`` server, which takes
several ``--config-file`` arguments. Glance 33 also works here, but only under
a WSGI server (gunicorn, ``glance.wsgi.api:application``) that reads a single
glance-api.conf from ``OS_GLANCE_CONFIG_DIR``: the formula's file could then not
be used unchanged.

The server reads the glance-api.conf the formula wrote on a controller,
then a lab overlay that adds only what a lab needs: where to listen, the
database, the staging directories, the policy, and for each RBD store an
``rbd_store_ceph_conf`` pointing at a copy of the ceph.conf of the store's cluster
that names the controller's keyring (on a real controller both sit at Ceph's
default paths; in the lab they live under the minion's sandbox root).
"""

import configparser
import json
import os
import subprocess
import urllib.request

from lab import proc, release
from lab.ceph import client_conf

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(PROJECT, ".glance-venv")
CLOUD = "glance-lab"

# The unauthenticated context has no roles and no project; with this rule every caller
# is admin, which is what a lab without Keystone means.
_POLICY = '"context_is_admin": ""\n'


def unsupported(ceph):
    """
    Why the lab's Glance cannot store into the lab cluster ``ceph``, or None.

    ``.glance-venv`` links the host's librbd bindings, and a release before Tentacle
    cannot read the AES256K keys a Tentacle cluster gives its users. (A real controller
    runs its own release's client.)
    """
    host = release.host_release()
    if ceph.release == "tentacle" and host != "tentacle":
        return (f"the lab's Glance uses the host's librbd (Ceph {host}), which cannot log in "
                f"with the AES256K keys of a Ceph {ceph.release} cluster")
    return None


def rbd_stores(glance_conf):
    """``{store: section}`` of the RBD stores ``[DEFAULT] enabled_backends`` lists."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(glance_conf)
    stores = {}
    for item in parser.get("DEFAULT", "enabled_backends", fallback="").split(","):
        name, _, kind = item.strip().partition(":")
        if kind.strip() == "rbd":
            stores[name.strip()] = dict(parser[name.strip()]) if parser.has_section(
                name.strip()) else {}
    if not stores:
        raise RuntimeError(f"{glance_conf} enables no rbd store ([DEFAULT] enabled_backends)")
    return stores


class GlanceLab:
    """glance-api under ``directory``, started from a formula-written glance-api.conf."""

    def __init__(self, directory, venv=VENV):
        self.dir = os.path.abspath(directory)
        self.venv = venv
        self.piddir = os.path.join(self.dir, "pids")
        self.logdir = os.path.join(self.dir, "log")
        self.overlay = os.path.join(self.dir, "glance-lab.conf")
        self.clouds_yaml = os.path.join(self.dir, "clouds.yaml")
        self.port_file = os.path.join(self.dir, "port")

    @property
    def installed(self):
        return os.path.exists(os.path.join(self.venv, "bin", "glance-api"))

    @property
    def url(self):
        with open(self.port_file) as handle:
            return f"http://127.0.0.1:{handle.read().strip()}"

    def running(self):
        return {name: pid for name, pid in proc.pids(self.piddir).items() if proc.alive(pid)}

    def _write_configs(self, stores, port):
        for sub in ("staging", "tasks", "lock", "image-cache", "log", "pids"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        store_confs = {}
        for store, (ceph_conf, keyring, client) in stores.items():
            store_confs[store] = {"rbd_store_ceph_conf": client_conf(
                ceph_conf, client, keyring, os.path.join(self.dir, f"ceph-{store}.conf"))}
        with open(os.path.join(self.dir, "policy.yaml"), "w") as out:
            out.write(_POLICY)
        overlay = {
            "DEFAULT": {
                "bind_host": "127.0.0.1",
                "bind_port": str(port),
                "workers": "1",
                "log_file": os.path.join(self.logdir, "glance-api.log"),
                "image_cache_dir": os.path.join(self.dir, "image-cache"),
            },
            "database": {"connection": f"sqlite:///{self.dir}/glance.sqlite"},
            "paste_deploy": {
                "flavor": "",
                "config_file": os.path.join(self.venv, "etc", "glance", "glance-api-paste.ini"),
            },
            **store_confs,
            "os_glance_staging_store": {
                "filesystem_store_datadir": os.path.join(self.dir, "staging"),
            },
            "os_glance_tasks_store": {"filesystem_store_datadir": os.path.join(self.dir, "tasks")},
            "oslo_concurrency": {"lock_path": os.path.join(self.dir, "lock")},
            "oslo_policy": {"policy_file": os.path.join(self.dir, "policy.yaml")},
        }
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_dict(overlay)
        with open(self.overlay, "w") as out:
            parser.write(out)
        with open(self.clouds_yaml, "w") as out:
            endpoint = f"http://127.0.0.1:{port}"
            json.dump(  # JSON is YAML; openstacksdk reads it as clouds.yaml
                {"clouds": {CLOUD: {"auth_type": "none", "auth": {"endpoint": endpoint},
                                    "image_endpoint_override": endpoint,
                                    "image_api_version": "2"}}},
                out,
            )
        with open(self.port_file, "w") as out:
            out.write(str(port))

    def _answers(self):
        try:
            with urllib.request.urlopen(f"{self.url}/versions", timeout=2) as response:
                return response.status < 400
        except OSError:
            return False

    def up(self, glance_conf, stores, timeout=90):
        """
        Start glance-api with ``glance_conf`` (the formula's glance-api.conf), each RBD
        store reaching its cluster as ``stores`` says: ``{store: (ceph_conf, keyring,
        client)}``.
        """
        if not self.installed:
            raise RuntimeError(f"{self.venv} has no glance-api: run scripts/setup.sh")
        if "glance-api" in self.running():
            return
        self._write_configs(stores, proc.free_port())
        argv = [os.path.join(self.venv, "bin", "glance-api"),
                "--config-file", glance_conf, "--config-file", self.overlay]
        sync = subprocess.run(
            [os.path.join(self.venv, "bin", "glance-manage")] + argv[1:] + ["db_sync"],
            capture_output=True, text=True, timeout=300,
        )
        if sync.returncode:
            raise RuntimeError(f"glance-manage db_sync failed: {sync.stderr.strip()[-2000:]}")
        proc.start_daemon("glance-api", argv, self.piddir, self.logdir)
        try:
            proc.wait_for(self._answers, timeout, "glance-api to answer on /versions")
        except TimeoutError:
            self.down()
            raise

    def up_for_controller(self, root):
        """``up`` with the glance-api.conf the formula wrote under a lab controller's sandbox
        ``root``, each store with the ceph.conf (of its own cluster) and keyring the
        formula wrote there for it."""
        glance_conf = os.path.join(root, "etc", "glance", "glance-api.conf")
        stores = {}
        for store, section in rbd_stores(glance_conf).items():
            conf = section.get("rbd_store_ceph_conf", "/etc/ceph/ceph.conf")
            cluster = os.path.basename(conf)[:-len(".conf")]
            client = section.get("rbd_store_user", "glance")
            keyring = os.path.join(os.path.dirname(conf), f"{cluster}.client.{client}.keyring")
            stores[store] = (root + conf, root + keyring, client)
        self.up(glance_conf, stores)

    def down(self):
        return proc.stop_all(self.piddir)

    def rss_kib(self):
        return {name: proc.rss_kib(pid) for name, pid in self.running().items()}
