"""
Real OpenStack nodes (lab/nodes.py) for tests/real: a Salt master started with
pytest-salt-factories, a mon minion on the host over the session's Ceph cluster, and the
controller ``ctl1`` and compute ``cmp1`` booted as Debian systems with Debian's OpenStack
packages, whose own salt-minions connect to that master. They get the project's pillar as a
user's node does (no sandbox overlay). Runs with ``./run test --nodes real tests/real``.

A test module that asks for ``two_clusters`` runs with a second cluster (``ceph_lab2``, ``dr``
in the lab pillar) and its mon minion ``rmon2`` beside the same master and nodes (one set of
real nodes per machine); after the module the pillar is back to one cluster (what the formula
wrote on the nodes for the second one stays).
"""

import os
import pathlib
import shutil

import pytest
import yaml

from lab import proc
from lab import salt as salt_lab
from lab.nodes import NODES, NodeLab

#: The mon minion on the host (its own ID: the integration package's mon1 may run beside).
MON = "rmon1"
#: The second cluster's mon minion on the host (``two_clusters``).
MON2 = "rmon2"


def pytest_collection_modifyitems(config, items):  # pylint: disable=unused-argument
    """Real nodes take minutes and a machine of their own: only with ``--nodes real``."""
    if os.environ.get("LAB_NODES") == "real":
        return
    skip = pytest.mark.skip(reason="real OpenStack nodes: ./run test --nodes real tests/real")
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(item.fspath).parents:
            item.add_marker(skip)


@pytest.fixture(scope="package")
def real_dir(lab_dir):
    path = lab_dir / "real"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="package")
def real_pillar(real_dir):
    """The pillar tree; ``edit(data)`` replaces the overrides pillar (last, so it wins)."""

    class Pillar:
        roots = salt_lab.write_pillar(str(real_dir), real_nodes=NODES)
        overrides = pathlib.Path(roots[0]) / "overrides.sls"

        def edit(self, data):
            self.overrides.write_text(yaml.safe_dump(data or {}))

    return Pillar()


@pytest.fixture(scope="package")
def real_master(salt_factories, real_pillar, real_dir):
    tree = real_dir / "formula"
    shutil.copytree(pathlib.Path(salt_lab.PROJECT) / "salt", tree / "salt",
                    ignore=shutil.ignore_patterns("__pycache__"))
    overrides = salt_lab.factory_master_overrides(tree, real_pillar.roots)
    factory = salt_factories.salt_master_daemon("real-master", overrides=overrides)
    with factory.started(start_timeout=120):
        # The master's own copy of the orchestrations' state module (ceph_openstack_rollout).
        synced = factory.salt_run_cli(timeout=300).run("saltutil.sync_all")
        assert synced.returncode == 0, synced
        yield factory


def _host_mon(real_master, real_dir, minion_id, cluster, name=None):
    """The factory of a mon minion on the host, for the lab cluster ``cluster`` (the pillar's
    cluster ``name``; none: the main one)."""
    salt_lab.prepare_sandbox(str(real_dir), minion_id, ["mon"])
    overrides = salt_lab.minion_overrides(str(real_dir), minion_id, ["mon"], cluster,
                                          cluster=name)
    overrides["master"] = "127.0.0.1"
    return real_master.salt_minion_daemon(minion_id, overrides=overrides)


@pytest.fixture(scope="package")
def real_mon(real_master, real_dir, ceph_lab):
    factory = _host_mon(real_master, real_dir, MON, ceph_lab)
    with factory.started(start_timeout=120):
        yield factory


@pytest.fixture(scope="package")
def nodes(real_master, real_mon, real_dir):
    """The running real nodes (a :class:`lab.nodes.NodeLab`), their minions answering."""
    lab = NodeLab(str(real_dir / "nodes"), master_port=real_master.config["ret_port"])
    cli = real_master.salt_cli(timeout=30)
    try:
        lab.up()
        proc.wait_for(lambda: set((cli.run("test.ping", minion_tgt="*").data or {}))
                      >= set(NODES) | {MON}, 180, "the real nodes' minions", interval=2)
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="package")
def salt_cli(real_master, nodes):
    return real_master.salt_cli(timeout=600)


@pytest.fixture(scope="package")
def salt_run_cli(real_master, nodes):
    return real_master.salt_run_cli(timeout=1200)


@pytest.fixture(scope="module")
def two_clusters(real_master, real_dir, nodes, ceph_lab2):
    """For one test module: the second cluster's mon minion ``rmon2`` (on ``ceph_lab2``)
    and the lab's two-cluster pillar for every minion; yields the rmon2 factory."""
    cli = real_master.salt_cli(timeout=120)

    def pillar(clusters):
        salt_lab.write_pillar(str(real_dir), real_nodes=NODES, clusters=clusters)
        cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")

    factory = _host_mon(real_master, real_dir, MON2, ceph_lab2, salt_lab.SECOND_CLUSTER)
    try:
        with factory.started(start_timeout=120):
            pillar(2)
            yield factory
    finally:
        pillar(1)
        # Forget rmon2, so that later modules' '*' waits for no absent minion.
        real_master.salt_key_cli().run("-d", MON2, "-y")
