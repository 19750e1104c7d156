"""
The validator and the formula agree (generative, with hypothesis).

Pillars are built from the documented schema (pillar.example): every optional key
present or absent, empty mappings, one to three Cinder backends, with and without
backup, Glance and Nova (absent, null or given, with or without their optional keys),
grain, minion-ID (``L@``) or nodegroup (``N@``) targets, several clients and libvirt
secrets, lookup overrides; some are then broken in one of the ways a user breaks a
pillar. For each pillar the validator (salt/_utils/ceph_openstack_pillar.py) accepts,
the formula renders through Salt's real loader and state compiler for every role
combination, with the states the pillar asks for. For each it rejects, the formula has
no state but the pillar check, and ``state.apply`` (not a test run) on a masterless
minion fails that check naming the validator's problems and changes nothing.

The example budget is fixed and the examples are derandomized, so a run takes well under
a minute and every run checks the same pillars; ``PILLAR_EXAMPLES=200
PILLAR_SEED=random`` explores further. Failing examples found that way become
``@example`` cases below.
"""

import copy
import os

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.support.formula import (
    ROLE_COMBINATIONS,
    formula_loaders,
    low_chunks,
    low_chunks_per_roles,
)
from tests.support.modules import load

#: Validating and rendering ask nothing of Ceph.
pytestmark = pytest.mark.release_independent

validator = load("salt/_utils/ceph_openstack_pillar.py", "ceph_openstack_pillar_agreement")

EXAMPLES = int(os.environ.get("PILLAR_EXAMPLES", "12"))
RANDOM = os.environ.get("PILLAR_SEED") == "random"
ALL_ROLES = ["mon", "controller", "compute"]

POOLS = ["volumes", "images", "backups", "vms", "fast-ssd"]
CLIENTS = ["cinder", "glance", "cinder-backup", "nova", "backup.2"]
SECRET_UUIDS = [
    "691c3607-7ca3-433a-a0c0-5805cea8afa0",
    "5A1A2B3C-0D4E-4F50-8A6B-7C8D9E0F1A2B",
    "0f7e0b9e-2f41-4c5e-9d38-43b1b5e7a0c1",
]
# Valid cephx keys (base64 of crypto type 1, a stamp, length 16 and 16 bytes); nobody's.
KEYS = ["AQAA8VNlAAAAABAAAAECAwQFBgcICQoLDA0ODw==", "AQAB8VNlAAAAABAAZGVmZ2hpamtsbW5vcHFycw=="]
MINIONS = ["mon1", "ctl1", "ctl2", "cmp1", "cmp2", "hci1"]

scalars = st.one_of(st.sampled_from(["writeback", "network=writeback", "", "a b"]),
                    st.integers(-2, 1 << 27), st.booleans())
option_values = st.one_of(scalars, st.lists(st.sampled_from(["a", "b", "c"]), max_size=2),
                          st.dictionaries(st.sampled_from(["k", "l"]), st.sampled_from(["1", "v"]),
                                          max_size=2))
options = st.dictionaries(
    st.sampled_from(["rbd_max_clone_depth", "rados_connect_timeout", "rbd_store_chunk_size",
                     "disk_cachemodes", "inject_partition", "hw_disk_discard", "debug"]),
    option_values, max_size=3)
conf = st.dictionaries(
    st.sampled_from(["DEFAULT", "libvirt", "ceph", "oslo_messaging_rabbit", "glance_store"]),
    options, max_size=2)
pool_props = st.fixed_dictionaries({}, optional={
    "pg_num": st.sampled_from([8, 32]),
    "size": st.integers(1, 3),
    "min_size": st.just(1),
    "pg_autoscale_mode": st.sampled_from(["on", "off", "warn"]),
    "target_size_ratio": st.sampled_from([0, 0.25, 1]),
    "max_bytes": st.sampled_from([0, 1 << 30]),
    "application": st.just("rbd"),
    "init": st.booleans(),
})


def target(role):
    """A compound target for ``role``: the grain, a minion-ID list or a nodegroup."""
    return st.one_of(
        st.just(f"G@role:{role}"),
        st.lists(st.sampled_from(MINIONS), min_size=1, max_size=3, unique=True).map(
            lambda ids: "L@" + ",".join(ids)),
        st.just(f"N@{role}s"),
    )


ABSENT = object()


def maybe(draw, pillar, key, strategy):
    """Draw ``strategy`` into ``pillar[key]``, or leave the key out."""
    value = draw(st.one_of(st.just(ABSENT), strategy))
    if value is not ABSENT:
        pillar[key] = value
    return value


