"""
Manage Ceph pools (for RBD) through the ``ceph``, ``rbd`` and ``rados`` CLIs.

:depends: ``ceph-common`` (the ``ceph``, ``rbd`` and ``rados`` tools)

Every function takes the connection keywords ``cluster``, ``conf``,
``client_id``, ``keyring`` and ``timeout``; unset ones come from
``config.get('ceph_openstack:<keyword>')`` (see ``ceph_cli.connection``).

Pool properties use the names of ``ceph osd pool get/set``: ``pg_num``,
``pgp_num``, ``size``, ``min_size``, ``pg_autoscale_mode``,
``target_size_ratio``, ``crush_rule`` (a rule name), and the quotas of
``ceph osd pool set-quota``: ``max_objects`` and ``max_bytes`` (0 = no quota).

Cost: everything is read from one ``ceph osd pool ls detail`` per run, kept in
``__context__`` and dropped by this module's own writes, so checking many pools
costs one ``ceph`` call (plus one ``osd crush rule dump`` when rule names are
needed, and one cheap ``rados`` read per pool for :func:`initialized`). The
run's ``ceph`` commands share one connection (``ceph_session``; off with config
``ceph_openstack:session: False``): a write costs a mon round trip, not a process.
"""

import importlib.util
import os
import sys
import copy
import logging
import math
import re
import time

import salt.utils.args
import salt.utils.path
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
ceph_session = _helper("ceph_session")

log = logging.getLogger(__name__)

__virtualname__ = "cephpool"
__func_alias__ = {"list_": "list", "set_": "set"}

#: The properties :func:`set_` manages, in the order it applies them: the
#: autoscale mode first (so the autoscaler does not undo a new pg_num), then
#: the changes Ceph may refuse for cluster-wide limits, size before min_size
#: (setting size resets min_size) and pg_num before pgp_num.
PROPERTIES = (
    "pg_autoscale_mode",
    "pg_num",
    "pgp_num",
    "size",
    "min_size",
    "crush_rule",
    "target_size_ratio",
    "max_objects",
    "max_bytes",
)
_QUOTAS = ("max_objects", "max_bytes")

#: The connection keywords (ceph_cli.CONNECTION_DEFAULTS; the loader exposes
#: only functions of utils modules, so the names are repeated here).
CONNECTION = ("cluster", "conf", "client_id", "keyring", "timeout")

#: What ``rbd pool init`` leaves in the pool's ``rbd_info`` object once librbd
#: has validated the pool (librbd's ValidatePoolRequest checks the same text).
_RBD_VALIDATED = "overwrite validated"

#: A cached listing is trusted this long. A run needs far less; the limit only
#: matters where ``__context__`` outlives a run (a minion with
#: ``multiprocessing: False`` keeps it across jobs, and state runs start from a
#: copy of it), where it bounds how stale a reading can get.
_CACHE_SECONDS = 60

_BYTE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_BYTES = re.compile(r"^\s*(\d+)\s*([KMGTP]?)(?:i?B)?\s*$", re.IGNORECASE)


def __virtual__():
    if salt.utils.path.which("ceph") is None:
        return (False, "cephpool: the ceph command-line tool is not installed (ceph-common)")
    return __virtualname__


# -- input checks (no Ceph involved) -------------------------------------------


def _name_problem(name):
    """Why ``name`` cannot be a pool name, or ``None``."""
    if not isinstance(name, str) or not name:
        return f"name: a pool name must be a non-empty string, not {name!r}"
    if len(name) > 255:
        return "name: a pool name must be at most 255 characters long"
    if any(char.isspace() or not char.isprintable() for char in name):
        return f"name: pool name {name!r} contains whitespace or control characters"
    if "/" in name or "@" in name:
        # rbd image specs are pool/[namespace/]image[@snap]
        return f"name: pool name {name!r} must not contain '/' or '@'"
    if name[0] in ".-":
        # '.' names are Ceph's own pools (.mgr, .rgw.root); '-' would read as an option
        return f"name: pool name {name!r} must not start with '.' or '-'"
    return None


def _check_name(name):
    problem = _name_problem(name)
    if problem:
        raise CommandExecutionError(problem)


