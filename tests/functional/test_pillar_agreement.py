"""
The validator and the formula agree (generative, with hypothesis).

Pillars are built from the documented schema (pillar.example): every optional key
present or absent, empty mappings, one to three Cinder backends, with and without
backup, Glance and Nova (absent, null or given, with or without their optional keys),
grain, minion-ID (``L@``) or nodegroup (``N@``) targets, several clients and libvirt
secrets, clients and secrets being withdrawn (``absent: true``), lookup overrides; and,
often, other Ceph clusters (``clusters``: none, one or two, each with its own mons, pools
and clients), the parts (libvirt secrets, Cinder
backends, the backup, Glance, Glance's other ``stores``, Nova) on one cluster or another
by their ``cluster`` key. Some are then broken in one of the ways a user breaks a pillar,
several clusters' ways too (an unknown cluster, a pool or client another cluster has but
the named one has not, two secrets with one libvirt usage name, an other cluster named as
the main one or without a mon target), or a part using a client marked absent. For each pillar the validator
(salt/_utils/ceph_openstack_pillar.py) accepts, the formula renders through Salt's real
loader and state compiler for every role combination, with the states the pillar asks for
(a mon's, of each cluster whose ``targets:mon`` names it; each keyring and each cluster's
conf a node reads), each part on the cluster it names. For each it rejects, the formula has
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
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.support.formula import (
    ROLE_COMBINATIONS,
    formula_loaders,
    low_chunks,
    low_chunks_per_roles,
)
from tests.conftest import ROOT
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
#: The functional minion's ID (tests/conftest.py): an ``L@`` target that lists it names the
#: node rendered, so that a mon serves some clusters and not others.
THIS_MINION = "functional"
MINIONS = ["mon1", "ctl1", "ctl2", "cmp1", "cmp2", "hci1", THIS_MINION]
#: Other clusters' names ('ceph' is another one only when the main one is named otherwise).
OTHER_CLUSTERS = ["dr", "ceph", "site_2"]
OTHER_FSID = "0d5b1c0e-6a43-4c6e-8f5e-2b9a7d3e4f10"
#: Glance's other stores (the main store is `ceph` or `rbd-images`).
STORES = ["dr", "rbd2", "slow"]
# One secret per cluster and client: beyond the first three, these (canonical, distinct).
MORE_UUIDS = [f"{index:08x}-7ca3-433a-a0c0-5805cea8afa0" for index in range(1, 13)]
TWIN_UUIDS = ["a1b2c3d4-0000-4000-8000-00000000000a", "a1b2c3d4-0000-4000-8000-00000000000b"]
#: The secrets of clients being withdrawn (marked absent, their UUID kept).
GONE_UUIDS = [f"{index:08x}-0b0b-4c0c-8d0d-0e0f10111213" for index in range(1, 4)]

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
#: True one time in four.
NOW_AND_THEN = st.sampled_from([False, False, False, True])


def maybe(draw, pillar, key, strategy):
    """Draw ``strategy`` into ``pillar[key]``, or leave the key out."""
    value = draw(st.one_of(st.just(ABSENT), strategy))
    if value is not ABSENT:
        pillar[key] = value
    return value


@st.composite
def valid_pillars(draw):
    """A ceph_openstack pillar that follows pillar.example's documentation (and
    pillar/two_clusters.sls's for other clusters)."""
    pillar = {}
    main = maybe(draw, pillar, "cluster", st.sampled_from(["ceph", "openstack"]))
    main = "ceph" if main is ABSENT else main
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
    maybe(draw, pillar, "pools", st.dictionaries(st.sampled_from(POOLS), pool_props, max_size=4))

    # Other clusters, now and then (`clusters: {}` alone too): their own mons, facts and
    # pools here; their clients below, once the parts on them are known.
    count = draw(st.sampled_from([0, 0, 1, 1, 2]))
    others = draw(st.lists(st.sampled_from([name for name in OTHER_CLUSTERS if name != main]),
                           min_size=count, max_size=count, unique=True))
    if others or draw(NOW_AND_THEN):
        pillar["clusters"] = {}
    for name in others:
        other = pillar["clusters"][name] = {"targets": {"mon": draw(target("mon"))}}
        if draw(st.booleans()):
            other["fsid"] = OTHER_FSID
            other["mon_host"] = "192.0.2.146"
        maybe(draw, other, "pools", st.dictionaries(st.sampled_from(POOLS), pool_props,
                                                    max_size=3))
    # Each cluster by name, the main one first: the record holding its pools and clients.
    on = {main: pillar, **pillar.get("clusters", {})}

    def pool_ref(name):
        # Without `pools` the pools are managed elsewhere and any name will do; `pools: {}`
        # defines none, so no part can name one there.
        pools = on[name].get("pools", ABSENT)
        return None if pools == {} else st.sampled_from(POOLS if pools is ABSENT
                                                        else sorted(pools))

    placeable = [name for name in on if pool_ref(name) is not None]
    # Parts go to another cluster more often than to the main one (when there is one).
    placeable += placeable[1:] if placeable[:1] == [main] else []

    # Which client of which cluster each part uses decides the roles clients need; secrets
    # follow (one per cluster and client).
    need = {}  # (cluster, client) -> roles it needs
    secret_of = {}  # (cluster, client) -> libvirt secret name

    def uses(cluster, client, role):
        need.setdefault((cluster, client), set()).add(role)

    def secret_for(cluster, client):
        if (cluster, client) not in secret_of:
            # Named after the client (its default client) once, on whichever cluster.
            forms = ([client, f"{client}-rbd"] if cluster == main
                     else [f"{client}.{cluster}", f"{cluster}-{client}", client])
            taken = set(secret_of.values())
            secret_of[cluster, client] = draw(st.sampled_from(
                [name for name in forms if name not in taken]))
        uses(cluster, client, "compute")
        return secret_of[cluster, client]

    def service(role):
        """A part on one of the clusters (parts are left out when there is none): its
        `cluster` (none for the main one, its default, but now and then given all the
        same), a pool and a client of that cluster; and that cluster's name."""
        cluster = draw(st.sampled_from(placeable))
        part = {"cluster": cluster} if cluster != main or draw(NOW_AND_THEN) else {}
        client = draw(st.sampled_from(CLIENTS))
        uses(cluster, client, role)
        part.update(pool=draw(pool_ref(cluster)), client=client)
        return cluster, part

    cinder = draw(st.sampled_from(["given", "given", "absent"]))
    if cinder == "given":
        cinder = pillar["cinder"] = {}
        backends = draw(st.sampled_from(["several", "one", "empty", "absent"]))
        if placeable and backends in ("several", "one"):
            cinder["backends"] = {}
            names = ["ceph", "ceph-ssd", "rbd2"]
            for name in (draw(st.lists(st.sampled_from(names), min_size=2, max_size=3,
                                       unique=True))
                         if backends == "several" else [draw(st.sampled_from(names))]):
                cluster, backend = service("controller")
                if draw(st.booleans()):
                    backend["secret"] = secret_for(cluster, backend["client"])
                maybe(draw, backend, "options", options)
                cinder["backends"][name] = backend
        elif backends == "empty":
            cinder["backends"] = {}
        backup = draw(st.sampled_from(["given", "given", "absent", "null"]))
        if backup == "null":
            cinder["backup"] = None
        elif backup == "given" and placeable:
            _, cinder["backup"] = service("controller")
            maybe(draw, cinder["backup"], "options", options)
        maybe(draw, cinder, "conf", conf)

    glance = draw(st.sampled_from(["given", "given", "absent", "null"]))
    if glance == "null":
        pillar["glance"] = None
    elif glance == "given" and placeable:
        glance = pillar["glance"] = {"backend": draw(st.sampled_from(["ceph", "rbd-images"]))}
        glance.update(service("controller")[1])
        maybe(draw, glance, "chunk_size", st.sampled_from([4, 8]))
        maybe(draw, glance, "show_image_direct_url", st.booleans())
        maybe(draw, glance, "options", options)
        maybe(draw, glance, "conf", conf)
        stores = draw(st.sampled_from(["some", "some", "empty", "absent"]))
        if stores != "absent":
            glance["stores"] = {}
            for name in (draw(st.lists(st.sampled_from(STORES), min_size=1, max_size=2,
                                       unique=True)) if stores == "some" else []):
                store = glance["stores"][name] = service("controller")[1]
                maybe(draw, store, "chunk_size", st.sampled_from([4, 16]))
                maybe(draw, store, "options", options)

    nova = draw(st.sampled_from(["given", "given", "absent", "null"]))
    if nova == "null":
        pillar["nova"] = None
    elif nova == "given" and placeable:
        cluster, pillar["nova"] = service("compute")
        pillar["nova"]["secret"] = secret_for(cluster, pillar["nova"]["client"])
        maybe(draw, pillar["nova"], "options", options)
        maybe(draw, pillar["nova"], "conf", conf)

    # More clients and secrets than the parts use.
    for name in on:
        for client in draw(st.lists(st.sampled_from(CLIENTS), max_size=2 if name == main else 1,
                                    unique=True)):
            need.setdefault((name, client), set())
            if draw(st.booleans()):
                secret_for(name, client)
    index = 0
    for name, record in on.items():
        clients = sorted(client for cluster, client in need if cluster == name)
        if clients or draw(st.booleans()):
            record["clients"] = {}
        for client in clients:
            extra = draw(st.lists(st.sampled_from(roles), max_size=2, unique=True))
            spec = {
                "caps": draw(st.sampled_from([
                    {"mon": "profile rbd", "osd": "profile rbd pool=volumes"},
                    {"mon": "profile rbd", "osd": "profile rbd pool=images",
                     "mgr": "profile rbd pool=images"},
                    {"mon": "allow r", "osd": "allow class-read object_prefix rbd_children, "
                                              "allow rwx pool=volumes"},
                ])),
                "roles": sorted(need[name, client] | set(extra)) or ["controller"],
            }
            if draw(st.booleans()):
                spec["key"] = KEYS[index % len(KEYS)]
            index += 1
            record["clients"][client] = spec
    # Now and then a client being withdrawn (`absent: true`, its caps and roles kept or
    # not) on a cluster, none of whose parts use it; its secret, if it had one, marked
    # absent too.
    gone = {}  # secret name -> its record
    for name, record in on.items():
        free = [client for client in CLIENTS if (name, client) not in need]
        if not free or not draw(NOW_AND_THEN):
            continue
        client = draw(st.sampled_from(free))
        spec = {"absent": True}
        if draw(st.booleans()):
            spec.update(caps={"mon": "profile rbd"}, roles=["compute"])
        record.setdefault("clients", {})[client] = spec
        if draw(st.booleans()):
            secret = gone[f"gone-{client}-{name}"] = {
                "uuid": GONE_UUIDS[len(gone)], "client": client, "absent": True}
            if name != main:
                secret["cluster"] = name
    if secret_of or draw(st.booleans()):
        secrets = {}
        uuids = draw(st.permutations(SECRET_UUIDS)) + MORE_UUIDS
        for ((cluster, client), name), uuid in zip(sorted(secret_of.items()), uuids):
            secret = secrets[name] = {"uuid": uuid}
            if name != client or draw(st.booleans()):
                secret["client"] = client
            if cluster != main or draw(NOW_AND_THEN):
                secret["cluster"] = cluster
        pillar["libvirt"] = {"secrets": secrets} if secrets or draw(st.booleans()) else {}
    if gone:
        pillar.setdefault("libvirt", {}).setdefault("secrets", {}).update(gone)

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
        "compute_batch": st.integers(1, 20),
        "timeout": st.integers(1, 600),
        "gather_job_timeout": st.integers(1, 300)}))
    maybe(draw, pillar, "lookup", st.fixed_dictionaries({}, optional={
        "root": st.sampled_from(["", "/srv/roots/node1"]),
        "libvirt_uri": st.sampled_from([None, "qemu:///system"]),
        "owners": st.just({"cinder": "nobody", "qemu": "nobody"}),
        "pkgs": st.just({"compute": ["ceph-common"], "controller": []}),
    }))
    return pillar


