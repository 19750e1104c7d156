"""
Node images for the lab's real OpenStack nodes: a Debian root per role, of the host's
release, with Debian's own OpenStack packages installed as a user's deployment has them.

``controller``: rabbitmq-server, glance-api, cinder-api, cinder-scheduler, cinder-volume,
cinder-backup, nova-conductor, placement-api (nova-compute does not start without
Placement); ``compute``: nova-compute with nova-compute-qemu (libvirt
in system mode, QEMU). Both boot with systemd as PID 1 (lab/nodes.py). What the formula
installs (ceph-common, python3-rbd, python3-rados, qemu-block-extra) is not installed,
only downloaded into the image's apt cache, so the formula's own install is what puts it
there, without a download. Every OpenStack unit is disabled in the image: the lab starts
them once their database exists (lab/nodes.py), as a deployment would.

Images are built on first use with ``debootstrap --variant=minbase`` and cached outside
the work tree (``$NODE_IMAGES``, default ``/var/cache/ceph_openstack/nodes/<suite>-<role>``);
the .debs are kept beside the Ceph release roots' (lab/release.py), so a rebuild needs no
download. ``python -m lab.images build [ROLE ...]`` builds ahead of time.
"""

import os
import shutil
import subprocess
import sys
import time

from lab import release

#: role -> the OpenStack packages of a user's node of that role (without Recommends).
ROLE_PACKAGES = {
    "controller": ("rabbitmq-server", "glance-api", "cinder-api", "cinder-scheduler",
                   "cinder-volume", "cinder-backup", "nova-conductor", "placement-api"),
    "compute": ("nova-compute", "nova-compute-qemu"),
}

#: Units of each role the lab starts itself once their databases exist (each controller
#: package has a unit of its name; on the compute, libvirtd is libvirt-daemon-system's).
ROLE_UNITS = {
    "controller": ROLE_PACKAGES["controller"],
    "compute": ("libvirtd", "nova-compute"),
}

#: What the formula installs on a node (its map's package lists), downloaded only.
FORMULA_PACKAGES = ("ceph-common", "python3-rbd", "python3-rados", "qemu-block-extra")

#: In every image: systemd as PID 1, what the lab's own checks use inside a node, what the
#: node's Salt needs (a venv of the system Python; libvirt's Python binding), and dmidecode:
#: os-brick (cinder-backup, nova-compute) asks it for the system UUID where the machine has
#: no /sys/class/dmi (this VM), and without it fails every backup with FileNotFoundError.
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "procps", "iproute2", "sqlite3",
                 "ca-certificates", "python3-venv", "python3-libvirt", "dmidecode")

#: Packages a suite has only as Recommends of the role's packages but the role needs.
SUITE_PACKAGES = {
    ("trixie", "compute"): ("libvirt-daemon-driver-qemu", "libvirt-daemon-driver-secret"),
}

#: The node's salt-minion: Salt of the project's lock file, in a venv that sees the system
#: Python's packages (python3-libvirt for the formula's virtsecret module).
SALT_VENV = "/opt/salt"
LOCK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "requirements.lock")

IMAGES = os.environ.get("NODE_IMAGES", "/var/cache/ceph_openstack/nodes")
STAMP = ".ceph_openstack-node"


def default_suite():
    """The nodes' Debian release: ``$NODE_SUITE``, else the host's."""
    return os.environ.get("NODE_SUITE") or release.host_suite()


def image_dir(role, suite=None):
    return os.path.join(IMAGES, f"{suite or default_suite()}-{role}")


def _say(message):
    print(f"node image: {message}", file=sys.stderr, flush=True)


def _salt_pin():
    with open(LOCK) as lock:
        for line in lock:
            if line.lower().startswith("salt=="):
                return line.strip()
    raise RuntimeError(f"no salt== pin in {LOCK}")


