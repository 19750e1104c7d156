"""ceph_openstack_rollout.routes: a minion with both the installed package and synced
copies of its modules (or about to get them) is named, with what the loader uses and how
to keep one. The package is a real distribution's metadata on sys.path (what pip leaves
in site-packages); integration: tests/integration/test_saltext.py."""

import importlib

import pytest

from tests.support.modules import load

rollout = load("salt/_modules/ceph_openstack_rollout.py", "ceph_openstack_rollout_exec_under_test")

FILES = ["modules/cephpool.py", "states/cephpool.py", "utils/cephx.py", "runners/cephimage.py",
         "formula/top.sls"]


@pytest.fixture
def minion(tmp_path, monkeypatch):
    extmods = tmp_path / "extmods"
    extmods.mkdir()
    monkeypatch.setattr(rollout, "__opts__", {"id": "ctl1", "extension_modules": str(extmods),
                                              "cachedir": str(tmp_path)}, raising=False)
    return extmods


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """saltext.ceph_openstack 1.2.3 installed in a site directory of its own."""
    site = tmp_path / "site"
    info = site / "saltext_ceph_openstack-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: saltext.ceph_openstack\n"
                                   "Version: 1.2.3\n")
    (info / "RECORD").write_text("".join(f"saltext/ceph_openstack/{path},,\n" for path in FILES))
    for path in FILES:  # newer importlib.metadata lists only the files that exist
        (site / "saltext" / "ceph_openstack" / path).parent.mkdir(parents=True, exist_ok=True)
        (site / "saltext" / "ceph_openstack" / path).write_text("")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


def test_without_the_package_there_is_nothing_to_say(minion):
    (minion / "modules").mkdir()
    (minion / "modules" / "cephpool.py").write_text("")
    assert rollout.routes({"_modules/cephpool.py": "x"}) == {
        "installed": None, "synced": [], "problem": None}


def test_the_package_alone_is_fine(minion, installed):
    assert rollout.routes({}) == {"installed": "1.2.3", "synced": [], "problem": None}


def test_synced_copies_beside_the_package_are_named_with_the_loaders_choice(minion, installed):
    for path in ("modules/cephpool.py", "utils/cephx.py", "modules/other.py"):
        (minion / path).parent.mkdir(exist_ok=True)
        (minion / path).write_text("")
    found = rollout.routes({})
    assert found["installed"] == "1.2.3"
    assert found["synced"] == ["modules/cephpool.py", "utils/cephx.py"]
    assert found["problem"].startswith(
        f"ctl1 has saltext.ceph_openstack 1.2.3 installed ({installed}/saltext/ceph_openstack)"
        f" and synced copies of its modules in {minion} (modules/cephpool.py, utils/cephx.py);"
        " Salt's loader uses the synced copies.")
    assert "`salt ctl1 saltutil.sync_all`" in found["problem"]
    assert "salt-pip uninstall saltext.ceph_openstack" in found["problem"]


def test_a_master_serving_the_modules_to_a_minion_with_the_package_is_named(minion, installed):
    problem = rollout.routes({"_modules/cephpool.py": "x"})["problem"]
    assert problem.startswith("ctl1 has saltext.ceph_openstack 1.2.3 installed")
    assert "syncing them would hide the installed package" in problem


def test_preflight_reports_the_routes_problem(minion, installed, monkeypatch):
    monkeypatch.setattr(rollout, "__salt__", {"pillar.items": lambda **_: {},
                                              "ceph_openstack.validate": lambda _: []},
                        raising=False)
    (minion / "states").mkdir()
    (minion / "states" / "cephpool.py").write_text("")
    found = rollout.preflight({})
    assert found["stale"] == [] and found["problems"] == []
    assert "synced copies of its modules in" in found["routes"]
