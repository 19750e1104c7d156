"""
Converge Ceph pools: create them, enable their application, initialise them
for RBD and keep their properties as given.

The runbook's ``ceph osd pool create volumes 128`` + ``rbd pool init volumes``
becomes:

.. code-block:: yaml

    volumes:
      cephpool.present:
        - pg_num: 128
        - size: 3
        - max_bytes: 10T

    scratch:
      cephpool.absent:
        - confirm: True

Properties are those of the ``cephpool`` execution module (the names of
``ceph osd pool get/set`` and ``set-quota``). Only the properties given are
managed; a property given as ``None`` is left alone. The connection keywords
(``cluster``, ``conf``, ``client_id``, ``keyring``, ``timeout``) default to
``config.get('ceph_openstack:<keyword>')``.

Converging pools that are already right costs one ``ceph osd pool ls detail``
for the whole run (plus one ``osd crush rule dump`` when ``crush_rule`` is
given). For ``init``, one ``rados`` read per pool checks the ``rbd_info``
object the first time the minion sees the pool initialised; the minion then
records the pool (id and creation time, in its cachedir) and does not read it
again: Ceph never un-initialises a pool, and a pool deleted and created again
has another id and creation time, so it is checked anew.
"""

import importlib.util
import logging
import os
import sys

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

__virtualname__ = "cephpool"


def __virtual__():
    if "cephpool.get" in __salt__:
        return __virtualname__
    return (False, "cephpool state: the cephpool execution module could not be loaded")


