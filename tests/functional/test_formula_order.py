"""
The formula's execution order on a node with the mon role and an OpenStack
role (mons colocated with controllers or computes), rendered by Salt's real
state compiler from pillar.example: the mon part must publish the keys before
the controller or compute part reads them from the mine.
"""

import shutil

import pytest
import yaml

from tests.conftest import ROOT


@pytest.fixture(params=[["mon", "controller"], ["mon", "compute"]], ids="+".join)
def colocated(request, minion_opts, tmp_path):
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


def test_keys_are_published_before_any_part_reads_them(colocated):
    chunks = colocated.modules.state.show_low_sls("ceph_openstack")
    assert isinstance(chunks, list), chunks
    order = [chunk["__id__"] for chunk in sorted(chunks, key=lambda c: c["order"])]
    published = order.index("ceph_openstack-published")
    readers = [i for i, sid in enumerate(order)
               if sid.startswith(("ceph_openstack-keyring-", "ceph_openstack-libvirt-secret-",
                                  "ceph_openstack-ceph-conf"))]
    assert readers and all(published < i for i in readers), order
    clients = [i for i, sid in enumerate(order) if sid.startswith("ceph_openstack-client-")]
    assert clients and all(i < published for i in clients), order
