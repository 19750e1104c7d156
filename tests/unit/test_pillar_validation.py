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
    """The known set is pillar.example's keys (fsid and mon_host are commented out there;
    clusters, for several Ceph clusters, need not be there)."""
    optional = {"fsid", "mon_host", "clusters"}
    assert set(EXAMPLE["ceph_openstack"]) | optional == set(validator.TOP_LEVEL_KEYS)
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


def _node(pillar, path):
    """The part of ``pillar`` at the key path ``path`` (a tuple)."""
    for key in path:
        pillar = pillar[key]
    return pillar


def assert_odd_values_give_problems(base, value):
    """``value`` put at each key path of ``base`` in turn gives problems (strings), never
    an exception."""
    for path in _paths(base):
        pillar = copy.deepcopy(base)
        _node(pillar, path[:-1])[path[-1]] = copy.deepcopy(value)
        found = problems(pillar)
        assert all(isinstance(m, str) and m.startswith("ceph_openstack:") for m in found), found


def assert_odd_keys_give_problems(base, key):
    """``key`` added to each mapping of ``base`` in turn gives problems, never an
    exception."""
    for path in [()] + list(_paths(base)):
        pillar = copy.deepcopy(base)
        node = _node(pillar, path)
        if not isinstance(node, dict):
            continue
        node[key] = copy.deepcopy(next(iter(node.values()), "x"))
        found = problems(pillar)
        assert all(isinstance(m, str) for m in found), found
        assert found, path


ODD_VALUES = [None, [], {}, "", "x", 0, -1, True, 1.5, [{}], {"a": []}, [[1]], {"a": {"b": None}}]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_never_raises_whatever_the_value(value):
    """Any value anywhere gives problems (strings), never an exception."""
    assert_odd_values_give_problems(example(), value)


@pytest.mark.parametrize("key", [None, 1, True, 1.5, ("a",), ""], ids=repr)
def test_never_raises_whatever_the_key(key):
    """YAML keys need not be strings: an odd key in any mapping gives problems, no exception."""
    assert_odd_keys_give_problems(example(), key)


# --------------------------------------------------------------------------- Salt's loader


def test_validate_loads_through_salt_loader_from_the_synced_layout(tmp_path):
    """Synced as saltutil.sync_all lays it out (extmods/modules, extmods/utils), the
    execution module finds its helpers beside it and validates through Salt's loader."""
    import salt.config
    import salt.loader

    for kind in ("modules", "utils"):
        shutil.copytree(ROOT / "salt" / f"_{kind}", tmp_path / "extmods" / kind)
    opts = salt.config.minion_config(None)
    opts.update({"extension_modules": str(tmp_path / "extmods"), "cachedir": str(tmp_path)})
    validate = salt.loader.minion_mods(opts, whitelist=["ceph_openstack"])[
        "ceph_openstack.validate"]
    assert validate(EXAMPLE["ceph_openstack"]) == []
    assert validate({"pool": {}}) == ["ceph_openstack:pool: unknown key (known: "
                                      + ", ".join(validator.TOP_LEVEL_KEYS) + ")"]


def test_no_module_reaches_its_helpers_through_the_utils_dunder():
    """An installed package's modules get no ``__utils__`` of the project (Salt loads no
    utils from extensions; Salt's own are there): every module loads its helpers itself."""
    helpers = [path.stem for path in (ROOT / "salt" / "_utils").glob("*.py")]
    users = [str(path.relative_to(ROOT)) for path in sorted((ROOT / "salt").rglob("*.py"))
             if any(f'__utils__["{helper}.' in path.read_text() for helper in helpers)]
    assert helpers and users == []


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


# --------------------------------------------------------------------------- several clusters

