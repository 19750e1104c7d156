"""
Shared helpers and fixtures for the openstack_ini tests.

Not a pytest conftest: the test files import it (``from conftest_ini import ...``) so
it does not depend on tests/conftest.py. The loader modules are imported straight
from their files and their Salt dunders are set with monkeypatch.
"""

import pathlib

import pytest

from tests.support.modules import load

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(__file__).resolve().parent / "data" / "ini"
GOLDEN = ("nova.conf", "cinder.conf", "glance-api.conf", "ceph.conf")


def load_module(name, relative_path):
    """Import a file of the repository as module ``name`` (once)."""
    return load(relative_path, name)


# The pure parser/editor (salt/_utils/openstack_ini.py).
ini = load_module("openstack_ini_utils", "salt/_utils/openstack_ini.py")


@pytest.fixture
def exec_mod(monkeypatch):
    """The execution module with its loader dunders."""
    module = load_module("openstack_ini_exec", "salt/_modules/openstack_ini.py")
    monkeypatch.setattr(module, "__opts__", {"test": False}, raising=False)
    monkeypatch.setattr(module, "__context__", {}, raising=False)
    return module


@pytest.fixture
def state_opts():
    """``__opts__`` of the state module: set ``state_opts["test"] = True`` for test mode."""
    return {"test": False}


@pytest.fixture
def state_mod(monkeypatch, exec_mod, state_opts):
    """The state module wired to the real execution module."""
    module = load_module("openstack_ini_state", "salt/_states/openstack_ini.py")
    salt = {
        "openstack_ini.{}".format(name): getattr(exec_mod, name)
        for name in ("get", "options_present", "options_absent")
    }
    monkeypatch.setattr(module, "__salt__", salt, raising=False)
    monkeypatch.setattr(module, "__opts__", state_opts, raising=False)
    return module


def read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def write_text(path, text):
    """Write exactly ``text`` (no newline translation)."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return str(path)
