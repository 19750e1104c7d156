"""
Property-based tests (hypothesis) of the parser/editor:

* parse then render with no edits gives back the same text, byte for byte;
* merging twice equals merging once (and the second merge reports no changes);
* after a merge every managed key reads back as asked, and every line we do not
  manage is still there, unchanged and in order;
* removing twice equals removing once.
"""

import os
import sys

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest_ini import ini  # noqa: E402

# INI_HYPOTHESIS_EXAMPLES=5000 for a longer hunt.
SETTINGS = settings(
    max_examples=int(os.environ.get("INI_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Building blocks of ini text. Names mix in section/key names the editor treats
# specially (DEFAULT, multi-valued pci/device_spec, secret-looking keys).
NAME_CHARS = st.sampled_from("abcXYZ_-.0 ")
names = st.one_of(
    st.sampled_from(["DEFAULT", "pci", "libvirt", "ceph", "device_spec", "password", "rbd cache"]),
    st.text(NAME_CHARS, min_size=1, max_size=6).map(str.strip).filter(bool),
)
one_line_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00")
free_text = st.text(one_line_chars, max_size=12)
indent = st.sampled_from(["", "", "", " ", "\t", "  "])
separator = st.sampled_from([" = ", "=", "\t=\t", ": ", " =", "  =  "])
newline = st.sampled_from(["\n", "\r\n"])


@st.composite
def key_lines(draw):
    """A key line, sometimes with deeper-indented continuation lines."""
    lead = draw(indent)
    value = draw(free_text)
    line = lead + draw(names) + draw(separator) + value + draw(st.sampled_from(["", " ", "\t"]))
    lines = [line]
    for text in draw(st.lists(free_text.filter(str.strip), max_size=2)):
        lines.append(lead + draw(st.sampled_from([" ", "\t", "   "])) + text.strip())
    return lines


comment_lines = st.builds(
    lambda lead, mark, text: [lead + mark + text],
    indent,
    st.sampled_from(["#", ";", "# "]),
    free_text,
)
blank_lines = st.sampled_from([[""], [" "], ["\t"]])
commented_defaults = st.builds(lambda key, sep: ["#" + key + sep], names, separator)
body_lines = st.lists(
    st.one_of(key_lines(), comment_lines, blank_lines, commented_defaults), max_size=6
)


@st.composite
def ini_texts(draw):
    """Valid ini text: a comment preamble, then sections (possibly repeated) with bodies."""
    preamble = draw(st.lists(st.one_of(comment_lines, blank_lines), max_size=2))
    lines = [line for chunk in preamble for line in chunk]
    for _ in range(draw(st.integers(0, 4))):
        header = draw(st.sampled_from(["", " "])) + "[" + draw(names) + "]"
        lines.append(header)
        lines.extend(line for chunk in draw(body_lines) for line in chunk)
    eol = draw(newline)
    text = eol.join(lines)
    if lines and draw(st.booleans()):
        text += eol
    return text


scalar_values = st.one_of(
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.text(one_line_chars, max_size=10),
)
values = st.one_of(scalar_values, st.lists(scalar_values.filter(lambda v: v != ""), max_size=3))


def sections_for(text):
    """Merge requests that mostly hit sections and keys of ``text``, plus new ones."""
    data = ini.to_dict(ini.parse(text))
    known_sections = sorted(data) or ["DEFAULT"]
    known_keys = sorted({key for options in data.values() for key in options}) or ["k"]
    section_names = st.one_of(st.sampled_from(known_sections), names)
    key_names = st.one_of(st.sampled_from(known_keys), names).filter(
        lambda key: key[0] not in "#;" and not any(c in key for c in "=:[]")
    )
    options = st.dictionaries(key_names, values, max_size=4)
    return st.dictionaries(section_names, options, max_size=3)


@SETTINGS
@given(ini_texts())
def test_parse_render_round_trip(text):
    assert ini.render(ini.parse(text)) == text


@SETTINGS
@given(st.text(max_size=200))
def test_any_text_that_parses_round_trips(text):
    try:
        doc = ini.parse(text)
    except ini.IniError:
        return
    assert ini.render(doc) == text


@st.composite
def merge_cases(draw):
    text = draw(ini_texts())
    return text, draw(sections_for(text))


def merge_or_refuse(text, sections):
    """Merged text, or None where the editor refuses a layout it cannot edit safely."""
    doc = ini.parse(text)
    try:
        ini.merge(doc, sections)
    except ini.IniError as exc:
        assert "cannot be written safely" in str(exc)
        event("merge refused: unsafe layout")
        return None
    return ini.render(doc)


@SETTINGS
@given(merge_cases())
def test_merging_twice_equals_merging_once(case):
    text, sections = case
    once = merge_or_refuse(text, sections)
    if once is None:
        return
    doc = ini.parse(once)
    assert ini.merge(doc, sections) == {}
    assert ini.render(doc) == once


@SETTINGS
@given(merge_cases())
def test_merge_sets_values_and_keeps_everything_else(case):
    text, sections = case
    merged = merge_or_refuse(text, sections)
    if merged is None:
        return
    after = ini.parse(merged)
    for section, options in sections.items():
        for key, value in options.items():
            wanted = [ini.parse_value(t) for t in ini.render_value(section, key, value)]
            assert ini._values(after, section, key) == wanted

    managed = {(section, key) for section, options in sections.items() for key in options}
    kept = [
        line.text.rstrip("\r\n")
        for line in ini.parse(text).lines
        if (line.section, line.key) not in managed
    ]
    remaining = iter(line.text.rstrip("\r\n") for line in after.lines)
    assert all(line in remaining for line in kept)  # a subsequence, in order


@SETTINGS
@given(ini_texts(), st.data())
def test_removing_twice_equals_removing_once(text, data):
    doc = ini.parse(text)
    existing = ini.to_dict(doc)
    sections = data.draw(
        st.dictionaries(
            st.sampled_from(sorted(existing) or ["DEFAULT"]),
            st.lists(st.sampled_from(sorted({k for o in existing.values() for k in o}) or ["k"])),
            max_size=3,
        )
    )
    ini.remove(doc, sections)
    once = ini.render(doc)
    again = ini.parse(once)
    assert ini.remove(again, sections) == {}
    assert ini.render(again) == once
    for section, keys in sections.items():
        for key in keys:
            assert ini._values(again, section, key) == []