#: What the shared spec's example adds to pillar.example: a second cluster `dr` with its
#: own pools and clients, a Cinder backend and the backup on it, a Glance store on each
#: cluster, Nova on the main one; client cinder on both clusters, with a secret for each.
TWO_CLUSTERS = yaml.safe_load("""
clusters:
  dr:
    targets: {mon: 'L@mon2'}
    fsid: null
    mon_host: null
    pools: {volumes: {pg_num: 32}, backups: {pg_num: 32}, images: {pg_num: 32}}
    clients:
      cinder:
        caps: {mon: profile rbd, osd: profile rbd pool=volumes, mgr: profile rbd pool=volumes}
        roles: [controller, compute]
      cinder-backup:
        caps: {mon: profile rbd, osd: profile rbd pool=backups, mgr: profile rbd pool=backups}
        roles: [controller]
      glance:
        caps: {mon: profile rbd, osd: profile rbd pool=images, mgr: profile rbd pool=images}
        roles: [controller]
libvirt:
  secrets:
    cinder-dr: {uuid: 5a1a2b3c-0d4e-4f50-8a6b-7c8d9e0f1a2b, client: cinder, cluster: dr}
cinder:
  backends:
    ceph-dr: {cluster: dr, pool: volumes, client: cinder, secret: cinder-dr}
  backup: {cluster: dr, pool: backups, client: cinder-backup}
glance:
  cluster: ceph
  stores:
    dr: {cluster: dr, pool: images, client: glance, chunk_size: 8, options: {}}
nova: {cluster: ceph, pool: vms, client: cinder, secret: cinder}
""")
DR = "ceph_openstack:clusters:dr"


def _merge(base, extra):
    for name, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(name), dict):
            _merge(base[name], value)
        else:
            base[name] = copy.deepcopy(value)
    return base


@pytest.fixture
def two():
    """pillar.example's ceph_openstack with the spec's second cluster."""
    return _merge(example(), TWO_CLUSTERS)


def test_two_clusters_have_no_problem(two):
    assert problems(two) == []


def test_two_clusters_with_keys_and_cluster_facts_have_no_problem(two):
    two["clusters"]["dr"]["fsid"] = "0f7e0b9e-2f41-4c5e-9d38-43b1b5e7a0c1"
    two["clusters"]["dr"]["mon_host"] = "[v2:192.0.2.146:3300,v1:192.0.2.146:6789]"
    for index, client in enumerate(two["clusters"]["dr"]["clients"].values()):
        client["key"] = KEYS[index % len(KEYS)]
    assert problems(two) == []


def test_clusters_may_be_empty_and_parts_may_name_the_main_cluster():
    pillar = example()
    pillar["clusters"] = {}
    for part in (pillar["cinder"]["backends"]["ceph"], pillar["cinder"]["backup"],
                 pillar["glance"], pillar["nova"], pillar["libvirt"]["secrets"]["cinder"]):
        part["cluster"] = "ceph"
    assert problems(pillar) == []


def test_the_main_cluster_keeps_its_own_name():
    """With cluster: prod, `prod` is the main cluster and `ceph` may name another."""
    pillar = _merge(example(), TWO_CLUSTERS)
    pillar["cluster"] = "prod"
    pillar["clusters"]["ceph"] = pillar["clusters"].pop("dr")
    for part in (pillar["libvirt"]["secrets"]["cinder-dr"], pillar["cinder"]["backends"]["ceph-dr"],
                 pillar["cinder"]["backup"], pillar["glance"]["stores"]["dr"]):
        part["cluster"] = "ceph"
    pillar["glance"]["cluster"] = pillar["nova"]["cluster"] = "prod"
    assert problems(pillar) == []


@pytest.mark.parametrize("main", [None, "ceph", "prod"])
def test_another_cluster_named_as_the_main_one(main):
    pillar = example()
    if main is None:
        del pillar["cluster"]
    else:
        pillar["cluster"] = main
    name = main or "ceph"
    pillar["clusters"] = {name: {"targets": {"mon": "L@mon2"}}}
    assert problems(pillar) == [
        f"ceph_openstack:clusters:{name}: the main cluster's name (ceph_openstack:cluster, "
        "default 'ceph'): its pools and clients are the top-level ones; give this cluster "
        "another name"
    ]


@pytest.mark.parametrize("name", ["d r", "dr.2", "../dr", "", 7])
def test_cluster_names(name):
    pillar = example()
    pillar["clusters"] = {name: {"targets": {"mon": "L@mon2"}}}
    assert problems(pillar) == [
        f"ceph_openstack:clusters:{name}: illegal cluster name (letters, digits, '_' and '-' "
        "only; it names /etc/ceph/<cluster>.conf)"
    ]