def _whole(arg, value, low, high=None):
    """``value`` as an int in [low, high]; ints and digit strings are accepted."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= low and (high is None or value <= high):
            return value
    span = f"from {low} to {high}" if high is not None else f"of at least {low}"
    raise ValueError(f"{arg} must be a whole number {span}, not {value!r}")


def _bytes(arg, value):
    """A byte count: a whole number, or a string such as ``10G`` / ``10GiB`` (powers of 1024)."""
    if isinstance(value, str):
        match = _BYTES.match(value)
        if match:
            return int(match.group(1)) * _BYTE_UNITS[match.group(2).upper()]
    try:
        return _whole(arg, value, 0)
    except ValueError:
        raise ValueError(
            f"{arg} must be a number of bytes (e.g. 10737418240 or '10G'; 0 = no quota), "
            f"not {value!r}"
        )


def _autoscale_mode(arg, value):
    # YAML reads unquoted on/off as booleans.
    value = {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value
    if value not in ("on", "off", "warn"):
        raise ValueError(f"{arg} must be 'on', 'off' or 'warn', not {value!r}")
    return value


def _ratio(arg, value):
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is not None and math.isfinite(number) and number >= 0:
            return number
    raise ValueError(f"{arg} must be a number of at least 0, not {value!r}")


def _word(arg, value):
    """A non-empty token without whitespace that cannot be read as an option."""
    if (
        not isinstance(value, str)
        or not value
        or value[0] == "-"
        or any(char.isspace() or not char.isprintable() for char in value)
    ):
        raise ValueError(f"{arg} must be a non-empty name without whitespace, not {value!r}")
    return value


_NORMALIZE = {
    "pg_autoscale_mode": _autoscale_mode,
    "pg_num": lambda arg, value: _whole(arg, value, 1, 65536),
    "pgp_num": lambda arg, value: _whole(arg, value, 1, 65536),
    "size": lambda arg, value: _whole(arg, value, 1, 10),
    "min_size": lambda arg, value: _whole(arg, value, 1, 10),
    "crush_rule": _word,
    "target_size_ratio": _ratio,
    "max_objects": lambda arg, value: _whole(arg, value, 0),
    "max_bytes": _bytes,
}


def _split(kwargs):
    """``(connection keywords, pool properties)``; Salt's ``__pub_*`` keys are dropped."""
    kwargs = salt.utils.args.clean_kwargs(**kwargs)
    conn = {key: kwargs.pop(key) for key in CONNECTION if key in kwargs}
    return conn, kwargs


def _normalize(name, properties):
    """``(normalized properties, problems)`` for a pool name and its properties."""
    problems = [_name_problem(name)] if _name_problem(name) else []
    wanted = {}
    for prop, value in properties.items():
        if prop not in _NORMALIZE:
            problems.append(
                f"{prop} is not a pool property managed here (known: {', '.join(PROPERTIES)})"
            )
        elif value is not None:
            try:
                wanted[prop] = _NORMALIZE[prop](prop, value)
            except ValueError as exc:
                problems.append(str(exc))
    if wanted.get("min_size", 0) > wanted.get("size", 10):
        problems.append(f"min_size {wanted['min_size']} cannot exceed size {wanted['size']}")
    if wanted.get("pgp_num", 0) > wanted.get("pg_num", 65536):
        problems.append(f"pgp_num {wanted['pgp_num']} cannot exceed pg_num {wanted['pg_num']}")
    return wanted, problems


def _valid(name, properties):
    wanted, problems = _normalize(name, properties)
    if problems:
        raise CommandExecutionError("; ".join(problems))
    return wanted


def validate(name, application=None, **properties):
    """
    Check a pool name, an application name and pool properties without asking
    Ceph. Returns the properties normalized (``'10G'`` → bytes, YAML's
    ``on``/``off`` booleans → ``'on'``/``'off'``); raises with every problem,
    each naming its argument. Properties given as ``None`` are left out.

    CLI Example:

    .. code-block:: bash

        salt '*' cephpool.validate volumes pg_num=32 size=3 max_bytes=100G
    """
    _conn, properties = _split(properties)
    wanted, problems = _normalize(name, properties)
    if application is not None:
        try:
            _word("application", application)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise CommandExecutionError("; ".join(problems))
    return wanted


