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


#: Client packages of each role on Debian (osfamilymap.yaml): Debian's glance-api and
#: cinder-volume pull neither python3-rados nor python3-rbd without Recommends, and QEMU's
#: RBD block driver is in qemu-block-extra.
DEBIAN_PKGS = {
    "mon": [],
    "controller": ["ceph-common", "python3-rados", "python3-rbd"],
    "compute": ["ceph-common", "python3-rados", "python3-rbd", "qemu-block-extra"],
}
#: The states that write into /etc/ceph, which ceph-common creates.
ETC_CEPH = ("ceph_openstack-ceph-conf", "ceph_openstack-keyring-")


def test_packages_per_role_and_etc_ceph_written_after_them(minion_opts, tmp_path):
    """Each node installs its roles' packages, each once, and writes ceph.conf and the
    keyrings after them, by requisite (not only by the order of the includes)."""
    pillar = yaml.safe_load((ROOT / "pillar.example").read_text())
    loaders = formula_loaders(minion_opts, tmp_path / "pillar")
    loaders.grains["os_family"] = "Debian"
    rendered = low_chunks_per_roles(loaders, pillar)
    for roles in ROLE_COMBINATIONS:
        chunks = rendered[tuple(roles)]
        order = [chunk["__id__"] for chunk in chunks]
        wanted = list(dict.fromkeys(p for role in roles for p in DEBIAN_PKGS[role]))
        packages = [chunk for chunk in chunks if chunk["__id__"] == "ceph_openstack-packages"]
        if not wanted:
            assert not packages, roles
            continue
        assert [chunk["pkgs"] for chunk in packages] == [wanted], roles
        writers = [chunk for chunk in chunks if chunk["__id__"].startswith(ETC_CEPH)]
        assert writers, roles
        for chunk in writers:
            assert {"pkg": "ceph_openstack-packages"} in chunk.get("require", []), chunk
            assert order.index("ceph_openstack-packages") < order.index(chunk["__id__"])


def test_a_role_applied_alone_still_installs_first(minion_opts, tmp_path):
    """`state.apply ceph_openstack.compute` (one role's SLS, not init) has the packages too,
    so the requisite resolves."""
    pillar = yaml.safe_load((ROOT / "pillar.example").read_text())
    loaders = formula_loaders(minion_opts, tmp_path / "pillar")
    loaders.grains["role"] = ["compute"]
    chunks = loaders.modules.state.show_low_sls("ceph_openstack.compute", pillar=pillar)
    assert isinstance(chunks, list) and all(isinstance(c, dict) for c in chunks), chunks
    ids = [chunk["__id__"] for chunk in sorted(chunks, key=lambda chunk: chunk["order"])]
    assert ids.index("ceph_openstack-packages") < ids.index("ceph_openstack-ceph-conf")


def test_unmanaged_packages_no_state_no_requisite(minion_opts, tmp_path):
    """packages:manage false (or an empty lookup:pkgs list): no packages state, and nothing
    requires one (a requisite on a missing state would fail the run)."""
    pillar = yaml.safe_load((ROOT / "pillar.example").read_text())
    unmanaged = dict(pillar["ceph_openstack"], packages={"manage": False})
    no_list = dict(pillar["ceph_openstack"],
                   lookup={"pkgs": {"controller": [], "compute": []}})
    loaders = formula_loaders(minion_opts, tmp_path / "pillar")
    for co in (unmanaged, no_list):
        for roles, chunks in low_chunks_per_roles(loaders, {"ceph_openstack": co}).items():
            assert all(isinstance(chunk, dict) for chunk in chunks), (roles, chunks)
            assert "ceph_openstack-packages" not in [chunk["__id__"] for chunk in chunks]
            assert not [chunk for chunk in chunks if chunk.get("require") and any(
                "pkg" in req for req in chunk["require"])], roles


def test_lookup_pkgs_replaces_one_roles_list(minion_opts, tmp_path):
    """pillar lookup:pkgs:<role> replaces that role's list, the other roles keep theirs."""
    pillar = yaml.safe_load((ROOT / "pillar.example").read_text())
    co = dict(pillar["ceph_openstack"], lookup={"pkgs": {"compute": ["ceph-common", "my-qemu"]}})
    loaders = formula_loaders(minion_opts, tmp_path / "pillar")
    loaders.grains["os_family"] = "Debian"
    rendered = low_chunks_per_roles(loaders, {"ceph_openstack": co},
                                    combinations=[["controller"], ["compute"]])
    pkgs = {roles: [c["pkgs"] for c in chunks if c["__id__"] == "ceph_openstack-packages"]
            for roles, chunks in rendered.items()}
    assert pkgs == {("controller",): [DEBIAN_PKGS["controller"]],
                    ("compute",): [["ceph-common", "my-qemu"]]}
