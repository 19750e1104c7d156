"""
The key rotation's states (``orch.ceph_openstack_rotate``, SLS ``ceph_openstack.rotate.*``).

The mon plans (published without keys under ``ceph_openstack_rotation``), the nodes check,
the mon stages the new key (a pending key where the cluster has them, else the key itself)
and publishes it under the client's key alias, the nodes write it and verify it, and only
then the mon commits it. See README "Key rotation".

Every step reads pillar ``ceph_openstack_rotate`` (the clients, the cluster, the acting
mon), which the orchestration passes. The keyrings and libvirt secrets are written by the
rollout's ``ceph_openstack.keyring`` and ``ceph_openstack.libvirt_secret``; the keys travel
through the mine as in the rollout (``_utils/ceph_openstack_mine.py``).
"""

import importlib.util
import json
import os
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
ceph_openstack_mine = _helper("ceph_openstack_mine")
cephx = _helper("cephx")

__virtualname__ = "ceph_openstack_rotation"

ROTATION_ALIAS = "ceph_openstack_rotation"
ROTATE_ORCH = "orch.ceph_openstack_rotate"


def __virtual__():
    return __virtualname__


def _ret(name, comment="", result=True, changes=None):
    """A state's return."""
    return {"name": name, "result": result, "changes": changes or {}, "comment": comment}


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


def _rotated_pillar():
    """``(settings, pillar key prefix)`` of the cluster this rotation works on."""
    return ceph_openstack_mine.cluster_pillar(__pillar__, _rotated())


def _given_key(client):
    """The key of client.<client> in the rotated cluster's pillar, else None."""
    return ceph_openstack_mine.pillar_key(__pillar__, client, _rotated())


def _ref(client, ceph_cluster=None):
    """How the SLS name a client: ``<client>``, ``<client>@<cluster>`` on another cluster."""
    return client + ceph_openstack_mine.suffix(ceph_cluster)


def _rotation_alias():
    return ROTATION_ALIAS + ceph_openstack_mine.suffix(_rotated())


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
    settings, prefix = _rotated_pillar()
    clients = settings.get("clients") or {}
    names = request.get("clients")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return ["ceph_openstack_rotate:clients must be a non-empty list of client names, "
                "e.g. [cinder]"]
    problems = [f"ceph_openstack_rotate:clients: {name} is not in {prefix}clients"
                for name in names if name not in clients]
    problems += [f"ceph_openstack_rotate:clients: {name} is marked absent "
                 f"({prefix}clients:{name}:absent): it is being withdrawn, not rotated"
                 for name in names if isinstance(clients.get(name), dict)
                 and clients[name].get("absent") is True]
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
    pillar_key = _given_key(client)
    if pillar_key:
        where = f"{_rotated_pillar()[1]}clients:{client}:key"
        problem = cephx.key_type_problem(pillar_key, allowed, where)
        if problem:
            return f"{entity}: {problem}"
        current = __salt__["cephauth.get_key"](entity, **connection)
        if ceph_openstack_mine.same(current, pillar_key):
            return {"mode": "done", "key_type": info["key"]["type"],
                    "why": f"holds the key in pillar {where} (change it there to rotate)"}
        return {"mode": "replace", "key_type": cephx.key_type(pillar_key),
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


def planned(name="ceph_openstack_rotate", targets=None, **connection):
    """
    Decide, on a mon, what rotating the clients of pillar ``ceph_openstack_rotate:clients``
    means on this cluster, and publish that plan (no key in it) for the nodes. Fails,
    changing nothing, on a bad request or a pillar key the cluster would not accept.

    .. code-block:: yaml

        ceph_openstack-rotation-planned:
          ceph_openstack_rotation.planned:
            - targets: {mon: 'G@role:mon', controller: 'G@role:controller',
                        compute: 'G@role:compute'}
    """
    mons = (targets or {}).get("mon")
    targets = _rotation_targets(targets)
    request = _request()
    problems = _request_problems(request)
    if request.get("mon") and mons and not __salt__["match.compound"](mons):
        problems.append(f"ceph_openstack_rotate:mon: {__grains__['id']} is not a mon of the "
                        f"cluster (pillar {_rotated_pillar()[1]}targets:mon is "
                        f"{mons}); name a mon or leave it out")
    if problems:
        return _ret(name, "; ".join(problems), result=False)
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
            return _ret(name, "; ".join(problems) + "; nothing changed", result=False)
        value = json.dumps({"pending_keys": pending_keys, "clients": plan}, sort_keys=True)
        # Bookkeeping for the nodes, not a change of the cluster: published under test too.
        acl = ceph_openstack_mine.acl(["controller", "compute"], targets)
        entry = ceph_openstack_mine.entry("test.echo", [value], acl)
        ceph_openstack_mine.publish(
            __salt__["mine.update"], __salt__["mine.get"], __context__, __pillar__,
            __grains__["id"], {_rotation_alias(): (entry, value)}, test=False)
    except CommandExecutionError as exc:
        return _ret(name, exc.strerror, result=False)
    lines = [f"client.{client}: {step['why']}" for client, step in plan.items()]
    if not pending_keys:
        lines.append("Pacific 16.2 has no pending keys: the old key of each client above "
                     "dies the moment its new key is set")
    return _ret(name, "\n".join(lines))


def _plan(targets):
    """The plan a mon published for this run (``{}`` before one did)."""
    text = ceph_openstack_mine.mon_value(
        __salt__["mine.get"], __context__, __pillar__, _rotation_alias(), targets)
    try:
        return json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}


