"""
Converge cephx users and the keyring files that hold their keys.

.. code-block:: yaml

    client.cinder:
      cephauth.present:
        - caps:
            mon: profile rbd
            osd: profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images
            mgr: profile rbd pool=volumes, profile rbd pool=vms

    /etc/ceph/ceph.client.cinder.keyring:
      cephauth.keyring_present:
        - entity: client.cinder
        - user: cinder
        - group: cinder
        - mode: '0640'

Keys are secrets: ``changes`` says ``{"key": "changed"}`` and never shows a key,
a diff or a keyring's text; comments and errors never contain one either.

``present`` and ``absent`` need the ``cephauth`` execution module (the ``ceph``
CLI); ``keyring_present`` with a ``key`` argument needs neither, so it also
works on nodes that have no admin access to the cluster.
"""

import importlib.util
import logging
import os
import sys

import salt.utils.files
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


atomic_file = _helper("atomic_file")
cephx = _helper("cephx")

try:
    import grp
    import pwd
except ImportError:  # pragma: no cover - Windows has neither; keyring files are POSIX here
    grp = pwd = None

log = logging.getLogger(__name__)

__virtualname__ = "cephauth"


def __virtual__():
    if pwd is None:
        return (False, "cephauth: keyring files need a POSIX system (pwd, grp)")
    return __virtualname__


# -- helpers -------------------------------------------------------------------


def _ret(name):
    return {"name": name, "result": False, "changes": {}, "comment": ""}


def _connection(cluster, conf, client_id, keyring, timeout):
    """Only the connection keywords actually given, so the module's defaults apply."""
    given = {
        "cluster": cluster,
        "conf": conf,
        "client_id": client_id,
        "keyring": keyring,
        "timeout": timeout,
    }
    return {name: value for name, value in given.items() if value is not None}


def _hide(text, key):
    """``text`` with ``key`` blanked out: a last guard for messages from Ceph."""
    text = str(text)
    return text.replace(key, "<key hidden>") if key else text


def _fail(ret, message, key=None):
    if isinstance(message, CommandExecutionError):
        # Its message without Salt's "Additional info follows" (retcode, stderr) appendix.
        message = message.error
    ret["result"] = False
    ret["comment"] = _hide(message, key)
    return ret


def _input_problem(entity, where, caps=None, key=None, check_caps=False):
    """The first problem with the arguments, named by argument, or ``None``.
    ``where`` is the argument holding the entity (``name`` or ``entity``)."""
    if not cephx.is_valid_entity(entity):
        return f"{where} must be a cephx entity name such as 'client.cinder', not {entity!r}"
    if check_caps:
        problem = cephx.caps_problem(caps, "caps")
        if problem:
            return problem
    if key is not None:
        return cephx.key_problem(key, "key")
    return None


def _module_missing(ret):
    if "cephauth.get" in __salt__:
        return None
    return _fail(ret, "the cephauth execution module is not available (is the ceph CLI installed?)")


def _summary(name, changes, test):
    """``cephx user client.x created`` / ``cephx user client.x: caps updated, key changed``,
    with ``would be`` under ``test=True``."""
    verb = "would be " if test else ""
    if "entity" in changes:
        return f"cephx user {name} {verb}created"
    done = {"caps": "updated", "key": "changed"}
    return f"cephx user {name}: " + ", ".join(
        f"{what} {verb}{done[what]}" for what in ("caps", "key") if what in changes
    )


# -- users ---------------------------------------------------------------------


