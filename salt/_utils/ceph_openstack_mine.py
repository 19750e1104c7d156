"""
Where the formula's states find a client's cephx key and the cluster facts, and how a mon
publishes them: pillar first, else the Salt mine. Used by the rollout's states
(``_states/ceph_openstack.py``) and the key rotation's (``_states/ceph_openstack_rotation.py``).

Mine entries (a mon publishes every changed one in one ``mine.update``):

``ceph_openstack_key_<client>``
    ``cephauth.get_key client.<client>``, readable by the roles in
    ``clients:<client>:roles`` (and the mons).
``ceph_openstack_cluster``
    ``ceph_openstack.cluster_info``: fsid and mon host, readable by every minion.
``ceph_openstack_access``
    The access rule (``allow_tgt``) of each key the mon published, as JSON,
    readable by the mons: how a mon sees that ``targets`` or a client's roles
    changed since it published a key.

Those are the main cluster's. Another cluster of the pillar (``ceph_openstack:clusters``)
has the same entries with ``@<cluster>`` appended (``ceph_openstack_key_cinder@dr``),
published by its own mons: the functions take that cluster's name as ``ceph_cluster``
(None: the main one).

A helper gets no ``__salt__``, ``__pillar__`` or ``__grains__`` (it is no loader module): the
states pass ``__salt__["mine.get"]`` or ``__salt__["mine.update"]``, their ``__context__``
(one run's mine reads are kept there), ``__pillar__`` and their minion ID. No message
here holds a key.
"""

import hmac
import logging

from salt.exceptions import CommandExecutionError

CLUSTER_ALIAS = "ceph_openstack_cluster"
ACCESS_ALIAS = "ceph_openstack_access"

#: The ``__context__`` key of one run's mine reads: ``{(target, alias): {minion: value}}``.
_CACHE = "ceph_openstack.mine"


# -- names and access rules ---------------------------------------------------------------


def suffix(ceph_cluster=None):
    """What a mine alias of cluster ``ceph_cluster`` ends with ('@' is in no name)."""
    return f"@{ceph_cluster}" if ceph_cluster else ""


def key_alias(client, ceph_cluster=None):
    """The mine alias that carries ``client.<client>``'s key."""
    return f"ceph_openstack_key_{client}{suffix(ceph_cluster)}"


def cluster_alias(ceph_cluster=None):
    """The mine alias of a cluster's facts (fsid, mon host)."""
    return CLUSTER_ALIAS + suffix(ceph_cluster)


def access_alias(ceph_cluster=None):
    """The mine alias of a cluster's access record (see the module's docstring)."""
    return ACCESS_ALIAS + suffix(ceph_cluster)


def acl(roles, targets):
    """Compound target of the minions allowed to read a published key."""
    wanted = ["mon"] + [role for role in roles if role != "mon"]
    return " or ".join(f"( {targets[role]} )" for role in wanted)


def entry(function, args, allow_tgt):
    """A mine.update function definition: ``function(*args)``, readable by ``allow_tgt``."""
    return [{"mine_function": function}, *args,
            {"allow_tgt": allow_tgt}, {"allow_tgt_type": "compound"}]


# -- pillar --------------------------------------------------------------------------------


def cluster_pillar(pillar, ceph_cluster=None):
    """``(settings, pillar key prefix)`` of a cluster: the top-level keys for the main
    one, ``ceph_openstack:clusters:<name>`` for another."""
    top = pillar.get("ceph_openstack", {}) or {}
    if not ceph_cluster:
        return top, "ceph_openstack:"
    found = (top.get("clusters") or {}).get(ceph_cluster) or {}
    return found, f"ceph_openstack:clusters:{ceph_cluster}:"


def pillar_key(pillar, client, ceph_cluster=None):
    """The pre-generated key of ``client.<client>`` in pillar, else None."""
    clients = cluster_pillar(pillar, ceph_cluster)[0].get("clients") or {}
    return (clients.get(client) or {}).get("key")


# -- reading -------------------------------------------------------------------------------


