"""
The formula on a node with several roles (mons colocated with controllers or
computes, converged controller + compute nodes), rendered by Salt's real state
compiler from pillar.example: the parts render together, ceph.conf and each
keyring once, and the mon part publishes the keys before the controller or
compute part reads them from the mine.
"""

import pytest
import yaml

from tests.conftest import ROOT
from tests.support.formula import (
    ROLE_COMBINATIONS,
    formula_loaders,
    low_chunks,
    low_chunks_per_roles,
)

#: Rendering asks nothing of Ceph.
pytestmark = pytest.mark.release_independent

# Nodes with several roles.
COMBINATIONS = [combo for combo in ROLE_COMBINATIONS if len(combo) > 1]


@pytest.fixture
def colocated(request, minion_opts, tmp_path):
    """Salt's loaders for a node whose `role` grain is the test's parameter."""
    loaders = formula_loaders(minion_opts, tmp_path / "pillar", ROOT / "pillar.example")
    loaders.grains["role"] = request.param
    yield loaders
    loaders.reset_state()


@pytest.mark.parametrize("colocated", [c for c in COMBINATIONS if "mon" in c], ids="+".join,
                         indirect=True)
def test_keys_are_published_before_any_part_reads_them(colocated):
    order = [chunk["__id__"] for chunk in low_chunks(colocated)]
    published = order.index("ceph_openstack-published")
    readers = [i for i, sid in enumerate(order)
               if sid.startswith(("ceph_openstack-keyring-", "ceph_openstack-libvirt-secret-",
                                  "ceph_openstack-ceph-conf"))]
    assert readers and all(published < i for i in readers), order
    clients = [i for i, sid in enumerate(order) if sid.startswith("ceph_openstack-client-")]
    assert clients and all(i < published for i in clients), order


@pytest.mark.parametrize("colocated", COMBINATIONS, ids="+".join, indirect=True)
def test_shared_files_once_with_owners_for_every_role(colocated):
    roles = colocated.grains["role"]
    chunks = {chunk["__id__"]: chunk for chunk in low_chunks(colocated)}
    keyrings = {sid[len("ceph_openstack-keyring-"):]: (chunk["user"], chunk["group"])
                for sid, chunk in chunks.items() if sid.startswith("ceph_openstack-keyring-")}
    expected = {}
    if "controller" in roles:
        expected.update({"cinder": ("cinder", "cinder"), "cinder-backup": ("cinder", "cinder"),
                         "glance": ("glance", "glance")})
    if "compute" in roles:  # cinder's keyring: readable by nova too, through its group
        expected["cinder"] = (expected.get("cinder", ("nova",))[0], "nova")
    assert keyrings == expected
    conf = chunks["ceph_openstack-ceph-conf"]
    assert ("client" in conf) == ("compute" in roles)


def test_the_shortcut_renders_what_show_low_sls_renders(minion_opts, tmp_path):
    """tests/support/formula.low_chunks_per_roles (one HighState for all role combinations)
    gives the chunks of state.show_low_sls, for each combination of pillar.example."""
    pillar = yaml.safe_load((ROOT / "pillar.example").read_text())
    fast = low_chunks_per_roles(formula_loaders(minion_opts, tmp_path / "pillar"), pillar)
    for roles in ROLE_COMBINATIONS:
        # Fresh loaders for each reference render: Salt 3006's show_low_sls kept the role
        # grain of an earlier call in the same loaders.
        loaders = formula_loaders(minion_opts, tmp_path / "-".join(roles))
        assert fast[tuple(roles)] == low_chunks(loaders, roles, pillar=pillar), roles
