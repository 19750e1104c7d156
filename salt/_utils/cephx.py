"""
Checks on cephx keys shared by the cephauth and virtsecret modules.

A cephx key is the base64 of 28 bytes: a little-endian u16 crypto type
(1 = AES), a u32 seconds + u32 nanoseconds creation stamp, a u16 secret length
(16) and the 16-byte secret. Nothing here logs or returns a key.
"""

import base64
import binascii
import re
import struct

_ENTITY = re.compile(r"^(client|mon|mgr|osd|mds)\.[A-Za-z0-9_.-]+$|^mon\.$")


def is_valid_key(key):
    """True when ``key`` is a well-formed cephx AES key in base64."""
    if not isinstance(key, str) or len(key) != 40:
        return False
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != 28:
        return False
    crypto_type, _sec, _nsec, secret_len = struct.unpack("<HIIH", raw[:12])
    return crypto_type == 1 and secret_len == 16


def key_problem(key, where="key"):
    """``None`` for a valid key, else a message naming ``where`` (never the value)."""
    if is_valid_key(key):
        return None
    return (
        f"{where} is not a valid cephx key (expected the 40-character base64 "
        "of an AES key, as `ceph auth get-key` prints)"
    )


def is_valid_entity(name):
    """True for entity names such as ``client.cinder`` or ``osd.0``."""
    return isinstance(name, str) and bool(_ENTITY.match(name))
