"""
Formula glue for ceph_openstack: states that need a cephx key or cluster facts.

Keys never pass through Jinja, so they never reach rendered SLS data: these
states read a pre-generated key from pillar themselves, or fetch a published
key from the Salt mine (where the mon role puts it, readable only by the
minions its ACL names), and hand it to the cephauth, virtsecret and
openstack_ini states.

Mine entries (published by the mon role, all changed ones in one ``mine.update``):

``ceph_openstack_key_<client>``
    ``cephauth.get_key client.<client>``, readable by the roles in
    ``clients:<client>:roles`` (and the mons).
``ceph_openstack_cluster``
    ``ceph_openstack.cluster_info``: fsid and mon host, readable by every minion.
``ceph_openstack_access``
    The access rule (``allow_tgt``) of each key the mon published, as JSON,
    readable by the mons: how a mon sees that ``targets`` or a client's roles
    changed since it published a key.
"""

import hmac
import json
import logging

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "ceph_openstack"

CLUSTER_ALIAS = "ceph_openstack_cluster"
ACCESS_ALIAS = "ceph_openstack_access"


def __virtual__():
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _fail(ret, comment):
    ret.update({"result": False, "comment": comment})
    return ret


def key_alias(client):
    """The mine alias that carries ``client.<client>``'s key."""
    return f"ceph_openstack_key_{client}"


def _acl(roles, targets):
    """Compound target of the minions allowed to read a published key."""
    wanted = ["mon"] + [role for role in roles if role != "mon"]
    return " or ".join(f"( {targets[role]} )" for role in wanted)


def _pillar_key(client):
    clients = __pillar__.get("ceph_openstack", {}).get("clients", {}) or {}
    return (clients.get(client) or {}).get("key")


def _mine(tgt, tgt_type, alias):
    """
    ``{minion: value}`` of mine entry ``alias`` on the minions of ``tgt``.

    The first call of a run fetches every alias of this formula (each client
    key and the cluster facts) from those minions in one ``mine.get``, so a
    run asks the master once per target, not once per state.
    """
    cache = __context__.setdefault("ceph_openstack.mine", {})
    if (tgt, alias) not in cache:
        clients = (__pillar__.get("ceph_openstack", {}) or {}).get("clients") or {}
        aliases = sorted({key_alias(client) for client in clients}
                         | {CLUSTER_ALIAS, ACCESS_ALIAS, alias})
        found = __salt__["mine.get"](tgt, aliases, tgt_type=tgt_type) or {}
        for name in aliases:
            cache[(tgt, name)] = dict(found.get(name) or {})
    return cache[(tgt, alias)]


def _mine_value(alias, targets):
    values = [value for value in _mine(targets["mon"], "compound", alias).values() if value]
    return values[0] if values else None


def _client_key(client, targets):
    """The key of client.<client>: pre-generated in pillar, else published by a mon."""
    key = _pillar_key(client)
    if key:
        return key, None
    key = _mine_value(key_alias(client), targets)
    if key:
        return key, None
    return None, (
        f"no key for client.{client}: it is neither in pillar "
        f"(ceph_openstack:clients:{client}:key) nor published by a mon yet. Apply the mon "
        f"role first: salt -C '{targets['mon']}' state.apply ceph_openstack "
        "(or run the orchestration: salt-run state.orchestrate orch.ceph_openstack)"
    )


def client_present(name, caps, **connection):
    """
    Ensure cephx user ``client.<name>`` exists with exactly ``caps``; with a
    pre-generated key in pillar (``ceph_openstack:clients:<name>:key``), Ceph
    holds that key.

    .. code-block:: yaml

        cinder:
          ceph_openstack.client_present:
            - caps: {mon: profile rbd, osd: profile rbd pool=volumes}
    """
    return __states__["cephauth.present"](
        f"client.{name}", caps=caps, key=_pillar_key(name), **connection
    )


def _same(old, new):
    if isinstance(old, str) and isinstance(new, str):
        return hmac.compare_digest(old.encode(), new.encode())
    return old == new


def _entry(function, args, allow_tgt):
    """A mine.update function definition: ``function(*args)``, readable by ``allow_tgt``."""
    return [{"mine_function": function}, *args,
            {"allow_tgt": allow_tgt}, {"allow_tgt_type": "compound"}]


def _access_record(me):
    """``{alias: allow_tgt}`` of the keys this mon published last (its access record)."""
    record = _mine(me, "glob", ACCESS_ALIAS).get(me)
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except ValueError:
            record = {}
    return record if isinstance(record, dict) else {}


