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

Those are the main cluster's. Another cluster of the pillar (``ceph_openstack:clusters``)
has the same entries with ``@<cluster>`` appended (``ceph_openstack_key_cinder@dr``),
published by its own mons: the states take that cluster's name as ``ceph_cluster``
(None: the main one).
"""

import fnmatch
import hmac
import json
import logging
import os
import time

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


def _suffix(ceph_cluster):
    """What a mine alias of cluster ``ceph_cluster`` ends with ('@' is in no name)."""
    return f"@{ceph_cluster}" if ceph_cluster else ""


def key_alias(client, ceph_cluster=None):
    """The mine alias that carries ``client.<client>``'s key."""
    return f"ceph_openstack_key_{client}{_suffix(ceph_cluster)}"


def _cluster_alias(ceph_cluster=None):
    return CLUSTER_ALIAS + _suffix(ceph_cluster)


def _access_alias(ceph_cluster=None):
    return ACCESS_ALIAS + _suffix(ceph_cluster)


def _cluster_pillar(ceph_cluster=None):
    """``(settings, pillar key prefix)`` of a cluster: the top-level keys for the main
    one, ``ceph_openstack:clusters:<name>`` for another."""
    pillar = __pillar__.get("ceph_openstack", {}) or {}
    if not ceph_cluster:
        return pillar, "ceph_openstack:"
    found = (pillar.get("clusters") or {}).get(ceph_cluster) or {}
    return found, f"ceph_openstack:clusters:{ceph_cluster}:"


def _acl(roles, targets):
    """Compound target of the minions allowed to read a published key."""
    wanted = ["mon"] + [role for role in roles if role != "mon"]
    return " or ".join(f"( {targets[role]} )" for role in wanted)


def _pillar_key(client, ceph_cluster=None):
    clients = _cluster_pillar(ceph_cluster)[0].get("clients") or {}
    return (clients.get(client) or {}).get("key")


def _formula_aliases():
    """The mine aliases of every cluster's facts, access record and client keys."""
    pillar = __pillar__.get("ceph_openstack", {}) or {}
    clusters = [None] + sorted(pillar.get("clusters") or {})
    aliases = set()
    for name in clusters:
        clients = _cluster_pillar(name)[0].get("clients") or {}
        aliases |= {_cluster_alias(name), _access_alias(name)}
        aliases |= {key_alias(client, name) for client in clients}
    return aliases


def _mine(tgt, tgt_type, alias):
    """
    ``{minion: value}`` of mine entry ``alias`` on the minions of ``tgt``.

    The first call of a run fetches every alias of this formula (each client
    key and the cluster facts, of every cluster) from those minions in one
    ``mine.get``, so a run asks the master once per target, not once per state.
    """
    cache = __context__.setdefault("ceph_openstack.mine", {})
    if (tgt, alias) not in cache:
        aliases = sorted(_formula_aliases() | {alias})
        found = __salt__["mine.get"](tgt, aliases, tgt_type=tgt_type) or {}
        for name in aliases:
            cache[(tgt, name)] = dict(found.get(name) or {})
    return cache[(tgt, alias)]


def _mine_value(alias, targets):
    values = [value for value in _mine(targets["mon"], "compound", alias).values() if value]
    return values[0] if values else None


def _client_key(client, targets, ceph_cluster=None):
    """The key of client.<client>: pre-generated in pillar, else published by a mon."""
    key = _pillar_key(client, ceph_cluster)
    if key:
        return key, None
    key = _mine_value(key_alias(client, ceph_cluster), targets)
    if key:
        return key, None
    prefix = _cluster_pillar(ceph_cluster)[1]
    of = f" of cluster {ceph_cluster}" if ceph_cluster else ""
    return None, (
        f"no key for client.{client}{of}: it is neither in pillar "
        f"({prefix}clients:{client}:key) nor published by a mon yet. Apply the mon "
        f"role first: salt -C '{targets['mon']}' state.apply ceph_openstack "
        "(or run the orchestration: salt-run state.orchestrate orch.ceph_openstack)"
    )


def client_present(name, caps, ceph_cluster=None, **connection):
    """
    Ensure cephx user ``client.<name>`` exists with exactly ``caps``; with a
    pre-generated key in pillar (``ceph_openstack:clients:<name>:key``, or
    ``ceph_openstack:clusters:<ceph_cluster>:clients:<name>:key``), Ceph
    holds that key.

    .. code-block:: yaml

        cinder:
          ceph_openstack.client_present:
            - caps: {mon: profile rbd, osd: profile rbd pool=volumes}
    """
    return __states__["cephauth.present"](
        f"client.{name}", caps=caps, key=_pillar_key(name, ceph_cluster), **connection
    )


def _same(old, new):
    if isinstance(old, str) and isinstance(new, str):
        return hmac.compare_digest(old.encode(), new.encode())
    return old == new


def _entry(function, args, allow_tgt):
    """A mine.update function definition: ``function(*args)``, readable by ``allow_tgt``."""
    return [{"mine_function": function}, *args,
            {"allow_tgt": allow_tgt}, {"allow_tgt_type": "compound"}]


def _access_record(me, alias=ACCESS_ALIAS):
    """``{alias: allow_tgt}`` of the keys this mon published last (its access record)."""
    record = _mine(me, "glob", alias).get(me)
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


