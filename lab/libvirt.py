"""
A real libvirtd for the lab, used for its secret driver.

A root libvirtd fails on these machines, so the daemon runs as the
unprivileged user ``nobody`` in session mode, with HOME and the XDG
directories inside the lab directory: its socket, config and secret store all
live there, and nothing touches /etc/libvirt.
"""

import os
import pwd
import subprocess

from lab import proc

USER = "nobody"


class LibvirtLab:
    """An unprivileged session-mode libvirtd under ``directory``."""

    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        self.piddir = os.path.join(self.dir, "pids")
        self.logdir = os.path.join(self.dir, "log")
        self.socket = os.path.join(self.dir, "run", "libvirt", "libvirt-sock")
        self.uri = f"qemu+unix:///session?socket={self.socket}"

    def _env(self):
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": os.path.join(self.dir, "home"),
            "XDG_RUNTIME_DIR": os.path.join(self.dir, "run"),
            "XDG_CONFIG_HOME": os.path.join(self.dir, "config"),
            "XDG_CACHE_HOME": os.path.join(self.dir, "cache"),
            "XDG_DATA_HOME": os.path.join(self.dir, "data"),
        }

    def virsh(self, *args, stdin=None, check=True, timeout=20):
        """Run virsh against this daemon; returns stdout."""
        out = subprocess.run(["virsh", "--quiet", "-c", self.uri, *args], input=stdin,
                             capture_output=True, text=True, timeout=timeout)
        if check and out.returncode:
            raise RuntimeError(f"virsh {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def running(self):
        return {name: pid for name, pid in proc.pids(self.piddir).items() if proc.alive(pid)}

    def up(self, timeout=20):
        """Start libvirtd (once) and wait until it answers."""
        if "libvirtd" not in self.running():
            user = pwd.getpwnam(USER)
            for sub in ("home", "run", "config", "cache", "data", "log"):
                path = os.path.join(self.dir, sub)
                os.makedirs(path, mode=0o700, exist_ok=True)
                if sub != "log":
                    os.chown(path, user.pw_uid, user.pw_gid)
            os.chmod(self.dir, 0o755)
            proc.start_daemon(
                "libvirtd",
                ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
                 "libvirtd", "--verbose"],
                self.piddir, self.logdir, env=self._env(),
            )
        proc.wait_for(lambda: os.path.exists(self.socket) and
                      self.virsh("version", check=False), timeout, "libvirtd")
        return self

    def down(self):
        return proc.stop_all(self.piddir)

    def rss_kib(self):
        return {name: proc.rss_kib(pid) for name, pid in self.running().items()}
