"""
Validation of the ``ceph_openstack`` pillar, before the formula changes anything.

Pure Python, standard library only: it runs inside onedir Salt on a minion. The
execution module ``ceph_openstack.validate`` calls :func:`problems` through
the helper loader every module has (README, "Where the modules find their
helpers"); unit tests import this file by path.

:func:`problems` takes the ``ceph_openstack`` dict as the pillar gives it, *without*
defaults.yaml merged: a key that defaults.yaml provides may be missing. It returns
every problem it finds (an empty list for a valid pillar), each a string

    ``<full pillar key path>: <what is wrong>``

e.g. ``ceph_openstack:pools:vol umes: illegal pool name (whitespace or control
character)``. The path is colon-separated as for ``pillar.get``; a name that is itself
wrong is part of the path (quoted when it holds a newline or other control character).
Values are shown only where they help and are not secret (a role, pool, client or
secret name that is referenced but not defined). The value of a client's ``key``
is never shown, nor anything else that parses as a cephx key.

Two passes: the first checks the shape (known keys, types, ranges, names) from a
table per record; the second checks references between parts (a backend's cluster,
pool, client and secret exist, clients have the roles the services need, each libvirt
secret has a UUID of its own and each usage at most one secret). Required fields are
those defaults.yaml gives no value for (neither under ``ceph_openstack`` nor under
``parts``): ``clients.*.caps``/``roles``, ``libvirt.secrets.*.uuid``, ``pool`` and
``client`` of each Cinder backend, the Cinder backup, Glance, each Glance store and
Nova, Glance's ``backend``, Nova's ``secret`` and ``clusters.*.targets.mon``.

A client or libvirt secret marked ``absent: true`` is withdrawn by the formula (README,
"Removing a client"): an absent client needs no ``caps`` or ``roles``, and no part may
still use it (a Cinder backend, the backup, Glance, a Glance store, Nova, or a libvirt
secret not marked absent itself); no Cinder backend or Nova may use an absent secret. The
problem names the referencing key and the absent one.

Several Ceph clusters: the top-level ``cluster``, ``fsid``, ``mon_host``, ``pools`` and
``clients`` are the main cluster's; ``clusters`` holds the others by name, each with
its own. A ``cluster`` key in a libvirt secret, a Cinder backend, the backup, Glance, a
Glance store or Nova names the cluster that part uses (default: the main one), and its
pool, client and secret must be that cluster's.
"""

import importlib.util
import ipaddress
import os
import sys
import re


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


_cephx = _helper("cephx")

#: Roles the formula's SLS know; ``targets`` may define more.
DEFAULT_ROLES = ("mon", "controller", "compute")

_CLUSTER = re.compile(r"^[A-Za-z0-9_-]+$")
# Role and libvirt secret names: they end up in state IDs and compound targets.
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")  # RFC 1123
_AUTOSCALE_MODES = ("on", "off", "warn")


# --------------------------------------------------------------------------- helpers


def _at(path):
    """The pillar key path as text; a part with a newline or other control character is
    quoted so that every problem stays on one line."""
    return ":".join(str(part) if str(part).isprintable() else repr(str(part)) for part in path)


def _add(out, path, text):
    out.append(f"{_at(path)}: {text}")


def _kind(value):
    """The YAML name of a value's type, for messages (never the value itself)."""
    if value is None:
        return "null"
    for types, name in (
        (bool, "boolean"),  # before int: a bool is an int
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (dict, "mapping"),
        ((list, tuple), "list"),
    ):
        if isinstance(value, types):
            return name
    return type(value).__name__


def _show(value):
    """A non-secret value for a message; anything that parses as a cephx key is hidden."""
    if _cephx.is_valid_key(value):
        return "<a cephx key, not shown>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _has_control(text):
    return any(ord(char) < 32 or ord(char) == 127 for char in text)


def _dict(value):
    return value if isinstance(value, dict) else {}


def _is_mapping(out, path, value):
    if isinstance(value, dict):
        return True
    hint = " (use {} for none)" if value is None else ""
    _add(out, path, f"must be a mapping, not {_kind(value)}{hint}")
    return False


# --------------------------------------------------------------------------- value checks
# Each takes (out, path, value) and appends a problem for a bad value.


def _bool(out, path, value):
    if not isinstance(value, bool):
        _add(out, path, f"must be true or false, not {_kind(value)}")


def _positive_int(out, path, value):
    if not _is_int(value):
        _add(out, path, f"must be a positive integer, not {_kind(value)}")
    elif value < 1:
        _add(out, path, "must be a positive integer (at least 1)")