def published(name="ceph_openstack", clients=None, targets=None, ceph_cluster=None,
              **connection):
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

    ceph_cluster
        The pillar's cluster these are of (``ceph_openstack:clusters:<name>``);
        None for the main one. Its entries' aliases end with ``@<name>``.

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
    cluster_alias, access_alias = _cluster_alias(ceph_cluster), _access_alias(ceph_cluster)
    try:
        facts = __salt__["ceph_openstack.cluster_info"](**connection)
        wanted[cluster_alias] = (_entry("ceph_openstack.cluster_info", [], "*"), facts)
    except CommandExecutionError as exc:
        problems.append(f"cannot read the cluster's fsid and mon host: {exc.strerror}")
    access = {}
    for client, roles in sorted(clients.items()):
        entity, alias = f"client.{client}", key_alias(client, ceph_cluster)
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
    record = _access_record(me, access_alias)
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
            functions[access_alias] = _entry(
                "test.echo", [json.dumps(new_record, sort_keys=True)], targets["mon"])
        if not _mine_update(functions):
            return _fail(ret, "mine.update failed; is the master reachable?")
        for alias in withdrawn:
            __salt__["mine.delete"](alias)
        for alias in stale:
            _mine(me, "glob", alias)[me] = wanted[alias][1]
        _mine(me, "glob", access_alias)[me] = json.dumps(new_record, sort_keys=True)
        ret["changes"] = changes
        ret["comment"] = _summary(stale, moved, withdrawn, [], test=False) or (
            "the access record is up to date")
    else:
        ret["comment"] = "the cluster facts and every key are published"
    if problems:
        ret["result"] = False
        ret["comment"] = "; ".join(problems) + f" ({ret['comment']})"
    return ret


def ceph_conf(name, targets, fsid=None, mon_host=None, client=None, ceph_cluster=None,
              **kwargs):
    """
    Manage ``[global] fsid`` and ``mon host`` (and ``[client]`` options) in a
    ceph.conf on an OpenStack node, other lines untouched, mode 0644.

    fsid and mon host come from the arguments (pillar) or else from the
    cluster facts a mon published. The directory must exist (ceph-common
    creates ``/etc/ceph``; the formula installs it first): a real run fails
    without it, ``test=True`` predicts the new file and names the directory.
    ``ceph_cluster`` names another cluster of the pillar (None: the main one).

    .. code-block:: yaml

        /etc/ceph/ceph.conf:
          ceph_openstack.ceph_conf:
            - targets: {mon: 'G@role:mon'}
            - client: {rbd cache: true}
    """
    if not (fsid and mon_host):
        facts = _mine_value(_cluster_alias(ceph_cluster), targets) or {}
        fsid = fsid or facts.get("fsid")
        mon_host = mon_host or facts.get("mon_host")
    if not (fsid and mon_host):
        prefix = _cluster_pillar(ceph_cluster)[1]
        return _fail(_ret(name), (
            f"fsid and mon host are unknown: set {prefix}fsid and "
            f"{prefix}mon_host in pillar, or apply the mon role first: "
            f"salt -C '{targets['mon']}' state.apply ceph_openstack"
        ))
    sections = {"global": {"fsid": fsid, "mon host": mon_host}}
    if client:
        sections["client"] = client
    kwargs.setdefault("mode", "0644")
    return __states__["openstack_ini.options_present"](name, sections=sections, **kwargs)


def keyring(name, client, targets, user=None, group=None, mode="0640", ceph_cluster=None):
    """
    Write the keyring of client.<client> at ``name`` with that owner and mode;
    the key comes from pillar or from the mine (published by a mon of
    ``ceph_cluster``, another cluster of the pillar; None: the main one).

    .. code-block:: yaml

        /etc/ceph/ceph.client.cinder.keyring:
          ceph_openstack.keyring:
            - client: cinder
            - user: cinder
            - group: cinder
    """
    key, problem = _client_key(client, targets, ceph_cluster)
    if problem:
        return _fail(_ret(name), problem)
    return __states__["cephauth.keyring_present"](
        name, entity=f"client.{client}", key=key, user=user, group=group, mode=mode
    )


def _secret_usage(client, ceph_cluster=None):
    """The usage name of a client's libvirt secret (libvirt allows one secret per usage
    name, so a client of another cluster of the same name needs its own)."""
    return f"{ceph_cluster + '.' if ceph_cluster else ''}client.{client} secret"


def libvirt_secret(name, client, targets, uri=None, ceph_cluster=None):
    """
    Ensure the libvirt secret ``name`` (a UUID) holds client.<client>'s key,
    with usage ``client.<client> secret`` (``<ceph_cluster>.client.<client>
    secret`` for a client of another cluster). When the UUID changed in pillar, the
    old secret is undefined if no libvirt domain uses it, and kept (the state
    fails, naming the domains) if one does. Where libvirt is not installed yet
    (neither libvirt-python nor virsh), a real run fails and ``test=True``
    predicts the new secret.

    .. code-block:: yaml

        691c3607-7ca3-433a-a0c0-5805cea8afa0:
          ceph_openstack.libvirt_secret:
            - client: cinder
    """
    key, problem = _client_key(client, targets, ceph_cluster)
    if problem:
        return _fail(_ret(name), problem)
    usage = _secret_usage(client, ceph_cluster)
    if "virtsecret.present" not in __states__:
        return _libvirt_missing(name, usage)
    kwargs = {"uri": uri} if uri else {}
    return __states__["virtsecret.present"](name, usage=usage, value=key, replace=True, **kwargs)