@st.composite
def valid_pillars(draw):
    """A ceph_openstack pillar that follows pillar.example's documentation."""
    pillar = {}
    maybe(draw, pillar, "cluster", st.sampled_from(["ceph", "openstack"]))
    if draw(st.booleans()):
        pillar["fsid"] = "675c94fe-ac46-484e-bd88-2f7fc8d601a7"
        pillar["mon_host"] = "[v2:192.0.2.145:3300,v1:192.0.2.145:6789]"
    maybe(draw, pillar, "hosts", st.dictionaries(
        st.sampled_from(["ceph-node1", "controller1", "compute1.example.org"]),
        st.sampled_from(["192.0.2.145", "2001:db8::131"]), max_size=2))
    maybe(draw, pillar, "repo", st.fixed_dictionaries({}, optional={
        "manage": st.booleans(), "release": st.sampled_from(["reef", "squid"])}))
    maybe(draw, pillar, "packages", st.fixed_dictionaries({}, optional={"manage": st.booleans()}))
    targets = maybe(draw, pillar, "targets", st.fixed_dictionaries({}, optional={
        **{role: target(role) for role in ALL_ROLES},
        "images": target("controller"),
        "storage": st.just("N@storage"),
    }))
    roles = ALL_ROLES + [role for role in ("images", "storage")
                         if targets is not ABSENT and role in targets]
    pools = maybe(draw, pillar, "pools", st.dictionaries(st.sampled_from(POOLS), pool_props,
                                                         max_size=4))
    # Without `pools` the pools are managed elsewhere and any name will do; `pools: {}`
    # defines none, so no part can name one: those parts are left out.
    pool_ref = None if pools == {} else st.sampled_from(POOLS if pools is ABSENT else sorted(pools))

    # Which client each part uses decides the roles clients need; secrets follow.
    need = {}  # client -> roles it needs
    secret_of = {}  # client -> libvirt secret name

    def uses(client, role):
        need.setdefault(client, set()).add(role)

    def secret_for(client):
        if client not in secret_of:
            secret_of[client] = draw(st.sampled_from([client, f"{client}-rbd"]))
        uses(client, "compute")
        return secret_of[client]

    cinder = draw(st.sampled_from(["given", "given", "absent"]))
    if cinder == "given":
        cinder = pillar["cinder"] = {}
        backends = draw(st.sampled_from(["several", "one", "empty", "absent"]))
        if pool_ref is not None and backends in ("several", "one"):
            cinder["backends"] = {}
            names = ["ceph", "ceph-ssd", "rbd2"]
            for name in (draw(st.lists(st.sampled_from(names), min_size=2, max_size=3,
                                       unique=True))
                         if backends == "several" else [draw(st.sampled_from(names))]):
                client = draw(st.sampled_from(CLIENTS))
                uses(client, "controller")
                backend = {"pool": draw(pool_ref), "client": client}
                if draw(st.booleans()):
                    backend["secret"] = secret_for(client)
                maybe(draw, backend, "options", options)
                cinder["backends"][name] = backend
        elif backends == "empty":
            cinder["backends"] = {}
        backup = draw(st.sampled_from(["given", "absent", "null"]))
        if backup == "null":
            cinder["backup"] = None
        elif backup == "given" and pool_ref is not None:
            client = draw(st.sampled_from(CLIENTS))
            uses(client, "controller")
            cinder["backup"] = {"pool": draw(pool_ref), "client": client}
            maybe(draw, cinder["backup"], "options", options)
        maybe(draw, cinder, "conf", conf)

    glance = draw(st.sampled_from(["given", "given", "absent", "null"]))
    if glance == "null":
        pillar["glance"] = None
    elif glance == "given" and pool_ref is not None:
        client = draw(st.sampled_from(CLIENTS))
        uses(client, "controller")
        pillar["glance"] = {"backend": draw(st.sampled_from(["ceph", "rbd-images"])),
                            "pool": draw(pool_ref), "client": client}
        maybe(draw, pillar["glance"], "chunk_size", st.sampled_from([4, 8]))
        maybe(draw, pillar["glance"], "show_image_direct_url", st.booleans())
        maybe(draw, pillar["glance"], "options", options)
        maybe(draw, pillar["glance"], "conf", conf)

    nova = draw(st.sampled_from(["given", "given", "absent", "null"]))
    if nova == "null":
        pillar["nova"] = None
    elif nova == "given" and pool_ref is not None:
        client = draw(st.sampled_from(CLIENTS))
        pillar["nova"] = {"pool": draw(pool_ref), "client": client, "secret": secret_for(client)}
        maybe(draw, pillar["nova"], "options", options)
        maybe(draw, pillar["nova"], "conf", conf)

    # More clients and secrets than the parts use.
    for client in draw(st.lists(st.sampled_from(CLIENTS), max_size=2, unique=True)):
        need.setdefault(client, set())
        if draw(st.booleans()):
            secret_for(client)
    if need or draw(st.booleans()):
        pillar["clients"] = {}
    for index, (client, needed) in enumerate(sorted(need.items())):
        extra = draw(st.lists(st.sampled_from(roles), max_size=2, unique=True))
        spec = {
            "caps": draw(st.sampled_from([
                {"mon": "profile rbd", "osd": "profile rbd pool=volumes"},
                {"mon": "profile rbd", "osd": "profile rbd pool=images",
                 "mgr": "profile rbd pool=images"},
                {"mon": "allow r", "osd": "allow class-read object_prefix rbd_children, "
                                          "allow rwx pool=volumes"},
            ])),
            "roles": sorted(needed | set(extra)) or ["controller"],
        }
        if draw(st.booleans()):
            spec["key"] = KEYS[index % len(KEYS)]
        pillar["clients"][client] = spec
    if secret_of or draw(st.booleans()):
        secrets = {}
        uuids = draw(st.permutations(SECRET_UUIDS))
        for (client, name), uuid in zip(sorted(secret_of.items()), uuids):
            secrets[name] = {"uuid": uuid}
            if name != client or draw(st.booleans()):
                secrets[name]["client"] = client
        pillar["libvirt"] = {"secrets": secrets} if secrets or draw(st.booleans()) else {}

    images = maybe(draw, pillar, "images", st.fixed_dictionaries({}, optional={
        "visibility": st.sampled_from(["public", "private", "shared", "community"]),
        "properties": st.dictionaries(st.sampled_from(["hw_disk_bus", "os_require_quiesce"]),
                                      st.sampled_from(["scsi", "yes"]), max_size=2),
        "work_dir": st.just("/var/tmp/images"),
    }))
    if images is not ABSENT and draw(st.booleans()):
        images["cloud"] = "openstack"
        images["upload"] = draw(st.dictionaries(
            st.sampled_from(["cirros-0.6.2", "debian-12"]),
            st.fixed_dictionaries({"source": st.just("https://images.example/disk.img")},
                                  optional={"format": st.sampled_from(["qcow2", "raw"]),
                                            "min_disk": st.integers(0, 2),
                                            "visibility": st.just("private")}),
            max_size=2))
    maybe(draw, pillar, "compute_client", options)
    maybe(draw, pillar, "services", st.fixed_dictionaries({}, optional={
        "restart": st.booleans()}))
    maybe(draw, pillar, "rollout", st.fixed_dictionaries({}, optional={
        "compute_batch": st.integers(1, 20)}))
    maybe(draw, pillar, "lookup", st.fixed_dictionaries({}, optional={
        "root": st.sampled_from(["", "/srv/roots/node1"]),
        "libvirt_uri": st.sampled_from([None, "qemu:///system"]),
        "owners": st.just({"cinder": "nobody", "qemu": "nobody"}),
        "pkgs": st.just({"compute": ["ceph-common"], "controller": []}),
    }))
    return pillar


