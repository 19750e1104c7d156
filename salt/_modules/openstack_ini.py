"""
Read and edit OpenStack (oslo.config) and Ceph ini files, keeping every byte we do not manage.

Unlike Salt's ``ini`` module this keeps repeated keys (oslo multi-valued options),
comments, blank lines, spacing, order and a missing final newline exactly as they
were, and reports precise changes under ``test=True``. Parsing and rendering live
in ``salt/_utils/openstack_ini.py`` (synced with ``saltutil.sync_all``).

Value convention (oslo syntax)
==============================
* ``True``/``False`` -> ``true``/``false``; numbers -> their text; a string is written
  verbatim on one line (so ``"a,b"`` writes ``key = a,b``).
* A list/tuple is comma-joined (``enabled_backends = ceph,lvm``), except for oslo
  multi-valued options such as ``[pci] device_spec`` (the utils ``MULTI_VALUED``
  table of nova, cinder and glance ``MultiStrOpt`` options), where each element is
  written on its own ``key = element`` line. An empty list removes such a key.
* A dict is written ``k1:v1,k2:v2`` (``DictOpt``, e.g. glance ``enabled_backends``).
* ``None`` is refused: use :func:`options_absent` to remove a key.

Placement: an existing key is rewritten in place (its spelling and spacing kept,
repeats of a single-valued key collapsed into one line); a new key goes right after
its commented default (``#images_type = default``) or at the end of its section; a
missing section is appended to the file, a missing file is created.

Secrets: values of options OpenStack marks secret (oslo ``secret=True``, e.g.
``[DEFAULT] transport_url``, ``[database] connection``), of keys whose names contain
``password``, ``secret``, ``key`` or ``token`` (any case), or that the caller lists in
``secret_keys`` (``key`` or ``section/key``), are shown as ``********`` in changes and in
:func:`get` output (unless ``unmask=True``); in every other value the password of a URL
is (``rabbit://nova:********@ctl:5672/``). Values are never logged.
"""

import importlib.util
import grp
import logging
import os
import sys
import pwd
import stat

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
ini = _helper("openstack_ini")

log = logging.getLogger(__name__)

__virtualname__ = "openstack_ini"

# Mode of a file we create when the caller gives none.
DEFAULT_MODE = 0o644


def __virtual__():
    return __virtualname__


# --------------------------------------------------------------------------- files


def _resolve(name):
    """Absolute path of the real file (we write through symlinks, not over them)."""
    if not isinstance(name, str) or not os.path.isabs(name):
        raise CommandExecutionError("{!r} is not an absolute path".format(name))
    return os.path.realpath(name)


