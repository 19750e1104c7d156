"""
Tests of the OpenStack option check (tests/support/oslo_check.py) and of the
editor's multi-valued option table against the snapshots in tests/data/oslo_schema/.
"""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest_ini import DATA, REPO, ini, load_module  # noqa: E402

pytest.importorskip("oslo_config", reason="the option check uses oslo.config's type converters")
oslo_check = load_module("oslo_check", "tests/support/oslo_check.py")

SCHEMA_DIR = REPO / "tests" / "data" / "oslo_schema"
# Option groups whose options live in sections the operator names.
NAMED_SECTION_GROUPS = ("backend_defaults", "backend")


def problems(text, service, **kwargs):
    return oslo_check.check_text(text, service, **kwargs)


def only(found, *words):
    """Exactly one problem, mentioning every word."""
    assert len(found) == 1, found
    assert all(word in found[0] for word in words), found[0]
    return found[0]


# --------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("service, major", [("nova", "34"), ("cinder", "29"), ("glance-api", "33")])
def test_snapshots_are_of_current_releases(service, major):
    schema = oslo_check.load_schema(service)
    package = service.split("-")[0]
    assert schema["packages"][package].split(".")[0] == major
    assert schema["packages"]["oslo.config"]
    assert "DEFAULT" in schema["groups"]


def test_multi_valued_table_matches_the_snapshots():
    """Every oslo multi-valued option is written one line per value by the editor."""
    for service in oslo_check.SERVICES:
        schema = oslo_check.load_schema(service)
        for group, options in schema["groups"].items():
            named = group in NAMED_SECTION_GROUPS or group.startswith("store:")
            for name, option in options.items():
                if option["type"] == "multi valued":
                    section = "any-operator-named-section" if named else group
                    assert ini.is_multi(section, name), "{}: [{}] {}".format(service, group, name)


def test_multi_valued_table_has_no_stale_entries():
    multi, renamed = set(), {}
    for service in oslo_check.SERVICES:
        schema = oslo_check.load_schema(service)
        renamed.update(schema["renamed"])
        for group, options in schema["groups"].items():
            named = group in NAMED_SECTION_GROUPS or group.startswith("store:")
            for name, option in options.items():
                if option["type"] == "multi valued":
                    multi.add("{}/{}".format("*" if named else group, name))
    for entry in ini.MULTI_VALUED:
        assert entry in multi or renamed.get(entry) in multi, entry


def test_secret_table_matches_the_snapshots():
    """The editor masks every option OpenStack marks secret, and only those (plus names)."""
    gen = load_module("gen_oslo_secrets", "scripts/gen_oslo_secrets.py")
    expected = gen.secret_options(str(SCHEMA_DIR))
    assert ini.SECRET_OPTIONS == expected
    assert {"DEFAULT/transport_url", "database/connection", "*/chap_password"} <= expected
    source = (REPO / "salt" / "_utils" / "openstack_ini.py").read_text()
    assert gen.rewrite(source, expected) == source  # the generated block is as written


def test_snapshots_record_the_secret_flag():
    for service in oslo_check.SERVICES:
        groups = oslo_check.load_schema(service)["groups"]
        assert groups["DEFAULT"]["transport_url"].get("secret") is True, service
        assert groups["DEFAULT"]["debug"].get("secret") is None, service


def test_snapshot_files_are_compact_json():
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        assert path.stat().st_size < 200_000
        with open(path) as handle:
            json.load(handle)


# --------------------------------------------------------------------------- good files


@pytest.mark.parametrize(
    "name, service",
    [
        ("nova.conf", "nova"),
        ("nova.conf.expected", "nova"),
        ("cinder.conf", "cinder"),
        ("cinder.conf.expected", "cinder"),
        ("glance-api.conf.expected", "glance-api"),
    ],
)
def test_formula_output_is_valid_for_current_openstack(name, service):
    assert oslo_check.check_file(str(DATA / name), service) == []