def _first(mapping):
    return next(iter(mapping)) if isinstance(mapping, dict) and mapping else None


def _main(pillar):
    return pillar.get("cluster", "ceph")


def _clusters(pillar):
    """{name: the record with its pools and clients}, the main cluster first."""
    return {_main(pillar): pillar, **(pillar.get("clusters") or {})}


def _parts(pillar):
    """{kind: [part, ...]} of the parts that name a cluster (each a mapping of ``pillar``)."""
    cinder = pillar.get("cinder") or {}
    glance = pillar.get("glance") or {}
    return {
        "secret": list(((pillar.get("libvirt") or {}).get("secrets") or {}).values()),
        "backend": list((cinder.get("backends") or {}).values()),
        "backup": [cinder["backup"]] if cinder.get("backup") else [],
        "glance": [glance] if glance else [],
        "store": list((glance.get("stores") or {}).values()),
        "nova": [pillar["nova"]] if pillar.get("nova") else [],
    }


def _on_other_clusters(pillar):
    """The kinds of part that ``pillar`` puts on a cluster other than the main one."""
    return {kind for kind, parts in _parts(pillar).items()
            if any(part.get("cluster", _main(pillar)) != _main(pillar) for part in parts)}


def _elsewhere(pillar, cluster, key):
    """Pool or client names (``key``: pools or clients) ``cluster`` has not: first those
    other clusters have, then the others; none when ``cluster`` does not list its own (any
    name will do)."""
    clusters = _clusters(pillar)
    own = clusters.get(cluster, {}).get(key)
    if not isinstance(own, dict):
        return []
    others = sorted({name for other, record in clusters.items() if other != cluster
                     for name in record.get(key) or {}} - set(own))
    return others + sorted(set(POOLS if key == "pools" else CLIENTS) - set(own) - set(others))