def _summary(stale, access, withdrawn, pending, test):
    """The comment of a ``published`` run that changes (or would change) something."""
    would = "would " if test else ""
    parts = []
    if stale or pending:
        parts.append(f"{would}publish {', '.join(stale + pending)}" if test
                     else f"published {', '.join(stale)}")
    parts += [f"{alias} {would}{'be ' if test else 'now '}readable by {rule['new']}"
              for alias, rule in sorted(access.items())]
    if withdrawn:
        parts.append(f"{would}withdr{'aw' if test else 'ew'} {', '.join(withdrawn)}")
    comment = "; ".join(parts)
    if pending:
        comment += f" ({', '.join(pending)} once its user exists)"
    return comment


def published(name="ceph_openstack", clients=None, targets=None, **connection):
    """
    Publish the cluster facts and each client's key in the Salt mine, every
    entry that is missing, stale or readable by the wrong minions in one
    ``mine.update`` (``mine.send`` waits half a second per entry, which adds
    up over many clients). Run on a mon.

    clients
        ``{client: [roles]}``: client.<client>'s key is readable by the
        minions of those roles (and the mons).
    targets
        The compound target of each role (pillar ``targets``).

    Each key's access rule (``allow_tgt``) follows ``targets`` and the
    client's roles: the mon keeps a record of the rule of every key it
    published (mine entry ``ceph_openstack_access``, readable by the mons),
    and republishes a key whose rule changed, so minions that no longer match
    can no longer read it. The key of a client no longer in ``clients`` is
    withdrawn (``mine.delete``). A run with nothing to change sends nothing.

    A key that cannot be read (its user is missing) fails the state, naming
    the client, after the other entries are published.

    .. code-block:: yaml

        ceph_openstack-published:
          ceph_openstack.published:
            - clients: {cinder: [controller, compute], glance: [controller]}
            - targets: {mon: 'G@role:mon', controller: 'G@role:controller',
                        compute: 'G@role:compute'}
    """
    ret = _ret(name)
    clients = clients or {}
    wanted, problems, pending, unread = {}, [], [], set()
    try:
        facts = __salt__["ceph_openstack.cluster_info"](**connection)
        wanted[CLUSTER_ALIAS] = (_entry("ceph_openstack.cluster_info", [], "*"), facts)
    except CommandExecutionError as exc:
        problems.append(f"cannot read the cluster's fsid and mon host: {exc.strerror}")
    access = {}
    for client, roles in sorted(clients.items()):
        entity, alias = f"client.{client}", key_alias(client)
        try:
            key = __salt__["cephauth.get_key"](entity, **connection)
        except CommandExecutionError as exc:
            unread.add(alias)
            if __opts__["test"]:  # the user may be created earlier in this very run
                pending.append(alias)
            else:
                problems.append(f"cannot read the key of {entity}: {exc.strerror}")
            continue
        access[alias] = _acl(roles, targets)
        wanted[alias] = (_entry("cephauth.get_key", [entity], access[alias]), key)

    me = __grains__["id"]
    record = _access_record(me)
    stale = sorted(
        alias for alias, (_, current) in wanted.items()
        if not _same(_mine(me, "glob", alias).get(me), current)
        or (alias in access and record.get(alias) != access[alias])
    )
    moved = {
        alias: {"old": record[alias], "new": rule} for alias, rule in access.items()
        if record.get(alias) not in (None, rule)
    }
    # A key that could not be read keeps its entry (and its record) as it was.
    new_record = dict(access, **{a: record[a] for a in unread if a in record})
    withdrawn = sorted(set(record) - set(new_record))
    changes = {}
    if stale or pending:
        changes["published"] = stale + pending
    if moved:
        changes["access"] = moved
    if withdrawn:
        changes["withdrawn"] = withdrawn
    if __opts__["test"]:
        ret["changes"] = changes
        if changes:
            ret["result"] = None
            ret["comment"] = _summary(stale, moved, withdrawn, pending, test=True)
        else:
            ret["comment"] = "the cluster facts and every key are published"
    elif stale or new_record != record:
        functions = {alias: wanted[alias][0] for alias in stale}
        if new_record != record:
            functions[ACCESS_ALIAS] = _entry(
                "test.echo", [json.dumps(new_record, sort_keys=True)], targets["mon"])
        if not __salt__["mine.update"](mine_functions=functions):
            return _fail(ret, "mine.update failed; is the master reachable?")
        for alias in withdrawn:
            __salt__["mine.delete"](alias)
        for alias in stale:
            _mine(me, "glob", alias)[me] = wanted[alias][1]
        _mine(me, "glob", ACCESS_ALIAS)[me] = json.dumps(new_record, sort_keys=True)
        ret["changes"] = changes
        ret["comment"] = _summary(stale, moved, withdrawn, [], test=False) or (
            "the access record is up to date")
    else:
        ret["comment"] = "the cluster facts and every key are published"
    if problems:
        ret["result"] = False
        ret["comment"] = "; ".join(problems) + f" ({ret['comment']})"
    return ret