def test_glance_single_store_file_is_flagged_before_migration():
    found = oslo_check.check_file(str(DATA / "glance-api.conf"), "glance-api")
    assert len(found) == 2
    assert all("deprecated for removal" in problem for problem in found)


# --------------------------------------------------------------------------- bad files


def test_removed_nova_option_is_unknown():
    only(problems("[libvirt]\nlive_migration_flag = VIR_MIGRATE_UNDEFINE_SOURCE\n", "nova"),
         "[libvirt] live_migration_flag", "unknown option")


def test_removed_cinder_option_is_unknown():
    only(problems("[DEFAULT]\nglance_api_version = 2\n", "cinder"),
         "[DEFAULT] glance_api_version", "unknown option")


def test_invalid_boolean():
    text = "[DEFAULT]\nenabled_backends = ceph\n[ceph]\nrbd_flatten_volume_from_snapshot = maybe\n"
    only(problems(text, "cinder"), "[ceph] rbd_flatten_volume_from_snapshot", "invalid boolean")


def test_glance_store_stores_is_deprecated_for_removal():
    only(problems("[glance_store]\nstores = rbd\n", "glance-api"),
         "[glance_store] stores", "deprecated for removal")


@pytest.mark.parametrize(
    "text, words",
    [
        ("[libvirt]\ninject_partition = -3\n", ["inject_partition", "invalid integer"]),
        ("[libvirt]\nimages_type = ceph\n", ["images_type", "invalid string"]),
        ("[vnc]\nserver_listen = not an address\n", ["server_listen", "invalid host address"]),
        ("[libvirt]\nimages_type = rbd\nimages_type = qcow2\n", ["set 2 times"]),
        ("[pci]\npassthrough_whitelist = {}\n", ["deprecated name", "[pci] device_spec"]),
        ("[libvrit]\nimages_type = rbd\n", ["[libvrit]", "unknown section"]),
        ("[glance]\napi_servers = http://controller:9292\n", ["deprecated for removal"]),
        ("[vnc]\nserver_proxyclient_address = $my_ip\n[DEFAULT]\nmy_ip = bad ip\n",
         ["server_proxyclient_address", "invalid host address"]),
        ("not ini\n", ["not an ini file"]),
    ],
)
def test_other_nova_problems(text, words):
    only(problems(text, "nova"), *words)


def test_multi_valued_option_may_repeat_and_unset_references_are_skipped():
    text = "[pci]\ndevice_spec = {}\ndevice_spec = {}\n[DEFAULT]\nstate_path = $pybasedir/x\n"
    assert problems(text, "nova") == []


def test_cinder_backend_sections_map_to_backend_options():
    text = "[DEFAULT]\nenabled_backends = ceph\n[ceph]\nrbd_pool = volumes\nbackend_host = x\n"
    assert problems(text, "cinder") == []
    # Not listed in enabled_backends: an unknown section, unless mapped explicitly.
    text = "[ceph]\nrbd_pool = volumes\n"
    only(problems(text, "cinder"), "[ceph]", "unknown section")
    assert problems(text, "cinder", section_groups={"ceph": "backend_defaults"}) == []


def test_glance_store_sections_map_to_the_driver_options():
    text = (
        "[DEFAULT]\nenabled_backends = fast:rbd, local:file\n"
        "[fast]\nrbd_store_pool = images\nweight = 10\n"
        "[local]\nfilesystem_store_datadir = /srv\n"
        "[os_glance_staging_store]\nfilesystem_store_datadir = /var/lib/glance/staging\n"
    )
    assert problems(text, "glance-api") == []
    only(problems(text.replace("weight = 10", "weight = heavy"), "glance-api"),
         "[fast] weight", "invalid integer")
    only(problems("[DEFAULT]\nenabled_backends = x:rbd\n[x]\nfilesystem_store_datadir = /\n",
                  "glance-api"), "[x] filesystem_store_datadir", "unknown option")


def test_unknown_service_is_an_error():
    with pytest.raises(ValueError, match="no schema"):
        oslo_check.load_schema("neutron")