@pytest.mark.parametrize("change, path, says", [
    ({"targets": None}, "targets", "must be a mapping"),
    ({"targets": {}}, "targets:mon", "required, but missing"),
    ({"targets": {"mon": ""}}, "targets:mon", "must be a non-empty string"),
    ({"targets": {"mon": "L@mon2", "compute": "L@cmp9"}}, "targets:compute",
     "unknown key (known: mon)"),
    ({"fsid": "0f7e0b9e"}, "fsid", "UUID"),
    ({"mon_host": ""}, "mon_host", "non-empty string"),
    ({"pools": {"vol umes": {}}}, "pools:vol umes", "illegal pool name"),
    ({"pools": {"volumes": {"pg_num": 0}}}, "pools:volumes:pg_num", "positive integer"),
    ({"clients": {"cinder backup": {"caps": {"mon": "profile rbd"}, "roles": ["controller"]}}},
     "clients:cinder backup", "illegal client name"),
    ({"clients": {"glance": {"caps": {"rgw": "allow"}, "roles": ["controller"]}}},
     "clients:glance:caps:rgw", "unknown cap type"),
    ({"clients": {"glance": {"caps": {"mon": "profile rbd"}}}}, "clients:glance:roles",
     "required, but missing"),
    ({"clients": {"glance": {"caps": {"mon": "profile rbd"}, "roles": ["controller"],
                             "key": "AQBnotAcephxKeyAtAll+++/justText1234567=="}}},
     "clients:glance:key", "not a valid cephx key"),
    ({"conf": "/etc/ceph/dr.conf"}, "conf", "unknown key"),
])
def test_other_cluster_shape(two, change, path, says):
    two["clusters"]["dr"].update(change)
    found = [m for m in problems(two) if names_path(m, f"{DR}:{path}")]
    assert found and says in found[0], problems(two)


def part_of(pillar, path):
    """The part of ``pillar`` at ``path`` ("cinder:backends:ceph")."""
    return _node(pillar, path.split(":"))


def test_other_cluster_needs_its_mon_target():
    pillar = example()
    pillar["clusters"] = {"dr": {}}
    assert problems(pillar) == [f"{DR}:targets: required, but missing"]


@pytest.mark.parametrize("part", [
    "libvirt:secrets:cinder", "cinder:backends:ceph", "cinder:backup", "glance",
    "glance:stores:dr", "nova",
])
def test_cluster_of_a_part_must_be_a_name(two, part):
    part_of(two, part)["cluster"] = "d r"
    assert problems(two) == [
        f"ceph_openstack:{part}:cluster: must be a cluster name of letters, digits, '_' and "
        "'-' (it names /etc/ceph/<cluster>.conf)"
    ]


@pytest.mark.parametrize("part", [
    "libvirt:secrets:cinder-dr", "cinder:backends:ceph-dr", "cinder:backup", "glance",
    "glance:stores:dr", "nova",
])
def test_unknown_cluster_of_a_part(two, part):
    part_of(two, part)["cluster"] = "dr2"
    found = problems(two)
    assert found[0] == (
        f"ceph_openstack:{part}:cluster: no cluster 'dr2' (known: ceph, dr; "
        "ceph_openstack:cluster names the main one, ceph_openstack:clusters the others)"
    )
    # A secret on no cluster is reported once, not again by each part that uses it.
    assert len(found) == 1, found


def test_a_wrong_main_cluster_name_still_checks_the_main_parts():
    pillar = example()
    pillar["cluster"] = "../ceph"
    pillar["nova"]["client"] = "nova"
    assert [m.split(": ")[0] for m in problems(pillar)] == [
        "ceph_openstack:cluster", "ceph_openstack:nova:client"]


def test_parts_cannot_name_a_cluster_without_clusters():
    pillar = example()
    pillar["cinder"]["backup"]["cluster"] = "dr"
    assert problems(pillar) == [
        "ceph_openstack:cinder:backup:cluster: no cluster 'dr' (known: ceph; "
        "ceph_openstack:cluster names the main one, ceph_openstack:clusters the others)"
    ]


