"""
Unit tests of the pillar validator salt/_utils/ceph_openstack_pillar.py.

pillar.example (the reference) must have no problem; every malformed pillar of the
corpus tests/data/bad_pillars.yaml (small mutations of pillar.example) must be
rejected with a problem that names its pillar key path, and no problem may ever show
a cephx key given in the pillar.
"""

import copy
import importlib.util
import pathlib
import shutil

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((ROOT / "pillar.example").read_text())
DEFAULTS = yaml.safe_load((ROOT / "salt/states/ceph_openstack/defaults.yaml").read_text())
CORPUS = yaml.safe_load((ROOT / "tests/data/bad_pillars.yaml").read_text())

# Valid cephx keys (base64 of crypto type 1, a stamp, length 16 and 16 bytes); nobody's.
KEYS = (
    "AQAA8VNlAAAAABAAAAECAwQFBgcICQoLDA0ODw==",
    "AQAB8VNlAAAAABAAZGVmZ2hpamtsbW5vcHFycw==",
)


def _load():
    path = ROOT / "salt/_utils/ceph_openstack_pillar.py"
    spec = importlib.util.spec_from_file_location("ceph_openstack_pillar_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validator = _load()
problems = validator.problems


# --------------------------------------------------------------------------- corpus helpers


def _split(path):
    return path.split(":")


def mutated(case):
    """pillar.example (the whole file: {ceph_openstack: ...}) with ``case`` applied."""
    doc = copy.deepcopy(EXAMPLE)
    for path, value in (case.get("mutate") or {}).items():
        *parents, last = _split(path)
        node = doc
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = copy.deepcopy(value)
    for path in case.get("delete") or []:
        *parents, last = _split(path)
        node = doc
        for part in parents:
            node = node[part]
        del node[last]
    return doc


def names_path(message, path):
    """True when ``message`` is about ``path`` exactly ("<path>: ..."), not a longer key."""
    return message.startswith(path + ": ")


def key_values(node):
    """Every value of a ``key`` field anywhere in ``node`` (strings and others)."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "key" and value is not None:
                yield str(value)
            yield from key_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from key_values(item)


def with_keys(doc):
    """``doc`` with a valid pre-generated key on every client that has none."""
    doc = copy.deepcopy(doc)
    clients = doc.get("ceph_openstack", {}) if isinstance(doc.get("ceph_openstack"), dict) else {}
    clients = clients.get("clients")
    if isinstance(clients, dict):
        for index, client in enumerate(clients.values()):
            if isinstance(client, dict) and "key" not in client:
                client["key"] = KEYS[index % len(KEYS)]
    return doc


# --------------------------------------------------------------------------- the reference


def test_example_has_no_problem():
    assert problems(EXAMPLE["ceph_openstack"]) == []


def test_example_with_keys_and_cluster_facts_has_no_problem():
    pillar = with_keys(EXAMPLE)["ceph_openstack"]
    pillar["fsid"] = "675c94fe-ac46-484e-bd88-2f7fc8d601a7"
    pillar["mon_host"] = "[v2:192.0.2.145:3300,v1:192.0.2.145:6789]"
    assert problems(pillar) == []


def test_defaults_have_no_problem():
    assert problems(DEFAULTS["ceph_openstack"]) == []


def test_empty_pillar_has_no_problem():
    """Every top-level key has a default; a minion without the pillar is not an error."""
    assert problems({}) == []


def test_top_level_keys_are_those_of_the_example_and_defaults():
    """The known set is pillar.example's keys (fsid and mon_host are commented out there)."""
    assert set(EXAMPLE["ceph_openstack"]) | {"fsid", "mon_host"} == set(validator.TOP_LEVEL_KEYS)
    assert set(DEFAULTS["ceph_openstack"]) == set(validator.TOP_LEVEL_KEYS)
    assert "# fsid:" in (ROOT / "pillar.example").read_text()
    assert "# mon_host:" in (ROOT / "pillar.example").read_text()


# --------------------------------------------------------------------------- the corpus


def test_corpus_shape():
    assert len(CORPUS) >= 20
    ids = [case["id"] for case in CORPUS]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for case in CORPUS:
        assert set(case) <= {"id", "description", "mutate", "delete", "expect", "says"}, case
        assert case.get("mutate") or case.get("delete"), case["id"]
        assert case["expect"].startswith("ceph_openstack"), case["id"]


@pytest.mark.parametrize("case", CORPUS, ids=[case["id"] for case in CORPUS])
def test_corpus_rejected_naming_the_key(case):
    found = problems(mutated(case)["ceph_openstack"])
    assert found, f"{case['id']}: accepted ({case['description']})"
    about = [message for message in found if names_path(message, case["expect"])]
    assert about, f"no problem names {case['expect']!r}: {found}"
    if "says" in case:
        assert any(case["says"] in message for message in about), about
    for message in found:
        assert message.startswith("ceph_openstack"), message
        assert "\n" not in message, message


@pytest.mark.parametrize("case", CORPUS, ids=[case["id"] for case in CORPUS])
def test_corpus_never_shows_a_key(case):
    """With a valid key on every client besides the mutation, no problem shows a key."""
    doc = with_keys(mutated(case))
    secrets = list(key_values(doc))
    found = problems(doc["ceph_openstack"])
    assert found
    for message in found:
        for secret in secrets:
            assert secret not in message


# --------------------------------------------------------------------------- single checks


def example():
    return copy.deepcopy(EXAMPLE["ceph_openstack"])


@pytest.mark.parametrize("value", [None, [], "ceph_openstack", 3])
def test_not_a_mapping_gives_one_problem(value):
    found = problems(value)
    assert len(found) == 1
    assert found[0].startswith("ceph_openstack: must be a mapping")


@pytest.mark.parametrize(
    "name, ok",
    [
        ("a" * 255, True),
        ("a" * 256, False),
        ("volumes-ssd_2.x", True),
        ("", False),
        ("vol\tumes", False),
        ("vol\x00umes", False),
    ],
)
def test_pool_names(name, ok):
    pillar = example()
    pillar["pools"][name] = {"pg_num": 8}
    assert (problems(pillar) == []) is ok


def test_pool_name_not_a_string():
    pillar = example()
    pillar["pools"][7] = {}
    assert problems(pillar) == [
        "ceph_openstack:pools:7: illegal pool name (must be a non-empty string)"
    ]


@pytest.mark.parametrize(
    "props, path",
    [
        ({"pg_num": True}, "pg_num"),
        ({"size": 3, "min_size": 4}, "min_size"),
        ({"pg_num": 16, "pgp_num": 32}, "pgp_num"),
        ({"max_bytes": -1}, "max_bytes"),
        ({"pg_autoscale_mode": "auto"}, "pg_autoscale_mode"),
        ({"target_size_ratio": "0.2"}, "target_size_ratio"),
        ({"crush_rule": ""}, "crush_rule"),
        ({"application": 1}, "application"),
    ],
)
def test_pool_properties_rejected(props, path):
    pillar = example()
    pillar["pools"]["volumes"] = props
    found = problems(pillar)
    assert any(names_path(m, f"ceph_openstack:pools:volumes:{path}") for m in found), found


def test_pool_properties_accepted():
    pillar = example()
    pillar["pools"]["volumes"] = {
        "pg_num": 64, "pgp_num": 64, "size": 3, "min_size": 2, "pg_autoscale_mode": "warn",
        "target_size_ratio": 0.2, "crush_rule": "replicated_rule", "max_objects": 0,
        "max_bytes": 10 ** 12, "application": "rbd", "init": False,
    }
    pillar["pools"]["vms"] = {"target_size_ratio": 1, "pg_autoscale_mode": "off"}
    assert problems(pillar) == []


def test_backend_pool_not_checked_without_pools():
    """Pools may live in another pillar file (mons only): references to them are then
    not checked; clients and secrets are."""
    pillar = example()
    del pillar["pools"]
    assert problems(pillar) == []


def test_extra_role_from_targets():
    pillar = example()
    pillar["targets"]["storage"] = "N@storage"
    pillar["clients"]["glance"]["roles"] = ["controller", "storage"]
    assert problems(pillar) == []


def test_uppercase_uuid_and_ipv6_host():
    pillar = example()
    pillar["libvirt"]["secrets"]["cinder"]["uuid"] = "691C3607-7CA3-433A-A0C0-5805CEA8AFA0"
    pillar["hosts"]["compute2"] = "2001:db8::131"
    pillar["hosts"]["compute3.example.org"] = "192.0.2.133"
    assert problems(pillar) == []


def test_ipv6_read_as_a_number_hints_at_quotes():
    pillar = example()
    pillar["hosts"].update(yaml.safe_load("compute2: 1:2:3:4:5:6:7:8"))
    assert problems(pillar) == [
        "ceph_openstack:hosts:compute2: must be an IPv4 or IPv6 address "
        "(quote IPv6 addresses: YAML may read them as numbers)"
    ]


@pytest.mark.parametrize("client, whose", [
    ("cinder", "for the same client"),
    ("glance", "which holds the key of client 'cinder'"),
])
def test_one_uuid_for_two_secrets_is_refused_whatever_the_client(client, whose):
    pillar = example()
    pillar["clients"]["glance"]["roles"].append("compute")
    pillar["libvirt"]["secrets"]["second"] = {
        "uuid": pillar["libvirt"]["secrets"]["cinder"]["uuid"].upper(), "client": client}
    found = [p for p in problems(pillar) if "same UUID" in p]
    assert found == [
        "ceph_openstack:libvirt:secrets:second:uuid: same UUID as "
        f"ceph_openstack:libvirt:secrets:cinder:uuid ({whose}); libvirt keeps one secret per "
        "UUID: give each secret its own UUID, or use one secret in several places"
    ]


def test_secret_client_defaults_to_its_name():
    pillar = example()
    del pillar["libvirt"]["secrets"]["cinder"]["client"]
    assert problems(pillar) == []
    pillar["libvirt"]["secrets"]["rbd"] = pillar["libvirt"]["secrets"].pop("cinder")
    pillar["cinder"]["backends"]["ceph"]["secret"] = "rbd"
    pillar["nova"]["secret"] = "rbd"
    assert problems(pillar) == [
        "ceph_openstack:libvirt:secrets:rbd: no client 'rbd' in ceph_openstack:clients"
    ]


@pytest.mark.parametrize("section", ["glance", "nova"])
def test_glance_and_nova_may_be_null(section):
    pillar = example()
    pillar[section] = None
    pillar["cinder"]["backup"] = None
    assert problems(pillar) == []


def test_option_values_the_ini_editor_writes():
    pillar = example()
    pillar["nova"]["options"]["images_rbd_glance_copy_poll_interval"] = 15
    pillar["nova"]["conf"] = {"DEFAULT": {"debug": False}, "pci": {"device_spec": ["a", "b"]}}
    pillar["glance"]["conf"] = {"DEFAULT": {"enabled_backends": {"ceph": "rbd", "file": "file"}}}
    pillar["compute_client"]["rbd cache max dirty"] = 0
    assert problems(pillar) == []


def test_valid_key_accepted_and_invalid_key_never_shown():
    pillar = example()
    pillar["clients"]["cinder"]["key"] = KEYS[0]
    assert problems(pillar) == []
    bad = "AgAA8VNlAAAAABAAAAECAwQFBgcICQoLDA0ODw=="  # 28 bytes, crypto type 2, not AES
    pillar["clients"]["cinder"]["key"] = bad
    found = problems(pillar)
    assert len(found) == 1
    assert found[0].startswith("ceph_openstack:clients:cinder:key: not a valid cephx key")
    assert bad not in found[0]


def test_a_key_pasted_into_a_reference_is_not_shown():
    pillar = example()
    pillar["nova"]["client"] = KEYS[0]
    found = problems(pillar)
    assert found and all(KEYS[0] not in message for message in found)


def test_problem_list_is_complete_not_first_only():
    pillar = example()
    pillar["pools"]["vol umes"] = {"pg_num": "32"}
    pillar["rollout"]["compute_batch"] = 0
    pillar["nova"]["client"] = "nova"
    found = problems(pillar)
    assert [m.split(": ")[0] for m in found] == [
        "ceph_openstack:pools:vol umes",
        "ceph_openstack:pools:vol umes:pg_num",
        "ceph_openstack:rollout:compute_batch",
        "ceph_openstack:nova:client",
    ]


def _paths(node, path=()):
    """Every key path of ``node`` (a parsed pillar), parents first."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield path + (name,)
            yield from _paths(value, path + (name,))


ODD_VALUES = [None, [], {}, "", "x", 0, -1, True, 1.5, [{}], {"a": []}, [[1]], {"a": {"b": None}}]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_never_raises_whatever_the_value(value):
    """Any value anywhere gives problems (strings), never an exception."""
    for path in _paths(EXAMPLE["ceph_openstack"]):
        pillar = example()
        node = pillar
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = copy.deepcopy(value)
        found = problems(pillar)
        assert all(isinstance(m, str) and m.startswith("ceph_openstack:") for m in found), found


@pytest.mark.parametrize("key", [None, 1, True, 1.5, ("a",), ""], ids=repr)
def test_never_raises_whatever_the_key(key):
    """YAML keys need not be strings: an odd key in any mapping gives problems, no exception."""
    for path in [()] + list(_paths(EXAMPLE["ceph_openstack"])):
        pillar = example()
        node = pillar
        for part in path:
            node = node[part]
        if not isinstance(node, dict):
            continue
        node[key] = copy.deepcopy(next(iter(node.values()), "x"))
        found = problems(pillar)
        assert all(isinstance(m, str) for m in found), found
        assert found, path


# --------------------------------------------------------------------------- Salt's loader


def test_loads_through_salt_loader(tmp_path):
    """Synced into extmods/utils, the module loads in Salt's loader (cephx by path) and
    is reachable as __utils__["ceph_openstack_pillar.problems"], its only public function."""
    import salt.config
    import salt.loader

    utils_dir = tmp_path / "extmods" / "utils"
    utils_dir.mkdir(parents=True)
    for name in ("ceph_openstack_pillar.py", "cephx.py"):
        shutil.copy(ROOT / "salt/_utils" / name, utils_dir / name)
    opts = salt.config.minion_config(None)
    opts.update({"extension_modules": str(tmp_path / "extmods"), "cachedir": str(tmp_path)})
    utils = salt.loader.utils(opts, whitelist=["ceph_openstack_pillar"])
    check = utils["ceph_openstack_pillar.problems"]
    assert check(EXAMPLE["ceph_openstack"]) == []
    assert check({"pool": {}}) == ["ceph_openstack:pool: unknown key (known: "
                                   + ", ".join(validator.TOP_LEVEL_KEYS) + ")"]
    assert sorted(k for k in utils if k.startswith("ceph_openstack_pillar.")) == [
        "ceph_openstack_pillar.problems"
    ]


# --------------------------------------------------------------------------- lookup


def test_lookup_overrides_of_the_lab_and_of_every_documented_key_are_fine():
    pillar = example()
    pillar["lookup"] = {
        "root": "/srv/roots/cmp1", "ceph_dir": "/etc/ceph", "hosts_file": "/etc/hosts",
        "cinder_conf": "/etc/cinder/cinder.conf", "glance_conf": "/etc/glance/glance-api.conf",
        "nova_conf": "/etc/nova/nova.conf", "guest_socket_dir": "/run/ceph/guests",
        "guest_log_dir": "/var/log/qemu", "libvirt_uri": None,
        "owners": {"cinder": "nobody", "qemu": "nobody"}, "groups": {"nova": "nogroup"},
        "pkgs": {"compute": ["ceph-common"], "controller": []},
        "services": {"nova_compute": "openstack-nova-compute"},
        "service_logs": {"nova_compute": "/var/log/nova/compute.log", "glance_api": None},
        "repo": {"url": "https://mirror.example/ceph-{release}", "key_url": "https://k/"},
    }
    assert problems(pillar) == []
    pillar["lookup"] = {"root": ""}
    assert problems(pillar) == []


@pytest.mark.parametrize("lookup, path, says", [
    ({"roots": "/srv"}, "lookup:roots", "unknown key"),
    ({"root": "srv"}, "lookup:root", "absolute path"),
    ({"nova_conf": "nova.conf"}, "lookup:nova_conf", "absolute path"),
    ({"pkgs": 3}, "lookup:pkgs", "must be a mapping"),
    ({"pkgs": {"compute": "ceph-common"}}, "lookup:pkgs:compute", "list of package names"),
    ({"owners": {"cinder": None}}, "lookup:owners:cinder", "non-empty string"),
    ({"services": {"nova": "nova-compute"}}, "lookup:services:nova", "unknown key"),
    ({"service_logs": {"cinder_volume": "cinder-volume.log"}},
     "lookup:service_logs:cinder_volume", "absolute path"),
    ({"service_logs": {"cinder": "/var/log/cinder/cinder-volume.log"}},
     "lookup:service_logs:cinder", "unknown key"),
    ({"repo": {"url": "https://x/{release}/{arch}"}}, "lookup:repo:url", "placeholder"),
])
def test_lookup_problems_name_their_key(lookup, path, says):
    pillar = example()
    pillar["lookup"] = lookup
    found = problems(pillar)
    assert len(found) == 1 and found[0].startswith(f"ceph_openstack:{path}: "), found
    assert says in found[0]