# -- talking to Ceph -------------------------------------------------------------


def _connection(kwargs):
    return ceph_cli.connection(__salt__["config.get"], **kwargs)


def _run(conn, args, **options):
    return ceph_cli.run(__salt__["cmd.run_all"], conn, args, context=__context__,
                                     session=ceph_session.get, **options)



def _cache_key(what, conn):
    return f"cephpool.{what}:{ceph_cli.cache_key(conn)!r}"


def _cached(what, conn, read):
    key = _cache_key(what, conn)
    hit = __context__.get(key)
    if hit is not None and time.monotonic() - hit[0] < _CACHE_SECONDS:
        return hit[1]
    value = read()
    __context__[key] = (time.monotonic(), value)
    return value


def _forget_pools(conn):
    """Drop the cached listing: called after every write of ours."""
    __context__.pop(_cache_key("pools", conn), None)


def _pools(conn):
    """``{name: entry of 'ceph osd pool ls detail'}``, read once per run."""
    return _cached(
        "pools",
        conn,
        lambda: {
            pool["pool_name"]: pool for pool in _run(conn, ["osd", "pool", "ls", "detail"]) or []
        },
    )


def _rules(conn):
    """``{rule id: rule name}`` from ``ceph osd crush rule dump``, read once per run."""
    return _cached(
        "rules",
        conn,
        lambda: {
            rule["rule_id"]: rule["rule_name"]
            for rule in _run(conn, ["osd", "crush", "rule", "dump"]) or []
        },
    )


def _entry(name, conn):
    _check_name(name)
    entry = _pools(conn).get(name)
    if entry is None:
        raise CommandExecutionError(f"pool {name} does not exist")
    return entry


def _properties(entry, rules=None):
    """The managed properties of one ``ls detail`` entry, by ``osd pool get`` names."""
    options = entry.get("options") or {}
    return {
        "pool_id": entry["pool_id"],
        "create_time": entry.get("create_time"),
        # Since Nautilus Ceph moves pg_num/pgp_num towards their targets
        # gradually; the targets are what the pool is set to.
        "pg_num": entry.get("pg_num_target", entry["pg_num"]),
        "pgp_num": entry.get("pg_placement_num_target", entry["pg_placement_num"]),
        "size": entry["size"],
        "min_size": entry["min_size"],
        "pg_autoscale_mode": entry.get("pg_autoscale_mode", "off"),
        # Ceph drops the option when it is set to 0.
        "target_size_ratio": float(options.get("target_size_ratio", 0.0)),
        "crush_rule": (
            rules.get(entry["crush_rule"], entry["crush_rule"]) if rules else entry["crush_rule"]
        ),
        "max_objects": entry.get("quota_max_objects", 0),
        "max_bytes": entry.get("quota_max_bytes", 0),
        "application_metadata": copy.deepcopy(entry.get("application_metadata") or {}),
        "flags": [flag for flag in (entry.get("flags_names") or "").split(",") if flag],
        "pg_num_min": options.get("pg_num_min", 0),
        "pg_num_max": options.get("pg_num_max", 0),
    }


# -- reading ------------------------------------------------------------------------


def list_(**kwargs):
    """
    The names of all pools, in Ceph's order.

    CLI Example:

    .. code-block:: bash

        salt '*' cephpool.list
    """
    return list(_pools(_connection(kwargs)))


def exists(name, **kwargs):
    """
    True when the pool exists.

    CLI Example:

    .. code-block:: bash

        salt '*' cephpool.exists volumes
    """
    _check_name(name)
    return name in _pools(_connection(kwargs))