def _libvirt_missing(name, usage):
    """``libvirt_secret`` where neither libvirt-python nor virsh is installed (the virtsecret
    modules do not load). A real run fails. Under ``test=True`` the secret is predicted, as
    Salt's ``service.running`` predicts a service that is not present yet: a package the run
    installs (nova-compute pulls libvirt) makes the modules load."""
    ret = _ret(name)
    if not __opts__["test"]:
        return _fail(ret, "libvirt is not installed on this minion (neither libvirt-python "
                          "nor virsh): install nova-compute (or libvirt-clients) first")
    uuid = name.lower()
    changes = {"defined": {"old": None, "new": uuid}, "value": {"old": None, "new": "set"}}
    ret.update(result=None, changes=changes,
               comment=f"libvirt is not installed yet; once it is, would be: secret {uuid} "
                       f"defined with usage ceph '{usage}'; value set")
    return ret


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
    lists every check, then what was not checked and why.

    .. code-block:: yaml

        ceph_openstack-verified:
          ceph_openstack.verified
    """
    ret = _ret(name)
    report = __salt__["ceph_openstack.verify"]()
    lines = [f"{check}: {result}" for check, result in sorted(report["checks"].items())]
    lines += [f"{subject}: {note}" for subject, note in sorted(report.get("notes", {}).items())]
    ret["comment"] = "\n".join(lines)
    ret["result"] = bool(report["ok"])
    return ret


# -- services ------------------------------------------------------------------------------
#
# Salt's service.running reports a crash-looping unit "already running" (it is "active"
# between systemd's restarts), a restart succeeds even when the service then exits on an
# option it rejects, and where systemd is not PID 1 but systemctl exists (a chroot) Salt's
# service module answers "Running in OFFLINE mode. Nothing to do" with success. These
# states check what systemd and the service's log say afterwards.

#: Seconds a unit's process must stay up after a (re)start (ceph_openstack.SETTLE).
SETTLE = 5

#: Seconds a restarted service gets to log that its Ceph driver started.
INIT_TIMEOUT = 60


def _offline():
    """True where Salt's service module is systemd's in its offline mode (systemctl
    installed, systemd not PID 1), where it does nothing and reports success."""
    return "service.offline" in __salt__ and bool(__salt__["service.offline"]())


def _offline_fail(ret, name, verb):
    return _fail(ret, (
        f"{name} was not {verb}: systemd is not running as PID 1 here (Salt's service "
        "module runs in its offline mode, as in a chroot, where it does nothing and "
        "reports success). Boot the node with systemd, or set pillar "
        "ceph_openstack:services:restart to false"))


def _checked(ret, name, log, service, settle, init_timeout):
    """``ret`` of a service state, failed unless ``name`` stays up (and, where its log
    says so, its Ceph driver started); the comment says what was seen."""
    health = __salt__["ceph_openstack.service_health"](
        name, log=log, service=service, settle=settle, init_timeout=init_timeout)
    said = ret.get("comment") or ""
    if health["status"] == "no systemd":
        ret["comment"] = f"{said}; not checked that it stays up: {health['problem']}"
        return ret
    if health["problem"]:
        ret["result"] = False
        ret["comment"] = f"{said}; {health['problem']}" if said else health["problem"]
        return ret
    seen = f"{name} is up (PID {health['pid']}"
    if health.get("up_seconds") is not None:
        seen += f", {health['up_seconds']:.0f} s"
    seen += ")"
    if health.get("driver") == "initialized":
        seen += "; its Ceph driver started"
    if health.get("note"):
        seen += f"; {health['note']}"
    ret["comment"] = f"{said}; {seen}" if said else seen
    return ret


def service_running(name, log=None, service=None, settle=SETTLE, init_timeout=INIT_TIMEOUT,
                    ignore=(), **kwargs):
    """
    Salt's ``service.running``, then a check that the unit runs: its process stays up
    ``settle`` seconds (same MainPID, no restart by systemd) and, for ``service``
    cinder_volume or cinder_backup, its ``log`` says since the unit's start that the
    Ceph driver started (given ``init_timeout`` seconds after a start). A crash-looping
    unit fails, naming its log, though systemd calls it "active". Watched, it restarts
    the unit (``mod_watch``) and checks the same. Where systemd is not PID 1 but Salt's
    service module runs in systemd's offline mode (a chroot), it fails instead of doing
    nothing. ``ignore`` lists the ini options (``section/key``, shell-style patterns) of the
    watched config files that the service does not read: a change to only those restarts
    nothing. Any other keyword goes to ``service.running``.

    .. code-block:: yaml

        ceph_openstack-service-cinder_volume:
          ceph_openstack.service_running:
            - name: cinder-volume
            - service: cinder_volume
            - log: /var/log/cinder/cinder-volume.log
            - watch:
              - openstack_ini: ceph_openstack-cinder-conf
    """
    ret = _ret(name)
    if _offline():
        return _offline_fail(ret, name, "started or checked")
    ret = __states__["service.running"](name, **kwargs)
    if ret["result"] is False:
        if log:
            ret["comment"] = f"{ret['comment']}; see {log}"
        return ret
    if ret["result"] is None:  # test=True: it would be started
        return ret
    if not ret["changes"] and _watched_changes():
        # Salt restarts it next (mod_watch), which checks it then: the running process
        # still has the old files, so its health now says nothing about the new ones.
        return ret
    return _checked(ret, name, log, service, settle, init_timeout if ret["changes"] else 0)


def _watched_changes():
    """[(state kind, its return)] of the states this one watches that changed earlier in
    this run (Salt's ``__low__`` names them; ``__running__`` holds their returns)."""
    low = globals().get("__low__") or {}
    watched = {(kind, ident) for req in low.get("watch", []) if isinstance(req, dict)
               for kind, ident in req.items()}
    found = []
    for tag, result in (globals().get("__running__") or {}).items():
        kind = tag.split("_|-", 1)[0]
        if result.get("changes") and ((kind, result.get("__id__")) in watched
                                      or (kind, result.get("name")) in watched):
            found.append((kind, result))
    return found


def _only_ignored_changes(ignore):
    """True when every watched change of this run is an ini option (``section/key``) that
    matches an ``ignore`` pattern (shell-style); False when one is not, or when no watched
    change can be seen (then a restart is due)."""
    changes = _watched_changes()
    return bool(changes) and all(
        kind == "openstack_ini" and any(fnmatch.fnmatchcase(key, pattern) for pattern in ignore)
        for kind, result in changes for key in result["changes"])


def mod_watch(name, sfun=None, log=None, service=None, settle=SETTLE,
              init_timeout=INIT_TIMEOUT, ignore=(), **kwargs):
    """
    Restart (or start) the unit of a ``ceph_openstack.service_running`` state whose
    watched states changed, through Salt's service ``mod_watch``, then check that it
    stays up and its Ceph driver starts, as ``service_running`` does; under
    ``test=True``, say it would be restarted. When every watched change is an ini option
    that ``ignore`` lists, nothing is restarted. Not called directly: Salt calls it for
    the ``watch`` requisite.

    .. code-block:: yaml

        ceph_openstack-service-nova_compute:
          ceph_openstack.service_running:
            - name: nova-compute
            - watch:
              - openstack_ini: ceph_openstack-nova-conf
    """
    ret = _ret(name)
    if sfun != "service_running":
        return _fail(ret, f"Unable to trigger watch for ceph_openstack.{sfun}")
    if ignore and _only_ignored_changes(ignore):
        ret["comment"] = (f"{name} not restarted: the options that changed are not "
                          f"{name}'s ({', '.join(ignore)})")
        return ret
    if _offline():
        return _offline_fail(ret, name, "restarted")
    ret = __states__["service.mod_watch"](name, sfun="running", **kwargs)
    if ret["result"] is False:
        if log:
            ret["comment"] = f"{ret['comment']}; see {log}"
        return ret
    if __opts__["test"]:
        said = ret.get("comment") or ""
        verb = (said[len("Service is set to be "):] if said.startswith("Service is set to be ")
                else "restarted")
        ret.update(result=None, changes={name: True},
                   comment=f"{name} would be {verb} (a watched state changed)")
        return ret
    return _checked(ret, name, log, service, settle, init_timeout)


# -- key rotation (orch.ceph_openstack_rotate) ---------------------------------------------
#
# The mon plans (published without keys under ROTATION_ALIAS), the nodes check, the mon
# stages the new key (a pending key where the cluster has them, else the key itself) and
# publishes it under the client's key alias, the nodes write it and verify it, and only
# then the mon commits it. See README "Key rotation".

ROTATION_ALIAS = "ceph_openstack_rotation"
ROTATE_ORCH = "orch.ceph_openstack_rotate"


def _request():
    """The ``ceph_openstack_rotate`` pillar the orchestration passes to every step."""
    request = __pillar__.get("ceph_openstack_rotate") or {}
    return request if isinstance(request, dict) else {}


def _rotated():
    """The pillar cluster this rotation works on (``ceph_openstack_rotate:cluster``), as the
    states take it: None for the main one."""
    name = _request().get("cluster")
    main = (__pillar__.get("ceph_openstack") or {}).get("cluster") or "ceph"
    return None if name in (None, main) else name


def _ref(client, ceph_cluster=None):
    """How the SLS name a client: ``<client>``, ``<client>@<cluster>`` on another cluster."""
    return client + _suffix(ceph_cluster)


def _rotation_alias():
    return ROTATION_ALIAS + _suffix(_rotated())


def _rotation_targets(targets):
    """``targets`` with the mon that acts for this rotation (``ceph_openstack_rotate:mon``,
    set by the orchestration) as the only mon: the plan and the staged keys are read from
    its mine alone, never from another mon's older entries."""
    mon = _request().get("mon")
    return dict(targets or {}, mon=f"L@{mon}") if isinstance(mon, str) and mon else targets


def _resume_command():
    request = {"clients": list(_request().get("clients") or [])}
    if _rotated():
        request["cluster"] = _rotated()
    return (f"salt-run state.orchestrate {ROTATE_ORCH} "
            f"pillar='{json.dumps({'ceph_openstack_rotate': request})}'")


def _request_problems(request):
    """Problems with ``ceph_openstack_rotate``, each naming its key."""
    cluster = request.get("cluster")
    known = (__pillar__.get("ceph_openstack") or {}).get("clusters") or {}
    if cluster is not None and _rotated() and cluster not in known:
        return [f"ceph_openstack_rotate:cluster: {cluster!r} is neither the main cluster nor "
                "in ceph_openstack:clusters"]
    settings, prefix = _cluster_pillar(_rotated())
    clients = settings.get("clients") or {}
    names = request.get("clients")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return ["ceph_openstack_rotate:clients must be a non-empty list of client names, "
                "e.g. [cinder]"]
    problems = [f"ceph_openstack_rotate:clients: {name} is not in {prefix}clients"
                for name in names if name not in clients]
    if not isinstance(request.get("force", False), bool):
        problems.append("ceph_openstack_rotate:force must be true or false")
    if not isinstance(request.get("mon", ""), str):
        problems.append("ceph_openstack_rotate:mon must be the minion ID of one mon")
    min_age = request.get("min_age", 3600)
    if isinstance(min_age, bool) or not isinstance(min_age, int) or min_age < 0:
        problems.append("ceph_openstack_rotate:min_age must be a whole number of seconds >= 0")
    return problems


def _plan_client(client, request, allowed, pending_keys, connection):
    """``{"mode", "key_type", "why"}`` for one client, or a problem (a string)."""
    entity = f"client.{client}"
    wanted = "aes256k" if "aes256k" in allowed else "aes"
    info = __salt__["cephauth.key_info"](entity, **connection)
    pillar_key = _pillar_key(client, _rotated())
    if pillar_key:
        where = f"{_cluster_pillar(_rotated())[1]}clients:{client}:key"
        problem = __utils__["cephx.key_type_problem"](pillar_key, allowed, where)
        if problem:
            return f"{entity}: {problem}"
        if _same(__salt__["cephauth.get_key"](entity, **connection), pillar_key):
            return {"mode": "done", "key_type": info["key"]["type"],
                    "why": f"holds the key in pillar {where} (change it there to rotate)"}
        return {"mode": "replace", "key_type": __utils__["cephx.key_type"](pillar_key),
                "why": f"the new key in pillar {where} replaces the old one at once "
                       "(a given key cannot be made pending)"}
    if info["pending"]:
        return {"mode": "pending", "key_type": wanted,
                "why": "a pending key exists (an earlier run stopped): continuing"}
    record = __salt__["cephauth.rotation_record"](entity, **connection) or {}
    if record.get("staged") and record["staged"] == info["key"]["created"]:
        return {"mode": "used", "key_type": info["key"]["type"],
                "why": "the new key an earlier run staged is in place already (Ceph commits a "
                       "pending key at its first use): finishing"}
    age = time.time() - record.get("at", 0)
    if (info["key"]["type"] == wanted and record.get("key_created") == info["key"]["created"]
            and age < request.get("min_age", 3600)):
        return {"mode": "done", "key_type": wanted,
                "why": f"rotated {int(age // 60)} min ago (ceph_openstack_rotate:min_age "
                       f"{request.get('min_age', 3600)} s)"}
    if pending_keys:
        return {"mode": "pending", "key_type": wanted,
                "why": f"a new {wanted.upper()} key, pending beside the old one until every "
                       "node has verified it"}
    return {"mode": "replace", "key_type": wanted,
            "why": f"a new {wanted.upper()} key; this cluster has no pending keys (Pacific "
                   "16.2), so the old key stops working the moment the new one is set: every "
                   "check runs first, then the key is set and distributed at once"}


def _mine_update(functions):
    """``mine.update`` of ``functions`` (True on success), with the event's data kept out
    of the minion's log: Salt 3006 logs every event it sends, data included, at debug
    level ("Sending event: tag = _minion_mine; data = ..."), and these entries hold keys."""
    logger = logging.getLogger("salt.utils.event")
    level = logger.level
    logger.setLevel(max(level, logging.INFO))
    try:
        return __salt__["mine.update"](mine_functions=functions)
    finally:
        logger.setLevel(level)


def _publish(entries):
    """mine.update of the ``{alias: (definition, value)}`` whose value is stale; returns
    the aliases updated (or raises)."""
    me = __grains__["id"]
    stale = sorted(alias for alias, (_, value) in entries.items()
                   if not _same(_mine(me, "glob", alias).get(me), value))
    if stale and not __opts__["test"]:
        if not _mine_update({a: entries[a][0] for a in stale}):
            raise CommandExecutionError("mine.update failed; is the master reachable?")
        for alias in stale:
            _mine(me, "glob", alias)[me] = entries[alias][1]
    return stale


def rotation_planned(name="ceph_openstack_rotate", targets=None, **connection):
    """
    Decide, on a mon, what rotating the clients of pillar ``ceph_openstack_rotate:clients``
    means on this cluster, and publish that plan (no key in it) for the nodes. Fails,
    changing nothing, on a bad request or a pillar key the cluster would not accept.

    .. code-block:: yaml

        ceph_openstack-rotation-planned:
          ceph_openstack.rotation_planned:
            - targets: {mon: 'G@role:mon', controller: 'G@role:controller',
                        compute: 'G@role:compute'}
    """
    mons = (targets or {}).get("mon")
    targets = _rotation_targets(targets)
    ret = _ret(name)
    request = _request()
    problems = _request_problems(request)
    if request.get("mon") and mons and not __salt__["match.compound"](mons):
        problems.append(f"ceph_openstack_rotate:mon: {__grains__['id']} is not a mon of the "
                        f"cluster (pillar {_cluster_pillar(_rotated())[1]}targets:mon is "
                        f"{mons}); name a mon or leave it out")
    if problems:
        return _fail(ret, "; ".join(problems))
    try:
        allowed = __salt__["cephauth.allowed_key_types"](**connection)
        pending_keys = __salt__["cephauth.pending_keys_supported"](**connection)
        plan = {}
        for client in request["clients"]:
            found = _plan_client(client, request, allowed, pending_keys, connection)
            if isinstance(found, str):
                problems.append(found)
            else:
                plan[client] = found
        if problems:
            return _fail(ret, "; ".join(problems) + "; nothing changed")
        value = json.dumps({"pending_keys": pending_keys, "clients": plan}, sort_keys=True)
        # Bookkeeping for the nodes, not a change of the cluster: published under test too.
        acl = " or ".join(f"( {targets[role]} )" for role in ("mon", "controller", "compute"))
        entry = _entry("test.echo", [value], acl)
        me, alias = __grains__["id"], _rotation_alias()
        if not _same(_mine(me, "glob", alias).get(me), value):
            if not _mine_update({alias: entry}):
                return _fail(ret, "mine.update failed; is the master reachable?")
            _mine(me, "glob", alias)[me] = value
    except CommandExecutionError as exc:
        return _fail(ret, exc.strerror)
    lines = [f"client.{client}: {step['why']}" for client, step in plan.items()]
    if not pending_keys:
        lines.append("Pacific 16.2 has no pending keys: the old key of each client above "
                     "dies the moment its new key is set")
    ret["comment"] = "\n".join(lines)
    return ret


def _plan(targets):
    """The plan a mon published for this run (``{}`` before one did)."""
    text = _mine_value(_rotation_alias(), targets)
    try:
        return json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}