def break_pillar(pillar, how, pick=0):
    """``pillar`` broken as a user breaks one (a copy); None when ``how`` does not apply.
    ``pick`` chooses the part broken where there are several."""
    broken = copy.deepcopy(pillar)
    main = _main(broken)
    secrets = broken.get("libvirt", {}).get("secrets", {})
    backends = broken.get("cinder", {}).get("backends", {})
    parts = [part for kind in sorted(_parts(broken)) for part in _parts(broken)[kind]]
    others = broken.get("clusters") or {}
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
        glance = broken["glance"]
        clients = _clusters(broken)[glance.get("cluster", main)]["clients"]
        clients[glance["client"]]["roles"] = ["compute"]
    elif how == "bad lookup":
        broken["lookup"] = {"pkgs": {"compute": "ceph-common"}}
    elif how == "part uses an absent client":
        using = [part for kind, found in sorted(_parts(broken).items()) if kind != "secret"
                 for part in found if isinstance(part.get("client"), str)]
        if not using:
            return None
        part = using[pick % len(using)]
        _clusters(broken)[part.get("cluster", main)]["clients"][part["client"]] = {
            "absent": True}
    # Several clusters.
    elif how == "unknown cluster" and parts:
        parts[pick % len(parts)]["cluster"] = "no-such-cluster"
    elif how in ("pool of another cluster", "client of another cluster"):
        key = "pools" if how.startswith("pool") else "clients"
        field = key[:-1]
        candidates = [(part, name) for part in parts if field in part or key == "clients"
                      for name in _elsewhere(broken, part.get("cluster", main), key)[:1]]
        if not candidates:
            return None
        part, name = candidates[pick % len(candidates)]
        part[field] = name
    elif how == "cluster named as the main one" and others:
        others[main] = copy.deepcopy(others[_first(others)])
    elif how == "cluster without a mon target" and others:
        others[sorted(others)[pick % len(others)]]["targets"] = {}
    elif how == "two secrets with one usage" and secrets:
        name = sorted(secrets)[pick % len(secrets)]
        twin = secrets[f"{name}-twin"] = dict(secrets[name], uuid=TWIN_UUIDS[0])
        twin.setdefault("client", name)
    elif how == "one usage on two clusters":
        # 'client.client.cinder secret': client cinder of cluster `client`, and client
        # client.cinder of the main one.
        compute = {"caps": {"mon": "profile rbd"}, "roles": ["compute"]}
        broken.setdefault("clusters", {})["client"] = {
            "targets": {"mon": "G@role:mon"}, "clients": {"cinder": dict(compute)}}
        broken.setdefault("clients", {})["client.cinder"] = dict(compute)
        secrets = broken.setdefault("libvirt", {}).setdefault("secrets", {})
        secrets["cinder-of-client"] = {"uuid": TWIN_UUIDS[0], "client": "cinder",
                                       "cluster": "client"}
        secrets["client.cinder"] = {"uuid": TWIN_UUIDS[1]}
    else:
        return None
    return broken