def get(name, resolve_crush_rule=True, **kwargs):
    """
    One pool's properties as Ceph reports them, by ``ceph osd pool get`` names
    (``pg_num``/``pgp_num`` are the values the pool is set to; Ceph moves the
    actual PG count towards them gradually), plus ``pool_id``,
    ``application_metadata``, ``flags``, ``pg_num_min`` and ``pg_num_max``.
    Raises when the pool does not exist.

    resolve_crush_rule
        Report ``crush_rule`` by name, like ``ceph osd pool get``; this costs
        one (cached) ``ceph osd crush rule dump``. ``False`` reports the rule id.

    CLI Example:

    .. code-block:: bash

        salt '*' cephpool.get volumes
    """
    conn = _connection(kwargs)
    entry = _entry(name, conn)
    return _properties(entry, _rules(conn) if resolve_crush_rule else None)


def application_get(name, **kwargs):
    """
    The applications enabled on a pool with their metadata, e.g. ``{"rbd": {}}``.

    CLI Example:

    .. code-block:: bash

        salt '*' cephpool.application_get volumes
    """
    return copy.deepcopy(_entry(name, _connection(kwargs)).get("application_metadata") or {})


def initialized(name, **kwargs):
    """
    True when the pool is initialised for RBD as ``rbd pool init`` leaves it:
    application ``rbd`` enabled and the ``rbd_info`` object saying the pool was
    validated. Reads the object with one ``rados`` call (about 40 ms, no write);
    none when ``rbd`` is not enabled.

    CLI Example:

    .. code-block:: bash

        salt '*' cephpool.initialized volumes
    """
    conn = _connection(kwargs)
    if "rbd" not in (_entry(name, conn).get("application_metadata") or {}):
        return False
    try:
        text = _run(conn, ["-p", name, "get", "rbd_info", "-"], binary="rados", json_out=False)
    except CommandExecutionError as exc:
        # rados exits 1 and names the errno: "(2) No such file or directory"
        if "(2)" in str((exc.info or {}).get("stderr", "")):
            return False
        raise
    return text.strip() == _RBD_VALIDATED


# -- writing ------------------------------------------------------------------------


def create(name, test=False, **kwargs):
    """
    Create a replicated pool and give it the properties passed (see the module
    docstring). ``pg_num``, ``pgp_num`` and ``crush_rule`` are set at creation
    (no data moves later); the others are set right after. Unset ones keep
    Ceph's defaults. Raises when the pool exists already (``ceph osd pool
    create`` itself would silently do nothing), with ``info["exists"]`` when
    another client created it between the check and the create.

    Returns the properties set. With ``test=True`` checks the input and the
    crush rule and creates nothing.

    CLI Example:

    .. code-block:: bash

        salt '*' cephpool.create volumes pg_num=32
        salt '*' cephpool.create volumes pg_num=32 size=3 max_bytes=1T
    """
    conn_kwargs, properties = _split(kwargs)
    wanted = _valid(name, properties)
    conn = _connection(conn_kwargs)
    if name in _pools(conn):
        raise CommandExecutionError(f"pool {name} exists already")
    if "crush_rule" in wanted and wanted["crush_rule"] not in _rules(conn).values():
        raise CommandExecutionError(_unknown_rule(wanted["crush_rule"], _rules(conn)))
    if test:
        return wanted
    args = ["osd", "pool", "create", name]
    for prop, option in (
        ("pg_num", "--pg_num"),
        ("pgp_num", "--pgp_num"),
        ("crush_rule", "--rule"),
    ):
        if prop in wanted:
            args += [option, wanted[prop]]
    said = []
    try:
        _run(conn, args, json_out=False, messages=said)
    finally:
        _forget_pools(conn)
    if any("already exists" in message for message in said):
        # Another client (a second mon applying the same state) created it meanwhile.
        raise CommandExecutionError(f"pool {name} exists already: created meanwhile elsewhere",
                                    info={"exists": True})
    rest = {
        prop: value
        for prop, value in wanted.items()
        if prop not in ("pg_num", "pgp_num", "crush_rule")
    }
    if rest:
        try:
            set_(name, **rest, **{key: conn[key] for key in CONNECTION})
        except CommandExecutionError as exc:
            raise CommandExecutionError(
                f"pool {name} was created, but {exc.error}",
                info={"created": True, **(exc.info or {})},
            )
    return wanted


