"""
Unit tests of the cephx key checks (salt/_utils/cephx.py) with real keys of both kinds.

The keys were printed by ``ceph-authtool --gen-print-key`` of Ceph 16.2.15 (AES, crypto
type 1) and of Ceph 20.2.4 (AES256K, crypto type 2); they belong to no cluster.
"""

import base64
import struct

import pytest

from tests.support.modules import load

cephx = load("salt/_utils/cephx.py", "cephx_keys_under_test")

AES_KEYS = ["AQArlwprssr2IRAAmspQiT9AGYd91T7bFi14cA==",
            "AQArlwprJdGEIxAApnygk6NCCGFAGQE0Sv0kNA=="]
AES256K_KEYS = ["AgArlwprFNSDJyAAydTd8MCxWw2zQCpIoDNTAqSDKxJy2zOQV9HPL9Qtm+k=",
                "AgArlwpr90D0LCAAXge/E7liicGgdYQ6LMLw8mLQ5xZwnRLr/VhWXGIKAco="]


def _forged(crypto_type, secret_len, actual_len=None):
    header = struct.pack("<HIIH", crypto_type, 0, 0, secret_len)
    return base64.b64encode(header + b"\x07" * (secret_len if actual_len is None
                                                 else actual_len)).decode()


@pytest.mark.parametrize("key", AES_KEYS)
def test_aes_keys_are_valid(key):
    assert cephx.key_type(key) == "aes"
    assert cephx.is_valid_key(key) and cephx.key_problem(key) is None


@pytest.mark.parametrize("key", AES256K_KEYS)
def test_aes256k_keys_are_valid(key):
    assert len(key) == 60
    assert cephx.key_type(key) == "aes256k"
    assert cephx.is_valid_key(key) and cephx.key_problem(key) is None


BAD = [
    None, 12345, "", "abc", "A" * 40, "A" * 60,
    AES_KEYS[0][:-2], AES_KEYS[0] + "A", AES_KEYS[0][:-1] + "!",
    AES256K_KEYS[0][:-4], AES256K_KEYS[0] + "AAAA", AES256K_KEYS[0][:-1] + "!",
    _forged(2, 16),      # type 2 with an AES-sized secret
    _forged(1, 32),      # type 1 with an AES256K-sized secret
    _forged(3, 16),      # an unknown crypto type
    _forged(0, 16),      # "none"
    _forged(2, 32, 31),  # length field and secret disagree
]


@pytest.mark.parametrize("key", BAD)
def test_anything_else_is_refused_naming_both_forms_not_the_value(key):
    assert cephx.key_type(key) is None and not cephx.is_valid_key(key)
    message = cephx.key_problem(key, "clients:cinder:key")
    assert message.startswith("clients:cinder:key is not a valid cephx key")
    assert "AES key" in message and "AES256K key" in message
    if isinstance(key, str) and key:
        assert key not in message


def test_key_type_problem_follows_the_clusters_allowed_ciphers():
    aes, aes256k = AES_KEYS[0], AES256K_KEYS[0]
    # Pacific and Reef know only AES keys (they reject an AES256K key as malformed).
    assert cephx.key_type_problem(aes, ["aes"]) is None
    assert "allows only AES keys" in cephx.key_type_problem(aes256k, ["aes"])
    # An upgraded Tentacle cluster allows both.
    assert cephx.key_type_problem(aes, ["aes", "aes256k"]) is None
    # A fresh Tentacle cluster allows only AES256K.
    assert cephx.key_type_problem(aes256k, ["aes256k"]) is None
    message = cephx.key_type_problem(aes, ["aes256k"], "key")
    assert "AES cephx key" in message and "allows only AES256K" in message
    assert "ceph-authtool --gen-print-key" in message and aes not in message


def test_key_type_problem_of_a_malformed_key_is_the_form_problem():
    assert cephx.key_type_problem("nope", ["aes256k"]) == cephx.key_problem("nope")