def _first(mapping):
    return next(iter(mapping)) if isinstance(mapping, dict) and mapping else None


def break_pillar(pillar, how):
    """``pillar`` broken as a user breaks one (a copy); None when ``how`` does not apply."""
    broken = copy.deepcopy(pillar)
    secrets = broken.get("libvirt", {}).get("secrets", {})
    backends = broken.get("cinder", {}).get("backends", {})
    if how == "unknown key":
        broken["pool"] = {"volumes": {}}
    elif how == "wrong type":
        broken["services"] = {"restart": "yes"}
    elif how == "null mapping":
        broken["hosts"] = None
    elif how == "duplicate secret UUID" and secrets:
        name = _first(secrets)
        broken["libvirt"]["secrets"][f"{name}-again"] = dict(secrets[name])
    elif how == "undefined pool" and broken.get("pools") and backends:
        backends[_first(backends)]["pool"] = "no-such-pool"
    elif how == "undefined client" and broken.get("nova"):
        broken["nova"]["client"] = "no-such-client"
    elif how == "missing required key" and broken.get("glance"):
        del broken["glance"]["backend"]
    elif how == "client without the role" and broken.get("glance"):
        broken["clients"][broken["glance"]["client"]]["roles"] = ["compute"]
    elif how == "bad lookup":
        broken["lookup"] = {"pkgs": {"compute": "ceph-common"}}
    else:
        return None
    return broken


BREAKS = [None, None, None, "unknown key", "wrong type", "null mapping", "duplicate secret UUID",
          "undefined pool", "undefined client", "missing required key",
          "client without the role", "bad lookup"]