def ceph_conf(name, targets, fsid=None, mon_host=None, client=None, **kwargs):
    """
    Manage ``[global] fsid`` and ``mon host`` (and ``[client]`` options) in a
    ceph.conf on an OpenStack node, other lines untouched, mode 0644.

    fsid and mon host come from the arguments (pillar) or else from the
    cluster facts a mon published.

    .. code-block:: yaml

        /etc/ceph/ceph.conf:
          ceph_openstack.ceph_conf:
            - targets: {mon: 'G@role:mon'}
            - client: {rbd cache: true}
    """
    if not (fsid and mon_host):
        facts = _mine_value(CLUSTER_ALIAS, targets) or {}
        fsid = fsid or facts.get("fsid")
        mon_host = mon_host or facts.get("mon_host")
    if not (fsid and mon_host):
        return _fail(_ret(name), (
            "fsid and mon host are unknown: set ceph_openstack:fsid and "
            "ceph_openstack:mon_host in pillar, or apply the mon role first: "
            f"salt -C '{targets['mon']}' state.apply ceph_openstack"
        ))
    sections = {"global": {"fsid": fsid, "mon host": mon_host}}
    if client:
        sections["client"] = client
    kwargs.setdefault("mode", "0644")
    return __states__["openstack_ini.options_present"](name, sections=sections, **kwargs)


def keyring(name, client, targets, user=None, group=None, mode="0640"):
    """
    Write the keyring of client.<client> at ``name`` with that owner and mode;
    the key comes from pillar or from the mine (published by a mon).

    .. code-block:: yaml

        /etc/ceph/ceph.client.cinder.keyring:
          ceph_openstack.keyring:
            - client: cinder
            - user: cinder
            - group: cinder
    """
    key, problem = _client_key(client, targets)
    if problem:
        return _fail(_ret(name), problem)
    return __states__["cephauth.keyring_present"](
        name, entity=f"client.{client}", key=key, user=user, group=group, mode=mode
    )


def libvirt_secret(name, client, targets, uri=None):
    """
    Ensure the libvirt secret ``name`` (a UUID) holds client.<client>'s key,
    with usage ``client.<client> secret``. When the UUID changed in pillar, the
    old secret is undefined if no libvirt domain uses it, and kept (the state
    fails, naming the domains) if one does.

    .. code-block:: yaml

        691c3607-7ca3-433a-a0c0-5805cea8afa0:
          ceph_openstack.libvirt_secret:
            - client: cinder
    """
    key, problem = _client_key(client, targets)
    if problem:
        return _fail(_ret(name), problem)
    kwargs = {"uri": uri} if uri else {}
    return __states__["virtsecret.present"](
        name, usage=f"client.{client} secret", value=key, replace=True, **kwargs
    )


def pillar_valid(name="ceph_openstack"):
    """
    Fail, before anything changes, when the ceph_openstack pillar is malformed;
    each problem names its pillar key.

    .. code-block:: yaml

        ceph_openstack-pillar:
          ceph_openstack.pillar_valid:
            - order: 1
            - failhard: True
    """
    ret = _ret(name)
    problems = __salt__["ceph_openstack.validate"]()
    if problems:
        return _fail(ret, "invalid pillar: " + "; ".join(problems))
    ret["comment"] = "pillar ceph_openstack is valid"
    return ret


def verified(name="ceph_openstack"):
    """
    Fail unless ``ceph_openstack.verify`` passes on this node; the comment
    lists every check.

    .. code-block:: yaml

        ceph_openstack-verified:
          ceph_openstack.verified
    """
    ret = _ret(name)
    report = __salt__["ceph_openstack.verify"]()
    lines = [f"{check}: {result}" for check, result in sorted(report["checks"].items())]
    ret["comment"] = "\n".join(lines)
    ret["result"] = bool(report["ok"])
    return ret
