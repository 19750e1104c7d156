"""
Golden round-trip tests on realistic files (tests/unit/data/ini/).

For each ``<file>`` there is ``<file>.edit.yaml`` (``absent`` / ``present`` as the
formula would pass them) and ``<file>.expected``, the exact bytes after the edit.
The expected files were produced by the editor once and reviewed line by line
(``diff -u nova.conf nova.conf.expected``); the tests pin them down.
"""

import os
import shutil
import sys

import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest_ini import DATA, GOLDEN, exec_mod, ini, read_bytes  # noqa: E402,F401


def edits(name):
    with open(DATA / "{}.edit.yaml".format(name)) as handle:
        spec = yaml.safe_load(handle)
    return spec.get("absent") or {}, spec.get("present") or {}


def text_of(path):
    return read_bytes(path).decode("utf-8")


@pytest.mark.parametrize("name", GOLDEN)
def test_unedited_golden_file_renders_byte_for_byte(name):
    for path in (DATA / name, DATA / "{}.expected".format(name)):
        text = text_of(path)
        assert ini.render(ini.parse(text)) == text


@pytest.mark.parametrize("name", GOLDEN)
def test_edit_gives_the_expected_bytes_then_converges(exec_mod, tmp_path, name):
    path = str(tmp_path / name)
    shutil.copyfile(DATA / name, path)
    absent, present = edits(name)

    predicted = exec_mod.options_absent(path, absent, test=True)
    predicted.update(exec_mod.options_present(path, present, test=True))
    assert read_bytes(path) == read_bytes(DATA / name)

    changes = exec_mod.options_absent(path, absent)
    changes.update(exec_mod.options_present(path, present))
    assert read_bytes(path) == read_bytes(DATA / "{}.expected".format(name))
    assert changes == predicted
    assert changes

    mtime = os.stat(path).st_mtime_ns
    assert exec_mod.options_absent(path, absent) == {}
    assert exec_mod.options_present(path, present) == {}
    assert os.stat(path).st_mtime_ns == mtime


@pytest.mark.parametrize("name", GOLDEN)
def test_unmanaged_lines_survive_in_order(name):
    """Every line that is not a managed key is still there, unchanged and in order."""
    absent, present = edits(name)
    managed = {(s, k) for s, keys in absent.items() for k in keys}
    managed |= {(s, k) for s, options in present.items() for k in options}
    before = ini.parse(text_of(DATA / name))
    after_lines = text_of(DATA / "{}.expected".format(name)).splitlines()
    kept = [
        line.text.rstrip("\r\n")
        for line in before.lines
        if (line.section, line.key) not in managed
    ]
    position = 0
    for line in kept:
        position = after_lines.index(line, position) + 1


def test_nova_golden_reads_back_the_formula_values():
    doc = ini.parse(text_of(DATA / "nova.conf.expected"))
    data = ini.to_dict(doc)
    assert data["libvirt"]["images_type"] == "rbd"
    assert data["libvirt"]["inject_partition"] == "-2"
    assert data["pci"]["device_spec"] == [
        '{"vendor_id": "8086", "product_id": "154d", "physical_network": "physnet1"}',
        '{"address": "0000:82:00.0"}',
    ]
    assert data["vnc"]["server_proxyclient_address"] == "$my_ip"
    assert data["DEFAULT"]["reserved_host_memory_mb"] == "2048"  # tab before "="
    assert data["keystone_authtoken"]["password"] == "NOVA_PASS"  # tabs around "="
    assert not text_of(DATA / "nova.conf.expected").endswith("\n")
