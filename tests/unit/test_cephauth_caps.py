"""
Unit tests of the caps and keyring-text helpers cephauth uses (salt/_utils/cephx.py).
"""

import importlib.util
import pathlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("cephx_caps_under_test",
                                               ROOT / "salt/_utils/cephx.py")
cephx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cephx)


def test_reordered_grants_with_other_whitespace_are_equal():
    assert cephx.caps_equal(
        {"osd": "profile rbd pool=volumes, profile rbd pool=vms"},
        {"osd": "profile rbd pool=vms,profile rbd pool=volumes"},
    )
    assert cephx.caps_equal({"mon": "allow  r", "osd": "allow *"},
                            {"osd": " allow *", "mon": "allow r "})


def test_different_grants_or_types_differ():
    assert not cephx.caps_equal({"osd": "profile rbd pool=a"}, {"osd": "profile rbd pool=b"})
    assert not cephx.caps_equal({"mon": "profile rbd"}, {"mon": "profile rbd", "mgr": "allow r"})
    assert not cephx.caps_equal({"mon": "allow r"}, {"mon": "allow rw"})


def test_commas_and_spaces_inside_quotes_are_kept():
    assert cephx.normalize_caps({"mon": 'allow command "a, b",  allow r'}) == {
        "mon": ("allow command \"a, b\"", "allow r")
    }
    assert not cephx.caps_equal({"mon": 'allow command "osd  blocklist"'},
                                {"mon": 'allow command "osd blocklist"'})


GRANT = st.from_regex(r"\A(allow|profile) [a-z*]{1,6}( pool=[a-z]{1,6})?\Z")
SPACE = st.sampled_from(["", " ", "  ", "\t"])


@given(st.lists(GRANT, min_size=1, max_size=5), st.randoms(), st.data())
def test_any_order_and_spacing_of_grants_is_equal(grants, random, data):
    shuffled = list(grants)
    random.shuffle(shuffled)

    def spaced(grant):
        inner = re.sub(" ", lambda _: " " + data.draw(SPACE), grant)
        return data.draw(SPACE) + inner + data.draw(SPACE)

    written = ",".join(spaced(grant) for grant in shuffled)
    assert cephx.caps_equal({"osd": ", ".join(grants)}, {"osd": written})


@pytest.mark.parametrize("caps,problem", [
    ({"mon": "profile rbd", "osd": "allow *", "mgr": "allow r", "mds": "allow"}, None),
    ({"rgw": "allow"}, "caps: unknown cap type 'rgw' (valid: mds, mgr, mon, osd)"),
    ({"mon": " "}, "caps.mon must be a non-empty string of grants"),
    ({"mon": ["allow r"]}, "caps.mon must be a non-empty string of grants"),
    ({"mon": "allow r\n"}, "caps.mon must not contain control characters (newlines, tabs)"),
    ({}, "caps must be a non-empty mapping of cap type to grants, e.g. {mon: 'profile rbd'}"),
    (None, "caps must be a non-empty mapping of cap type to grants, e.g. {mon: 'profile rbd'}"),
])
def test_caps_problem(caps, problem):
    assert cephx.caps_problem(caps) == problem


def test_keyring_text_escapes_like_ceph_auth_get():
    # `ceph auth get client.q1` printed exactly this for these caps (lab, Ceph 16.2.15).
    key = "AQBhAAAAAAAAABAAvHOq2W2wbY4Wcf7yCmXw3Q=="
    caps = {"osd": "allow rwx pool=a", "mon": 'allow command "osd blocklist", allow r',
            "mgr": "allow r"}
    assert cephx.keyring_text("client.q1", key, caps) == (
        "[client.q1]\n"
        f"\tkey = {key}\n"
        '\tcaps mgr = "allow r"\n'
        '\tcaps mon = "allow command \\"osd blocklist\\", allow r"\n'
        '\tcaps osd = "allow rwx pool=a"\n'
    )
    assert cephx.keyring_text("client.q1", key) == f"[client.q1]\n\tkey = {key}\n"