def _read(path):
    """Return (text, stat result), or (None, None) when the file does not exist."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
            info = os.fstat(handle.fileno())
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise CommandExecutionError("Cannot read {}: {}".format(path, exc.strerror)) from None
    if not stat.S_ISREG(info.st_mode):
        raise CommandExecutionError("{} is not a regular file".format(path))
    try:
        return data.decode("utf-8"), info
    except UnicodeDecodeError:
        raise CommandExecutionError(
            "{} is not an ini file: it is not UTF-8 text".format(path)
        ) from None


def _parse(path, text):
    try:
        return ini.parse(text)
    except ValueError as exc:
        raise CommandExecutionError("{} is not an ini file: {}".format(path, exc)) from None


def _uid(user):
    if user is None:
        return None
    try:
        return pwd.getpwnam(str(user)).pw_uid
    except KeyError:
        if str(user).isdigit():
            return int(user)
        raise CommandExecutionError("User {!r} does not exist".format(user)) from None


def _gid(group):
    if group is None:
        return None
    try:
        return grp.getgrnam(str(group)).gr_gid
    except KeyError:
        if str(group).isdigit():
            return int(group)
        raise CommandExecutionError("Group {!r} does not exist".format(group)) from None


def _mode(mode):
    """Salt's convention: 640, "640" and "0640" all mean 0o640."""
    if mode is None:
        return None
    try:
        value = int(str(mode), 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o7777:
        raise CommandExecutionError("Invalid mode {!r}".format(mode))
    return value


def _wanted_attrs(info, user, group, mode):
    """(uid, gid, mode) the file must end with: as given, else as it is now."""
    uid, gid, perms = _uid(user), _gid(group), _mode(mode)
    if info is None:
        return (
            os.geteuid() if uid is None else uid,
            os.getegid() if gid is None else gid,
            DEFAULT_MODE if perms is None else perms,
        )
    return (
        info.st_uid if uid is None else uid,
        info.st_gid if gid is None else gid,
        stat.S_IMODE(info.st_mode) if perms is None else perms,
    )


def _attr_changes(info, attrs):
    """Changes of user/group/mode of an existing file."""
    if info is None:
        return {}
    uid, gid, perms = attrs
    changes = {}
    if info.st_uid != uid:
        user_name = atomic_file.user_name
        changes["user"] = {"old": user_name(info.st_uid), "new": user_name(uid)}
    if info.st_gid != gid:
        group_name = atomic_file.group_name
        changes["group"] = {"old": group_name(info.st_gid), "new": group_name(gid)}
    if stat.S_IMODE(info.st_mode) != perms:
        changes["mode"] = {
            "old": "{:04o}".format(stat.S_IMODE(info.st_mode)),
            "new": "{:04o}".format(perms),
        }
    return changes


def _write_atomic(path, text, attrs):
    """Write ``text`` to ``path`` via a temp file in the same directory and a rename."""
    try:
        atomic_file.write(path, text, *attrs)
    except OSError as exc:
        raise CommandExecutionError("Cannot write {}: {}".format(path, exc.strerror)) from None


def _set_attrs(path, attrs):
    """Apply owner, group and mode to an existing file whose content is unchanged."""
    uid, gid, perms = attrs
    try:
        os.chown(path, uid, gid)
        os.chmod(path, perms)
    except OSError as exc:
        raise CommandExecutionError(
            "Cannot set owner/mode of {}: {}".format(path, exc.strerror)
        ) from None


def _load(name):
    """Resolve, read and parse ``name``: (path, document or None, stat or None)."""
    path = _resolve(name)
    text, info = _read(path)
    if text is None:
        return path, None, None
    return path, _parse(path, text), info


# --------------------------------------------------------------------------- public


def get(name, section=None, key=None, unmask=False):
    """
    Read values from an ini file.

    name
        Absolute path of the file.
    section
        Only this section: returns ``{key: value}`` (``{}`` if the section is missing).
    key
        Only this key of ``section``: returns its value, or None if it is not set.
    unmask
        Show values of secret keys (password, secret, key, token in the name);
        by default they are returned as ``********``.

    Without ``section`` returns ``{section: {key: value}}``. A key that appears more
    than once, or an oslo multi-valued option, gives a list of its values in file
    order. Raises CommandExecutionError if the file is missing or not ini.

    CLI Example:

    .. code-block:: bash

        salt '*' openstack_ini.get /etc/nova/nova.conf libvirt images_type
        salt '*' openstack_ini.get /etc/cinder/cinder.conf ceph
        salt '*' openstack_ini.get /etc/glance/glance-api.conf
    """
    if key is not None and section is None:
        raise CommandExecutionError("key needs a section")
    path, doc, _ = _load(name)
    if doc is None:
        raise CommandExecutionError("{} does not exist".format(path))
    data = ini.to_dict(doc)
    if not unmask:
        data = ini.mask_dict(data)
    if section is None:
        return data
    options = data.get(section, {})
    return options if key is None else options.get(key)


def options_present(
    name, sections, test=False, secret_keys=None, user=None, group=None, mode=None
):
    """
    Merge ``{section: {key: value}}`` into an ini file; return the changes.

    name
        Absolute path of the file; created (with its sections) if missing, but its
        directory must exist (with ``test=True`` a missing directory is not an error:
        the changes are those of a new file, as after a package created the directory).
    sections
        ``{section: {key: value}}``; values follow the module's value convention
        (booleans ``true``/``false``, lists comma-joined, a list for an oslo
        multi-valued key such as ``[pci] device_spec`` writes one line per value).
    test
        Compute and return the changes without writing anything.
    secret_keys
        More keys (``key`` or ``section/key``) whose values are masked in changes.
    user, group, mode
        Owner, group and mode to enforce; unset ones are kept (a new file gets the
        caller's user and group and mode 0644).

    Returns ``{"section/key": {"old": ..., "new": ...}}`` (plus ``user``/``group``/
    ``mode`` entries when those change), ``{}`` when nothing changes. The file is
    written atomically, and only when something changes.

    CLI Example:

    .. code-block:: bash

        salt '*' openstack_ini.options_present /etc/nova/nova.conf \\
            '{libvirt: {images_type: rbd, images_rbd_pool: vms}}'
        salt '*' openstack_ini.options_present /etc/cinder/cinder.conf \\
            '{DEFAULT: {enabled_backends: [lvm, ceph]}}' mode=0640 test=True
    """
    path, doc, info = _load(name)
    if doc is None:
        # Under test the directory may come from a package installed earlier in the run.
        missing = atomic_file.missing_directory(path)
        if missing and not test:
            raise CommandExecutionError(
                "Directory {} does not exist: install the package that provides it "
                "first (directories are not created here)".format(missing)
            )
        doc = _parse(path, "")
    try:
        content = ini.merge(doc, sections, secret_keys)
    except ValueError as exc:
        raise CommandExecutionError("{}: {}".format(path, exc)) from None
    attrs = _wanted_attrs(info, user, group, mode)
    changes = dict(content, **_attr_changes(info, attrs))
    log.debug("openstack_ini: %s: changes to %s", path, sorted(changes))
    if test or not changes:
        return changes
    if content:
        _write_atomic(path, ini.render(doc), attrs)
    else:
        _set_attrs(path, attrs)
    return changes


def options_absent(name, sections, test=False, secret_keys=None, drop_emptied=False):
    """
    Remove keys from an ini file; return the changes.

    name
        Absolute path of the file; a missing file has nothing to remove.
    sections
        ``{section: [key, ...]}``; every occurrence of each key is removed (with its
        continuation lines). Comments, commented defaults and section headers stay.
    test
        Compute and return the changes without writing anything.
    secret_keys
        More keys (``key`` or ``section/key``) whose values are masked in changes.
    drop_emptied
        Also remove a section this leaves with nothing but blank lines, and the blank
        lines then left at the end of the file (what ``options_present`` added comes out
        whole).

    Returns ``{"section/key": {"old": ..., "new": None}}``, ``{}`` when nothing changes.

    CLI Example:

    .. code-block:: bash

        salt '*' openstack_ini.options_absent /etc/nova/nova.conf \\
            '{libvirt: [live_migration_flag]}'
    """
    path, doc, info = _load(name)
    if doc is None:
        try:
            ini.validate_absent(sections)
        except ValueError as exc:
            raise CommandExecutionError("{}: {}".format(path, exc)) from None
        return {}
    try:
        changes = ini.remove(doc, sections, secret_keys, drop_emptied=drop_emptied)
    except ValueError as exc:
        raise CommandExecutionError("{}: {}".format(path, exc)) from None
    log.debug("openstack_ini: %s: removed %s", path, sorted(changes))
    if changes and not test:
        _write_atomic(path, ini.render(doc), _wanted_attrs(info, None, None, None))
    return changes
