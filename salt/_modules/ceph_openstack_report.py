"""
What differs on this node from the ceph_openstack pillar: the node's part of
``salt-run ceph_openstack.report`` (the runner calls :func:`drift` on every node the
formula targets, in one job).

Nothing here changes anything: the formula runs under ``test=True`` (each of its states
predicts precisely what a real run would change), and on a mon the Ceph health checks
that concern the formula's pools and users and the type and age of each user's key are
read. Every item says which command fixes it. No key is in any return: the states name a
changed key "key changed", and every string of the answer is scrubbed of anything shaped
like a cephx key all the same.

CLI Example:

.. code-block:: bash

    salt '*' ceph_openstack_report.drift
    salt -G role:mon ceph_openstack_report.drift verify=False
"""

import importlib.util
import json
import logging
import os
import re
import sys
import time

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


ceph_cli = _helper("ceph_cli")

log = logging.getLogger(__name__)

__virtualname__ = "ceph_openstack_report"

#: The formula's SLS, applied under test=True.
SLS = "ceph_openstack"

ORCH = "salt-run state.orchestrate orch.ceph_openstack"
ROTATE_ORCH = "salt-run state.orchestrate orch.ceph_openstack_rotate"

#: A cephx key in base64: AES (40 characters) or AES256K (60); crypto type 1 or 2 makes
#: them start with AQ or Ag.
_KEY = re.compile(r"A[Qg][A-Za-z0-9+/]{36}==|A[Qg][A-Za-z0-9+/]{57}=")
KEY_SHOWN = "<cephx key>"

#: Lines of a change's detail and characters of a value shown per item.
_MAX_LINES = 12
_MAX_VALUE = 80

#: How a state of the formula is reported: (module, function) -> kind.
_KINDS = {
    ("cephpool", "present"): "pool",
    ("ceph_openstack", "client_present"): "user",
    ("ceph_openstack", "published"): "published keys",
    ("ceph_openstack", "ceph_conf"): "file",
    ("ceph_openstack", "keyring"): "keyring",
    ("ceph_openstack", "libvirt_secret"): "secret",
    ("ceph_openstack", "service_running"): "service",
    ("ceph_openstack", "pillar_valid"): "pillar",
    ("openstack_ini", "options_present"): "options",
    ("openstack_ini", "options_absent"): "options",
    ("host", "present"): "hosts",
    ("pkg", "installed"): "packages",
    ("pkgrepo", "managed"): "repository",
    ("file", "directory"): "directory",
}

#: The pillar key of an options state, by state ID.
_OPTION_PILLAR = {
    "ceph_openstack-cinder-conf": "ceph_openstack:cinder",
    "ceph_openstack-glance-conf": "ceph_openstack:glance",
    "ceph_openstack-glance-single-store-options": "ceph_openstack:glance",
    "ceph_openstack-nova-conf": "ceph_openstack:nova",
}

#: Health checks whose detail lines name a pool or a cephx entity.
_POOL_IN_DETAIL = re.compile(r"pool '([^']+)'")
_ENTITY_IN_DETAIL = re.compile(r"entity (\S+) using")


def __virtual__():
    return __virtualname__


# -- the reducer (pure: unit-tested without Salt's loader) ----------------------------------


def _scrub(value):
    """``value`` (str, list, dict, nested) with every cephx-key-shaped string replaced."""
    if isinstance(value, str):
        return _KEY.sub(KEY_SHOWN, value)
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(item) for item in value]
    return value


def _show(value):
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE - 3] + "..."


def _describe_changes(changes, path=()):
    """A state's ``changes`` as lines: ``size: 2 -> 1``, ``[ceph]/rbd_pool: x -> volumes``."""
    lines = []
    if isinstance(changes, dict) and changes and set(changes) <= {"old", "new"}:
        where = " ".join(path)
        lines.append(f"{where + ': ' if where else ''}{_show(changes.get('old'))} -> "
                     f"{_show(changes.get('new'))}")
    elif isinstance(changes, dict):
        for key in sorted(changes, key=str):
            lines.extend(_describe_changes(changes[key], path + (str(key),)))
    else:
        where = " ".join(path)
        lines.append(f"{where + ': ' if where else ''}{_show(changes)}")
    return lines


def _split_tag(tag, ret):
    """(module, state ID, name, function) of a state return's tag."""
    parts = str(tag).split("_|-")
    module, fun = parts[0], parts[-1]
    sid = ret.get("__id__") or (parts[1] if len(parts) > 2 else tag)
    name = ret.get("name") or (parts[2] if len(parts) > 3 else sid)
    return module, sid, name, fun