def _no_plan(name):
    return _ret(name, f"no rotation plan: run the whole orchestration ({_resume_command()})",
                result=False)


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


def ready(name="ceph_openstack_rotate", targets=None, secrets=None, uri=None):
    """
    Before a rotation sets any key: on a compute, fail when a running guest uses the libvirt
    secret of a client whose old key dies at once (Pacific, or a new key from pillar),
    unless ``ceph_openstack_rotate:force``. That the step runs on every node at all is the
    other check: the orchestration stops when one does not answer.

    secrets
        ``{uuid: client}`` of the libvirt secrets on this node (computes).

    .. code-block:: yaml

        ceph_openstack-rotation-ready:
          ceph_openstack_rotation.ready:
            - targets: {mon: 'G@role:mon'}
            - secrets: {691c3607-7ca3-433a-a0c0-5805cea8afa0: cinder}
    """
    targets = _rotation_targets(targets)
    if not _plan(targets):
        return _ret(name, "no rotation plan published by a mon: run the whole orchestration "
                          f"({_resume_command()})", result=False)
    try:
        problems, notes = _guest_problems(secrets or {}, targets, "before", uri)
    except CommandExecutionError as exc:
        return _ret(name, exc.strerror, result=False)
    if problems:
        return _ret(name, "; ".join(problems) + "; nothing changed", result=False)
    return _ret(name, "; ".join(notes) or f"{__grains__['id']} is ready for the rotation")


def _client_roles(client):
    clients = _rotated_pillar()[0].get("clients") or {}
    return (clients.get(client) or {}).get("roles") or []


