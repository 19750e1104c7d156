"""
Checks on cephx keys shared by the cephauth and virtsecret modules.

A cephx key is the base64 of a 12-byte header and a secret: a little-endian u16
crypto type, a u32 seconds + u32 nanoseconds creation stamp and a u16 secret
length. Ceph makes two kinds: AES (type 1, a 16-byte secret, 40 base64
characters; every release) and AES256K (type 2, a 32-byte secret, 60 base64
characters; Tentacle 20.2 and later make only these by default). Nothing here
logs or returns a key.
"""

import base64
import binascii
import re
import struct

_ENTITY = re.compile(r"^(client|mon|mgr|osd|mds)\.[A-Za-z0-9_.-]+$|^mon\.$")

#: crypto type -> (name Ceph uses in ``auth_allowed_ciphers``, secret length)
KEY_TYPES = {1: ("aes", 16), 2: ("aes256k", 32)}

KEY_FORMS = "the 40-character base64 of an AES key or the 60-character base64 of an AES256K key"


def key_type(key):
    """``'aes'`` or ``'aes256k'`` for a well-formed cephx key in base64, else ``None``."""
    if not isinstance(key, str) or len(key) not in (40, 60):
        return None
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 12:
        return None
    crypto_type, _sec, _nsec, secret_len = struct.unpack("<HIIH", raw[:12])
    name, length = KEY_TYPES.get(crypto_type, (None, None))
    if name is None or secret_len != length or len(raw) != 12 + length:
        return None
    return name


def key_created(key):
    """Creation time of a well-formed key (seconds since the epoch, from its header),
    else ``None``."""
    if key_type(key) is None:
        return None
    return struct.unpack("<HIIH", base64.b64decode(key)[:12])[1]


def is_valid_key(key):
    """True when ``key`` is a well-formed cephx key (AES or AES256K) in base64."""
    return key_type(key) is not None


def key_problem(key, where="key"):
    """``None`` for a valid key, else a message naming ``where`` (never the value)."""
    if is_valid_key(key):
        return None
    return f"{where} is not a valid cephx key (expected {KEY_FORMS}, as `ceph auth get-key` prints)"


def key_type_problem(key, allowed, where="key"):
    """
    ``None`` when the cluster accepts logins with ``key``'s type, else why not and what
    to do (never the value). ``allowed`` lists the key types the cluster lets log in
    (``cephauth.allowed_key_types``: the monmap's ``auth_allowed_ciphers``, or
    ``['aes']`` on a release before Tentacle 20.2, which knows no other).

    A Tentacle cluster imports a key of a type it does not allow without complaint, and
    the user can then never log in; an older release rejects an AES256K key as malformed.
    """
    kind = key_type(key)
    if kind is None:
        return key_problem(key, where)
    if kind in allowed:
        return None
    return (
        f"{where} is an {kind.upper()} cephx key, but this cluster allows only "
        f"{', '.join(a.upper() for a in allowed)} keys (monmap auth_allowed_ciphers; "
        "releases before Tentacle 20.2 know only AES): a user with it could never log in. "
        "Generate the key with `ceph-authtool --gen-print-key` of the cluster's release, "
        "or leave it out and let Ceph create one"
    )


def is_valid_entity(name):
    """True for entity names such as ``client.cinder`` or ``osd.0``."""
    return isinstance(name, str) and bool(_ENTITY.match(name))


# -- cephx caps and keyring text (appended for cephauth) ---------------------

#: Cap types a cephx user can hold; ``ceph auth caps`` rejects any other.
CAP_TYPES = ("mds", "mgr", "mon", "osd")


def caps_problem(caps, where="caps"):
    """
    ``None`` for a usable caps mapping, else a message naming ``where``.

    Caps are ``{type: grants}`` with ``type`` one of :data:`CAP_TYPES` and
    ``grants`` a non-empty string (Ceph rejects empty grants). At least one
    type is needed: neither ``auth caps`` nor ``auth import`` can set an empty
    set. Control characters are refused because caps go into keyring text
    fed to ``ceph auth import``, where a newline could smuggle in other lines.
    """
    if not isinstance(caps, dict) or not caps:
        return (f"{where} must be a non-empty mapping of cap type to grants, "
                "e.g. {mon: 'profile rbd'}")
    for cap_type, grants in caps.items():
        if cap_type not in CAP_TYPES:
            return f"{where}: unknown cap type {cap_type!r} (valid: {', '.join(CAP_TYPES)})"
        if not isinstance(grants, str) or not grants.strip():
            return f"{where}.{cap_type} must be a non-empty string of grants"
        if any(ord(char) < 32 or ord(char) == 127 for char in grants):
            return f"{where}.{cap_type} must not contain control characters (newlines, tabs)"
    return None


def _split_grants(grants):
    """Split ``grants`` at commas outside double quotes; collapse whitespace outside quotes."""
    parts, current, quoted, escaped = [], [], False, False
    for char in grants:
        if escaped:
            current.append(char)
            escaped = False
        elif quoted and char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
        elif char.isspace() and not quoted:
            if current and current[-1] != " ":
                current.append(" ")
        else:
            current.append(char)
    parts.append("".join(current))
    return tuple(sorted(part.strip() for part in parts if part.strip()))


def normalize_caps(caps):
    """
    ``caps`` in a form that compares equal when Ceph would grant the same.

    Whitespace and the order of comma-separated grants do not matter:
    ``"profile rbd pool=a, profile rbd pool=b"`` equals
    ``"profile rbd pool=b,profile rbd pool=a"``.
    """
    return {cap_type: _split_grants(grants) for cap_type, grants in (caps or {}).items()}


def caps_equal(first, second):
    """True when two caps mappings grant the same (see :func:`normalize_caps`)."""
    return normalize_caps(first) == normalize_caps(second)


def keyring_text(entity, key, caps=None):
    """
    The text of a keyring file for ``entity``, as ``ceph auth get`` writes it.

    This returns the key by design (for ``ceph auth import`` on stdin and for
    keyring files); callers must never log or return it. ``caps`` lines are
    optional, sorted by type, with ``\\`` and ``"`` escaped as Ceph does.
    """
    lines = [f"[{entity}]", f"\tkey = {key}"]
    for cap_type in sorted(caps or {}):
        grants = caps[cap_type].replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'\tcaps {cap_type} = "{grants}"')
    return "\n".join(lines) + "\n"


def keyring_file_key(path):
    """The key in the keyring file ``path`` (its first ``key =`` line), or ``None`` when the
    file or the line is missing. A secret by design: never log or return it."""
    try:
        with open(path, encoding="utf-8") as keyring:
            for line in keyring:
                name, _, value = line.partition("=")
                if name.strip() == "key":
                    return value.strip()
    except OSError:
        pass
    return None
