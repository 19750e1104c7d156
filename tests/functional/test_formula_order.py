"""
The formula on a node with several roles (mons colocated with controllers or
computes, converged controller + compute nodes), rendered by Salt's real state
compiler from pillar.example: the parts render together, ceph.conf and each
keyring once, and the mon part publishes the keys before the controller or
compute part reads them from the mine.
"""

import shutil

import pytest
import yaml

from tests.conftest import ROOT


COMBINATIONS = [
    ["mon", "controller"],
    ["mon", "compute"],
    ["controller", "compute"],
    ["mon", "controller", "compute"],
]


@pytest.fixture
def colocated(request, minion_opts, tmp_path):
    """Salt's loaders for a node whose `role` grain is the test's parameter."""
    from saltfactories.utils.functional import Loaders

    pillar_root = tmp_path / "pillar"
    pillar_root.mkdir()
    shutil.copy(ROOT / "pillar.example", pillar_root / "ceph_openstack.sls")
    (pillar_root / "top.sls").write_text(yaml.safe_dump({"base": {"*": ["ceph_openstack"]}}))
    loaders = Loaders(dict(minion_opts, pillar_roots={"base": [str(pillar_root)]}))
    # Salt's loader reads static grains only from a config file; set the role directly.
    loaders.grains["role"] = request.param
    yield loaders
    loaders.reset_state()


def _chunks(loaders):
    chunks = loaders.modules.state.show_low_sls("ceph_openstack")
    assert isinstance(chunks, list), chunks  # a render error is a list of strings
    return sorted(chunks, key=lambda chunk: chunk["order"])


@pytest.mark.parametrize("colocated", [c for c in COMBINATIONS if "mon" in c], ids="+".join,
                         indirect=True)
def test_keys_are_published_before_any_part_reads_them(colocated):
    order = [chunk["__id__"] for chunk in _chunks(colocated)]
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
    chunks = {chunk["__id__"]: chunk for chunk in _chunks(colocated)}
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