def staged(name="ceph_openstack_rotate", targets=None, **connection):
    """
    On a mon, give each client the plan rotates its new key: a pending key (Quincy and
    later: both keys log in until the commit (``committed``) or its first use), or, where that
    cannot be (Pacific, a key from pillar), the new key itself. Then publish, for the nodes,
    the key each listed client should hold. ``changes`` never holds a key.

    .. code-block:: yaml

        ceph_openstack-rotation-staged:
          ceph_openstack_rotation.staged:
            - targets: {mon: 'G@role:mon', controller: 'G@role:controller',
                        compute: 'G@role:compute'}
    """
    targets = _rotation_targets(targets)
    plan = _plan(targets)
    if not plan:
        return _no_plan(name)
    test = __opts__["test"]
    changes = {}
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
                    key = _given_key(client) or __salt__["cephauth.generate_key"]()
                    __salt__["cephauth.import_key"](entity, key, **connection)
                    __salt__["cephauth.record_rotation"](entity, **connection)
                changes[entity] = {"key": {"old": "old key (invalid from now)",
                                           "new": step["key_type"].upper()}}
        entries = {}
        for client in plan["clients"]:
            entity = f"client.{client}"
            key = None if test and entity in changes else __salt__[
                "cephauth.get_pending_key"](entity, **connection)
            acl = ceph_openstack_mine.acl(_client_roles(client), targets)
            definition = ceph_openstack_mine.entry(
                "cephauth.get_pending_key", [entity], acl)
            entries[ceph_openstack_mine.key_alias(client, _rotated())] = (
                definition, key)
        published = ceph_openstack_mine.publish(
            __salt__["mine.update"], __salt__["mine.get"], __context__, __pillar__,
            __grains__["id"], entries, test=test)
    except CommandExecutionError as exc:
        return _ret(name, exc.strerror, result=False, changes=changes if not test else {})
    if published:
        changes["published"] = published
    if not changes:
        return _ret(name, "every listed client's key is staged and published")
    verb = "would be " if test else ""
    done = [f"{entity}: {'pending key' if 'pending key' in c else 'key'} {verb}set "
            f"({(c.get('pending key') or c.get('key'))['new']}): "
            f"{plan['clients'][entity.split('.', 1)[1]]['why']}"
            for entity, c in changes.items() if entity != "published"]
    if published:
        done.append(f"{verb}published {', '.join(published)}")
    return _ret(name, "; ".join(done), result=None if test else True, changes=changes)


def committed(name="ceph_openstack_rotate", targets=None, **connection):
    """
    On a mon, after every node verified the new key: commit each client's pending key (the
    old key stops logging in now) and record the rotation. Run last.

    .. code-block:: yaml

        ceph_openstack-rotation-committed:
          ceph_openstack_rotation.committed:
            - targets: {mon: 'G@role:mon'}
    """
    targets = _rotation_targets(targets)
    plan = _plan(targets)
    if not plan:
        return _no_plan(name)
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
        return _ret(name, exc.strerror, result=False,
                    changes={} if __opts__["test"] else changes)
    verb = "would be " if __opts__["test"] else ""
    comment = (f"pending key {verb}committed for {', '.join(changes)}; their old keys "
               f"{verb}invalid" if changes else "no pending key to commit")
    return _ret(name, comment, result=None if __opts__["test"] and changes else True,
                changes=changes)


def _new_key(client, targets):
    """``(key, problem)``: the key of client.<client> the acting mon published."""
    return ceph_openstack_mine.client_key(
        __salt__["mine.get"], __context__, __pillar__, client, targets, _rotated())


def _predicted(name, what, client):
    return _ret(name, f"{what} would get client.{client}'s new key", result=None,
                changes={"key": "changed"})


def keyring(name, client, targets, user=None, group=None, mode="0640"):
    """
    ``ceph_openstack.keyring`` for a rotation: writes the key the mon staged and published. Under
    ``test=True`` (when no new key exists yet) it predicts the change for a client the
    plan rotates.

    .. code-block:: yaml

        /etc/ceph/ceph.client.cinder.keyring:
          ceph_openstack_rotation.keyring:
            - client: cinder
    """
    targets = _rotation_targets(targets)
    if __opts__["test"] and _rotating(client, targets) and os.path.exists(name):
        return _predicted(name, f"keyring {name}", client)
    return _mark_restart(__states__["ceph_openstack.keyring"](
        name, client, targets, user=user, group=group, mode=mode, ceph_cluster=_rotated()),
        client)


