"""
Manage cephx users (``client.cinder``, ``client.glance``, ...) through the ``ceph`` CLI.

Every function takes the connection keywords ``cluster``, ``conf``,
``client_id``, ``keyring`` and ``timeout``; defaults come from
``config.get('ceph_openstack:<keyword>')``.

Reads come from one ``ceph auth ls`` per run, cached in ``__context__`` per
connection and dropped after each write, so a converge with nothing to do
costs one CLI call however many users it checks. The run's ``ceph`` commands
share one connection (``ceph_session``; off with config
``ceph_openstack:session: False``): a write costs a mon round trip, not a
process.

Secrets: ``auth ls`` holds every key of the cluster. Keys are returned only by
``get_key``, ``get(with_key=True)`` and ``keyring``; they are never logged, never
put into an exception message, and reach the CLI on stdin only
(``ceph auth add -i -``, ``ceph auth import -i -``, or the session's request),
never in argv.

:depends: the ``ceph`` CLI (package ``ceph-common``)
"""

import importlib.util
import os
import sys
import json
import logging
import time

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
cephx = _helper("cephx")

log = logging.getLogger(__name__)

__virtualname__ = "cephauth"


def __virtual__():
    if salt.utils.path.which("ceph"):
        return __virtualname__
    return (False, "cephauth: the ceph CLI is not installed (package ceph-common)")


# -- helpers -------------------------------------------------------------------


def _conn(kwargs):
    return ceph_cli.connection(__salt__["config.get"], **kwargs)


def _run(conn, args, stdin=None, secret=None, messages=None, json_out=True):
    """Run ``ceph <args>``; with ``secret``, make sure no error message can carry it."""
    try:
        return ceph_cli.run(__salt__["cmd.run_all"], conn, args, stdin=stdin,
                                         json_out=json_out, context=__context__,
                                         messages=messages,
                                         session=ceph_session.get)
    except CommandExecutionError as exc:
        if secret and secret in str(exc):
            # Ceph echoes a keyring value it cannot parse ("val=<key>").
            info = {name: value.replace(secret, "<key hidden>") if isinstance(value, str) else value
                    for name, value in (exc.info or {}).items()}
            raise CommandExecutionError(
                exc.error.replace(secret, "<key hidden>"), info=info
            ) from None
        raise



def _cache_key(conn):
    return ("cephauth.users",) + tuple(ceph_cli.cache_key(conn))


def _users(conn):
    """``{entity: {"key": ..., "caps": {...}}}`` from one cached ``ceph auth ls``."""
    cache_key = _cache_key(conn)
    if cache_key not in __context__:
        dump = _run(conn, ["auth", "ls"])
        # Pacific and later wrap the list in {"auth_dump": [...]}.
        entries = dump.get("auth_dump", []) if isinstance(dump, dict) else dump or []
        __context__[cache_key] = {
            entry["entity"]: {"key": entry.get("key"), "caps": dict(entry.get("caps") or {})}
            for entry in entries
        }
    return __context__[cache_key]


def _forget(conn):
    """Drop the cached ``auth ls`` after a write, so the next read sees Ceph's truth."""
    __context__.pop(_cache_key(conn), None)


def _check_entity(entity):
    if not cephx.is_valid_entity(entity):
        raise CommandExecutionError(
            f"entity must be a cephx entity name such as 'client.cinder', not {entity!r}"
        )


def _check_caps(caps):
    problem = cephx.caps_problem(caps, "caps")
    if problem:
        raise CommandExecutionError(problem)


def _check_key(key):
    # The message names the argument, never the value.
    problem = cephx.key_problem(key, "key")
    if problem:
        raise CommandExecutionError(problem)


def _monmap(conn):
    """``ceph mon dump``, read once per run (dropped after a cipher setting changes)."""
    cache_key = ("cephauth.monmap",) + tuple(ceph_cli.cache_key(conn))
    if cache_key not in __context__:
        __context__[cache_key] = _run(conn, ["mon", "dump"]) or {}
    return __context__[cache_key]


def _cipher_name(value):
    # Tentacle: {"name": "aes256k", "value": 2}; older releases: no such field.
    return str(value.get("name")) if isinstance(value, dict) else value


def _allowed_key_types(conn):
    """The cluster's ``auth_allowed_ciphers`` as a list of names; ``['aes']`` for a release
    without the setting (before Tentacle, which knows only AES keys). Read once per run."""
    allowed = _monmap(conn).get("auth_allowed_ciphers") or []
    return [name for name in map(_cipher_name, allowed) if name] or ["aes"]


