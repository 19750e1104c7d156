"""
Formula glue for ceph_openstack: the rollout's states that need a cephx key or cluster
facts, and the services they restart.

Keys never pass through Jinja, so they never reach rendered SLS data: these
states read a pre-generated key from pillar themselves, or fetch a published
key from the Salt mine (where the mon role puts it, readable only by the
minions its ACL names), and hand it to the cephauth, virtsecret and
openstack_ini states. The mine entries, their aliases and access rules are
described in ``_utils/ceph_openstack_mine.py``; another cluster of the pillar
(``ceph_openstack:clusters``) is named by ``ceph_cluster`` (None: the main one).

The key rotation's states are in ``ceph_openstack_rotation``.
"""

import importlib.util
import os
import sys
import fnmatch
import json

from salt.exceptions import CommandExecutionError


def _helper(name):
    """This project's helper module ``name``: ``utils/<name>.py`` beside this file's
    directory, synced or installed alike (``_utils`` in a checkout), loaded once per
    version of that file; see README, "Where the modules find their helpers"."""
    base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(base, "utils", name + ".py")
    if not os.path.exists(path):
        path = os.path.join(base, "_utils", name + ".py")
    key = f"ceph_openstack.helpers:{path}:{os.stat(path).st_mtime_ns}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(f"ceph_openstack_helpers.{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[key] = module
    return sys.modules[key]


ceph_openstack_mine = _helper("ceph_openstack_mine")

__virtualname__ = "ceph_openstack"


def __virtual__():
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _fail(ret, comment):
    ret.update({"result": False, "comment": comment})
    return ret


def _client_key(client, targets, ceph_cluster=None):
    """``(key, problem)`` of client.<client>: from pillar, else published by a mon."""
    return ceph_openstack_mine.client_key(
        __salt__["mine.get"], __context__, __pillar__, client, targets, ceph_cluster)


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
    key = ceph_openstack_mine.pillar_key(__pillar__, name, ceph_cluster)
    return __states__["cephauth.present"](f"client.{name}", caps=caps, key=key, **connection)


def _access_record(me, alias):
    """``{alias: allow_tgt}`` of the keys this mon published last (its access record)."""
    record = ceph_openstack_mine.read(
        __salt__["mine.get"], __context__, __pillar__, me, "glob", alias).get(me)
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
    entry = ceph_openstack_mine.entry
    wanted, problems, pending, unread = {}, [], [], set()
    try:
        facts = __salt__["ceph_openstack.cluster_info"](**connection)
        wanted[ceph_openstack_mine.cluster_alias(ceph_cluster)] = (
            entry("ceph_openstack.cluster_info", [], "*"), facts)
    except CommandExecutionError as exc:
        problems.append(f"cannot read the cluster's fsid and mon host: {exc.strerror}")
    access = {}
    for client, roles in sorted(clients.items()):
        entity = f"client.{client}"
        alias = ceph_openstack_mine.key_alias(client, ceph_cluster)
        try:
            key = __salt__["cephauth.get_key"](entity, **connection)
        except CommandExecutionError as exc:
            unread.add(alias)
            if __opts__["test"]:  # the user may be created earlier in this very run
                pending.append(alias)
            else:
                problems.append(f"cannot read the key of {entity}: {exc.strerror}")
            continue
        access[alias] = ceph_openstack_mine.acl(roles, targets)
        wanted[alias] = (entry("cephauth.get_key", [entity], access[alias]), key)

    me = __grains__["id"]
    access_alias = ceph_openstack_mine.access_alias(ceph_cluster)
    record = _access_record(me, access_alias)
    # A key is republished when its value or its access rule changed.
    stale = sorted(set(ceph_openstack_mine.stale(
        __salt__["mine.get"], __context__, __pillar__, me, wanted))
        | {alias for alias, rule in access.items() if record.get(alias) != rule})
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
        entries = {alias: wanted[alias] for alias in stale}
        if new_record != record:
            text = json.dumps(new_record, sort_keys=True)
            entries[access_alias] = (entry("test.echo", [text], targets["mon"]), text)
        try:
            ceph_openstack_mine.send(
                __salt__["mine.update"], __context__, me, entries)
        except CommandExecutionError as exc:
            return _fail(ret, exc.strerror)
        for alias in withdrawn:
            __salt__["mine.delete"](alias)
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
        facts = ceph_openstack_mine.mon_value(
            __salt__["mine.get"], __context__, __pillar__,
            ceph_openstack_mine.cluster_alias(ceph_cluster), targets) or {}
        fsid = fsid or facts.get("fsid")
        mon_host = mon_host or facts.get("mon_host")
    if not (fsid and mon_host):
        prefix = ceph_openstack_mine.cluster_pillar(__pillar__, ceph_cluster)[1]
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


def ceph_conf_absent(name, client=None):
    """
    Take out of a ceph.conf what ``ceph_conf`` put there, when the node leaves
    (orch.ceph_openstack_retire): ``[global] fsid`` and ``mon host``, and the ``[client]``
    options named in ``client``; every other line stays. The file goes when nothing else
    is left in it (the formula wrote it: ceph-common ships none).

    .. code-block:: yaml

        /etc/ceph/ceph.conf:
          ceph_openstack.ceph_conf_absent:
            - client: [rbd cache, admin socket]
    """
    ret = _ret(name)
    if not os.path.lexists(name):
        ret["comment"] = f"{name} is already absent"
        return ret
    sections = {"global": ["fsid", "mon host"]}
    if client:
        sections["client"] = list(client)
    try:
        found = __salt__["openstack_ini.get"](name) or {}
    except CommandExecutionError as exc:
        return _fail(ret, str(exc))
    if any(key not in sections.get(section, [])
           for section, options in found.items() for key in options):
        return __states__["openstack_ini.options_absent"](name, sections=sections)
    return __states__["file.absent"](name)


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


def keyring_absent(name, client, ceph_cluster=None, reason="is marked absent in pillar"):
    """
    Remove the keyring file ``name`` of client.<client>, a client marked absent in
    pillar (``ceph_openstack:clients:<client>:absent: true``; of ``ceph_cluster``, another
    cluster of the pillar, or None: the main one), or any client's on a node that leaves
    (``reason`` says which, in a refusal). Refused, the file kept, while this
    node's cinder.conf, glance-api.conf or nova.conf still use the client as an RBD
    user (``ceph_openstack.client_uses``), also under ``test=True``: the formula leaves
    options it no longer manages (``cinder:backup: null``) as they are.

    .. code-block:: yaml

        /etc/ceph/ceph.client.cinder-backup.keyring:
          ceph_openstack.keyring_absent:
            - client: cinder-backup
    """
    ret = _ret(name)
    uses = []
    if os.path.lexists(name):
        uses = __salt__["ceph_openstack.client_uses"](client, ceph_cluster=ceph_cluster)
    # Under test=True the config files are as they were: a use in a file that this run
    # would change (its new options are not written) is not a refusal yet.
    pending = _pending_files() if __opts__["test"] else set()
    refused = [use for use in uses if use.split(": client.", 1)[0] not in pending]
    if refused:
        of = f" of cluster {ceph_cluster}" if ceph_cluster else ""
        return _fail(ret, (
            f"{name} not removed: client.{client}{of} {reason}, but "
            f"{'; '.join(refused)}. Point that option at another client (the pillar part "
            "that set it, or the file itself) first"))
    ret = __states__["file.absent"](name)
    if uses and ret["result"] is None:
        files = sorted({use.split(": client.", 1)[0] for use in uses})
        ret["comment"] += (f" (once this run has changed {', '.join(files)}, "
                           f"unless client.{client} is still used there)")
    return ret


def _pending_files():
    """The files that the ``openstack_ini`` states which ran before in this ``test=True``
    run would change (their names)."""
    return {result.get("name") for tag, result in (globals().get("__running__") or {}).items()
            if tag.startswith("openstack_ini_|-") and result.get("result") is None
            and result.get("changes")}


def libvirt_secret_absent(name, uri=None, force=False):
    """
    Undefine the libvirt secret ``name`` (a UUID), marked absent in pillar
    (``ceph_openstack:libvirt:secrets:<name>:absent: true``) or on a node that leaves:
    ``virtsecret.absent``, which refuses, changing nothing and naming them, while libvirt
    domains (running or only defined) use it, unless ``force``. Where libvirt is not
    installed (neither libvirt-python nor virsh), there is no secret to undefine.

    .. code-block:: yaml

        691c3607-7ca3-433a-a0c0-5805cea8afa0:
          ceph_openstack.libvirt_secret_absent
    """
    if "virtsecret.absent" not in __states__:
        ret = _ret(name)
        ret["comment"] = f"libvirt is not installed here: no secret {name.lower()} to undefine"
        return ret
    kwargs = {"uri": uri} if uri else {}
    if force:
        kwargs["force"] = True
    return __states__["virtsecret.absent"](name, **kwargs)


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