def test_pool_of_a_part_must_be_on_its_cluster(two):
    two["nova"]["cluster"] = "dr"  # vms is a pool of the main cluster only
    two["nova"]["secret"] = "cinder-dr"
    two["cinder"]["backends"]["ceph"]["pool"] = "images2"
    two["clusters"]["dr"]["pools"]["images2"] = {"pg_num": 8}
    assert problems(two) == [
        "ceph_openstack:cinder:backends:ceph:pool: no pool 'images2' in ceph_openstack:pools",
        f"ceph_openstack:nova:pool: no pool 'vms' in {DR}:pools",
    ]


def test_pools_of_another_cluster_are_not_checked_without_its_pools(two):
    del two["clusters"]["dr"]["pools"]
    two["glance"]["stores"]["dr"]["pool"] = "anything"
    assert problems(two) == []


def test_client_of_a_part_must_be_on_its_cluster(two):
    two["cinder"]["backup"]["client"] = "cinder-backup2"
    two["glance"]["stores"]["main"] = {"pool": "images", "client": "glance2"}
    two["clusters"]["dr"]["clients"]["glance2"] = two["clusters"]["dr"]["clients"]["glance"]
    assert problems(two) == [
        f"ceph_openstack:cinder:backup:client: no client 'cinder-backup2' in {DR}:clients",
        "ceph_openstack:glance:stores:main:client: no client 'glance2' in ceph_openstack:clients",
    ]


def test_client_roles_on_another_cluster(two):
    two["clusters"]["dr"]["clients"]["glance"]["roles"] = ["compute"]
    two["clusters"]["dr"]["clients"]["cinder"]["roles"] = ["controller", "storage"]
    assert problems(two) == [
        f"{DR}:clients:cinder:roles: unknown role 'storage' (known: compute, controller, mon; "
        "ceph_openstack:targets can define more)",
        "ceph_openstack:libvirt:secrets:cinder-dr:client: client 'cinder' lacks role "
        f"'compute' in {DR}:clients:cinder:roles, so its key would not reach the compute nodes",
        f"ceph_openstack:glance:stores:dr:client: client 'glance' lacks role 'controller' in "
        f"{DR}:clients:glance:roles, so its key would not reach the controller nodes",
    ]


def test_secret_of_another_cluster(two):
    """A backend's or Nova's secret must hold its client's key on its own cluster: the
    same client name on the other cluster is another key."""
    two["cinder"]["backends"]["ceph-dr"]["secret"] = "cinder"
    two["nova"]["secret"] = "cinder-dr"
    assert problems(two) == [
        "ceph_openstack:cinder:backends:ceph-dr:secret: secret 'cinder' holds the key of "
        "client 'cinder' of cluster 'ceph', not of 'cinder' of cluster 'dr' "
        "(ceph_openstack:cinder:backends:ceph-dr:client)",
        "ceph_openstack:nova:secret: secret 'cinder-dr' holds the key of client 'cinder' of "
        "cluster 'dr', not of 'cinder' of cluster 'ceph' (ceph_openstack:nova:client)",
    ]


def test_secret_of_another_client_on_another_cluster(two):
    two["clusters"]["dr"]["clients"]["nova"] = {"caps": {"mon": "profile rbd"},
                                                "roles": ["compute"]}
    two["nova"].update({"cluster": "dr", "pool": "volumes", "client": "nova",
                        "secret": "cinder-dr"})
    assert problems(two) == [
        "ceph_openstack:nova:secret: secret 'cinder-dr' holds the key of client 'cinder', "
        "not of 'nova' (ceph_openstack:nova:client)"
    ]


def test_one_usage_one_secret_per_cluster(two):
    two["libvirt"]["secrets"]["cinder-dr2"] = {
        "uuid": "0f7e0b9e-2f41-4c5e-9d38-43b1b5e7a0c1", "client": "cinder", "cluster": "dr"}
    assert problems(two) == [
        "ceph_openstack:libvirt:secrets:cinder-dr2:client: same libvirt usage "
        "'dr.client.cinder secret' as secret 'cinder-dr', with another UUID; libvirt keeps "
        "one secret per usage: use one secret in several places"
    ]