def _rotating(client, targets):
    """The plan's step for ``client`` when this run gives it a new key, else None."""
    step = (_plan(targets).get("clients") or {}).get(client)
    return step if step and step.get("mode") in ("pending", "replace") else None


def _stale_guests_path(uuid):
    return os.path.join(__opts__["cachedir"], "ceph_openstack", f"rotation-{uuid}.json")


def _old_key_guests(uuid, uri):
    """Running guests that use secret ``uuid`` and still hold its old value: those running,
    with the same domain id, since the value changed (recorded then); all of them when no
    change was recorded (the value was never changed here)."""
    kwargs = {"uri": uri} if uri else {}
    running = __salt__["virtsecret.guests"](uuid, **kwargs)
    try:
        with open(_stale_guests_path(uuid), encoding="utf-8") as record:
            before = {(g["uuid"], g["id"]) for g in json.load(record)["guests"]}
    except (OSError, ValueError, KeyError, TypeError):
        return [g["name"] for g in running]
    return [g["name"] for g in running if (g["uuid"], g["id"]) in before]


def _guest_advice(names, uuid, client, plan_step):
    me = __grains__["id"]
    if plan_step["mode"] == "replace":
        return (f"guests {', '.join(names)} on {me} use libvirt secret {uuid} of client.{client}"
                " and would keep its old key, which stops working the moment the new one is "
                "set (a key from pillar, or a cluster without pending keys). Shut them down "
                "and re-run "
                f"({_resume_command()}), starting them afterwards; or set "
                "ceph_openstack_rotate:force: true and restart them right after the rotation "
                "(they lose their disks when their cephx tickets expire)")
    return (f"guests {', '.join(names)} on {me} still run with the old key of "
            f"client.{client} (libvirt secret {uuid} got the new one after they started). "
            "Live-migrate or restart them (they then read the new key), then re-run: "
            f"{_resume_command()}. The old key stays valid until then; "
            "ceph_openstack_rotate:force: true invalidates it anyway (those guests lose "
            "their disks when their cephx tickets expire)")


