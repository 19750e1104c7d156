"""
Ceph releases for the lab: the host's own packages, or a Debian root of another suite.

``pacific`` (Debian 12 "bookworm", 16.2), ``reef`` (Debian 13 "trixie", 18.2) and
``tentacle`` (Debian testing "forky", 20.2). The release whose suite is the host's runs
from the host's packages. Any other runs from a ``debootstrap --variant=minbase`` root
with ``ceph-mon ceph-mgr ceph-osd ceph-common`` installed, built on first use and cached
outside the work tree (``$CEPH_ROOTS``, default ``/var/cache/ceph_openstack/roots``);
the downloaded .debs are kept beside it, so a rebuild needs no download.

Every Ceph binary of a root is reached through a wrapper script in ``<root>.bin``
(put first on ``PATH`` for the lab's minions and the tests): it enters a private
mount namespace, binds the host's ``/proc``, ``/sys``, ``/dev``, ``/tmp`` and
``/var/tmp`` (where every lab keeps its files) into the root, and ``chroot``\\ s there, as one
exec chain, so the PID, stdin, stdout and exit status are the tool's own and daemons
are stopped by PID as any other. ``chroot`` leaves the process in ``/``, so relative
default paths (Debian 13's ``osd class dir``) resolve inside the root. The host's
packages are not changed; nothing is mounted on the host.
"""

import os
import shutil
import subprocess
import sys
import time

#: release -> (Debian suite, version prefix of its Ceph packages)
RELEASES = {
    "pacific": ("bookworm", "16.2"),
    "reef": ("trixie", "18.2"),
    "tentacle": ("forky", "20.2"),
}

#: Binaries the lab and the modules call; each gets a wrapper in a root's bin directory.
#: ``python3`` is the root's own, with its ``rados`` and ``rbd`` bindings: the modules'
#: one-connection-per-run helper (salt/_utils/ceph_session.py) runs under it.
TOOLS = ("ceph", "rbd", "rados", "ceph-authtool", "monmaptool",
         "ceph-mon", "ceph-mgr", "ceph-osd", "ceph-conf", "python3")

PACKAGES = ("ceph-mon", "ceph-mgr", "ceph-osd", "ceph-common")

#: Host directories visible at the same path inside a root.
BINDS = ("/proc", "/sys", "/dev", "/tmp", "/var/tmp")

ROOTS = os.environ.get("CEPH_ROOTS", "/var/cache/ceph_openstack/roots")


def host_suite():
    """The host's Debian codename (``bookworm``, ``trixie``, ...)."""
    with open("/etc/os-release") as release:
        for line in release:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("no VERSION_CODENAME in /etc/os-release")


def host_release():
    """The release of the host's own packages (pacific on Debian 12, reef on Debian 13)."""
    suite = host_suite()
    for name, (release_suite, _version) in RELEASES.items():
        if release_suite == suite:
            return name
    raise RuntimeError(f"no Ceph release known for the host's Debian {suite}; "
                       f"choose one of {', '.join(RELEASES)} with --ceph")


def selected(name=None):
    """The release asked for (``name``, else ``$CEPH_RELEASE``, else the host's)."""
    name = name or os.environ.get("CEPH_RELEASE") or host_release()
    if name not in RELEASES:
        raise SystemExit(f"unknown Ceph release {name!r} (choose {', '.join(RELEASES)})")
    return name


def needs_root(name):
    """True when ``name`` is not the release of the host's own packages."""
    return RELEASES[name][0] != host_suite()


def root_dir(name):
    return os.path.join(ROOTS, RELEASES[name][0])


def _say(message):
    print(f"ceph root: {message}", file=sys.stderr, flush=True)