def set_(name, test=False, **kwargs):
    """
    Set pool properties (see the module docstring); the ones that already have
    the wanted value are left alone. Returns what changed as
    ``{property: {"old": ..., "new": ...}}``; with ``test=True`` what would.

    Every change is checked before the first write: a change Ceph cannot make
    (``min_size`` above ``size``, ``pgp_num`` above ``pg_num``, ``pg_num`` outside
    the pool's ``pg_num_min``/``pg_num_max``, a ``nopgchange``/``nosizechange``
    flag, an unknown crush rule) raises and changes nothing.

    Ceph's own side effects are part of the result: a new ``pg_num`` also sets
    ``pgp_num`` (unless ``pgp_num`` is given), and a new ``size`` resets
    ``min_size``; unless ``min_size`` is given it becomes ``size - size // 2``
    (Ceph's rule for a cluster without ``osd_pool_default_min_size``), so the
    result does not depend on cluster settings. ``size=1`` passes Ceph's
    ``--yes-i-really-mean-it`` (the mons still need ``mon_allow_pool_size_one``).

    A write that fails raises with what was changed before it in
    ``info["changes"]``.

    CLI Example:

    .. code-block:: bash

        salt '*' cephpool.set volumes pg_num=64
        salt '*' cephpool.set volumes size=3 min_size=2 max_bytes=500G test=True
    """
    conn_kwargs, properties = _split(kwargs)
    wanted = _valid(name, properties)
    conn = _connection(conn_kwargs)
    entry = _entry(name, conn)
    rules = _rules(conn) if "crush_rule" in wanted else None
    changes, writes = _plan(name, _properties(entry, rules), wanted, rules)
    if test or not writes:
        return changes
    done = {}
    try:
        for prop, value in writes:
            _write(conn, name, prop, value)
            done.update({key: changes[key] for key in _effects(prop) if key in changes})
    except CommandExecutionError as exc:
        applied = f"changed {', '.join(done)} before; " if done else ""
        raise CommandExecutionError(
            f"pool {name}: {applied}setting {prop} failed: {exc.error}", info={"changes": done}
        )
    finally:
        _forget_pools(conn)
    return changes


def _effects(prop):
    """The properties a write of ``prop`` changes (Ceph's side effects included)."""
    return {"pg_num": ("pg_num", "pgp_num"), "size": ("size", "min_size")}.get(prop, (prop,))


def _unknown_rule(rule, rules):
    return f"crush_rule {rule} does not exist (rules: {', '.join(sorted(rules.values()))})"


def _plan(name, current, wanted, rules):
    """
    ``(changes, writes)`` turning ``current`` into ``wanted``: ``changes`` as
    ``{prop: {"old", "new"}}``, ``writes`` as ``[(prop, value)]`` in
    :data:`PROPERTIES` order. Raises, listing every problem, when Ceph could not
    make the whole change.
    """
    final = {prop: wanted.get(prop, current[prop]) for prop in PROPERTIES}
    pg_changes = final["pg_num"] != current["pg_num"]
    size_changes = final["size"] != current["size"]
    if pg_changes and "pgp_num" not in wanted:
        final["pgp_num"] = final["pg_num"]  # Ceph moves pgp_num along with pg_num
    if size_changes and "min_size" not in wanted:
        final["min_size"] = final["size"] - final["size"] // 2

    problems = []
    if final["min_size"] > final["size"]:
        problems.append(f"min_size {final['min_size']} cannot exceed size {final['size']}")
    if final["pgp_num"] > final["pg_num"]:
        problems.append(f"pgp_num {final['pgp_num']} cannot exceed pg_num {final['pg_num']}")
    if pg_changes and current["pg_num_min"] and final["pg_num"] < current["pg_num_min"]:
        problems.append(
            f"pg_num {final['pg_num']} is below the pool's pg_num_min {current['pg_num_min']}"
        )
    if pg_changes and current["pg_num_max"] and final["pg_num"] > current["pg_num_max"]:
        problems.append(
            f"pg_num {final['pg_num']} is above the pool's pg_num_max {current['pg_num_max']}"
        )
    if "nopgchange" in current["flags"] and (pg_changes or final["pgp_num"] != current["pgp_num"]):
        problems.append("the pool has the nopgchange flag set")
    if "nosizechange" in current["flags"] and (
        size_changes or final["min_size"] != current["min_size"]
    ):
        problems.append("the pool has the nosizechange flag set")
    if rules is not None and final["crush_rule"] not in rules.values():
        problems.append(_unknown_rule(final["crush_rule"], rules))
    if problems:
        raise CommandExecutionError(
            f"refusing to change pool {name}, nothing was changed: {'; '.join(problems)}",
            info={"problems": problems},
        )

    changes = {}
    for prop in PROPERTIES:
        old, new = current[prop], final[prop]
        same = math.isclose(old, new) if prop == "target_size_ratio" else old == new
        if not same:
            changes[prop] = {"old": old, "new": new}
    writes = []
    for prop in PROPERTIES:
        if prop == "pgp_num":
            # After a pg_num write pgp_num equals pg_num; set it only if that is not wanted.
            needed = final["pgp_num"] != (final["pg_num"] if pg_changes else current["pgp_num"])
        elif prop == "min_size":
            # A size write resets min_size to a cluster-dependent default: always set it then.
            needed = size_changes or "min_size" in changes
        else:
            needed = prop in changes
        if needed:
            writes.append((prop, final[prop]))
    return changes, writes