def _check_key_accepted(conn, key):
    problem = cephx.key_type_problem(key, _allowed_key_types(conn), "key")
    if problem:
        raise CommandExecutionError(problem)


def _existing(conn, entity):
    user = _users(conn).get(entity)
    if user is None:
        raise CommandExecutionError(f"cephx user {entity} does not exist")
    return user


def _caps_args(caps):
    """``mon 'profile rbd' osd '...'`` as argv items, in a stable order."""
    args = []
    for cap_type in sorted(caps):
        args += [cap_type, caps[cap_type]]
    return args


# -- public API ----------------------------------------------------------------


def allowed_key_types(**kwargs):
    """
    The cephx key types the cluster lets users log in with: ``['aes256k']`` on a fresh
    Tentacle (20.2) cluster, ``['aes', 'aes256k']`` on an upgraded one, ``['aes']`` on
    earlier releases (Pacific, Reef), which know no other.

    CLI Example:

    .. code-block:: bash

        salt -G role:mon cephauth.allowed_key_types
    """
    return _allowed_key_types(_conn(kwargs))


def get(entity, with_key=False, **kwargs):
    """
    Return a cephx user as ``{"entity": ..., "caps": {...}}``, or ``None`` when it
    does not exist. The key is included (as ``"key"``) only with ``with_key=True``.

    entity
        The entity name, e.g. ``client.cinder``.

    with_key
        Include the user's secret key. Off by default: the return of a CLI call
        ends up in job caches and terminals.

    CLI Example:

    .. code-block:: bash

        salt '*' cephauth.get client.cinder
        salt '*' cephauth.get client.cinder conf=/etc/ceph/openstack.conf
    """
    _check_entity(entity)
    user = _users(_conn(kwargs)).get(entity)
    if user is None:
        return None
    ret = {"entity": entity, "caps": dict(user["caps"])}
    if with_key:
        ret["key"] = user["key"]
    return ret


def exists(entity, **kwargs):
    """
    Return ``True`` when the cephx user ``entity`` exists.

    CLI Example:

    .. code-block:: bash

        salt '*' cephauth.exists client.glance
    """
    _check_entity(entity)
    return entity in _users(_conn(kwargs))


def get_key(entity, **kwargs):
    """
    Return the secret key of the cephx user ``entity``.

    This returns a secret by design; it exists for states that put the key
    where it is needed. Raises an error when the user does not exist.

    CLI Example:

    .. code-block:: bash

        salt '*' cephauth.get_key client.cinder
    """
    _check_entity(entity)
    return _existing(_conn(kwargs), entity)["key"]


def create(entity, caps, key=None, **kwargs):
    """
    Create the cephx user ``entity`` with exactly ``caps``; return
    ``{"entity": ..., "caps": {...}}`` (never the key).

    Fails when the user exists already (see ``set_caps`` and ``import_key``),
    with ``info["exists"]`` when another client (a second mon applying the
    same state) created it between the check and the create.

    entity
        The entity name, e.g. ``client.cinder``.

    caps
        ``{type: grants}`` with types among ``mon``, ``osd``, ``mgr``, ``mds``.

    key
        An existing cephx key to give the user (e.g. pre-generated in pillar).
        It is fed to ``ceph auth add -i -`` on stdin, never on the command line.
        Without it Ceph generates one. ``auth add`` (unlike ``get-or-create``)
        does not print the key, and (unlike ``auth import``) checks the caps.

    CLI Example:

    .. code-block:: bash

        salt '*' cephauth.create client.glance caps='{mon: "profile rbd", osd: "allow r"}'
    """
    _check_entity(entity)
    _check_caps(caps)
    if key is not None:
        _check_key(key)
    conn = _conn(kwargs)
    if entity in _users(conn):
        raise CommandExecutionError(
            f"cephx user {entity} exists already; use cephauth.set_caps or cephauth.import_key"
        )
    if key is not None:
        _check_key_accepted(conn, key)
    args = ["auth", "add", entity] + _caps_args(caps)
    said = []
    try:
        if key is None:
            _run(conn, args, messages=said)
        else:
            # The keyring on stdin carries only the key: Ceph refuses caps in both places.
            text = cephx.keyring_text(entity, key)
            _run(conn, args + ["-i", "-"], stdin=text, secret=key, messages=said)
    except CommandExecutionError as exc:
        # EEXIST (another key) or EINVAL (other caps): someone created it since we looked.
        _forget(conn)
        if (exc.info or {}).get("retcode") in (17, 22) and entity in _users(conn):
            raise _created_elsewhere(entity) from None
        raise
    _forget(conn)
    if not any("added key" in message for message in said):
        # auth add of a user that exists with the same caps does nothing and says nothing.
        raise _created_elsewhere(entity)
    log.info("cephauth: created %s", entity)
    return {"entity": entity, "caps": dict(caps)}