SEVERAL_CLUSTERS_BREAKS = [
    "unknown cluster", "pool of another cluster", "client of another cluster",
    "cluster named as the main one", "cluster without a mon target",
    "two secrets with one usage", "one usage on two clusters"]
BREAKS = [None] * 4 + [
    "unknown key", "wrong type", "null mapping", "duplicate secret UUID", "undefined pool",
    "undefined client", "missing required key", "client without the role",
    "bad lookup", "part uses an absent client"] + SEVERAL_CLUSTERS_BREAKS


#: What the validator says of each break (a part of one of its problems).
BROKEN_BECAUSE = {
    "unknown key": "ceph_openstack:pool: unknown key",
    "wrong type": "services:restart: must be true or false",
    "null mapping": "ceph_openstack:hosts: must be a mapping",
    "duplicate secret UUID": "same UUID as",
    "undefined pool": "no pool 'no-such-pool'",
    "undefined client": "no client 'no-such-client'",
    "missing required key": "glance:backend: required, but missing",
    "client without the role": "lacks role 'controller'",
    "bad lookup": "lookup:pkgs:compute: must be a list",
    "part uses an absent client": "which is marked absent",
    "unknown cluster": ":cluster: no cluster 'no-such-cluster'",
    "pool of another cluster": ":pool: no pool",
    "client of another cluster": ":client: no client",
    "cluster named as the main one": "the main cluster's name",
    "cluster without a mon target": ":targets:mon: required, but missing",
    "two secrets with one usage": "libvirt keeps one secret per usage",
    "one usage on two clusters": "same libvirt usage 'client.client.cinder secret'",
}


