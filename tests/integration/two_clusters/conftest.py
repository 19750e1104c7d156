"""
The two-cluster package: its own Salt master and minions (tests/integration/conftest.py),
where mon1 is the main cluster's mon (``ceph_lab``) and mon2 the mon of the second
cluster ``dr`` (``ceph_lab2``, grain ceph_cluster: dr), with the project's
pillar/two_clusters.sls in the lab pillar.

The main cluster and libvirtd are the session's, shared with the other packages: at the
end of this package the libvirt secret of ``dr`` is undefined again, so later packages
find libvirt as a one-cluster rollout leaves it.
"""

import pytest
import yaml

from lab.salt import PROJECT
from tests.integration.conftest import *  # noqa: F401,F403

TWO_CLUSTERS = yaml.safe_load(open(f"{PROJECT}/pillar/two_clusters.sls"))["ceph_openstack"]
DR_SECRET_UUID = TWO_CLUSTERS["libvirt"]["secrets"]["cinder-dr"]["uuid"]


@pytest.fixture(scope="package")
def lab_clusters():
    return 2


@pytest.fixture(scope="package", autouse=True)
def dr_secret_removed_afterwards(libvirt_lab):
    """Undefine dr's libvirt secret when the package is done (after its minions stopped:
    this fixture is set up before them, so it is torn down after them)."""
    yield
    libvirt_lab.virsh("secret-undefine", DR_SECRET_UUID, check=False)