def _guest_problems(secrets, targets, when, uri=None):
    """Problems with guests holding an old key, for the secrets (``{uuid: client}``) of the
    clients this run rotates; ``when``: ``before`` (the old key dies when set) or ``after``
    (the pending key is distributed)."""
    problems, notes = [], []
    for uuid, client in sorted(secrets.items()):
        step = _rotating(client, targets)
        if not step or (when == "before") != (step["mode"] == "replace"):
            continue
        if when == "before":
            kwargs = {"uri": uri} if uri else {}
            names = [g["name"] for g in __salt__["virtsecret.guests"](uuid, **kwargs)]
        else:
            names = _old_key_guests(uuid, uri)
        if names:
            target = notes if _request().get("force") else problems
            target.append(_guest_advice(names, uuid, client, step))
    return problems, notes


def rotation_ready(name="ceph_openstack_rotate", targets=None, secrets=None, uri=None):
    """
    Before a rotation sets any key: on a compute, fail when a running guest uses the libvirt
    secret of a client whose old key dies at once (Pacific, or a new key from pillar),
    unless ``ceph_openstack_rotate:force``. That the step runs on every node at all is the
    other check: the orchestration stops when one does not answer.

    secrets
        ``{uuid: client}`` of the libvirt secrets on this node (computes).

    .. code-block:: yaml

        ceph_openstack-rotation-ready:
          ceph_openstack.rotation_ready:
            - targets: {mon: 'G@role:mon'}
            - secrets: {691c3607-7ca3-433a-a0c0-5805cea8afa0: cinder}
    """
    targets = _rotation_targets(targets)
    ret = _ret(name)
    if not _plan(targets):
        return _fail(ret, "no rotation plan published by a mon: run the whole orchestration "
                          f"({_resume_command()})")
    try:
        problems, notes = _guest_problems(secrets or {}, targets, "before", uri)
    except CommandExecutionError as exc:
        return _fail(ret, exc.strerror)
    if problems:
        return _fail(ret, "; ".join(problems) + "; nothing changed")
    ret["comment"] = "; ".join(notes) or f"{__grains__['id']} is ready for the rotation"
    return ret