def mirror():
    """The Debian mirror URI the host's apt uses (the same mirror serves every suite)."""
    sources = ["/etc/apt/sources.list"]
    directory = "/etc/apt/sources.list.d"
    if os.path.isdir(directory):
        sources += [os.path.join(directory, f) for f in sorted(os.listdir(directory))]
    for path in sources:
        try:
            with open(path) as src:
                text = src.read()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] or words[:1] == ["deb"]:
                uris = [w for w in words[1:] if "://" in w]
                if uris and "security" not in uris[0]:
                    return uris[0]
    return "http://deb.debian.org/debian"


def _enter(root, binds, argv):
    """argv that runs ``argv`` inside ``root`` (see the module docstring)."""
    script = ('r=$1; shift; for d in ' + " ".join(binds) +
              '; do mount --rbind "$d" "$r$d" || exit 125; done; exec chroot "$r" "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c", script, "sh", root, *argv]


def chroot_run(root, argv, binds=BINDS, env=None):
    subprocess.run(_enter(root, binds, argv), check=True, env=env)


#: apt and dpkg inside a root being built: their environment and the host dirs bound there.
BUILD_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
             "LANG": "C.UTF-8"}
BUILD_BINDS = ("/proc", "/sys", "/dev")

#: In a root being built, this refuses every service start (invoke-rc.d's policy).
POLICY_RC_D = "usr/sbin/policy-rc.d"


def ensure_host_packages(commands):
    """Install, from Debian, the package of each ``{command: package}`` whose command the
    host lacks."""
    missing = [package for command, package in commands.items()
               if shutil.which(command) is None]
    if missing:
        _say(f"installing {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def bootstrap(suite, work, include=()):
    """A new ``debootstrap --variant=minbase`` root of ``suite`` (with the ``include``d
    packages) in ``work``, ready for apt: the host's mirror and apt settings, its package
    lists fetched, no service allowed to start (policy-rc.d), and the shared .deb cache of
    the suite linked into its apt cache. Returns that cache's directory."""
    ensure_host_packages({"debootstrap": "debootstrap"})
    debs = os.path.join(ROOTS, f"{suite}.debs")
    os.makedirs(debs, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    mirror_uri = mirror()
    # In a private mount namespace: debootstrap mounts /proc and /sys in the new root.
    argv = ["unshare", "--mount", "--propagation", "private", "--",
            "debootstrap", "--variant=minbase", f"--cache-dir={debs}"]
    if include:
        argv.append(f"--include={','.join(include)}")
    argv += [suite, work, mirror_uri]
    if not os.path.exists(f"/usr/share/debootstrap/scripts/{suite}"):
        # An older debootstrap does not know the newest suites; testing is built like sid.
        argv.append("/usr/share/debootstrap/scripts/sid")
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(work, "etc/apt/sources.list"), "w") as sources:
        sources.write(f"deb {mirror_uri} {suite} main\n")
    policy = os.path.join(work, POLICY_RC_D)
    with open(policy, "w") as out:
        out.write("#!/bin/sh\nexit 101\n")
    os.chmod(policy, 0o755)
    # apt inside the root takes its .debs from the shared cache.
    move_debs(debs, os.path.join(work, "var/cache/apt/archives"), link=True)
    shutil.copyfile("/etc/resolv.conf", os.path.join(work, "etc/resolv.conf"))
    copy_apt_settings(work)
    chroot_run(work, ["apt-get", "update", "-qq"], BUILD_BINDS, BUILD_ENV)
    return debs


def build(name):
    """Build the root of release ``name`` unless cached; returns its path."""
    suite, version = RELEASES[name]
    root = root_dir(name)
    stamp = os.path.join(root, ".ceph_openstack-root")
    if os.path.exists(stamp):
        return root
    work = root + ".building"
    start = time.monotonic()
    _say(f"building a Debian {suite} root for Ceph {name} in {root} "
         "(once; about 1-3 minutes)")
    debs = bootstrap(suite, work)
    _say(f"debootstrap done in {time.monotonic() - start:.0f} s; installing {' '.join(PACKAGES)}")
    chroot_run(work, ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                      *PACKAGES], BUILD_BINDS, BUILD_ENV)
    # The shared cache keeps the .debs (new ones too); no service ever starts in the root.
    move_debs(os.path.join(work, "var/cache/apt/archives"), debs, link=False)
    # The package lists (~60 MB) are of no use once installed.
    subprocess.run(["find", os.path.join(work, "var/lib/apt/lists"), "-type", "f", "-delete"],
                   check=True)
    found = subprocess.run(_enter(work, ("/proc",), ["ceph", "--version"]),
                           capture_output=True, text=True, check=True).stdout
    if f"ceph version {version}" not in found:
        raise RuntimeError(f"{suite} root has {found.strip()!r}, expected Ceph {version}")
    with open(os.path.join(work, ".ceph_openstack-root"), "w") as out:
        out.write(found)
    os.rename(work, root)
    _say(f"{found.strip()} ready in {time.monotonic() - start:.0f} s")
    return root