@st.composite
def pillars(draw):
    """A documented pillar, or now and then one broken in one way."""
    pillar = draw(valid_pillars())
    how = draw(st.sampled_from(BREAKS))
    broken = break_pillar(pillar, how, draw(st.integers(0, 5))) if how else None
    return broken if broken is not None else pillar


@pytest.fixture(scope="module")
def formula(minion_opts, lab_dir):
    """Salt's loaders for a masterless minion whose own pillar is empty."""
    loaders = formula_loaders(minion_opts, lab_dir / "functional" / "agreement-pillar")
    yield loaders
    loaders.reset_state()


def names_node(target, roles, minion):
    """Whether the compound ``target`` names the node ``minion`` with grain ``role`` =
    ``roles`` and no other grain the targets use; no nodegroups are configured on a minion,
    so ``N@`` names none. Terms joined with and, or, not: evaluated as Salt does, as
    Python."""
    def term(word):
        engine, _, value = word.partition("@")
        if engine == "G":
            grain, _, wanted = value.partition(":")
            return grain == "role" and wanted in roles
        return engine == "L" and minion in value.split(",")

    return eval(" ".join(word if word in ("and", "or", "not", "(", ")") else str(term(word))
                         for word in target.split()))


def expected_ids(pillar, roles, minion):
    """States each role must get from ``pillar`` (the formula used it, not the defaults)."""
    ids = {"ceph_openstack-pillar"}
    main = _main(pillar)
    clusters = _clusters(pillar)

    def suffix(cluster):
        return "" if cluster == main else f"@{cluster}"

    if "mon" in roles:
        # Each cluster whose mons this node is; with no other cluster, the main one.
        served = [name for name, record in clusters.items() if len(clusters) == 1 or names_node(
            record.get("targets", {}).get("mon", "G@role:mon"), roles, minion)]
        for name in served:
            ids |= {f"ceph_openstack-pool-{pool}{suffix(name)}"
                    for pool in clusters[name].get("pools", {})}
            ids |= {f"ceph_openstack-client-{client}{suffix(name)}"
                    for client, spec in clusters[name].get("clients", {}).items()
                    if not spec.get("absent")}
            ids.add(f"ceph_openstack-published{suffix(name)}")
        if not served:
            ids.add("ceph_openstack-mon-cluster")
    # The keyrings this node reads, of every cluster, and the conf of each cluster it holds
    # one of (the main one's always); every OpenStack node removes the keyrings of the
    # clients marked absent.
    readers = {"controller", "compute"} & set(roles)
    for name, record in clusters.items():
        clients = record.get("clients", {})
        held = {client for client, spec in clients.items()
                if not spec.get("absent") and readers & set(spec["roles"])}
        ids |= {f"ceph_openstack-keyring-{client}{suffix(name)}" for client in held}
        if readers:
            ids |= {f"ceph_openstack-keyring-absent-{client}{suffix(name)}"
                    for client, spec in clients.items() if spec.get("absent")}
        if held or (readers and name == main):
            ids.add(f"ceph_openstack-ceph-conf{suffix(name)}")
    if "controller" in roles:
        cinder = pillar.get("cinder") or {}
        if cinder.get("backends") or cinder.get("backup") or cinder.get("conf"):
            ids.add("ceph_openstack-cinder-conf")
        if pillar.get("glance"):
            ids.add("ceph_openstack-glance-conf")
    if "compute" in roles:
        ids |= {f"ceph_openstack-libvirt-secret-{name}"
                for name in pillar.get("libvirt", {}).get("secrets", {})}
        if pillar.get("nova"):
            ids.add("ceph_openstack-nova-conf")
    return ids