def _cluster_of(sid, main):
    """The cluster a state ID belongs to (another cluster's IDs end in ``@<cluster>``)."""
    base, _, cluster = sid.rpartition("@")
    return (base, cluster) if base and cluster else (sid, main)


def _prefix(cluster, main):
    return "ceph_openstack:" if cluster == main else f"ceph_openstack:clusters:{cluster}:"


def _apply(node):
    return f"salt {node} state.apply {SLS}"


def _item(node, kind, what, fix, **more):
    item = {"node": node, "kind": kind, "what": what, "fix": fix}
    item.update({key: value for key, value in more.items() if value not in (None, [], "")})
    return item


def _state_item(node, tag, ret, main):
    """The drift item of one state's return, or None when it has nothing to do."""
    module, sid, name, fun = _split_tag(tag, ret)
    if ret.get("result") is True and not ret.get("changes"):
        return None
    kind = _KINDS.get((module, fun), "state")
    base, cluster = _cluster_of(sid, main)
    pillar, what, fix = None, str(name), _apply(node)
    if kind == "pool":
        pillar, what = f"{_prefix(cluster, main)}pools:{name}", f"pool {name}"
    elif kind == "user":
        client = base[len("ceph_openstack-client-"):]
        pillar, what, fix = (f"{_prefix(cluster, main)}clients:{client}", f"client.{client}",
                             ORCH)
    elif kind == "published keys":
        pillar, what, fix = f"{_prefix(cluster, main)}clients", "keys in the Salt mine", ORCH
    elif kind == "keyring":
        client = base[len("ceph_openstack-keyring-"):]
        pillar = f"{_prefix(cluster, main)}clients:{client}"
    elif kind == "secret":
        pillar = f"ceph_openstack:libvirt:secrets:{base[len('ceph_openstack-libvirt-secret-'):]}"
        what = f"libvirt secret {name}"
    elif kind == "file":
        pillar = f"{_prefix(cluster, main)}fsid, mon_host"
    elif kind == "options":
        pillar = _OPTION_PILLAR.get(sid)
    elif kind == "hosts":
        pillar, what = f"ceph_openstack:hosts:{name}", f"/etc/hosts entry {name}"
    elif kind == "packages":
        pillar, what = "ceph_openstack:packages", "packages"
    elif kind == "repository":
        pillar = "ceph_openstack:repo"
    elif kind == "service":
        pillar, what = "ceph_openstack:services", f"service {name}"
    elif kind == "pillar":
        pillar, fix = "ceph_openstack", f"salt {node} ceph_openstack.validate"
    if cluster != main and kind not in ("pool", "user", "published keys"):
        what += f" (cluster {cluster})"
    failed = ret.get("result") is False
    comment = str(ret.get("comment") or "")
    detail = _describe_changes(ret["changes"]) if ret.get("changes") else []
    if failed or not detail:
        detail.extend(line for line in comment.splitlines() if line.strip())
    if len(detail) > _MAX_LINES:
        detail = detail[:_MAX_LINES - 1] + [f"... {len(detail) - _MAX_LINES + 1} more"]
    if failed:
        fix = f"see the error, then {fix}"
    return _item(node, kind, what, fix, state=sid, cluster=None if cluster == main else cluster,
                 detail=detail, pillar=pillar, error=True if failed else None)


def _reduce_states(node, run, main="ceph"):
    """
    ``(items, served)`` of a ``state.apply ceph_openstack test=True`` return on ``node``:
    a drift item for every state that would change something or failed, in the order the
    states run, and ``{cluster: {"pools": [...], "clients": [...]}}`` of the clusters this
    node is a mon of (from the mon part's state IDs; ``main``: the main cluster's name).
    A run that did not render (a list of errors, or a string) is one item.
    """
    if not isinstance(run, dict):
        lines = [str(line) for line in (run if isinstance(run, list) else [run])]
        busy = any("is running as PID" in line for line in lines)
        fix = (f"wait for the state run in progress (salt {node} saltutil.running), then "
               "run the report again" if busy else
               f"salt {node} ceph_openstack.validate; salt {node} state.apply {SLS} test=True")
        return [_item(node, "busy" if busy else "render", f"state.apply {SLS}", fix,
                      detail=lines[:_MAX_LINES], error=True)], {}
    items, served = [], {}
    ordered = sorted(run.items(), key=lambda pair: (
        pair[1].get("__run_num__", 0) if isinstance(pair[1], dict) else 0, str(pair[0])))
    for tag, ret in ordered:
        if not isinstance(ret, dict):
            continue
        module, sid, name, fun = _split_tag(tag, ret)
        base, cluster = _cluster_of(sid, main)
        if (module, fun) == ("ceph_openstack", "published"):
            served.setdefault(cluster, {"pools": [], "clients": []})
        elif (module, fun) == ("cephpool", "present"):
            served.setdefault(cluster, {"pools": [], "clients": []})["pools"].append(str(name))
        elif (module, fun) == ("ceph_openstack", "client_present"):
            served.setdefault(cluster, {"pools": [], "clients": []})["clients"].append(
                base[len("ceph_openstack-client-"):])
        item = _state_item(node, tag, ret, main)
        if item:
            items.append(item)
    return items, served