def _formula_aliases(pillar):
    """The mine aliases of every cluster's facts, access record and client keys."""
    top = pillar.get("ceph_openstack", {}) or {}
    aliases = set()
    for name in [None] + sorted(top.get("clusters") or {}):
        clients = cluster_pillar(pillar, name)[0].get("clients") or {}
        aliases |= {cluster_alias(name), access_alias(name)}
        aliases |= {key_alias(client, name) for client in clients}
    return aliases


def read(mine_get, context, pillar, tgt, tgt_type, alias):
    """
    ``{minion: value}`` of mine entry ``alias`` on the minions of ``tgt``.

    The first call of a run fetches every alias of this formula (each client
    key and the cluster facts, of every cluster) from those minions in one
    ``mine.get``, so a run asks the master once per target, not once per state.
    """
    cache = context.setdefault(_CACHE, {})
    if (tgt, alias) not in cache:
        aliases = sorted(_formula_aliases(pillar) | {alias})
        found = mine_get(tgt, aliases, tgt_type=tgt_type) or {}
        for name in aliases:
            cache[(tgt, name)] = dict(found.get(name) or {})
    return cache[(tgt, alias)]


def mon_value(mine_get, context, pillar, alias, targets):
    """The value of mine entry ``alias`` that a mon (``targets["mon"]``) published, else
    None."""
    values = [value for value in read(mine_get, context, pillar, targets["mon"], "compound",
                                      alias).values() if value]
    return values[0] if values else None


def client_key(mine_get, context, pillar, client, targets, ceph_cluster=None):
    """``(key, None)`` of client.<client>: pre-generated in pillar, else published by a mon;
    ``(None, problem)`` when neither has it, the problem saying what to run."""
    key = pillar_key(pillar, client, ceph_cluster)
    if key:
        return key, None
    key = mon_value(mine_get, context, pillar, key_alias(client, ceph_cluster), targets)
    if key:
        return key, None
    prefix = cluster_pillar(pillar, ceph_cluster)[1]
    of = f" of cluster {ceph_cluster}" if ceph_cluster else ""
    return None, (
        f"no key for client.{client}{of}: it is neither in pillar "
        f"({prefix}clients:{client}:key) nor published by a mon yet. Apply the mon "
        f"role first: salt -C '{targets['mon']}' state.apply ceph_openstack "
        "(or run the orchestration: salt-run state.orchestrate orch.ceph_openstack)"
    )


# -- publishing ----------------------------------------------------------------------------


def same(old, new):
    """``old == new``, in constant time for two strings (keys)."""
    if isinstance(old, str) and isinstance(new, str):
        return hmac.compare_digest(old.encode(), new.encode())
    return old == new


def stale(mine_get, context, pillar, me, entries):
    """The aliases of ``entries`` (``{alias: (definition, value)}``) whose value minion
    ``me`` has not published, sorted."""
    return sorted(alias for alias, (_, value) in entries.items()
                  if not same(read(mine_get, context, pillar, me, "glob", alias).get(me),
                              value))


def send(mine_update, context, me, entries):
    """One ``mine.update`` of ``entries`` (``{alias: (definition, value)}``), then the values
    as this run's view of ``me``'s entries; raises CommandExecutionError when it fails.

    The event's data stays out of the minion's log: Salt 3006 logs every event it sends,
    data included, at debug level ("Sending event: tag = _minion_mine; data = ..."), and
    these entries hold keys."""
    logger = logging.getLogger("salt.utils.event")
    level = logger.level
    logger.setLevel(max(level, logging.INFO))
    try:
        sent = mine_update(mine_functions={alias: definition
                                           for alias, (definition, _) in entries.items()})
    finally:
        logger.setLevel(level)
    if not sent:
        raise CommandExecutionError("mine.update failed; is the master reachable?")
    cache = context.setdefault(_CACHE, {})
    for alias, (_, value) in entries.items():
        cache.setdefault((me, alias), {})[me] = value


def publish(mine_update, mine_get, context, pillar, me, entries, test=False):
    """``send`` of the ``entries`` that are ``stale`` (nothing under ``test``); returns
    their aliases (or raises)."""
    aliases = stale(mine_get, context, pillar, me, entries)
    if aliases and not test:
        send(mine_update, context, me, {alias: entries[alias] for alias in aliases})
    return aliases