def build(role, suite=None):
    """Build the image of ``role`` unless cached (with the Salt the lock file pins);
    returns its path."""
    suite = suite or default_suite()
    image = image_dir(role, suite)
    try:
        with open(os.path.join(image, STAMP)) as stamp:
            if _salt_pin() in stamp.read():
                return image
        _say(f"{image} has another Salt than {_salt_pin()}: building it again")
        shutil.rmtree(image)
    except FileNotFoundError:
        pass
    release.ensure_host_packages({"debootstrap": "debootstrap",
                                  "systemd-nspawn": "systemd-container"})
    work = image + ".building"
    start = time.monotonic()
    _say(f"building the Debian {suite} {role} image in {image} (once; several minutes)")
    debs = release.bootstrap(suite, work, include=BASE_PACKAGES)
    _say(f"debootstrap done in {time.monotonic() - start:.0f} s; installing "
         + " ".join(ROLE_PACKAGES[role]))
    env, binds = release.BUILD_ENV, release.BUILD_BINDS
    apt = ["apt-get", "-q", "-o", "Dpkg::Use-Pty=0", "-o", "APT::Keep-Downloaded-Packages=true"]
    release.chroot_run(work, [*apt, "install", "-y", "--no-install-recommends",
                              *ROLE_PACKAGES[role], *SUITE_PACKAGES.get((suite, role), ())],
                       binds, env)
    # The node's Salt, as the lab's own (pip, with the lock file as constraints; the host's
    # CA bundle, which knows whatever proxy stands between this machine and the registry).
    shutil.copyfile(LOCK, os.path.join(work, "tmp/requirements.lock"))
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", os.path.join(work, "tmp/host-ca.crt"))
    release.chroot_run(work, ["python3", "-m", "venv", "--system-site-packages", SALT_VENV],
                       binds, env)
    # Some of Salt's dependencies (timelib) are built from source: a compiler meanwhile.
    build_deps = ("gcc", "python3-dev")
    release.chroot_run(work, [*apt, "install", "-y", "--no-install-recommends", *build_deps],
                       binds, env)
    release.chroot_run(work, [f"{SALT_VENV}/bin/pip", "install", "-q",
                              "--disable-pip-version-check", "-c", "/tmp/requirements.lock",
                              _salt_pin()], binds,
                       dict(env, PIP_CERT="/tmp/host-ca.crt"))  # for build steps too
    for temporary in ("requirements.lock", "host-ca.crt"):
        os.unlink(os.path.join(work, "tmp", temporary))
    release.chroot_run(work, [*apt, "purge", "-y", "--autoremove", *build_deps], binds, env)
    release.chroot_run(work, [*apt, "install", "-y", "--no-install-recommends",
                              "--download-only", *FORMULA_PACKAGES], binds, env)
    # The shared cache gets a copy of every .deb; the image keeps its own for the formula.
    archives = os.path.join(work, "var/cache/apt/archives")
    for entry in os.listdir(archives):
        if entry.endswith(".deb") and not os.path.exists(os.path.join(debs, entry)):
            os.link(os.path.join(archives, entry), os.path.join(debs, entry))
    # The lab starts the OpenStack units itself, after their databases exist.
    release.chroot_run(work, ["systemctl", "disable", *ROLE_UNITS[role]], binds, env)
    os.unlink(os.path.join(work, release.POLICY_RC_D))  # the node's services start as usual
    installed = subprocess.run(
        ["chroot", work, "dpkg-query", "-W", "-f", "${Package} ${Version}\\n",
         *ROLE_PACKAGES[role]], capture_output=True, text=True, check=True).stdout
    with open(os.path.join(work, STAMP), "w") as out:
        out.write(installed + _salt_pin() + "\n")
    os.rename(work, image)
    _say(f"{role} image ready in {time.monotonic() - start:.0f} s")
    return image


def main(argv=None):
    """``python -m lab.images build [ROLE ...]``: build (or find) node images."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "build" or any(r not in ROLE_PACKAGES for r in argv[1:]):
        raise SystemExit(f"usage: python -m lab.images build [{'|'.join(ROLE_PACKAGES)} ...]")
    for role in argv[1:] or ROLE_PACKAGES:
        print(build(role))
    return 0


if __name__ == "__main__":
    sys.exit(main())