def present(name, caps, key=None, cluster=None, conf=None, client_id=None, keyring=None,
            timeout=None):
    """
    Make the cephx user ``name`` exist with exactly ``caps`` (and ``key``).

    name
        The entity, e.g. ``client.cinder``.

    caps
        ``{type: grants}``, types among ``mon``, ``osd``, ``mgr``, ``mds``. Cap types
        not listed are removed. Grants compare after normalising whitespace and the
        order of comma-separated grants, so a reordered list is no change.

    key
        Optional pre-generated cephx key. The user is made to hold exactly this
        key; ``changes`` only says ``key: changed``. Don't template a key into SLS
        text (rendered SLS data can reach logs at Salt's ``garbage`` level): the
        formula's ``ceph_openstack.client_present`` reads it from pillar itself.

    cluster, conf, client_id, keyring, timeout
        Connection keywords (see the ``cephauth`` execution module).

    .. code-block:: yaml

        client.glance:
          cephauth.present:
            - caps: {mon: profile rbd, osd: profile rbd pool=images}
    """
    ret = _ret(name)
    problem = _input_problem(name, "name", caps, key, check_caps=True)
    if problem:
        return _fail(ret, problem)
    if _module_missing(ret):
        return ret
    conn = _connection(cluster, conf, client_id, keyring, timeout)
    try:
        current = __salt__["cephauth.get"](name, with_key=key is not None, **conn)
    except CommandExecutionError as exc:
        return _fail(ret, exc, key)

    changes = _changes(name, current, caps, key)
    if not changes:
        ret["result"] = True
        ret["comment"] = f"cephx user {name} is in the desired state"
        return ret
    if "key" in changes:
        # A key of a type the cluster does not allow would import, then never log in.
        try:
            allowed = __salt__["cephauth.allowed_key_types"](**conn)
        except CommandExecutionError as exc:
            return _fail(ret, exc, key)
        problem = cephx.key_type_problem(key, allowed, "key")
        if problem:
            return _fail(ret, f"cephx user {name}: {problem}")
    if __opts__["test"]:
        ret.update(result=None, changes=changes, comment=_summary(name, changes, test=True))
        return ret

    try:
        if current is None:
            try:
                __salt__["cephauth.create"](name, caps, key=key, **conn)
            except CommandExecutionError as exc:
                if not (exc.info or {}).get("exists"):
                    raise
                # Another mon applying the same state created it meanwhile: converge that one.
                current = __salt__["cephauth.get"](name, with_key=key is not None, **conn)
                changes = _changes(name, current, caps, key)
                _update(name, changes, caps, key, conn)
        else:
            _update(name, changes, caps, key, conn)
    except CommandExecutionError as exc:
        return _fail(ret, exc, key)
    if not changes:
        ret.update(result=True, comment=f"cephx user {name} is in the desired state")
        return ret
    ret.update(result=True, changes=changes, comment=_summary(name, changes, test=False))
    return ret


def _changes(name, current, caps, key):
    """What ``present`` changes on the user as it is now (``current``; None: missing)."""
    changes = {}
    if current is None:
        changes["entity"] = {"old": None, "new": name}
        changes["caps"] = {"old": None, "new": dict(caps)}
        if key is not None:
            changes["key"] = "changed"
    else:
        if not cephx.caps_equal(current["caps"], caps):
            changes["caps"] = {"old": current["caps"], "new": dict(caps)}
        if key is not None and current.pop("key") != key:
            changes["key"] = "changed"
    return changes


def _update(name, changes, caps, key, conn):
    """Bring an existing user's caps, then key, in line with ``changes``."""
    # Caps first: Ceph checks them there (auth import would not), and a refusal
    # leaves the key untouched too.
    if "caps" in changes:
        __salt__["cephauth.set_caps"](name, caps, **conn)
    if "key" in changes:
        __salt__["cephauth.import_key"](name, key, **conn)


def absent(name, cluster=None, conf=None, client_id=None, keyring=None, timeout=None):
    """
    Make sure the cephx user ``name`` does not exist.

    The user the connection acts as (``client.<client_id>``) is never deleted.

    .. code-block:: yaml

        client.old-glance:
          cephauth.absent
    """
    ret = _ret(name)
    problem = _input_problem(name, "name")
    if problem:
        return _fail(ret, problem)
    if _module_missing(ret):
        return ret
    conn = _connection(cluster, conf, client_id, keyring, timeout)
    try:
        current = __salt__["cephauth.get"](name, **conn)
        if current is None:
            ret.update(result=True, comment=f"cephx user {name} is already absent")
            return ret
        changes = {"entity": {"old": name, "new": None}}
        if __opts__["test"]:
            ret.update(result=None, changes=changes, comment=f"cephx user {name} would be deleted")
            return ret
        __salt__["cephauth.delete"](name, **conn)
    except CommandExecutionError as exc:
        return _fail(ret, exc)
    ret.update(result=True, changes=changes, comment=f"cephx user {name} deleted")
    return ret