def _client_roles(client):
    clients = _cluster_pillar(_rotated())[0].get("clients") or {}
    return (clients.get(client) or {}).get("roles") or []


def rotation_staged(name="ceph_openstack_rotate", targets=None, **connection):
    """
    On a mon, give each client the plan rotates its new key: a pending key (Quincy and
    later: both keys log in until ``rotation_committed`` or its first use), or, where that
    cannot be (Pacific, a key from pillar), the new key itself. Then publish, for the nodes,
    the key each listed client should hold. ``changes`` never holds a key.

    .. code-block:: yaml

        ceph_openstack-rotation-staged:
          ceph_openstack.rotation_staged:
            - targets: {mon: 'G@role:mon', controller: 'G@role:controller',
                        compute: 'G@role:compute'}
    """
    targets = _rotation_targets(targets)
    ret = _ret(name)
    plan = _plan(targets)
    if not plan:
        return _fail(ret, f"no rotation plan: run the whole orchestration ({_resume_command()})")
    test = __opts__["test"]
    changes, done = {}, []
    try:
        for client, step in sorted(plan["clients"].items()):
            entity = f"client.{client}"
            if step["mode"] == "pending":
                info = __salt__["cephauth.key_info"](entity, **connection)
                if not info["pending"] or info["pending"]["type"] != step["key_type"]:
                    if not test:
                        __salt__["cephauth.create_pending"](entity, key_type=step["key_type"],
                                                            **connection)
                        __salt__["cephauth.record_rotation"](entity, staged=True, **connection)
                    changes[entity] = {"pending key": {"old": None,
                                                       "new": step["key_type"].upper()}}
            elif step["mode"] == "replace":
                if not test:
                    key = _pillar_key(client, _rotated()) or __salt__["cephauth.generate_key"]()
                    __salt__["cephauth.import_key"](entity, key, **connection)
                    __salt__["cephauth.record_rotation"](entity, **connection)
                changes[entity] = {"key": {"old": "old key (invalid from now)",
                                           "new": step["key_type"].upper()}}
        entries = {}
        for client in plan["clients"]:
            entity = f"client.{client}"
            key = None if test and entity in changes else __salt__[
                "cephauth.get_pending_key"](entity, **connection)
            entries[key_alias(client, _rotated())] = (
                _entry("cephauth.get_pending_key", [entity],
                       _acl(_client_roles(client), targets)), key)
        published = _publish(entries)
    except CommandExecutionError as exc:
        ret["changes"] = changes if not test else {}
        return _fail(ret, exc.strerror)
    if published:
        changes["published"] = published
    ret["changes"] = changes
    if not changes:
        ret["comment"] = "every listed client's key is staged and published"
        return ret
    if test:
        ret["result"] = None
    verb = "would be " if test else ""
    done = [f"{entity}: {'pending key' if 'pending key' in c else 'key'} {verb}set "
            f"({(c.get('pending key') or c.get('key'))['new']}): "
            f"{plan['clients'][entity.split('.', 1)[1]]['why']}"
            for entity, c in changes.items() if entity != "published"]
    if published:
        done.append(f"{verb}published {', '.join(published)}")
    ret["comment"] = "; ".join(done)
    return ret


