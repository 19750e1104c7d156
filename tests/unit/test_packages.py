"""
The client packages of each role (salt/states/ceph_openstack/osfamilymap.yaml), and their
override in pillar (``lookup:pkgs:<role>``). tests/functional/test_formula_order.py checks
what the formula renders from them.
"""

import pathlib

import pytest
import yaml

from tests.support.modules import load

ROOT = pathlib.Path(__file__).resolve().parents[2]
OSFAMILYMAP = yaml.safe_load((ROOT / "salt/states/ceph_openstack/osfamilymap.yaml").read_text())
EXAMPLE = yaml.safe_load((ROOT / "pillar.example").read_text())["ceph_openstack"]
validator = load("salt/_utils/ceph_openstack_pillar.py", "ceph_openstack_pillar_packages")


def test_debian_packages_per_role():
    """Without Recommends Debian's glance-api and cinder-volume pull neither python3-rados
    nor python3-rbd, and QEMU's RBD block driver is qemu-block-extra (qemu-system-x86 only
    recommends it)."""
    assert OSFAMILYMAP["Debian"]["pkgs"] == {
        "controller": ["ceph-common", "python3-rados", "python3-rbd"],
        "compute": ["ceph-common", "python3-rados", "python3-rbd", "qemu-block-extra"],
    }


def test_redhat_packages_per_role():
    """EL's QEMU RBD block driver is qemu-kvm-block-rbd."""
    assert OSFAMILYMAP["RedHat"]["pkgs"] == {
        "controller": ["ceph-common", "python3-rados", "python3-rbd"],
        "compute": ["ceph-common", "python3-rados", "python3-rbd", "qemu-kvm-block-rbd"],
    }


@pytest.mark.parametrize("pkgs", [
    {"compute": ["ceph-common", "python3-rbd", "qemu-block-extra"]},
    {"controller": ["ceph-common"], "compute": []},
    {"mon": ["ceph-common"]},
])
def test_a_roles_list_can_be_overridden_in_pillar(pkgs):
    assert validator.problems(dict(EXAMPLE, lookup={"pkgs": pkgs})) == []


@pytest.mark.parametrize("pkgs, says", [
    ({"compute": "qemu-block-extra"}, "lookup:pkgs:compute: must be a list of package names"),
    ({"compute": ["ceph-common", ""]}, "lookup:pkgs:compute: item 1 must be a package name"),
])
def test_a_bad_override_is_refused_naming_its_key(pkgs, says):
    assert [p for p in validator.problems(dict(EXAMPLE, lookup={"pkgs": pkgs}))
            if says in p], says