# -- keyring files -------------------------------------------------------------


def _parse_mode(mode):
    """``(int mode, "0640")`` or a message. Salt's YAML reads 0640 as the int 640."""
    text = salt.utils.files.normalize_mode(mode)
    if not text or len(text) != 4 or any(char not in "01234567" for char in text):
        return None, f"mode must be an octal file mode such as '0640', not {mode!r}"
    value = int(text, 8)
    if value & 0o7007:
        return None, (
            f"mode {text} would let every local user at the key (or set special bits); "
            "use e.g. '0640' with a group"
        )
    return value, None


def _keyring_parts(text):
    """``(entity, key)`` of the first section of a keyring file's text."""
    entity = key = None
    for line in text.splitlines():
        line = line.strip()
        if entity is None and line.startswith("[") and line.endswith("]"):
            entity = line[1:-1].strip()
        elif key is None and line.startswith("key") and "=" in line:
            if line.split("=", 1)[0].strip() == "key":
                key = line.split("=", 1)[1].strip()
    return entity, key


def _read(path):
    """``(os.stat_result, text)`` of the existing file, ``(None, None)`` when absent."""
    try:
        with salt.utils.files.fopen(path, "rb") as handle:
            return os.fstat(handle.fileno()), handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None, None


def _owner_ids(user, group, test, notes):
    """``(uid, gid, problem)`` for the names given (``None`` for those not given).

    Under ``test=True`` a missing user or group is only noted: a package installed
    earlier in the same run may create it."""
    ids = []
    for kind, wanted, lookup, field in (("user", user, pwd.getpwnam, "pw_uid"),
                                        ("group", group, grp.getgrnam, "gr_gid")):
        if wanted is None:
            ids.append(None)
            continue
        try:
            ids.append(getattr(lookup(str(wanted)), field))
        except KeyError:
            if not test:
                return None, None, f"{kind} {wanted!r} does not exist on this minion"
            notes.append(f"{kind} {wanted} does not exist yet")
            ids.append(None)
    return ids[0], ids[1], None


def _file_changes(name, wanted, mode, user, group, uid, gid):
    """
    The ``changes`` that writing ``wanted`` (entity, key, text) makes, and the
    ``(uid, gid)`` to write with: unset owners keep the file's, or the minion's.
    """
    entity, key, text = wanted
    stat, current = _read(name)
    if stat is None:
        return {
            "file": {"old": None, "new": name},
            "mode": {"old": None, "new": f"{mode:04o}"},
            "user": {"old": None,
                     "new": str(user or atomic_file.user_name(os.geteuid()))},
            "group": {"old": None,
                      "new": str(group or atomic_file.group_name(os.getegid()))},
        }, (os.geteuid() if uid is None else uid, os.getegid() if gid is None else gid)
    changes = {}
    if current != text:
        old_entity, old_key = _keyring_parts(current)
        if old_entity != entity:
            changes["entity"] = {"old": old_entity, "new": entity}
        # Only whether the key differs, never what it is.
        changes["key" if old_key != key else "content"] = "changed"
    if stat.st_mode & 0o7777 != mode:
        changes["mode"] = {"old": f"{stat.st_mode & 0o7777:04o}", "new": f"{mode:04o}"}
    if user is not None and stat.st_uid != uid:
        changes["user"] = {"old": atomic_file.user_name(stat.st_uid), "new": str(user)}
    if group is not None and stat.st_gid != gid:
        old_group = atomic_file.group_name(stat.st_gid)
        changes["group"] = {"old": old_group, "new": str(group)}
    return changes, (stat.st_uid if uid is None else uid, stat.st_gid if gid is None else gid)