def secret(name, client, targets, uri=None):
    """
    ``ceph_openstack.libvirt_secret`` for a rotation: sets the staged key as the secret's
    value in place (same UUID), first recording which running guests use the secret (they
    keep the old key until they restart or move; ``verified`` names them). Under
    ``test=True`` it predicts the change for a client the plan rotates.

    .. code-block:: yaml

        691c3607-7ca3-433a-a0c0-5805cea8afa0:
          ceph_openstack_rotation.secret:
            - client: cinder
    """
    targets = _rotation_targets(targets)
    kwargs = {"uri": uri} if uri else {}
    if __opts__["test"]:
        if _rotating(client, targets):
            return _predicted(name, f"libvirt secret {name}", client)
        return __states__["ceph_openstack.libvirt_secret"](name, client, targets, uri=uri,
                                                           ceph_cluster=_rotated())
    key, problem = _new_key(client, targets)
    if problem:
        return _ret(name, problem, result=False)
    try:
        if __salt__["virtsecret.get"](name, **kwargs) is not None and \
                __salt__["virtsecret.value_matches"](name, key, **kwargs) is False:
            guests = __salt__["virtsecret.guests"](name, **kwargs)
            path = _stale_guests_path(name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as record:
                json.dump({"guests": guests, "at": int(time.time())}, record)
    except (CommandExecutionError, OSError) as exc:
        return _ret(name, getattr(exc, "strerror", None) or str(exc), result=False)
    return _mark_restart(__states__["ceph_openstack.libvirt_secret"](
        name, client, targets, uri=uri, ceph_cluster=_rotated()), client)


def _login_problem(held):
    """None when a client (an entry of settings.jinja's ``clients``) logs in with its
    keyring here (a real cephx login)."""
    conn = ceph_cli.connection(
        __salt__["config.get"], conf=held["conf"], client_id=held["client"],
        keyring=held["keyring"], cluster=held["cluster"])
    try:
        ceph_cli.run(__salt__["cmd.run_all"], conn, ["mon", "stat"])
    except CommandExecutionError as exc:
        return exc.strerror
    return None


def verified(name="ceph_openstack_rotate", targets=None, login=False):
    """
    On each node, for every client the plan rotates and this node holds: the keyring (and
    on a compute the client's libvirt secret) holds the published new key. Before the
    commit (``login: False``) no running guest may still hold the old key (unless
    ``ceph_openstack_rotate:force``), and nothing logs in: Ceph commits a pending key at its
    first use. After it (``login: True``) each keyring logs in (a real cephx login).
    Fails naming each problem.

    .. code-block:: yaml

        ceph_openstack-rotation-verified:
          ceph_openstack_rotation.verified:
            - targets: {mon: 'G@role:mon'}
            - login: False
    """
    targets = _rotation_targets(targets)
    plan = _plan(targets)
    if not plan:
        return _no_plan(name)
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
        return _ret(name, "; ".join(problems) + (
            "" if login else "; the old keys stay valid"), result=False)
    return _ret(name, "; ".join(checked) or "no rotated client on this node")


def _client_verified(client, targets, settings, login):
    """(problems, notes) of ``verified`` for one client held here."""
    key, problem = _new_key(client, targets)
    if problem:
        return [problem], []
    ref = _ref(client, _rotated())
    path = settings["clients"][ref]["keyring"]
    held = cephx.keyring_file_key(path)
    if not ceph_openstack_mine.same(held, key):
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


def restart_due(name, targets=None):
    """
    Report a change (for services to ``watch``) when client ``name``'s keyring or secret
    changed in a rotation and its services have not restarted since: once per change, also
    when the run that changed it stopped before this step. ``name`` is
    ``<client>@<cluster>`` for a client of another cluster.

    .. code-block:: yaml

        cinder:
          ceph_openstack_rotation.restart_due:
            - targets: {mon: 'G@role:mon'}
    """
    targets = _rotation_targets(targets)
    marker = _restart_marker(name)
    due = os.path.exists(marker) or (
        __opts__["test"] and _rotating(name.split("@", 1)[0], targets))
    if not due:
        return _ret(name, f"no restart due for client.{name}")
    changes = {"restart": "due"}
    if __opts__["test"]:
        return _ret(name, f"the services using client.{name} would restart", result=None,
                    changes=changes)
    os.unlink(marker)
    return _ret(name, f"the services using client.{name} restart", changes=changes)