def copy_apt_settings(root):
    """The host's own apt ``Acquire::`` settings (a proxy, no Valid-Until check for a mirror
    snapshot, ...): the snippets in /etc/apt/apt.conf.d that no package owns."""
    directory = "/etc/apt/apt.conf.d"
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        try:
            with open(path) as snippet:
                if "Acquire" not in snippet.read():
                    continue
        except OSError:
            continue
        owned = subprocess.run(["dpkg", "-S", path], capture_output=True).returncode == 0
        if not owned:
            shutil.copyfile(path, os.path.join(root, "etc/apt/apt.conf.d", entry))


def move_debs(source, dest, link):
    """Hard-link (``link``) or move every .deb of ``source`` into ``dest``; moving leaves
    none behind in ``source``."""
    for entry in os.listdir(source):
        if not entry.endswith(".deb"):
            continue
        path, target = os.path.join(source, entry), os.path.join(dest, entry)
        if link:
            if not os.path.exists(target):
                os.link(path, target)
        elif os.path.exists(target):
            os.unlink(path)
        else:
            os.replace(path, target)


def bindir(name):
    """The directory of release ``name``'s wrappers (see the module docstring)."""
    return root_dir(name) + ".bin"


def wrappers(name):
    """The wrappers of release ``name``, one per :data:`TOOLS` binary (building its root
    first if needed); returns their directory."""
    root = build(name)
    directory = bindir(name)
    os.makedirs(directory, exist_ok=True)
    enter = " ".join(_quote(word) for word in _enter(root, BINDS, []))
    for tool in TOOLS:
        path = os.path.join(directory, tool)
        # The root's own /usr/bin/<tool>, not a PATH lookup: a PATH that starts with a
        # directory under /tmp (the bench's counting wrappers, visible in the root through
        # the /tmp bind) would find that wrapper again, whose host path the root lacks.
        text = (f"#!/bin/sh\n# {tool} of Ceph {name} ({root})\n"
                f"exec {enter} /usr/bin/{tool} \"$@\"\n")
        try:
            with open(path) as current:
                if current.read() == text:
                    continue
        except OSError:
            pass
        with open(path + ".new", "w") as out:
            out.write(text)
        os.chmod(path + ".new", 0o755)
        os.rename(path + ".new", path)
    return directory


def path_with(name, path=None):
    """``$PATH`` (or ``path``) with release ``name``'s wrappers first, when it needs a root."""
    path = os.environ.get("PATH", "/usr/bin:/bin") if path is None else path
    if not needs_root(name):
        return path
    return wrappers(name) + os.pathsep + path


def _quote(word):
    return "'" + word.replace("'", "'\"'\"'") + "'"


def main(argv=None):
    """``python -m lab.release build RELEASE``: build (or find) a release's root."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "build":
        raise SystemExit(f"usage: python -m lab.release build {{{'|'.join(RELEASES)}}}")
    name = selected(argv[1])
    print(build(name) if needs_root(name) else f"{name}: the host's own packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