def test_one_usage_name_from_two_clusters():
    """Usage names, not (cluster, client) pairs, must differ: main client `client.x` and
    client `x` of a cluster named `client` both give 'client.client.x secret'."""
    pillar = example()
    caps = {"caps": {"mon": "profile rbd"}, "roles": ["compute"]}
    pillar["clients"]["client.x"] = caps
    pillar["clusters"] = {"client": {"targets": {"mon": "L@mon2"}, "clients": {"x": caps}}}
    pillar["libvirt"]["secrets"]["a"] = {"uuid": "0f7e0b9e-2f41-4c5e-9d38-43b1b5e7a0c1",
                                         "client": "client.x"}
    pillar["libvirt"]["secrets"]["b"] = {"uuid": "5a1a2b3c-0d4e-4f50-8a6b-7c8d9e0f1a2b",
                                         "client": "x", "cluster": "client"}
    assert problems(pillar) == [
        "ceph_openstack:libvirt:secrets:b:client: same libvirt usage 'client.client.x secret' "
        "as secret 'a', with another UUID; libvirt keeps one secret per usage: use one secret "
        "in several places"
    ]


def test_one_uuid_for_secrets_of_two_clusters(two):
    two["libvirt"]["secrets"]["cinder-dr"]["uuid"] = two["libvirt"]["secrets"]["cinder"]["uuid"]
    assert problems(two) == [
        "ceph_openstack:libvirt:secrets:cinder-dr:uuid: same UUID as "
        "ceph_openstack:libvirt:secrets:cinder:uuid (which holds the key of client 'cinder' of "
        "cluster 'ceph'); libvirt keeps one secret per UUID: give each secret its own UUID, "
        "or use one secret in several places"
    ]


@pytest.mark.parametrize("name, says", [
    ("ceph", "same name as ceph_openstack:glance:backend (the main store); give this store "
             "a name of its own"),
    ("DEFAULT", "illegal backend name (DEFAULT is a section of its own)"),
    ("glance_store", "illegal backend name (glance_store is a section of its own)"),
    ("dr:rbd", "illegal backend name (whitespace, '[', ']', ':', ',' or '=')"),
])
def test_glance_store_names(two, name, says):
    two["glance"]["stores"][name] = two["glance"]["stores"].pop("dr")
    assert problems(two) == [f"ceph_openstack:glance:stores:{name}: {says}"]


@pytest.mark.parametrize("store, path, says", [
    ({"cluster": "dr", "client": "glance"}, "pool", "required, but missing"),
    ({"cluster": "dr", "pool": "images"}, "client", "required, but missing"),
    ({"pool": "images", "client": "glance", "chunk_size": 0}, "chunk_size", "positive integer"),
    ({"pool": "images", "client": "glance", "options": {"a": "1\n[DEFAULT]"}}, "options:a",
     "must not contain a newline"),
    ({"pool": "images", "client": "glance", "show_image_direct_url": True},
     "show_image_direct_url", "unknown key"),
])
def test_glance_store_shape(two, store, path, says):
    two["glance"]["stores"]["dr"] = store
    found = problems(two)
    assert len(found) == 1 and found[0].startswith(f"ceph_openstack:glance:stores:dr:{path}: ")
    assert says in found[0]


def test_glance_stores_not_a_mapping(two):
    two["glance"]["stores"] = None
    assert problems(two) == [
        "ceph_openstack:glance:stores: must be a mapping, not null (use {} for none)"
    ]


def test_two_clusters_never_show_a_key(two):
    two["clusters"]["dr"]["clients"]["cinder"]["key"] = KEYS[0]
    two["clusters"]["dr"]["clients"]["glance"]["key"] = KEYS[1]
    two["nova"]["client"] = KEYS[0]
    two["glance"]["stores"]["dr"]["client"] = KEYS[1]
    two["libvirt"]["secrets"]["cinder-dr"]["client"] = KEYS[0]
    found = problems(two)
    assert found
    assert not [m for m in found if KEYS[0] in m or KEYS[1] in m], found


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_two_clusters_never_raise_whatever_the_value(two, value):
    assert_odd_values_give_problems(two, value)


@pytest.mark.parametrize("key", [None, 1, True, ("a",), ""], ids=repr)
def test_two_clusters_never_raise_whatever_the_key(two, key):
    assert_odd_keys_give_problems(two, key)
