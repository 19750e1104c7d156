"""
A Salt master and the lab minions (mon1, ctl1, cmp1, and a second mon, mon2,
on the same cluster) started with pytest-salt-factories, configured by the
same lab code as the demo, over the session's real Ceph cluster and libvirtd.

A test package with two Ceph clusters gets its own master and minions, where mon2 is
the mon of the second cluster (``ceph_lab2``, named ``dr`` in the lab pillar:
the project's pillar/two_clusters.sls). Its conftest.py re-exports these package
fixtures, so they are set up anew for that package, and says how many clusters::

    from tests.integration.conftest import *  # noqa: F401,F403

    @pytest.fixture(scope="package")
    def lab_clusters():
        return 2
"""

import concurrent.futures
import pathlib
import shutil

import pytest
import yaml

from lab import salt as salt_lab

pytestmark = pytest.mark.integration

#: The demo's minions plus a second mon: the mon part then runs on two minions at once
#: (with two clusters, mon2 is the second cluster's mon: salt_lab.SECOND_MON).
MINIONS = dict(salt_lab.MINIONS, mon2=["mon"])

#: What a package's conftest.py re-exports to get these fixtures anew (see above).
__all__ = ["lab_clusters", "package_dir", "lab_pillar", "formula_tree", "salt_master",
           "minions", "salt_cli", "salt_run_cli", "sandbox"]


@pytest.fixture(scope="package")
def lab_clusters():
    """How many Ceph clusters the package's master and minions use: 1, or 2 in a package
    that overrides this fixture."""
    return 1


@pytest.fixture(scope="package")
def package_dir(lab_dir, lab_clusters, request):
    """Where the package's pillar, sandbox roots and formula copy live: the session's lab
    directory with one cluster (as ever); a directory of the package's own with two, as
    its master and minions run beside the one-cluster package's."""
    if lab_clusters == 1:
        return lab_dir
    path = lab_dir / f"clusters2-{request.node.path.name}"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="package")
def lab_pillar(package_dir, lab_clusters):
    """Paths of the lab pillar tree; ``edit(data)`` replaces the overrides pillar."""

    class Pillar:
        roots = salt_lab.write_pillar(
            str(package_dir), clusters=lab_clusters)
        overrides = pathlib.Path(roots[0]) / "overrides.sls"

        def edit(self, data):
            self.overrides.write_text(yaml.safe_dump(data or {}))

    return Pillar()


@pytest.fixture(scope="package")
def formula_tree(package_dir):
    """A copy of the project's salt/ tree, which the master serves: a test may change a
    module in it (test_module_sync.py) without touching the checkout, which another test
    session (CI's other part) serves at the same time."""
    shutil.copytree(pathlib.Path(salt_lab.PROJECT) / "salt", package_dir / "formula" / "salt",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return package_dir / "formula"


@pytest.fixture(scope="package")
def salt_master(salt_factories, lab_pillar, formula_tree, package_dir, lab_dir):
    overrides = salt_lab.factory_master_overrides(formula_tree, lab_pillar.roots)
    # Another package's master may run beside: its own ID keeps their events apart.
    master_id = "master" if package_dir == lab_dir else f"master-{package_dir.name}"
    factory = salt_factories.salt_master_daemon(master_id, overrides=overrides)
    with factory.started(start_timeout=120):
        sync_master(factory)
        yield factory


def sync_master(factory):
    """``salt-run saltutil.sync_all`` on a started master, as a user does once: the
    orchestrations' steps run the formula's state module there (ceph_openstack_rollout)."""
    synced = factory.salt_run_cli(timeout=300).run("saltutil.sync_all")
    assert synced.returncode == 0, synced


def start_minion(salt_master, lab_dir, minion_id, roles, ceph_lab, libvirt_lab, cluster=None):
    """A started salt-factories minion of the lab (a context manager's factory)."""
    salt_lab.prepare_sandbox(str(lab_dir), minion_id, roles)
    overrides = salt_lab.minion_overrides(str(lab_dir), minion_id, roles, ceph_lab, libvirt_lab,
                                          cluster=cluster)
    overrides["master"] = "127.0.0.1"
    return salt_master.salt_minion_daemon(minion_id, overrides=overrides)


@pytest.fixture(scope="package")
def minions(salt_master, package_dir, lab_clusters, ceph_lab, libvirt_lab, request):
    # With two clusters, mon2 is the second cluster's mon (ceph_lab2 starts only then).
    second = request.getfixturevalue("ceph_lab2") if lab_clusters == 2 else None
    factories = {}
    for minion_id, roles in MINIONS.items():
        on_second = second is not None and minion_id == salt_lab.SECOND_MON
        factories[minion_id] = start_minion(
            salt_master, package_dir, minion_id, roles, second if on_second else ceph_lab,
            libvirt_lab, cluster=salt_lab.SECOND_CLUSTER if on_second else None)
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
def sandbox(package_dir):
    """``sandbox(minion_id) / 'etc/nova/nova.conf'``: a path in a minion's sandbox root."""
    return lambda minion_id: pathlib.Path(salt_lab.sandbox_root(str(package_dir), minion_id))