def _non_negative_int(out, path, value):
    if not _is_int(value):
        _add(out, path, f"must be an integer (0 for no limit), not {_kind(value)}")
    elif value < 0:
        _add(out, path, "must not be negative (0 for no limit)")


def _string(out, path, value):
    """A non-empty one-line string (it lands in ceph.conf, a CLI argument or a target)."""
    if not isinstance(value, str):
        _add(out, path, f"must be a non-empty string, not {_kind(value)}")
    elif not value.strip():
        _add(out, path, "must be a non-empty string")
    elif _has_control(value):
        _add(out, path, "must not contain control characters (newlines, tabs)")


def _name_ref(out, path, value):
    """The name of a pool, client or secret defined elsewhere (checked in the second pass)."""
    _string(out, path, value)


def _cluster(out, path, value):
    if not isinstance(value, str) or not _CLUSTER.match(value):
        _add(out, path, "must be a cluster name of letters, digits, '_' and '-' (it names "
                        "/etc/ceph/<cluster>.conf)")


def _uuid(out, path, value):
    if not isinstance(value, str) or not _UUID.match(value):
        _add(out, path, "must be a UUID in the canonical 8-4-4-4-12 hex form, "
                        "e.g. 691c3607-7ca3-433a-a0c0-5805cea8afa0")