def _created_elsewhere(entity):
    return CommandExecutionError(
        f"cephx user {entity} exists already: created meanwhile elsewhere", info={"exists": True}
    )


def set_caps(entity, caps, **kwargs):
    """
    Set the caps of the existing cephx user ``entity`` to exactly ``caps``:
    cap types not given are removed. Returns ``{"entity": ..., "caps": {...}}``.

    CLI Example:

    .. code-block:: bash

        salt '*' cephauth.set_caps client.cinder caps='{mon: "profile rbd", osd: "allow r"}'
    """
    _check_entity(entity)
    _check_caps(caps)
    conn = _conn(kwargs)
    _existing(conn, entity)
    try:
        _run(conn, ["auth", "caps", entity] + _caps_args(caps))
    finally:
        _forget(conn)
    log.info("cephauth: set caps of %s", entity)
    return {"entity": entity, "caps": dict(caps)}


def import_key(entity, key, **kwargs):
    """
    Give the existing cephx user ``entity`` the key ``key``, keeping its caps.
    Returns ``{"entity": ..., "caps": {...}}``, never the key.

    The key travels on stdin (``ceph auth import -i -``) inside keyring text that
    repeats the user's current caps, since ``auth import`` replaces the caps with
    the ones in the keyring (and does not check them: change caps with
    ``set_caps``, which does).

    CLI Example:

    .. code-block:: bash

        salt '*' cephauth.import_key client.cinder key=AQBhAAAAAAAAABAAvHOq2W2wbY4Wcf7yCmXw3Q==
    """
    _check_entity(entity)
    _check_key(key)
    conn = _conn(kwargs)
    caps = dict(_existing(conn, entity)["caps"])
    _check_key_accepted(conn, key)
    if not caps:
        raise CommandExecutionError(
            f"cephx user {entity} has no caps, and ceph auth import needs some: set caps first"
        )
    text = cephx.keyring_text(entity, key, caps)
    try:
        _run(conn, ["auth", "import", "-i", "-"], stdin=text, secret=key)
    finally:
        _forget(conn)
    log.info("cephauth: imported a new key for %s", entity)
    return {"entity": entity, "caps": caps}


def delete(entity, **kwargs):
    """
    Delete the cephx user ``entity``. Returns ``True`` when it was deleted,
    ``False`` when it did not exist. Refuses to delete the user this
    connection authenticates as (that would lock Salt out of the cluster).

    CLI Example:

    .. code-block:: bash

        salt '*' cephauth.delete client.old-glance
    """
    _check_entity(entity)
    conn = _conn(kwargs)
    if entity == f"client.{conn['client_id']}":
        raise CommandExecutionError(
            f"refusing to delete {entity}: it is the user this connection acts as"
        )
    if entity not in _users(conn):
        return False
    try:
        _run(conn, ["auth", "del", entity])
    finally:
        _forget(conn)
    log.info("cephauth: deleted %s", entity)
    return True


def keyring(entity, key=None, with_caps=False, **kwargs):
    """
    Return the text of a keyring file for ``entity``::

        [client.cinder]
        \tkey = AQ...==

    This returns a secret by design: it is what a keyring file holds, for the
    state that writes one. Without ``key`` the key is read from Ceph (a mon or
    an admin node); with it, no Ceph call is made unless ``with_caps`` asks for
    the user's caps lines as well.

    CLI Example:

    .. code-block:: bash

        salt ceph-mon1 cephauth.keyring client.cinder
    """
    _check_entity(entity)
    if key is not None:
        _check_key(key)
    caps = None
    if key is None or with_caps:
        user = _existing(_conn(kwargs), entity)
        key = key or user["key"]
        caps = user["caps"] if with_caps else None
    return cephx.keyring_text(entity, key, caps)


# -- key rotation ----------------------------------------------------------------
#
# Measured (README "Key rotation"): Quincy 17.2 and later have pending keys (`auth
# get-or-create-pending / commit-pending / clear-pending`); Pacific 16.2 answers "no valid
# command found". A pending key logs in beside the current one until it is committed; its
# type follows the monmap's `auth_preferred_cipher` at the moment it is made (the command
# has no --key_type); `auth ls` does not show it, `auth get` does (`pending_key`).