def _start(name, cluster, conf, client_id, keyring, timeout):
    """The return skeleton and the connection keywords to pass on."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    conn = {
        "cluster": cluster,
        "conf": conf,
        "client_id": client_id,
        "keyring": keyring,
        "timeout": timeout,
    }
    return ret, {key: value for key, value in conn.items() if value is not None}


def _failure(name, exc):
    """A comment for a failed Ceph call (without Salt's "Additional info" dump)."""
    message = exc.error
    if message.startswith((f"pool {name} ", f"pool {name}:")):
        return "P" + message[1:]
    return f"Pool {name}: {message}"


def _bad_input(name, problems):
    return f"Bad input for cephpool {name!r}, nothing was done: {'; '.join(problems)}"


def present(
    name,
    pg_num=None,
    application="rbd",
    init=True,
    cluster=None,
    conf=None,
    client_id=None,
    keyring=None,
    timeout=None,
    **properties,
):
    """
    Ensure a replicated pool exists with the given properties, its application
    enabled and, for RBD, initialised like ``rbd pool init`` does.

    name
        The pool.

    pg_num
        Placement groups. With ``pg_autoscale_mode: on`` (given, or the pool's)
        it is used only when the pool is created: the autoscaler owns it after.

    application
        The application to enable (``rbd``, ``rgw``, ``cephfs``). A pool that
        has another application enabled already is refused, not changed.
        ``None`` leaves applications alone.

    init
        Initialise the pool for RBD (needs ``application: rbd``).

    properties
        Any of ``pgp_num``, ``size``, ``min_size``, ``pg_autoscale_mode``,
        ``target_size_ratio``, ``crush_rule`` (a rule name), ``max_objects``,
        ``max_bytes`` (a number of bytes or ``'100G'``; 0 = no quota). Changing
        ``size`` without ``min_size`` sets ``min_size`` to ``size - size // 2``.

    A change Ceph could not make as a whole (``min_size`` above ``size``,
    ``pg_num`` below the pool's ``pg_num_min``, another application enabled,
    an unknown crush rule, ...) fails with nothing changed.

    .. code-block:: yaml

        volumes:
          cephpool.present:
            - pg_num: 32
            - size: 3
            - max_bytes: 10T
            - timeout: 20
    """
    ret, conn = _start(name, cluster, conf, client_id, keyring, timeout)
    properties = {key: value for key, value in properties.items() if not key.startswith("__")}
    problems = []
    try:
        wanted = __salt__["cephpool.validate"](
            name, application=application, pg_num=pg_num, **properties
        )
    except CommandExecutionError as exc:
        problems.append(exc.error)
    if not isinstance(init, bool):
        problems.append(f"init must be True or False, not {init!r}")
    elif init and application != "rbd":
        problems.append(
            f"init: initialising a pool for RBD needs application 'rbd', not {application!r} "
            "(set init: False)"
        )
    try:
        ceph_cli.connection(__salt__["config.get"], **conn)
    except CommandExecutionError as exc:
        problems.append(exc.error)
    if problems:
        ret["comment"] = _bad_input(name, problems)
        return ret

    notes = []
    pg_num = wanted.get("pg_num")
    if pg_num and pg_num & (pg_num - 1):
        notes.append(
            f"Note: pg_num {wanted['pg_num']} is not a power of two; Ceph warns about that."
        )
    try:
        if __salt__["cephpool.exists"](name, **conn):
            _update(ret, name, wanted, application, init, conn, notes)
        else:
            try:
                _create(ret, name, wanted, application, init, conn)
            except CommandExecutionError as exc:
                if not (exc.info or {}).get("exists"):
                    raise
                # Another mon applying the same state created it meanwhile: converge that one.
                _update(ret, name, wanted, application, init, conn, notes)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = _failure(name, exc)
    ret["comment"] = " ".join([ret["comment"]] + notes)
    return ret


def _create(ret, name, wanted, application, init, conn):
    """Create the missing pool. Changes list every given value (there was no old one)."""
    changes = {"pool": {"old": None, "new": name}}
    changes.update({prop: {"old": None, "new": value} for prop, value in wanted.items()})
    if application:
        changes["application"] = {"old": None, "new": [application]}
    if init:
        changes["init"] = {"old": None, "new": True}
    if __opts__["test"]:
        # Checks what can be checked without writing: the name is free, the crush rule exists.
        __salt__["cephpool.create"](name, test=True, **wanted, **conn)
        ret.update(result=None, changes=changes, comment=f"Pool {name} would be created.")
        return
    try:
        __salt__["cephpool.create"](name, **wanted, **conn)
    except CommandExecutionError as exc:
        if (exc.info or {}).get("created"):
            ret["changes"] = {"pool": changes["pool"]}
        raise
    ret["changes"] = {
        key: value for key, value in changes.items() if key not in ("application", "init")
    }
    _enable(ret, name, application, changes, conn)
    ret.update(result=True, comment=f"Pool {name} created.")


_INIT_RECORD = os.path.join("ceph_openstack", "rbd_initialised_pools")


def _init_record():
    """The tokens of pools this minion has seen initialised (a set, read once per run)."""
    if "cephpool.init_record" not in __context__:
        tokens = set()
        cachedir = __opts__.get("cachedir")
        if cachedir:
            try:
                with open(os.path.join(cachedir, _INIT_RECORD), encoding="utf-8") as record:
                    tokens = set(record.read().split())
            except OSError:
                pass
        __context__["cephpool.init_record"] = tokens
    return __context__["cephpool.init_record"]


def _pool_token(current):
    return f"{current['pool_id']}@{current.get('create_time')}"


def _remember_initialised(current):
    """Record the pool as initialised (not under test=True, not without a cachedir)."""
    token = _pool_token(current)
    cachedir = __opts__.get("cachedir")
    if __opts__["test"] or not cachedir or token in _init_record():
        return
    path = os.path.join(cachedir, _INIT_RECORD)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as record:
            record.write(token + "\n")
    except OSError as exc:
        log.debug("cephpool: cannot record %s as initialised: %s", token, exc)
        return
    _init_record().add(token)


def _needs_init(name, current, conn):
    """True unless the pool is recorded or found initialised for RBD."""
    if _pool_token(current) in _init_record():
        return False
    if __salt__["cephpool.initialized"](name, **conn):
        _remember_initialised(current)
        return False
    return True


def _enable(ret, name, application, changes, conn):
    """Enable the application / initialise for RBD as planned in ``changes``."""
    if "init" in changes:
        # rbd pool init enables application rbd itself.
        __salt__["cephpool.init"](name, **conn)
    elif "application" in changes:
        __salt__["cephpool.application_enable"](name, application, **conn)
    ret["changes"].update({key: changes[key] for key in ("application", "init") if key in changes})


def _update(ret, name, wanted, application, init, conn, notes):
    """Bring an existing pool to ``wanted``; refuse the whole change if any part is impossible."""
    current = __salt__["cephpool.get"](name, resolve_crush_rule="crush_rule" in wanted, **conn)
    if wanted.get("pg_autoscale_mode", current["pg_autoscale_mode"]) == "on":
        for prop in ("pg_num", "pgp_num"):
            if prop in wanted and wanted.pop(prop) != current[prop]:
                notes.append(
                    f"Note: {prop} stays {current[prop]}: the autoscaler sets it "
                    "(pg_autoscale_mode on)."
                )

    problems = []
    enabled = sorted(current["application_metadata"])
    if application and enabled and application not in enabled:
        problems.append(
            f"application {', '.join(enabled)} is enabled on it already; "
            f"refusing to enable {application} too"
        )
    try:
        changes = __salt__["cephpool.set"](name, test=True, **wanted, **conn)
    except CommandExecutionError as exc:
        if "problems" not in (exc.info or {}):
            raise
        problems.extend(exc.info["problems"])
    if problems:
        ret["comment"] = (
            f"Refusing to change pool {name}, nothing was changed: {'; '.join(problems)}"
        )
        return

    properties_change = bool(changes)
    planned = dict(changes)
    if application and application not in enabled:
        planned["application"] = {"old": enabled, "new": sorted(enabled + [application])}
    if init and _needs_init(name, current, conn):
        planned["init"] = {"old": False, "new": True}

    if not planned:
        ret.update(result=True, comment=f"Pool {name} is in the desired state.")
        return
    if __opts__["test"]:
        ret.update(
            result=None,
            changes=planned,
            comment=f"Pool {name} would be changed: {', '.join(planned)}.",
        )
        return
    if properties_change:
        try:
            ret["changes"].update(__salt__["cephpool.set"](name, **wanted, **conn))
        except CommandExecutionError as exc:
            ret["changes"].update((exc.info or {}).get("changes") or {})
            raise
    _enable(ret, name, application, planned, conn)
    if "init" in planned:
        _remember_initialised(current)
    ret.update(result=True, comment=f"Pool {name} changed: {', '.join(ret['changes'])}.")


def absent(
    name,
    confirm=False,
    cluster=None,
    conf=None,
    client_id=None,
    keyring=None,
    timeout=None,
):
    """
    Ensure a pool does not exist. Deleting a pool destroys all its data, so an
    existing pool is deleted only with ``confirm: True`` (and when the mons
    allow it: ``mon_allow_pool_delete``); without it the state fails and
    changes nothing.

    name
        The pool.

    confirm
        ``True`` to really delete the pool.

    .. code-block:: yaml

        scratch:
          cephpool.absent:
            - confirm: True
    """
    ret, conn = _start(name, cluster, conf, client_id, keyring, timeout)
    problems = []
    for check in (
        lambda: __salt__["cephpool.validate"](name),
        lambda: ceph_cli.connection(__salt__["config.get"], **conn),
    ):
        try:
            check()
        except CommandExecutionError as exc:
            problems.append(exc.error)
    if not isinstance(confirm, bool):
        problems.append(f"confirm must be True or False, not {confirm!r}")
    if problems:
        ret["comment"] = _bad_input(name, problems)
        return ret

    try:
        if not __salt__["cephpool.exists"](name, **conn):
            ret.update(result=True, comment=f"Pool {name} is already absent.")
            return ret
        if not confirm:
            ret["comment"] = (
                f"Pool {name} exists and was not deleted: deleting it destroys all its data. "
                "Set confirm: True to delete it."
            )
            return ret
        changes = {"pool": {"old": name, "new": None}}
        if __opts__["test"]:
            ret.update(result=None, changes=changes, comment=f"Pool {name} would be deleted.")
            return ret
        __salt__["cephpool.delete"](name, confirm=True, **conn)
        ret.update(result=True, changes=changes, comment=f"Pool {name} deleted.")
    except CommandExecutionError as exc:
        ret["comment"] = _failure(name, exc)
    return ret
