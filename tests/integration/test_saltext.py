"""
The installed package: the wheel built from the working tree (lab/saltext.py), installed
into a virtualenv of its own that sees this suite's Salt release (3008 in .venv, 3006 in
.venv-3006), minions with nothing synced. Proof from outside: the functional tests pass
against the package's modules, Salt's own documentation shows their docstrings, and the
orchestrated rollout converges the lab from the package's modules and SLS (Ceph, libvirt
and the sandbox files asked directly). Then a minion that also has synced copies (as an
old file_roots setup leaves them) is caught by the orchestration's preflight, and the
command it names clears it.
"""

import glob
import json
import os
import shutil
import subprocess

import pytest
import yaml

from lab import report, saltext
from lab.libvirt import LibvirtLab
from lab.salt import PROJECT, SaltLab, sandbox_root

pytestmark = pytest.mark.integration

ORCH = "orch.ceph_openstack"
EXAMPLE = yaml.safe_load(open(os.path.join(PROJECT, "pillar.example")))["ceph_openstack"]
SECRET_UUID = EXAMPLE["libvirt"]["secrets"]["cinder"]["uuid"]

#: The functional tests run against the installed package: the modules that reach Ceph
#: and libvirt, with their helpers.
FUNCTIONAL = ["tests/functional/test_cephpool.py", "tests/functional/test_cephauth.py",
              "tests/functional/test_virtsecret.py"]


@pytest.fixture(scope="module")
def installed(lab_dir):
    directory = lab_dir / "saltext"
    return saltext.install(saltext.build_wheel(str(directory)), str(directory / "venv"))


@pytest.fixture(scope="module")
def package_lab(installed, lab_dir, ceph_lab):
    """Master and minions of the package's virtualenv, the master serving the package's
    SLS tree alone, with a libvirtd of their own."""
    libvirt = LibvirtLab(str(lab_dir / "saltext" / "libvirt"))
    lab = SaltLab(str(lab_dir / "saltext" / "salt"), ceph=ceph_lab, libvirt=libvirt,
                  bin_dir=installed.bin, roots={"base": [installed.formula]})
    try:
        libvirt.up()
        yield lab.up()
    finally:
        lab.down()
        libvirt.down()


def extmods(lab, minion):
    return os.path.join(lab.dir, "minions", minion, "var", "cache", "salt", "minion",
                        "extmods")


def synced_files(lab, minion):
    return sorted(os.path.relpath(path, extmods(lab, minion))
                  for path in glob.glob(os.path.join(extmods(lab, minion), "*", "*.py")))


def orchestrate(lab):
    """The orchestration's steps, and the states that changed."""
    ret = lab.salt_run("state.orchestrate", ORCH)
    return {step.id: step for step in report.steps(ret)}, report.changed(ret)


def test_the_functional_tests_pass_against_the_installed_package(installed):
    run = subprocess.run(
        [installed.python, "-m", "pytest", "-q", "-p", "no:randomly", *FUNCTIONAL],
        cwd=PROJECT, env=dict(os.environ, CEPH_OPENSTACK_ROUTE="installed"),
        capture_output=True, text=True, timeout=1800)
    summary = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary, summary


def test_salt_call_sys_doc_shows_the_packages_docstrings(package_lab, installed):
    def doc(function, what):
        run = subprocess.run(
            [os.path.join(installed.bin, "salt-call"), "--local", "--out", "json", "-c",
             os.path.join(package_lab.dir, "minions", "mon1", "conf"), function, what],
            capture_output=True, text=True, timeout=120, check=True)
        return json.loads(run.stdout)["local"]

    create = doc("sys.doc", "cephpool")["cephpool.create"]
    assert "CLI Example" in create and "salt '*' cephpool.create" in create
    assert "cephpool.present:" in doc("sys.state_doc", "cephpool")["cephpool.present"]
    assert synced_files(package_lab, "mon1") == []
    # the master's runner comes from the package too (the master syncs nothing either)
    runners = package_lab.salt_run("doc.runner")
    assert "salt-run cephimage.clone_check" in runners["cephimage.clone_check"]


@pytest.fixture(scope="module")
def rolled_out(package_lab):
    steps, _ = orchestrate(package_lab)
    assert all(step.result for step in steps.values()), {
        step.id: step.comment for step in steps.values() if not step.result}
    return steps


def test_a_rollout_converges_from_the_package_with_nothing_synced(rolled_out, package_lab,
                                                                   ceph_lab, installed):
    for minion in package_lab.minions:
        assert synced_files(package_lab, minion) == []
        routes = package_lab.salt(minion, "ceph_openstack_rollout.routes")[minion]
        assert routes == {"installed": installed.version, "synced": [], "problem": None}
    pools = {p["pool_name"]: p for p in ceph_lab.ceph("osd", "pool", "ls", "detail")}
    assert all("rbd" in pools[name]["application_metadata"] for name in EXAMPLE["pools"])
    key = ceph_lab.ceph("auth", "get-key", "client.cinder", json_out=False).strip()
    keyring = os.path.join(sandbox_root(os.path.dirname(package_lab.dir), "cmp1"),
                           "etc", "ceph", "ceph.client.cinder.keyring")
    assert f"key = {key}" in open(keyring).read()
    assert package_lab.libvirt.virsh("secret-get-value", SECRET_UUID).strip() == key


def test_a_second_rollout_from_the_package_changes_nothing(rolled_out, package_lab):
    steps, changes = orchestrate(package_lab)
    assert all(step.result for step in steps.values())
    assert changes == []
    # the drift report (the package's runner and node module) finds nothing either
    report_doc = package_lab.salt_run("ceph_openstack.report")
    assert report_doc["retcode"] == 0, report_doc["summary"]
    assert sorted(report_doc["nodes"]) == sorted(package_lab.minions)


def test_synced_copies_beside_the_package_stop_the_rollout_until_removed(rolled_out,
                                                                         package_lab):
    """As a minion that used the file_roots route before keeps its synced modules: the
    loader would run those, whatever their age."""
    for kind in ("modules", "states", "utils"):
        shutil.copytree(os.path.join(PROJECT, "salt", f"_{kind}"),
                        os.path.join(extmods(package_lab, "ctl1"), kind), dirs_exist_ok=True)
    steps, changes = orchestrate(package_lab)
    routes = steps["routes"]
    assert routes.result is False
    assert "ctl1 has saltext.ceph_openstack" in routes.comment
    assert "Salt's loader uses the synced copies" in routes.comment
    assert "salt ctl1 saltutil.sync_all" in routes.comment
    assert "mon1" not in routes.comment and "cmp1" not in routes.comment
    assert steps["sync"].result is False and changes == []
    assert "mon" not in steps or not steps["mon"].result

    package_lab.salt("ctl1", "saltutil.sync_all")  # what the message says to do
    assert synced_files(package_lab, "ctl1") == []
    steps, changes = orchestrate(package_lab)
    assert all(step.result for step in steps.values())
    assert "routes" not in steps and changes == []