def _write(conn, name, prop, value):
    if prop in _QUOTAS:
        args = ["osd", "pool", "set-quota", name, prop, value]
    else:
        args = ["osd", "pool", "set", name, prop, value]
        if prop == "size" and value == 1:
            args.append("--yes-i-really-mean-it")
    _run(conn, args, json_out=False)


def application_enable(name, application="rbd", **kwargs):
    """
    Enable an application (``rbd``, ``rgw``, ``cephfs``, ...) on a pool. Refuses
    when the pool has another application enabled already (Ceph would need
    ``--yes-i-really-mean-it``). Returns True when it enabled the application,
    False when it was enabled already.

    CLI Example:

    .. code-block:: bash

        salt '*' cephpool.application_enable volumes rbd
    """
    validate(name, application=application)
    conn = _connection(kwargs)
    enabled = _entry(name, conn).get("application_metadata") or {}
    if application in enabled:
        return False
    if enabled:
        raise CommandExecutionError(_other_application(name, enabled, application))
    try:
        _run(conn, ["osd", "pool", "application", "enable", name, application], json_out=False)
    finally:
        _forget_pools(conn)
    return True


def _other_application(name, enabled, application):
    return (
        f"pool {name} already has application {', '.join(sorted(enabled))} enabled; "
        f"refusing to enable {application} on it too"
    )


def init(name, **kwargs):
    """
    Initialise a pool for RBD: what ``rbd pool init`` does (enable application
    ``rbd`` and let librbd validate the pool, which writes its ``rbd_info``
    object). Safe to repeat. Refuses a pool with another application enabled
    (``rbd pool init`` then prints a warning but exits 0 having done nothing).

    CLI Example:

    .. code-block:: bash

        salt '*' cephpool.init volumes
    """
    _check_name(name)
    conn = _connection(kwargs)
    enabled = _entry(name, conn).get("application_metadata") or {}
    if enabled and "rbd" not in enabled:
        raise CommandExecutionError(_other_application(name, enabled, "rbd"))
    try:
        _run(conn, ["pool", "init", name], binary="rbd", json_out=False)
    finally:
        _forget_pools(conn)
    return True


def delete(name, confirm=False, **kwargs):
    """
    Delete a pool and ALL its data. Refuses unless ``confirm=True``; the mons
    must also allow it (``mon_allow_pool_delete``). Returns True when it
    deleted the pool, False when there was no such pool.

    CLI Example:

    .. code-block:: bash

        salt '*' cephpool.delete scratch confirm=True
    """
    _check_name(name)
    if confirm is not True:
        raise CommandExecutionError(
            f"refusing to delete pool {name}: it destroys all data in the pool; "
            "pass confirm=True to delete it"
        )
    conn = _connection(kwargs)
    if name not in _pools(conn):
        return False
    try:
        _run(
            conn,
            ["osd", "pool", "delete", name, name, "--yes-i-really-really-mean-it"],
            json_out=False,
        )
    finally:
        _forget_pools(conn)
    return True
