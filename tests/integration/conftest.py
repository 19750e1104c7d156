"""
A Salt master and the lab minions (mon1, ctl1, cmp1, and a second mon, mon2,
on the same cluster) started with pytest-salt-factories, configured by the
same lab code as the demo, over the session's real Ceph cluster and libvirtd.
"""

import concurrent.futures
import pathlib
import shutil

import pytest
import yaml

from lab import salt as salt_lab

pytestmark = pytest.mark.integration

#: The demo's minions plus a second mon: the mon part then runs on two minions at once.
MINIONS = dict(salt_lab.MINIONS, mon2=["mon"])


@pytest.fixture(scope="package")
def lab_pillar(lab_dir):
    """Paths of the lab pillar tree; ``edit(data)`` replaces the overrides pillar."""

    class Pillar:
        roots = salt_lab.write_pillar(str(lab_dir))
        overrides = pathlib.Path(roots[0]) / "overrides.sls"

        def edit(self, data):
            self.overrides.write_text(yaml.safe_dump(data or {}))

    return Pillar()


@pytest.fixture(scope="package")
def formula_tree(lab_dir):
    """A copy of the project's salt/ tree, which the master serves: a test may change a
    module in it (test_module_sync.py) without touching the checkout, which another test
    session (CI's other part) serves at the same time."""
    shutil.copytree(pathlib.Path(salt_lab.PROJECT) / "salt", lab_dir / "formula" / "salt",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return lab_dir / "formula"


@pytest.fixture(scope="package")
def salt_master(salt_factories, lab_pillar, formula_tree):
    overrides = salt_lab.factory_master_overrides(formula_tree, lab_pillar.roots)
    factory = salt_factories.salt_master_daemon("master", overrides=overrides)
    with factory.started(start_timeout=120):
        yield factory


def start_minion(salt_master, lab_dir, minion_id, roles, ceph_lab, libvirt_lab):
    """A started salt-factories minion of the lab (a context manager's factory)."""
    salt_lab.prepare_sandbox(str(lab_dir), minion_id, roles)
    overrides = salt_lab.minion_overrides(str(lab_dir), minion_id, roles, ceph_lab, libvirt_lab)
    overrides["master"] = "127.0.0.1"
    return salt_master.salt_minion_daemon(minion_id, overrides=overrides)


@pytest.fixture(scope="package")
def minions(salt_master, lab_dir, ceph_lab, libvirt_lab):
    factories = {
        minion_id: start_minion(salt_master, lab_dir, minion_id, roles, ceph_lab, libvirt_lab)
        for minion_id, roles in MINIONS.items()
    }
    for factory in factories.values():
        factory.start(start_timeout=120)
    try:
        yield factories
    finally:
        # Side by side: each waits for its minion to exit (several seconds apiece).
        with concurrent.futures.ThreadPoolExecutor(len(factories)) as pool:
            list(pool.map(lambda factory: factory.terminate(), factories.values()))


@pytest.fixture(scope="package")
def salt_cli(salt_master, minions):
    return salt_master.salt_cli(timeout=300)


@pytest.fixture(scope="package")
def salt_run_cli(salt_master, minions):
    return salt_master.salt_run_cli(timeout=900)


@pytest.fixture(scope="package")
def sandbox(lab_dir):
    """``sandbox(minion_id) / 'etc/nova/nova.conf'``: a path in a minion's sandbox root."""
    return lambda minion_id: pathlib.Path(salt_lab.sandbox_root(str(lab_dir), minion_id))