def rotation_committed(name="ceph_openstack_rotate", targets=None, **connection):
    """
    On a mon, after every node verified the new key: commit each client's pending key (the
    old key stops logging in now) and record the rotation. Run last.

    .. code-block:: yaml

        ceph_openstack-rotation-committed:
          ceph_openstack.rotation_committed:
            - targets: {mon: 'G@role:mon'}
    """
    targets = _rotation_targets(targets)
    ret = _ret(name)
    plan = _plan(targets)
    if not plan:
        return _fail(ret, f"no rotation plan: run the whole orchestration ({_resume_command()})")
    changes = {}
    try:
        for client, step in sorted(plan["clients"].items()):
            entity = f"client.{client}"
            if step["mode"] not in ("pending", "used"):
                continue
            pending = __salt__["cephauth.key_info"](entity, **connection)["pending"]
            if pending:
                changes[entity] = {"old key": {"old": "valid", "new": "invalid"}}
            if not __opts__["test"]:
                if pending:
                    __salt__["cephauth.commit_pending"](entity, **connection)
                __salt__["cephauth.record_rotation"](entity, **connection)
    except CommandExecutionError as exc:
        ret["changes"] = {} if __opts__["test"] else changes
        return _fail(ret, exc.strerror)
    ret["changes"] = changes
    if __opts__["test"] and changes:
        ret["result"] = None
    verb = "would be " if __opts__["test"] else ""
    ret["comment"] = (f"pending key {verb}committed for {', '.join(changes)}; their old keys "
                      f"{verb}invalid" if changes else "no pending key to commit")
    return ret


def _predicted(name, what, client):
    return {"name": name, "result": None, "changes": {"key": "changed"},
            "comment": f"{what} would get client.{client}'s new key"}


def rotated_keyring(name, client, targets, user=None, group=None, mode="0640"):
    """
    ``keyring`` for a rotation: writes the key the mon staged and published. Under
    ``test=True`` (when no new key exists yet) it predicts the change for a client the
    plan rotates.

    .. code-block:: yaml

        /etc/ceph/ceph.client.cinder.keyring:
          ceph_openstack.rotated_keyring:
            - client: cinder
    """
    targets = _rotation_targets(targets)
    if __opts__["test"] and _rotating(client, targets) and os.path.exists(name):
        return _predicted(name, f"keyring {name}", client)
    return _mark_restart(keyring(name, client, targets, user=user, group=group, mode=mode,
                                 ceph_cluster=_rotated()), client)