#: First release with pending keys (the monmap's ``min_mon_release``: 17 is Quincy).
PENDING_KEYS_SINCE = 17


def pending_keys_supported(**kwargs):
    """
    True when the cluster has pending keys (``ceph auth get-or-create-pending``): every
    mon runs Quincy 17.2 or later (the monmap's ``min_mon_release``). Pacific has none.

    CLI Example:

    .. code-block:: bash

        salt -G role:mon cephauth.pending_keys_supported
    """
    release = _monmap(_conn(kwargs)).get("min_mon_release") or 0
    return int(release) >= PENDING_KEYS_SINCE


def preferred_key_type(**kwargs):
    """
    The type of key the cluster makes by default (the monmap's ``auth_preferred_cipher``):
    ``aes256k`` on a fresh Tentacle cluster, ``aes`` on an upgraded one and before Tentacle.

    CLI Example:

    .. code-block:: bash

        salt -G role:mon cephauth.preferred_key_type
    """
    return _cipher_name(_monmap(_conn(kwargs)).get("auth_preferred_cipher")) or "aes"


def _auth_get(conn, entity):
    """``ceph auth get`` of one user (it shows ``pending_key``, ``auth ls`` does not)."""
    try:
        found = _run(conn, ["auth", "get", entity])
    except CommandExecutionError as exc:
        if ceph_cli.is_missing(exc):
            raise CommandExecutionError(f"cephx user {entity} does not exist") from None
        raise
    return (found or [{}])[0]


def _describe(key):
    """Type and creation time of a key (from its header), never the key."""
    return {"type": cephx.key_type(key),
            "created": cephx.key_created(key)}


def key_info(entity, **kwargs):
    """
    What can be said about ``entity``'s keys without showing them: the type and creation
    time (seconds since the epoch, from the key's header) of its key and of its pending key
    (``None`` when there is none, always on Pacific).

    CLI Example:

    .. code-block:: bash

        salt -G role:mon cephauth.key_info client.cinder
    """
    _check_entity(entity)
    user = _auth_get(_conn(kwargs), entity)
    pending = user.get("pending_key")
    return {"entity": entity, "key": _describe(user.get("key")),
            "pending": _describe(pending) if pending else None}


def get_pending_key(entity, **kwargs):
    """
    The key ``entity``'s clients should hold: its pending key while one exists, else its
    key. The formula publishes this during a rotation (nodes then log in with the pending
    key before it is committed). Returns a secret by design, like ``get_key``.

    CLI Example:

    .. code-block:: bash

        salt ceph-mon1 cephauth.get_pending_key client.cinder
    """
    _check_entity(entity)
    user = _auth_get(_conn(kwargs), entity)
    return user.get("pending_key") or user["key"]


def _set_preferred(conn, key_type):
    _run(conn, ["mon", "set", "auth_preferred_cipher", key_type], json_out=False)
    __context__.pop(("cephauth.monmap",) + tuple(ceph_cli.cache_key(conn)), None)


def create_pending(entity, key_type=None, **kwargs):
    """
    Give ``entity`` a pending key (``ceph auth get-or-create-pending``) beside its current
    one, unless it has one already; returns ``key_info`` (never a key). Both keys log in
    until ``commit_pending``.

    key_type
        ``aes`` or ``aes256k``. Ceph makes the pending key of the monmap's
        ``auth_preferred_cipher`` type (the command takes no ``--key_type``); when another
        type is asked for, the preference is set to it for that one command and set back.
        An existing pending key of another type is cleared and made again.

    CLI Example:

    .. code-block:: bash

        salt -G role:mon cephauth.create_pending client.cinder key_type=aes256k
    """
    _check_entity(entity)
    conn = _conn(kwargs)
    if key_type is not None and key_type not in ("aes", "aes256k"):
        raise CommandExecutionError(f"key_type must be aes or aes256k, not {key_type!r}")
    if not pending_keys_supported(**kwargs):
        raise CommandExecutionError(
            "this cluster has no pending keys (every mon must run Quincy 17.2 or later)"
        )
    info = key_info(entity, **kwargs)
    if info["pending"] and key_type and info["pending"]["type"] != key_type:
        clear_pending(entity, **kwargs)
        info["pending"] = None
    if info["pending"]:
        return info
    preferred = preferred_key_type(**kwargs)
    switch = key_type is not None and key_type != preferred
    try:
        if switch:
            _set_preferred(conn, key_type)
        # The output holds both keys: parsed and dropped, never logged.
        _run(conn, ["auth", "get-or-create-pending", entity])
    finally:
        if switch:
            _set_preferred(conn, preferred)
        _forget(conn)
    log.info("cephauth: made a pending key for %s", entity)
    return key_info(entity, **kwargs)