def check_cluster_of_each_part(pillar, chunks):
    """Each part is rendered on the cluster it names: its secret's ``ceph_cluster``, the
    conf file of Cinder's backends and backup, of Glance's stores and of Nova."""
    main = _main(pillar)
    by_id = {chunk["__id__"]: chunk for chunk in chunks}

    def conf(part):
        return f"/etc/ceph/{part.get('cluster', main)}.conf"

    secrets = pillar.get("libvirt", {}).get("secrets", {})
    for name, secret in secrets.items():
        chunk = by_id.get(f"ceph_openstack-libvirt-secret-{name}")
        if chunk and secret.get("absent"):
            # Undefined by its UUID, whatever its cluster.
            assert (chunk["state"], chunk["fun"]) == ("ceph_openstack", "libvirt_secret_absent")
            assert chunk["name"] == secret["uuid"], name
        elif chunk:
            cluster = secret.get("cluster", main)
            assert by_id[f"ceph_openstack-libvirt-secret-{name}"].get("ceph_cluster") == (
                None if cluster == main else cluster), name
    for name, record in _clusters(pillar).items():
        for client, spec in record.get("clients", {}).items():
            chunk = by_id.get(f"ceph_openstack-keyring-absent-{client}"
                              + ("" if name == main else f"@{name}"))
            if chunk and spec.get("absent"):
                assert chunk["name"].endswith(f"/etc/ceph/{name}.client.{client}.keyring")
    if "ceph_openstack-cinder-conf" in by_id:
        sections = by_id["ceph_openstack-cinder-conf"]["sections"]
        cinder = pillar["cinder"]
        for name, backend in (cinder.get("backends") or {}).items():
            assert sections[name]["rbd_ceph_conf"] == conf(backend), name
            if backend.get("secret"):
                assert sections[name]["rbd_secret_uuid"] == secrets[backend["secret"]]["uuid"]
        if cinder.get("backup"):
            assert sections["DEFAULT"]["backup_ceph_conf"] == conf(cinder["backup"])
    if "ceph_openstack-glance-conf" in by_id:
        sections = by_id["ceph_openstack-glance-conf"]["sections"]
        glance = pillar["glance"]
        for name, store in {glance["backend"]: glance, **glance.get("stores", {})}.items():
            assert sections[name]["rbd_store_ceph_conf"] == conf(store), name
            assert sections[name]["rbd_store_pool"] == store["pool"], name
    if "ceph_openstack-nova-conf" in by_id:
        libvirt = by_id["ceph_openstack-nova-conf"]["sections"]["libvirt"]
        nova = pillar["nova"]
        assert libvirt["images_rbd_ceph_conf"] == conf(nova)
        assert libvirt["rbd_secret_uuid"] == secrets[nova["secret"]]["uuid"]