@st.composite
def pillars(draw):
    """A documented pillar, or now and then one broken in one way."""
    pillar = draw(valid_pillars())
    how = draw(st.sampled_from(BREAKS))
    broken = break_pillar(pillar, how) if how else None
    return broken if broken is not None else pillar


@pytest.fixture(scope="module")
def formula(minion_opts, lab_dir):
    """Salt's loaders for a masterless minion whose own pillar is empty."""
    loaders = formula_loaders(minion_opts, lab_dir / "functional" / "agreement-pillar")
    yield loaders
    loaders.reset_state()


def expected_ids(pillar, roles):
    """States each role must get from ``pillar`` (the formula used it, not the defaults)."""
    ids = {"ceph_openstack-pillar"}
    if "mon" in roles:
        ids |= {f"ceph_openstack-pool-{pool}" for pool in pillar.get("pools", {})}
        ids |= {f"ceph_openstack-client-{client}" for client in pillar.get("clients", {})}
        ids.add("ceph_openstack-published")
    if "controller" in roles and pillar.get("glance"):
        ids.add("ceph_openstack-glance-conf")
    if "compute" in roles:
        ids |= {f"ceph_openstack-libvirt-secret-{name}"
                for name in pillar.get("libvirt", {}).get("secrets", {})}
        if pillar.get("nova"):
            ids.add("ceph_openstack-nova-conf")
    return ids


def check_accepted(formula, pillar):
    rendered = low_chunks_per_roles(formula, {"ceph_openstack": pillar})
    for roles in ROLE_COMBINATIONS:
        chunks = rendered[tuple(roles)]
        assert all(isinstance(chunk, dict) for chunk in chunks), (roles, chunks)
        ids = {chunk["__id__"] for chunk in chunks}
        assert expected_ids(pillar, roles) <= ids, (roles, sorted(ids))


def check_rejected(formula, pillar, found):
    override = {"ceph_openstack": pillar}
    # Nothing to run but the check, even without failhard: safe to apply for real below.
    chunks = low_chunks(formula, ALL_ROLES, pillar=override)
    assert [chunk["__id__"] for chunk in chunks] == ["ceph_openstack-pillar"]
    ret = formula.modules.state.apply("ceph_openstack", pillar=override, test=False).raw
    assert isinstance(ret, dict), ret
    (state,) = ret.values()
    assert state["result"] is False
    assert state["comment"] == "invalid pillar: " + "; ".join(found)
    assert state["changes"] == {}


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pillar=pillars())
# The report: glance and nova without their optional conf crashed the renderer.
@example(pillar={"clients": {"glance": {"caps": {"mon": "profile rbd"}, "roles": ["controller"]},
                             "cinder": {"caps": {"mon": "profile rbd"}, "roles": ["compute"]}},
                 "libvirt": {"secrets": {"cinder": {"uuid": SECRET_UUIDS[0]}}},
                 "glance": {"backend": "ceph", "pool": "images", "client": "glance"},
                 "nova": {"pool": "vms", "client": "cinder", "secret": "cinder"}})
# Two secrets with one UUID for the same client (accepted before; libvirt keeps one).
@example(pillar={"clients": {"cinder": {"caps": {"mon": "profile rbd"}, "roles": ["compute"]}},
                 "libvirt": {"secrets": {"cinder": {"uuid": SECRET_UUIDS[0]},
                                         "again": {"uuid": SECRET_UUIDS[0], "client": "cinder"}}}})
# A lookup the renderer could not use (accepted before, then a Jinja error).
@example(pillar={"lookup": {"pkgs": 3}})
def test_validator_and_formula_agree(formula, pillar):
    found = validator.problems(copy.deepcopy(pillar))
    event("rejected" if found else "accepted")
    if found:
        check_rejected(formula, pillar, found)
    else:
        check_accepted(formula, pillar)


def test_the_generated_pillars_are_of_all_kinds():
    """The strategy is not stuck in a corner: among as many pillars as a dozen runs of the
    test above draw, there are accepted ones with every part in play and rejected ones."""
    batch = []

    @settings(max_examples=150, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(pillars())
    def draw(pillar):
        batch.append(pillar)

    draw()
    accepted = [pillar for pillar in batch if not validator.problems(copy.deepcopy(pillar))]
    assert len(batch) > len(accepted) > len(batch) / 2
    assert any(p.get("glance") and p.get("nova") and p.get("libvirt") for p in accepted)
    assert any(len(p.get("cinder", {}).get("backends", {})) > 1 and p["cinder"].get("backup")
               for p in accepted)
    for kind in ("G@", "L@", "N@"):
        assert any(target.startswith(kind) for p in accepted
                   for target in p.get("targets", {}).values()), kind
    assert any(len(p.get("clients", {})) > 2 and len(p.get("libvirt", {}).get("secrets", {})) > 1
               for p in accepted)