def _pending_verb(entity, verb, kwargs):
    """Run ``ceph auth <verb> <entity>`` when ``entity`` has a pending key; whether it had."""
    _check_entity(entity)
    conn = _conn(kwargs)
    if not key_info(entity, **kwargs)["pending"]:
        return False
    try:
        _run(conn, ["auth", verb, entity], json_out=False)
    finally:
        _forget(conn)
    log.info("cephauth: %s of %s", verb, entity)
    return True


def commit_pending(entity, **kwargs):
    """
    Make ``entity``'s pending key its key (``ceph auth commit-pending``): the old key stops
    logging in at once. Returns True when a pending key was committed, False when there was
    none. (Ceph also commits a pending key by itself at its first use, a login with it.)

    CLI Example:

    .. code-block:: bash

        salt -G role:mon cephauth.commit_pending client.cinder
    """
    return _pending_verb(entity, "commit-pending", kwargs)


def clear_pending(entity, **kwargs):
    """
    Drop ``entity``'s pending key (``ceph auth clear-pending``); its key stays. Returns
    True when there was one.

    CLI Example:

    .. code-block:: bash

        salt -G role:mon cephauth.clear_pending client.cinder
    """
    return _pending_verb(entity, "clear-pending", kwargs)


def generate_key(key_type=None):
    """
    A new cephx key from ``ceph-authtool --gen-print-key`` (on its stdout, never argv),
    of ``key_type`` (``aes`` or ``aes256k``; Tentacle's tool only) or the tool's default.
    Returns a secret by design: for ``import_key`` where pending keys do not exist.

    CLI Example:

    .. code-block:: bash

        salt -G role:mon cephauth.generate_key key_type=aes256k
    """
    cmd = ["ceph-authtool", "--gen-print-key"]
    if key_type is not None:
        if key_type not in ("aes", "aes256k"):
            raise CommandExecutionError(f"key_type must be aes or aes256k, not {key_type!r}")
        cmd += ["--key_type", key_type]
    ret = __salt__["cmd.run_all"](cmd, python_shell=False, output_loglevel="quiet",
                                  ignore_retcode=True, env={"LC_ALL": "C"})
    key = (ret.get("stdout") or "").strip()
    if ret.get("retcode") or not cephx.is_valid_key(key):
        raise CommandExecutionError(
            "ceph-authtool --gen-print-key made no key"
            + (f" of type {key_type}" if key_type else "")
        )
    return key


#: config-key under which the formula records a finished rotation of an entity.
ROTATION_RECORD = "ceph_openstack/rotated/{entity}"


def rotation_record(entity, **kwargs):
    """
    The formula's record of ``entity``'s last rotation, ``{"key_created": <the rotated key's
    creation time>, "at": <when>}``, or ``None`` (a ``config-key`` value, no key in it).

    CLI Example:

    .. code-block:: bash

        salt -G role:mon cephauth.rotation_record client.cinder
    """
    _check_entity(entity)
    try:
        text = _run(_conn(kwargs), ["config-key", "get", ROTATION_RECORD.format(entity=entity)],
                    json_out=False)
    except CommandExecutionError as exc:
        if ceph_cli.is_missing(exc):
            return None
        raise
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def record_rotation(entity, staged=False, **kwargs):
    """
    Record that ``entity``'s current key is the result of a rotation (see
    ``rotation_record``), or with ``staged=True`` that its pending key was made by one
    (``{"staged": <its creation time>}``: Ceph puts a pending key into place at its first
    use, so a later run can tell that key from a new one). Returns the record.

    CLI Example:

    .. code-block:: bash

        salt -G role:mon cephauth.record_rotation client.cinder
    """
    info = key_info(entity, **kwargs)
    if staged:
        record = {"staged": (info["pending"] or info["key"])["created"], "at": int(time.time())}
    else:
        record = {"key_created": info["key"]["created"], "at": int(time.time())}
    _run(_conn(kwargs), ["config-key", "set", ROTATION_RECORD.format(entity=entity),
                         json.dumps(record, sort_keys=True)], json_out=False)
    return record
