"""
The project as an installed Salt extension (saltext.ceph_openstack): the wheel built from
the working tree, installed into a virtualenv of its own that sees a Salt release's
virtualenv (the suite's: Salt 3008 in .venv, 3006 in .venv-3006) through a ``.pth`` file,
with the Salt commands of that virtualenv. Nothing is synced: Salt's loader finds the
modules, states and runners through the package's ``salt.loader`` entry point.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import types
import venv

from lab.salt import PROJECT

#: The Salt commands a lab needs, each a small script under the virtualenv's python.
COMMANDS = {"salt-master": "salt_master", "salt-minion": "salt_minion", "salt": "salt_main",
            "salt-run": "salt_run", "salt-call": "salt_call"}


def build_wheel(directory, project=PROJECT):
    """Build the wheel (``pip wheel``, version from git) from a copy of ``project``'s
    working tree, so that the build leaves nothing in the checkout; returns its path."""
    source = os.path.join(directory, "source")
    shutil.rmtree(source, ignore_errors=True)
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=project,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for relpath in filter(None, listed):
        if os.path.isfile(os.path.join(project, relpath)):
            os.makedirs(os.path.dirname(os.path.join(source, relpath)), exist_ok=True)
            shutil.copy2(os.path.join(project, relpath), os.path.join(source, relpath))
    shutil.copytree(os.path.join(project, ".git"), os.path.join(source, ".git"), symlinks=True)
    dist = os.path.join(directory, "dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist,
                    source], check=True, capture_output=True, text=True)
    (wheel,) = [name for name in os.listdir(dist) if name.endswith(".whl")]
    return os.path.join(dist, wheel)


def install(wheel, directory):
    """A new virtualenv in ``directory`` with ``wheel`` installed and this interpreter's
    packages (Salt and its dependencies) visible; returns its ``python``, ``bin``
    directory, the package's ``formula`` directory (the SLS tree, for file_roots) and its
    ``version``."""
    venv.EnvBuilder(with_pip=False, clear=True).create(directory)
    python = os.path.join(directory, "bin", "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    with open(os.path.join(site.stdout.strip(), "salt_release.pth"), "w") as pth:
        pth.write(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
                    "--no-deps", wheel], check=True, capture_output=True, text=True)
    for command, function in COMMANDS.items():
        script = os.path.join(directory, "bin", command)
        with open(script, "w") as out:
            out.write(f"#!{python}\nimport sys\nfrom salt.scripts import {function}\n"
                      f"sys.exit({function}())\n")
        os.chmod(script, 0o755)
    found = subprocess.run(
        [python, "-c", "import importlib.metadata as m, saltext.ceph_openstack as p; "
         "print(m.version('saltext.ceph_openstack')); print(list(p.__path__)[0])"],
        capture_output=True, text=True, check=True).stdout.split()
    return types.SimpleNamespace(python=python, bin=os.path.dirname(python),
                                 version=found[0], formula=os.path.join(found[1], "formula"))