def keyring_present(name, entity, key=None, user=None, group=None, mode="0640", cluster=None,
                    conf=None, client_id=None, keyring=None, timeout=None):
    """
    Make ``name`` a keyring file for ``entity`` holding its key, with that owner and mode.

    name
        Absolute path, e.g. ``/etc/ceph/ceph.client.cinder.keyring`` (os-brick only
        reads ``/etc/ceph/<cluster>.client.<id>.keyring``).

    entity
        The cephx user, e.g. ``client.cinder``.

    key
        The key to write. Without it the key is read from Ceph, which needs the
        ``cephauth`` execution module and admin access (a mon).

    user, group
        Owner of the file (names). Unset: the existing file's owner, or the
        minion's user for a new file.

    mode
        Octal mode, default ``'0640'``. Modes that grant other users any access
        are refused.

    cluster, conf, client_id, keyring, timeout
        Connection keywords, used only to read the key from Ceph.

    The file is written atomically (temporary file in the same directory, then
    rename) and only when its content, owner or mode differ; a symlink at ``name``
    is replaced by a regular file. ``changes`` shows ``key: changed`` or
    ``content: changed``, never the text.

    .. code-block:: yaml

        /etc/ceph/ceph.client.glance.keyring:
          cephauth.keyring_present:
            - entity: client.glance
            - user: glance
            - group: glance
    """
    ret = _ret(name)
    test = __opts__["test"]
    if not isinstance(name, str) or not os.path.isabs(name):
        return _fail(ret, f"name must be the absolute path of the keyring file, not {name!r}")
    problem = _input_problem(entity, "entity", key=key)
    if problem:
        return _fail(ret, problem)
    mode_value, problem = _parse_mode(mode)
    if problem:
        return _fail(ret, problem)
    notes = []
    uid, gid, problem = _owner_ids(user, group, test, notes)
    if problem:
        return _fail(ret, problem)
    directory = atomic_file.missing_directory(name)
    if directory:
        if not test:
            return _fail(ret, f"directory {directory} does not exist: install the package "
                              "that provides it first (directories are not created here)")
        notes.append(f"directory {directory} does not exist yet")
    if os.path.isdir(name):
        return _fail(ret, f"{name} is a directory")

    if key is None:
        if "cephauth.get" not in __salt__:
            return _fail(ret, "no key given and the cephauth execution module is not "
                              "available to read it from Ceph (is this a mon?)")
        conn = _connection(cluster, conf, client_id, keyring, timeout)
        try:
            found = __salt__["cephauth.get"](entity, with_key=True, **conn)
        except CommandExecutionError as exc:
            return _fail(ret, exc)
        if found is None:
            message = f"cephx user {entity} does not exist in Ceph, so its key is unknown"
            if test:
                # cephauth.present earlier in this run would create it.
                ret.update(result=None, comment=message + " (yet)")
                return ret
            return _fail(ret, message)
        key = found["key"]

    text = cephx.keyring_text(entity, key)
    try:
        changes, (uid, gid) = _file_changes(name, (entity, key, text), mode_value, user, group,
                                            uid, gid)
    except OSError as exc:
        return _fail(ret, f"cannot read {name}: {exc.strerror}")
    if not changes:
        ret.update(result=True, comment=f"keyring {name} for {entity} is in the desired state")
        return ret
    if test:
        comment = f"keyring {name} for {entity} would be written"
        ret.update(result=None, changes=changes, comment="; ".join([comment] + notes))
        return ret
    try:
        atomic_file.write(name, text, uid, gid, mode_value)
    except OSError as exc:
        return _fail(ret, f"cannot write {name}: {exc.strerror}")
    ret.update(result=True, changes=changes, comment=f"keyring {name} for {entity} written")
    return ret