def check_accepted(formula, pillar):
    rendered = low_chunks_per_roles(formula, {"ceph_openstack": pillar})
    for roles in ROLE_COMBINATIONS:
        chunks = rendered[tuple(roles)]
        assert all(isinstance(chunk, dict) for chunk in chunks), (roles, chunks)
        ids = {chunk["__id__"] for chunk in chunks}
        assert expected_ids(pillar, roles, formula.opts["id"]) <= ids, (roles, sorted(ids))
        check_cluster_of_each_part(pillar, chunks)


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
    event(("rejected" if found else "accepted")
          + (f", {len(pillar['clusters'])} other clusters" if "clusters" in pillar else ""))
    if found:
        check_rejected(formula, pillar, found)
    else:
        check_accepted(formula, pillar)


def test_the_generated_pillars_are_of_all_kinds():
    """The strategy is not stuck in a corner: among as many pillars as twenty runs of the
    test above draw, there are accepted ones with every part in play, on the main cluster
    and on others, and rejected ones, of several clusters' problems too. (Hypothesis draws
    other pillars when other tests ran before in the process: these hold for nearly any
    such batch.)"""
    batch = []

    @settings(max_examples=250, derandomize=True, database=None,
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
    # Clients being withdrawn, with and without a secret marked absent, on either cluster.
    assert any(spec.get("absent") for p in accepted for record in _clusters(p).values()
               for spec in record.get("clients", {}).values())
    assert any(secret.get("absent") for p in accepted
               for secret in p.get("libvirt", {}).get("secrets", {}).values())
    assert any(spec.get("absent") for p in accepted for record in p.get("clusters", {}).values()
               for spec in record.get("clients", {}).values())
    # Several clusters: one and two others; every kind of part on another cluster; a mon
    # of another cluster; and rejected ones.
    several = [p for p in accepted if p.get("clusters")]
    assert {len(p["clusters"]) for p in several} == {1, 2}
    assert set().union(*map(_on_other_clusters, several)) == {
        "secret", "backend", "backup", "glance", "store", "nova"}
    assert any(len(_on_other_clusters(p)) > 2 for p in several)
    assert any(names_node(other["targets"]["mon"], ["mon"], THIS_MINION)
               for p in several for other in p["clusters"].values())
    rejected = [p for p in batch if p not in accepted]
    assert any(p.get("clusters") for p in rejected)
    # (Each way of breaking one is refused for its reason: the test below.)
    found = "\n".join(problem for p in rejected for problem in validator.problems(p))
    assert any(BROKEN_BECAUSE[how] in found for how in SEVERAL_CLUSTERS_BREAKS)


def two_clusters():
    """pillar.example with pillar/two_clusters.sls merged in, as Salt merges pillar files."""
    def merged(base, extra):
        out = dict(base)
        for key, value in extra.items():
            out[key] = (merged(out[key], value)
                        if isinstance(value, dict) and isinstance(out.get(key), dict) else value)
        return out

    files = [yaml.safe_load((ROOT / path).read_text())["ceph_openstack"]
             for path in ("pillar.example", "pillar/two_clusters.sls")]
    return merged(*files)


@pytest.mark.parametrize("how", sorted(BROKEN_BECAUSE))
def test_each_break_is_refused_for_its_reason(how):
    """Each way of breaking a pillar applies to pillar.example with pillar/two_clusters.sls
    (every part in play, on both clusters), whichever part it picks, and the validator
    names that problem: the rejected pillars above are rejected for the reasons drawn."""
    pillar = two_clusters()
    assert validator.problems(copy.deepcopy(pillar)) == []
    assert set(BROKEN_BECAUSE) == set(BREAKS) - {None}
    for pick in range(6):
        broken = break_pillar(pillar, how, pick)
        assert broken is not None, pick
        found = validator.problems(broken)
        assert any(BROKEN_BECAUSE[how] in problem for problem in found), (pick, found)