def _rotate_command(clients, cluster=None):
    """The command that rotates ``clients`` (on ``cluster``; None: the main one)."""
    request = {"clients": sorted(clients)}
    if cluster:
        request["cluster"] = cluster
    return f"{ROTATE_ORCH} pillar='{json.dumps({'ceph_openstack_rotate': request})}'"


def _health_items(node, health, cluster, main, pools, clients):
    """
    ``(items, others)``: a drift item per Ceph health check (``ceph health detail`` JSON)
    whose detail names one of the formula's ``pools`` or users (``clients``, names without
    ``client.``) on ``cluster``, with only those lines; and the codes of every other check.
    """
    items, others = [], []
    entities = {f"client.{client}" for client in clients}
    prefix = _prefix(cluster, main)
    for code, check in sorted(((health or {}).get("checks") or {}).items()):
        lines = [str(entry.get("message", "")) for entry in check.get("detail") or []
                 if isinstance(entry, dict)]
        named_pools = sorted({found for line in lines for found in _POOL_IN_DETAIL.findall(line)
                              if found in pools})
        named_users = sorted({found for line in lines for found in _ENTITY_IN_DETAIL.findall(line)
                              if found in entities})
        if not (named_pools or named_users):
            others.append(code)
            continue
        ours = [line for line in lines
                if any(f"pool '{pool}'" in line for pool in named_pools)
                or any(f"entity {user} " in line for user in named_users)]
        summary = str((check.get("summary") or {}).get("message") or code)
        if code == "AUTH_INSECURE_CLIENT_KEY_TYPE":
            fix = _rotate_command([user[len("client."):] for user in named_users],
                                 None if cluster == main else cluster)
            pillar = ", ".join(f"{prefix}clients:{user[len('client.'):]}"
                               for user in named_users)
        elif code == "POOL_APP_NOT_ENABLED":
            fix = _apply(node)
            pillar = ", ".join(f"{prefix}pools:{pool}" for pool in named_pools)
        else:
            fix = (f"ceph health detail; a pool's size, pg_num and quotas are pillar "
                   f"{prefix}pools:<pool> (then {_apply(node)}), its capacity is the cluster's")
            pillar = ", ".join(f"{prefix}pools:{pool}" for pool in named_pools) or None
        items.append(_item(node, "health", code, fix, cluster=cluster,
                           severity=check.get("severity"), detail=[summary] + ours,
                           pillar=pillar))
    return items, others


def _key_summary(info, record, now=None):
    """Type, creation time and age of a user's key (``cephauth.key_info``), its pending key
    and the formula's record of its last rotation (``cephauth.rotation_record``)."""
    now = time.time() if now is None else now
    key = (info or {}).get("key") or {}
    created = key.get("created")
    record = record or {}
    rotated = record.get("at") if record.get("key_created") == created and created else None
    pending = (info or {}).get("pending")
    return {
        "type": key.get("type"),
        "created": created,
        "age_days": round((now - created) / 86400, 1) if created else None,
        "rotated": rotated,
        "pending": pending.get("type") if isinstance(pending, dict) else None,
    }


def _verify_items(node, found, items):
    """Drift items of ``ceph_openstack.verify``'s failing checks, except those that only
    repeat an item of the state run (a missing keyring is both)."""
    known = [item["what"].split(" (cluster ")[0] for item in items]
    extra = []
    for label, problem in sorted(((found or {}).get("checks") or {}).items()):
        if problem == "ok" or any(what in f"{label} {problem}" for what in known):
            continue
        extra.append(_item(node, "check", label, f"{_apply(node)}; salt {node} "
                           "ceph_openstack.verify", detail=[str(problem)]))
    return extra


# -- on the node -----------------------------------------------------------------------------


def _main_cluster():
    return (__pillar__.get("ceph_openstack") or {}).get("cluster") or "ceph"


def _roles():
    roles = __grains__.get("role") or []
    return [roles] if isinstance(roles, str) else list(roles)


def _state_run():
    """``state.apply ceph_openstack test=True`` here; the job's own return code is left as
    it was (a state that would fail is an item of the report, not a failed report)."""
    had = "retcode" in __context__
    before = __context__.get("retcode")
    try:
        return __salt__["state.apply"](SLS, test=True)
    finally:
        if had:
            __context__["retcode"] = before
        else:
            __context__.pop("retcode", None)