def rotated_secret(name, client, targets, uri=None):
    """
    ``libvirt_secret`` for a rotation: sets the staged key as the secret's value in place
    (same UUID), first recording which running guests use the secret (they keep the old
    key until they restart or move; ``rotation_verified`` names them). Under ``test=True``
    it predicts the change for a client the plan rotates.

    .. code-block:: yaml

        691c3607-7ca3-433a-a0c0-5805cea8afa0:
          ceph_openstack.rotated_secret:
            - client: cinder
    """
    targets = _rotation_targets(targets)
    kwargs = {"uri": uri} if uri else {}
    if __opts__["test"]:
        if _rotating(client, targets):
            return _predicted(name, f"libvirt secret {name}", client)
        return libvirt_secret(name, client, targets, uri=uri, ceph_cluster=_rotated())
    key, problem = _client_key(client, targets, _rotated())
    if problem:
        return _fail(_ret(name), problem)
    try:
        if __salt__["virtsecret.get"](name, **kwargs) is not None and \
                __salt__["virtsecret.value_matches"](name, key, **kwargs) is False:
            guests = __salt__["virtsecret.guests"](name, **kwargs)
            path = _stale_guests_path(name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as record:
                json.dump({"guests": guests, "at": int(time.time())}, record)
    except (CommandExecutionError, OSError) as exc:
        return _fail(_ret(name), getattr(exc, "strerror", None) or str(exc))
    return _mark_restart(libvirt_secret(name, client, targets, uri=uri,
                                        ceph_cluster=_rotated()), client)


def _login_problem(held):
    """None when a client (an entry of settings.jinja's ``clients``) logs in with its
    keyring here (a real cephx login)."""
    conn = __utils__["ceph_cli.connection"](
        __salt__["config.get"], conf=held["conf"], client_id=held["client"],
        keyring=held["keyring"], cluster=held["cluster"])
    try:
        __utils__["ceph_cli.run"](__salt__["cmd.run_all"], conn, ["mon", "stat"])
    except CommandExecutionError as exc:
        return exc.strerror
    return None


def rotation_verified(name="ceph_openstack_rotate", targets=None, login=False):
    """
    On each node, for every client the plan rotates and this node holds: the keyring (and
    on a compute the client's libvirt secret) holds the published new key. Before the
    commit (``login: False``) no running guest may still hold the old key (unless
    ``ceph_openstack_rotate:force``), and nothing logs in: Ceph commits a pending key at its
    first use. After it (``login: True``) each keyring logs in (a real cephx login).
    Fails naming each problem.

    .. code-block:: yaml

        ceph_openstack-rotation-verified:
          ceph_openstack.rotation_verified:
            - targets: {mon: 'G@role:mon'}
            - login: False
    """
    targets = _rotation_targets(targets)
    ret = _ret(name)
    plan = _plan(targets)
    if not plan:
        return _fail(ret, f"no rotation plan: run the whole orchestration ({_resume_command()})")
    settings = __salt__["slsutil.renderer"]("salt://ceph_openstack/settings.jinja",
                                           default_renderer="jinja|json")
    roles = set(settings["roles"])
    problems, checked = [], []
    for client in sorted(plan["clients"]):
        if not roles & set(_client_roles(client)) - {"mon"}:
            continue
        found, notes = _client_verified(client, targets, settings, login)
        problems += found
        checked += notes
    if problems:
        return _fail(ret, "; ".join(problems) + (
            "" if login else "; the old keys stay valid"))
    ret["comment"] = "; ".join(checked) or "no rotated client on this node"
    return ret


def _client_verified(client, targets, settings, login):
    """(problems, notes) of ``rotation_verified`` for one client held here."""
    key, problem = _client_key(client, targets, _rotated())
    if problem:
        return [problem], []
    ref = _ref(client, _rotated())
    path = settings["clients"][ref]["keyring"]
    if not _same(__utils__["cephx.keyring_file_key"](path), key):
        return [f"keyring {path} does not hold client.{client}'s new key"], []
    notes = [f"keyring {path} holds client.{client}'s new key"]
    if login:
        problem = _login_problem(settings["clients"][ref])
        if problem:
            return [f"client.{client} cannot log in with {path}: {problem}"], notes
        notes.append(f"client.{client} logs in with it")
    if "compute" not in settings["roles"]:
        return [], notes
    secrets = {uuid: client for uuid, c in settings["secrets"].items() if c == ref}
    uri = {"uri": settings["libvirt_uri"]} if settings.get("libvirt_uri") else {}
    problems = []
    try:
        for uuid in secrets:
            if __salt__["virtsecret.value_matches"](uuid, key, **uri) is False:
                problems.append(f"libvirt secret {uuid} does not hold client.{client}'s new key")
            else:
                notes.append(f"libvirt secret {uuid} holds it")
        if not login:
            stale, more = _guest_problems(secrets, targets, "after", settings.get("libvirt_uri"))
            problems += stale
            notes += more
    except CommandExecutionError as exc:
        problems.append(exc.strerror)
    return problems, notes


def _restart_marker(client):
    return os.path.join(__opts__["cachedir"], "ceph_openstack", f"restart-{client}")


def _mark_restart(ret, client):
    """After a real change of a client's keyring or secret: its services restart once, in
    the orchestration's last step (after the commit: a restart logs in with the new key)."""
    if ret.get("result") and ret.get("changes") and not __opts__["test"]:
        marker = _restart_marker(_ref(client, _rotated()))
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "w", encoding="utf-8"):
            pass
    return ret


def rotation_restart_due(name, targets=None):
    """
    Report a change (for services to ``watch``) when client ``name``'s keyring or secret
    changed in a rotation and its services have not restarted since: once per change, also
    when the run that changed it stopped before this step. ``name`` is
    ``<client>@<cluster>`` for a client of another cluster.

    .. code-block:: yaml

        cinder:
          ceph_openstack.rotation_restart_due:
            - targets: {mon: 'G@role:mon'}
    """
    targets = _rotation_targets(targets)
    ret = _ret(name)
    marker = _restart_marker(name)
    due = os.path.exists(marker) or (
        __opts__["test"] and _rotating(name.split("@", 1)[0], targets))
    if not due:
        ret["comment"] = f"no restart due for client.{name}"
        return ret
    ret["changes"] = {"restart": "due"}
    if __opts__["test"]:
        ret.update(result=None, comment=f"the services using client.{name} would restart")
        return ret
    os.unlink(marker)
    ret["comment"] = f"the services using client.{name} restart"
    return ret