def _ratio(out, path, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        _add(out, path, f"must be a number between 0 and 1, not {_kind(value)}")
    elif not 0 <= value <= 1:
        _add(out, path, "must be between 0 and 1")


def _autoscale_mode(out, path, value):
    if isinstance(value, bool):
        # YAML 1.1 (PyYAML, Salt) reads unquoted on/off as true/false.
        _add(out, path, "must be 'on', 'off' or 'warn' as a string: quote it, YAML reads "
                        "unquoted on/off as true/false")
    elif value not in _AUTOSCALE_MODES:
        _add(out, path, "must be one of 'on', 'off', 'warn'")


def _key(out, path, value):
    """A pre-generated cephx key, or null. Its value never appears in a message."""
    if value is not None and not _cephx.is_valid_key(value):
        _add(out, path, f"not a valid cephx key (expected {_cephx.KEY_FORMS}, as `ceph auth "
                        "get-key` prints; the value is not shown)")


def _optional(check):
    """``check``, but null is fine (defaults.yaml has null for these keys)."""

    def _check(out, path, value):
        if value is not None:
            check(out, path, value)

    return _check


# --------------------------------------------------------------------------- names


def _pool_name_problem(name):
    """Why ``name`` cannot be a Ceph pool name used by the formula, or None."""
    if not isinstance(name, str) or not name:
        return "illegal pool name (must be a non-empty string)"
    if len(name) > 255:
        return "illegal pool name (longer than 255 characters)"
    if any(char.isspace() for char in name) or _has_control(name):
        return "illegal pool name (whitespace or control character)"
    if "/" in name or "@" in name:
        # rbd image specs are pool/image@snap: these would be ambiguous.
        return "illegal pool name ('/' or '@')"
    if name.startswith("."):
        return "illegal pool name (names starting with '.' are reserved by Ceph)"
    if name.startswith("-"):
        # cephpool refuses it too: on a command line it would read as an option.
        return "illegal pool name (a name starting with '-' reads as an option)"
    return None


def _client_name_problem(name):
    # A string: YAML reads `1:` or `yes:` as a number or a boolean, which no reference
    # (nova:client: '1') would match.
    if not isinstance(name, str) or not _cephx.is_valid_entity(f"client.{name}"):
        return "illegal client name (letters, digits, '_', '.' and '-' only)"
    return None


def _cluster_name_problem(name):
    if not isinstance(name, str) or not _CLUSTER.match(name):
        return ("illegal cluster name (letters, digits, '_' and '-' only; it names "
                "/etc/ceph/<cluster>.conf)")
    return None


def _name_problem(name):
    if not isinstance(name, str) or not _NAME.match(name):
        return "illegal name (letters, digits, '_', '.' and '-' only)"
    return None


def _hostname_problem(name):
    labels = name.split(".") if isinstance(name, str) else None
    if not labels or len(name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        return ("illegal host name (dot-separated labels of letters, digits and '-', "
                "not starting or ending with '-')")
    return None


def _section_problem(name):
    """Why ``name`` cannot be an ini section of a `conf` mapping (as the ini editor checks)."""
    if not isinstance(name, str) or not name.strip():
        return "illegal section name (must be a non-empty string)"
    if any(char in name for char in "\r\n[]"):
        return "illegal section name (contains a newline, '[' or ']')"
    return None


def _backend_name_problem(name, reserved=("DEFAULT",)):
    """
    Why ``name`` cannot name a Cinder backend or Glance store, or None.

    The name is an ini section ([name]) and an item of a list option
    (cinder ``enabled_backends = a,b``, glance ``enabled_backends = name:rbd``), so it
    cannot hold whitespace, brackets, ',' ':' or '='; DEFAULT is oslo's own section.
    """
    if not isinstance(name, str) or not name:
        return "illegal backend name (must be a non-empty string)"
    if any(char.isspace() or char in "[]:,=" for char in name) or _has_control(name):
        return "illegal backend name (whitespace, '[', ']', ':', ',' or '=')"
    if name in reserved:
        return f"illegal backend name ({name} is a section of its own)"
    return None


def _named(name_problem, check):
    """A mapping ``{name: value}``: each name passes ``name_problem``, each value ``check``."""

    def _check(out, path, value):
        if not _is_mapping(out, path, value):
            return
        for name, item in value.items():
            problem = name_problem(name)
            if problem:
                _add(out, path + [name], problem)
            check(out, path + [name], item)

    return _check


def _hosts_address(out, path, value):
    try:
        ipaddress.ip_address(value if isinstance(value, str) else None)
    except ValueError:
        hint = " (quote IPv6 addresses: YAML may read them as numbers)" if _is_int(value) else ""
        _add(out, path, f"must be an IPv4 or IPv6 address{hint}")


# --------------------------------------------------------------------------- ini options


def _option_name_problem(key):
    """Mirrors openstack_ini._check_key: a key must read back as itself."""
    if (
        not isinstance(key, str)
        or not key
        or any(char in key for char in "\r\n[]=:")
        or key != key.strip()
        or key[0] in "#;"
    ):
        return ("illegal option name (newline, '[', ']', '=', ':', leading '#' or ';', "
                "or surrounding spaces)")
    return None


def _option_value(out, path, value):
    """What the ini editor can write: a scalar, a list of scalars or a mapping of
    scalars, on one line (a newline would let a value inject other options)."""
    if value is None:
        _add(out, path, "must not be null (use '' for an empty value)")
        return
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, dict):
        items = [item for pair in value.items() for item in pair]
    else:
        items = [value]
    for item in items:
        if not isinstance(item, (str, int, float, bool)):
            _add(out, path, f"cannot be written to an ini file ({_kind(item)} inside)")
            return
        if isinstance(item, str) and ("\n" in item or "\r" in item):
            _add(out, path, "must not contain a newline")
            return


def _options(out, path, value):
    """``{option: value}`` of one ini section (``options``, ``compute_client``)."""
    if not _is_mapping(out, path, value):
        return
    for key, item in value.items():
        problem = _option_name_problem(key)
        if problem:
            _add(out, path + [key], problem)
        _option_value(out, path + [key], item)


def _conf(out, path, value):
    """``{section: {option: value}}`` (``conf``)."""
    _named(_section_problem, _options)(out, path, value)


# --------------------------------------------------------------------------- records


def _record(fields, required=()):
    """A mapping with known ``fields`` ({key: check}), of which ``required`` must be given."""

    def _check(out, path, value):
        if not _is_mapping(out, path, value):
            return
        for key, item in value.items():
            if key in fields:
                fields[key](out, path + [key], item)
            else:
                _add(out, path + [key], f"unknown key (known: {', '.join(fields)})")
        for key in required:
            if key not in value:
                _add(out, path + [key], "required, but missing")

    return _check


def _caps(out, path, value):
    """The exact cap set: {mon|osd|mgr|mds: grants}, at least one."""
    if not _is_mapping(out, path, value):
        return
    if not value:
        _add(out, path, "must name at least one cap type, e.g. {mon: 'profile rbd'}")
    for cap_type, grants in value.items():
        if cap_type not in _cephx.CAP_TYPES:
            _add(out, path + [cap_type],
                 f"unknown cap type (valid: {', '.join(_cephx.CAP_TYPES)})")
        _string(out, path + [cap_type], grants)


def _roles(out, path, value):
    """A non-empty list of role names; that they are known is checked in the second pass."""
    if not isinstance(value, list) or not value:
        _add(out, path, f"must be a non-empty list of roles, not "
                        f"{'an empty list' if value == [] else _kind(value)}")
        return
    for index, role in enumerate(value):
        if not isinstance(role, str):
            _add(out, path, f"item {index} must be a role name, not {_kind(role)}")
        elif value.index(role) != index:
            _add(out, path, f"role {_show(role)} is listed twice")


_POOL_FIELDS = _record(
    {
        "pg_num": _positive_int,
        "pgp_num": _positive_int,
        "size": _positive_int,
        "min_size": _positive_int,
        "pg_autoscale_mode": _autoscale_mode,
        "target_size_ratio": _ratio,
        "crush_rule": _string,
        "max_objects": _non_negative_int,
        "max_bytes": _non_negative_int,
        "application": _string,
        "init": _bool,
    }
)



def _pool(out, path, value):
    """A pool's properties; also the pairs Ceph refuses (``ceph osd pool set`` fails)."""
    _POOL_FIELDS(out, path, value)
    if not isinstance(value, dict):
        return
    for low, high in (("min_size", "size"), ("pgp_num", "pg_num")):
        if _is_int(value.get(low)) and _is_int(value.get(high)) and value[low] > value[high]:
            _add(out, path + [low], f"must not be larger than {high}")


_CLIENT_FIELDS = {"caps": _caps, "roles": _roles, "key": _key, "absent": _bool}


def _is_absent(record):
    """A client or libvirt secret marked ``absent: true`` (withdrawn by the formula)."""
    return isinstance(record, dict) and record.get("absent") is True


def _client(out, path, value):
    """A cephx user; one marked ``absent: true`` is withdrawn (README, "Removing a client")
    and needs neither caps nor roles (any given are checked, then ignored)."""
    required = () if _is_absent(value) else ("caps", "roles")
    _record(_CLIENT_FIELDS, required=required)(out, path, value)


_CLIENT = _client

#: Another Ceph cluster (``clusters:<name>``): its mons, facts, pools and clients. The
#: other roles' targets are the top-level ones.
_OTHER_CLUSTER = _record(
    {
        "targets": _record({"mon": _string}, required=("mon",)),
        "fsid": _optional(_uuid),
        "mon_host": _optional(_string),
        "pools": _named(_pool_name_problem, _pool),
        "clients": _named(_client_name_problem, _CLIENT),
    },
    required=("targets",),
)

# `cluster` (the cluster a part uses) is checked like the top-level name here; that the
# cluster exists is checked in the second pass.
# `absent: true`: undefined on the computes where no libvirt domain uses it (its uuid says
# which secret that is).
_SECRET = _record({"uuid": _uuid, "client": _name_ref, "cluster": _cluster, "absent": _bool},
                  required=("uuid",))

_BACKEND = _record(
    {"cluster": _cluster, "pool": _name_ref, "client": _name_ref, "secret": _name_ref,
     "options": _options},
    required=("pool", "client"),
)

_CINDER = _record(
    {
        "backends": _named(_backend_name_problem, _BACKEND),
        "backup": _optional(
            _record({"cluster": _cluster, "pool": _name_ref, "client": _name_ref,
                     "options": _options},
                    required=("pool", "client"))
        ),
        "conf": _conf,
    }
)


def _store_name_problem(name):
    # [glance_store] holds default_backend: a store named so would share that section.
    return _backend_name_problem(name, reserved=("DEFAULT", "glance_store"))


def _glance_backend(out, path, value):
    problem = _store_name_problem(value)
    if problem:
        _add(out, path, problem)


_GLANCE_STORE = _record(
    {
        "cluster": _cluster,
        "pool": _name_ref,
        "client": _name_ref,
        "chunk_size": _positive_int,
        "options": _options,
    },
    required=("pool", "client"),
)

_GLANCE_FIELDS = _record(
    {
        "backend": _glance_backend,
        "cluster": _cluster,
        "pool": _name_ref,
        "client": _name_ref,
        "chunk_size": _positive_int,
        "show_image_direct_url": _bool,
        "options": _options,
        "conf": _conf,
        "stores": _named(_store_name_problem, _GLANCE_STORE),
    },
    required=("backend", "pool", "client"),
)


def _glance(out, path, value):
    """Glance's main store and its other ``stores``; no store may take the main one's name
    (each is one [<name>] section and one ``enabled_backends`` item)."""
    _GLANCE_FIELDS(out, path, value)
    if not isinstance(value, dict):
        return
    backend = value.get("backend")
    for name in _dict(value.get("stores")):
        if isinstance(backend, str) and name == backend:
            _add(out, path + ["stores", name],
                 f"same name as {_at(path + ['backend'])} (the main store); give this store "
                 "a name of its own")


_NOVA = _record(
    {
        "cluster": _cluster,
        "pool": _name_ref,
        "client": _name_ref,
        "secret": _name_ref,
        "options": _options,
        "conf": _conf,
    },
    required=("pool", "client", "secret"),
)

_VISIBILITIES = ("public", "private", "shared", "community")
_IMAGE_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc", "qed", "qcow", "luks", "parallels")


def _one_of(choices):
    def _check(out, path, value):
        if value not in choices:
            _add(out, path, f"must be one of {', '.join(choices)}, not {_show(value)}")

    return _check


def _sha256(out, path, value):
    if not (isinstance(value, str) and len(value) == 64
            and not set(value.lower()) - set("0123456789abcdef")):
        _add(out, path, "must be the source's SHA-256 as 64 hex digits")


def _image_properties(out, path, value):
    """Glance properties are strings; YAML turns unquoted yes/no/1 into other types."""
    if not _is_mapping(out, path, value):
        return
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip():
            _add(out, path, f"property name {_show(key)} must be a non-empty string")
        elif not isinstance(item, str):
            _add(out, path + [key], f"must be a string, not {_kind(item)} (quote it in YAML)")


_IMAGE = _record(
    {
        "source": _string,
        "source_hash": _sha256,
        "format": _one_of(_IMAGE_FORMATS),
        "min_disk": _non_negative_int,
        "visibility": _one_of(_VISIBILITIES),
        "properties": _image_properties,
    },
    required=("source",),
)

_IMAGES = _record(
    {
        "cloud": _optional(_string),
        "clouds_yaml": _optional(_string),
        "work_dir": _optional(_string),
        "visibility": _one_of(_VISIBILITIES),
        "properties": _image_properties,
        "upload": _named(_name_problem, _IMAGE),
    }
)

def _path(out, path, value):
    """An absolute path on one line."""
    _string(out, path, value)
    if isinstance(value, str) and value.strip() and not value.startswith("/"):
        _add(out, path, "must be an absolute path")


def _root(out, path, value):
    """'' (no prefix), or an absolute path put in front of every path the formula manages."""
    if value != "":
        _path(out, path, value)


def _repo_url(out, path, value):
    """A URL template: map.jinja fills in ``{release}`` with str.format."""
    _string(out, path, value)
    if isinstance(value, str):
        try:
            value.format(release="reef")
        except (KeyError, IndexError, ValueError):
            _add(out, path, "may hold no other placeholder than {release} (write {{ and }} "
                            "for literal braces)")


def _package_list(out, path, value):
    if not isinstance(value, list):
        _add(out, path, f"must be a list of package names, not {_kind(value)}")
        return
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or _has_control(item):
            _add(out, path, f"item {index} must be a package name")


def _strings(keys):
    """A mapping of some of ``keys``, each to a non-empty string."""
    return _record({key: _string for key in keys})


_SERVICE_USERS = ("cinder", "glance", "nova", "qemu")
_SERVICES = ("cinder_volume", "cinder_backup", "glance_api", "nova_compute")

#: Overrides of osfamilymap.yaml (map.jinja reads exactly these).
_LOOKUP = _record(
    {
        "root": _root,
        "ceph_dir": _path,
        "hosts_file": _path,
        "cinder_conf": _path,
        "glance_conf": _path,
        "nova_conf": _path,
        "guest_socket_dir": _path,
        "guest_log_dir": _path,
        "libvirt_uri": _optional(_string),
        "owners": _strings(_SERVICE_USERS),
        "groups": _strings(_SERVICE_USERS),
        "pkgs": _named(_name_problem, _package_list),
        "services": _strings(_SERVICES),
        "service_logs": _record({key: _optional(_path) for key in _SERVICES}),
        "repo": _record({"url": _repo_url, "key_url": _string}),
    }
)

#: Every top-level key: those of pillar.example (fsid and mon_host are commented out
#: there) and of defaults.yaml.
_TOP = {
    "cluster": _cluster,
    "fsid": _optional(_uuid),
    "mon_host": _optional(_string),
    "hosts": _named(_hostname_problem, _hosts_address),
    "repo": _record({"manage": _bool, "release": _string}),
    "packages": _record({"manage": _bool}),
    "targets": _named(_name_problem, _string),
    "pools": _named(_pool_name_problem, _pool),
    "clients": _named(_client_name_problem, _CLIENT),
    "clusters": _named(_cluster_name_problem, _OTHER_CLUSTER),
    "libvirt": _record({"secrets": _named(_name_problem, _SECRET)}),
    "cinder": _CINDER,
    "glance": _optional(_glance),
    "nova": _optional(_NOVA),
    "images": _IMAGES,
    "compute_client": _options,
    "services": _record({"restart": _bool}),
    "rollout": _record({"compute_batch": _positive_int,
                        "verify": _one_of(("changed", "always")),
                        "timeout": _positive_int,
                        "gather_job_timeout": _positive_int}),
    "lookup": _LOOKUP,
}

TOP_LEVEL_KEYS = tuple(_TOP)


# --------------------------------------------------------------------------- pass 2: references


def _defined(names, name):
    """``name`` is a string key of ``names`` (a list or mapping in ``name`` is never one)."""
    return isinstance(name, str) and name in names


class _Cluster:
    """One Ceph cluster's pools and clients, and the pillar key that holds them
    (``ceph_openstack`` for the main cluster, ``ceph_openstack:clusters:<name>`` else)."""

    def __init__(self, name, record, path):
        self.name = name
        self.path = path
        self.where = _at(path)
        pools = record.get("pools")
        # None: pools may live in another pillar file (mons only), so they are not checked.
        self.pools = pools if isinstance(pools, dict) else None
        self.clients = _dict(record.get("clients"))
        # Clients marked `absent: true`: withdrawn, so no part may use them any more.
        self.absent = {name for name, spec in self.clients.items() if _is_absent(spec)}

    def client_roles(self, client):
        """The roles of ``client`` as a set, or None when they cannot be read (a problem
        of its own already) or do not matter (an absent client)."""
        if client in self.absent:
            return None
        roles = _dict(self.clients.get(client)).get("roles")
        if not isinstance(roles, list) or not roles:
            return None
        return {role for role in roles if isinstance(role, str)}

    def pool_problem(self, pool):
        if self.pools is not None and pool not in self.pools:
            return f"no pool {_show(pool)} in {self.where}:pools"
        return None

    def client_problem(self, client, role, instead="point it at another client or remove it"):
        """Why a part of this cluster on ``role`` nodes cannot use ``client``, or None.
        ``instead`` says what to do when the client is marked absent."""
        if not _defined(self.clients, client):
            return f"no client {_show(client)} in {self.where}:clients"
        if client in self.absent:
            return (f"uses client {_show(client)}, which is marked absent "
                    f"({self.where}:clients:{client}:absent): {instead}, so that the client "
                    "can be withdrawn")
        roles = self.client_roles(client)
        if roles is not None and role not in roles:
            return (f"client {_show(client)} lacks role {role!r} in "
                    f"{self.where}:clients:{client}:roles, so its key would not reach the "
                    f"{role} nodes")
        return None


class _Refs:
    """What other parts can refer to: clusters (each with its pools and clients), secrets,
    roles."""

    def __init__(self, pillar):
        main = pillar.get("cluster", "ceph")
        self.main = main if isinstance(main, str) else "ceph"
        self.clusters = {self.main: _Cluster(self.main, pillar, ["ceph_openstack"])}
        for name, record in _dict(pillar.get("clusters")).items():
            # One named as the main cluster is a problem of its own (_other_cluster_names);
            # references to that name mean the main cluster.
            if isinstance(name, str) and name != self.main:
                path = ["ceph_openstack", "clusters", name]
                self.clusters[name] = _Cluster(name, _dict(record), path)
        self.secrets = _dict(_dict(pillar.get("libvirt")).get("secrets"))
        targets = _dict(pillar.get("targets"))
        self.roles = set(DEFAULT_ROLES) | {role for role in targets if isinstance(role, str)}

    def cluster_name(self, section):
        """The cluster a part (a mapping) names; its default is the main cluster."""
        return section.get("cluster", self.main)

    def secret_client(self, secret):
        """The client whose key the libvirt secret ``secret`` holds (default: its name)."""
        return _dict(self.secrets.get(secret)).get("client", secret)

    def usage(self, cluster, client):
        """The libvirt usage name of the secret of ``client`` on ``cluster``."""
        prefix = "" if cluster == self.main else f"{cluster}."
        return f"{prefix}client.{client} secret"


def _cluster_of(out, refs, path, section):
    """The :class:`_Cluster` the part ``section`` at ``path`` uses, or None when its
    ``cluster`` names none (reported here) or is not a name (reported by the first pass)."""
    if "cluster" not in section:
        return refs.clusters[refs.main]  # even when its name is wrong (reported apart)
    name = section["cluster"]
    if _cluster_name_problem(name):
        return None
    if name not in refs.clusters:
        known = ", ".join(_at([known]) for known in refs.clusters)
        _add(out, path + ["cluster"],
             f"no cluster {_show(name)} (known: {known}; ceph_openstack:cluster names the "
             "main one, ceph_openstack:clusters the others)")
        return None
    return refs.clusters[name]


def _client_text(client, cluster, unless):
    """``client 'x'``, with its cluster when that is not ``unless`` (the problem's own)."""
    text = f"client {_show(client)}"
    return text if cluster == unless else f"{text} of cluster {_show(cluster)}"


def _other_cluster_names(out, refs, pillar):
    for name in _dict(pillar.get("clusters")):
        if name == refs.main:
            _add(out, ["ceph_openstack", "clusters", name],
                 "the main cluster's name (ceph_openstack:cluster, default 'ceph'): its pools "
                 "and clients are the top-level ones; give this cluster another name")


def _client_roles(out, refs):
    known = ", ".join(sorted(refs.roles))
    for on in refs.clusters.values():
        for client in on.clients:
            for role in sorted((on.client_roles(client) or set()) - refs.roles):
                _add(out, on.path + ["clients", client, "roles"],
                     f"unknown role {_show(role)} (known: {known}; "
                     "ceph_openstack:targets can define more)")


def _unique_uuid(out, by_uuid, path, secret, holder):
    """The secret's UUID (lower case), or None when it is not one; a problem when another
    secret has it (libvirt keeps one secret per UUID, whatever the client).
    ``holder`` is (cluster, client) of the secret, ``by_uuid`` {uuid: (name, holder)}."""
    uuid = secret.get("uuid")
    if not isinstance(uuid, str) or not _UUID.match(uuid):
        return None
    uuid = uuid.lower()
    other, other_holder = by_uuid.setdefault(uuid, (path[-1], holder))
    if other != path[-1]:
        other_cluster, other_client = other_holder
        whose = ("for the same client" if other_holder == holder else
                 f"which holds the key of {_client_text(other_client, other_cluster, holder[0])}")
        where = _at(["ceph_openstack", "libvirt", "secrets", other, "uuid"])
        _add(out, path + ["uuid"],
             f"same UUID as {where} ({whose}); libvirt keeps one secret per UUID: "
             "give each secret its own UUID, or use one secret in several places")
    return uuid


def _unique_usage(out, refs, by_usage, name, path, uuid, holder):
    """A problem at ``path`` when a secret other than ``name`` has the same usage name under
    another UUID (libvirt refuses it). ``by_usage`` is {usage: (name, uuid, holder)}."""
    cluster, client = holder
    other, other_uuid, other_holder = by_usage.setdefault(
        refs.usage(cluster, client), (name, uuid, holder))
    if other_uuid == uuid:
        return
    if cluster == refs.main and other_holder == holder:
        _add(out, path,
             f"client {_show(client)} already has secret {other!r} with another UUID; "
             "libvirt keeps one secret per usage ('client.<client> secret')")
    else:
        _add(out, path,
             f"same libvirt usage {refs.usage(cluster, client)!r} as secret {other!r}, with "
             "another UUID; libvirt keeps one secret per usage: use one secret in several "
             "places")


def _secrets(out, refs):
    """Each secret's cluster and client exist and the client reaches the computes; each
    secret has a UUID of its own, and a usage name ('client.<client> secret', or
    '<cluster>.client.<client> secret' off the main cluster) has one secret."""
    by_uuid, by_usage = {}, {}
    # In name order, so the secret named in a conflict does not depend on how the pillar
    # was merged.
    for name, secret in sorted(refs.secrets.items(), key=lambda item: str(item[0])):
        if not isinstance(secret, dict):
            continue
        path = ["ceph_openstack", "libvirt", "secrets", name]
        client = refs.secret_client(name)
        holder = (refs.cluster_name(secret), client)
        uuid = _unique_uuid(out, by_uuid, path, secret, holder)
        # A secret marked absent is only undefined (by its UUID): its client may be absent
        # or gone from pillar, and its usage name is free for a new secret.
        if not isinstance(client, str) or _is_absent(secret):
            continue
        on = _cluster_of(out, refs, path, secret)
        if on is None:
            continue
        client_path = path + ["client"] if "client" in secret else path
        problem = on.client_problem(
            client, "compute", instead=f"mark this secret absent too ({_at(path + ['absent'])}"
                                       ": true, keeping its uuid) or remove it")
        if problem:
            _add(out, client_path, problem)
        if uuid is not None:
            _unique_usage(out, refs, by_usage, name, client_path, uuid, holder)


def _secret_holder(out, refs, path, section, on):
    """The libvirt secret a Cinder backend or Nova uses exists and holds the key of the
    part's own client on the part's own cluster ``on``."""
    name, client = section.get("secret"), section.get("client")
    if not isinstance(name, str):
        return
    if name not in refs.secrets:
        _add(out, path + ["secret"], f"no secret {_show(name)} in ceph_openstack:libvirt:secrets")
        return
    if _is_absent(refs.secrets[name]):
        _add(out, path + ["secret"],
             f"uses secret {name!r}, which is marked absent "
             f"({_at(['ceph_openstack', 'libvirt', 'secrets', name, 'absent'])}): point it at "
             "another secret or remove it, so that the secret can be withdrawn")
        return
    holder = refs.secret_client(name)
    holder_cluster = refs.cluster_name(_dict(refs.secrets[name]))
    # Only when both clients exist (else that is the problem already reported): libvirt
    # would hand qemu another client's key (or another cluster's) for rbd_user=<client>.
    if not (_defined(on.clients, client)
            and _defined(refs.clusters, holder_cluster)
            and _defined(refs.clusters[holder_cluster].clients, holder)):
        return
    if holder_cluster != on.name:
        _add(out, path + ["secret"],
             f"secret {name!r} holds the key of {_client_text(holder, holder_cluster, None)}, "
             f"not of {_show(client)} of cluster {_show(on.name)} ({_at(path + ['client'])})")
    elif holder != client:
        _add(out, path + ["secret"],
             f"secret {name!r} holds the key of client {_show(holder)}, "
             f"not of {_show(client)} ({_at(path + ['client'])})")


def _service(out, refs, path, section, role, secret=False):
    """The cluster, pool, client (and secret) a Cinder backend, the backup, Glance, a Glance
    store or Nova uses, all on that part's cluster."""
    if not isinstance(section, dict):
        return
    on = _cluster_of(out, refs, path, section)
    if on is None:
        return
    pool, client = section.get("pool"), section.get("client")
    if isinstance(pool, str):
        problem = on.pool_problem(pool)
        if problem:
            _add(out, path + ["pool"], problem)
    if isinstance(client, str):
        problem = on.client_problem(client, role)
        if problem:
            _add(out, path + ["client"], problem)
    if secret:
        _secret_holder(out, refs, path, section, on)


def _references(out, pillar):
    refs = _Refs(pillar)
    _other_cluster_names(out, refs, pillar)
    _client_roles(out, refs)
    _secrets(out, refs)
    cinder = _dict(pillar.get("cinder"))
    for name, backend in _dict(cinder.get("backends")).items():
        _service(out, refs, ["ceph_openstack", "cinder", "backends", name], backend,
                 "controller", secret=True)
    _service(out, refs, ["ceph_openstack", "cinder", "backup"], cinder.get("backup"), "controller")
    glance = pillar.get("glance")
    _service(out, refs, ["ceph_openstack", "glance"], glance, "controller")
    for name, store in _dict(_dict(glance).get("stores")).items():
        _service(out, refs, ["ceph_openstack", "glance", "stores", name], store, "controller")
    _service(out, refs, ["ceph_openstack", "nova"], pillar.get("nova"), "compute", secret=True)
    images = _dict(pillar.get("images"))
    if _dict(images.get("upload")) and not images.get("cloud"):
        _add(out, ["ceph_openstack", "images", "cloud"],
             "required when images are listed under upload (the clouds.yaml cloud of Glance)")


# --------------------------------------------------------------------------- entry point


def problems(pillar):
    """
    Every problem of the ``ceph_openstack`` pillar dict ``pillar`` (defaults not merged),
    as ``"<pillar key path>: <what is wrong>"`` strings; an empty list when it is valid.
    """
    if not isinstance(pillar, dict):
        return [f"ceph_openstack: must be a mapping of the formula's settings, not {_kind(pillar)}"]
    out = []
    _record(_TOP)(out, ["ceph_openstack"], pillar)
    _references(out, pillar)
    return out