def _connection(cluster, main):
    """The connection keywords of the mon states for ``cluster``: none for the main one,
    else the minion config ``ceph_openstack:clusters:<cluster>`` (as map.jinja's
    ``connect``)."""
    if cluster == main:
        return {}
    found = __salt__["config.get"](f"ceph_openstack:clusters:{cluster}", {})
    return {key: value for key, value in (found if isinstance(found, dict) else {}).items()
            if key in ("conf", "keyring", "client_id", "cluster", "timeout")}


def _ceph(args, connection):
    """One ``ceph`` command's JSON output (the project's CLI helper; one shared
    connection per job)."""
    conn = ceph_cli.connection(__salt__["config.get"], **connection)
    return ceph_cli.run(__salt__["cmd.run_all"], conn, args, context=__context__)


def _cluster_view(node, cluster, main, served):
    """What this mon sees of ``cluster``: health (the formula's checks as items, others by
    code) and each formula user's key type and age."""
    connection = _connection(cluster, main)
    view = {"mon": node, "items": [], "keys": {}, "other_checks": [], "notes": {}}
    try:
        health = _ceph(["health", "detail"], connection) or {}
        view["health"] = health.get("status")
        view["items"], view["other_checks"] = _health_items(
            node, health, cluster, main, served["pools"], served["clients"])
    except CommandExecutionError as exc:
        view["health"] = None
        view["items"].append(_item(node, "health", "ceph health detail",
                                   f"see the error, then {_apply(node)}", cluster=cluster,
                                   detail=[str(exc)], error=True))
    for client in served["clients"]:
        entity = f"client.{client}"
        try:
            info = __salt__["cephauth.key_info"](entity, **connection)
        except CommandExecutionError as exc:
            view["notes"][entity] = str(exc)
            continue
        try:
            record = __salt__["cephauth.rotation_record"](entity, **connection)
        except CommandExecutionError as exc:
            record = None
            view["notes"][entity] = f"rotation record unreadable: {exc}"
        view["keys"][entity] = _key_summary(info, record)
    if not view["notes"]:
        del view["notes"]
    return view


def _verify(node, items):
    """``(items, note)`` of ``ceph_openstack.verify`` here (its service checks without
    waiting: ``settle=0``)."""
    try:
        found = __salt__["ceph_openstack.verify"](settle=0)
    except CommandExecutionError as exc:
        return [], f"verify could not run: {exc}"
    return _verify_items(node, found, items), None


def drift(files=None, hash_type="sha256", verify=True, health=True):
    """
    What differs on this node from its pillar, changing nothing.

    - Every state of ``state.apply ceph_openstack test=True`` that would change something,
      or fails, is an item: its kind (pool, user, keyring, secret, file, options, ...),
      what it manages, what would change (never a key), the pillar key and the command
      that fixes it.
    - ``files`` (``{"_modules/cephpool.py": <hash>, ...}``, the master's): synced formula
      files that differ from them are an item (fixed by ``saltutil.sync_all``).
    - On a mon, for each cluster it serves (``health``): the Ceph health checks whose
      detail names a pool or user of the formula are items (an insecure key type's fix is
      the key rotation), the other checks are listed by code, and each formula user's
      key type, creation time, age and last rotation are given.
    - On a controller or compute (``verify``): the failing checks of
      ``ceph_openstack.verify`` (with ``settle=0``) that no state item already names.

    Returns ``{"node", "roles", "items": [...], "clusters": {name: {...}}, "seconds"}``.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack_report.drift
        salt -G role:mon ceph_openstack_report.drift verify=False
    """
    started = time.monotonic()
    node = __grains__["id"]
    main = _main_cluster()
    roles = _roles()
    items, notes = [], {}
    if files:
        stale = __salt__["ceph_openstack_rollout.stale"](files, hash_type)
        if stale:
            items.append(_item(node, "modules", "synced formula modules",
                               f"salt {node} saltutil.sync_all",
                               detail=[f"differs from the master's: {', '.join(stale)}"]))
    state_items, served = _reduce_states(node, _state_run(), main)
    items.extend(state_items)
    clusters = {}
    if health and "mon" in roles:
        for cluster in sorted(served):
            clusters[cluster] = _cluster_view(node, cluster, main, served[cluster])
    if verify and {"controller", "compute"} & set(roles):
        more, note = _verify(node, items)
        items.extend(more)
        if note:
            notes["verify"] = note
    report = {"node": node, "roles": roles, "items": items, "clusters": clusters,
              "seconds": round(time.monotonic() - started, 2)}
    if notes:
        report["notes"] = notes
    return _scrub(report)
