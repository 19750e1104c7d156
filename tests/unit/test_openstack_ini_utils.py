"""Unit tests of the pure parser/editor salt/_utils/openstack_ini.py."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest_ini import ini  # noqa: E402


def merged(text, sections, **kwargs):
    """(new text, changes) of merging ``sections`` into ``text``."""
    doc = ini.parse(text)
    changes = ini.merge(doc, sections, **kwargs)
    return ini.render(doc), changes


def removed(text, sections):
    doc = ini.parse(text)
    changes = ini.remove(doc, sections)
    return ini.render(doc), changes


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "# only a comment",
        "[DEFAULT]",
        "[DEFAULT]\r\nkey = value\r\n",
        "[a]\nk=v\n\n\n[b]\n\tk\t=\tv\n",
        "[a]\nk = v\n  continued\n\tmore\n",
        "# c\n; c\n[a]\n  # indented comment\nk: v\n",
        "[a]\nk = v\n[a]\nk = w\n",
        "[a]\nk = v\r",
        "[a]\nk = v \t \n",
    ],
)
def test_render_of_parse_is_identity(text):
    assert ini.render(ini.parse(text)) == text


def test_parse_reads_values_like_oslo():
    doc = ini.parse(
        "[a]\n"
        "plain = v\n"
        "spaced   =   v w  \n"
        "colon: v\n"
        'double = "  v "\n'
        "single = 'v'\n"
        "mixed = \"v'\n"
        "equals = a=b:c\n"
        "empty =\n"
        "multi = first\n"
        "   second\n"
        "\n"
        "after = blank\n"
    )
    assert ini.to_dict(doc) == {
        "a": {
            "plain": "v",
            "spaced": "v w",
            "colon": "v",
            "double": "  v ",
            "single": "v",
            "mixed": "\"v'",
            "equals": "a=b:c",
            "empty": "",
            "multi": "first\nsecond",
            "after": "blank",
        }
    }


def test_ceph_style_indented_keys_are_keys_not_continuations():
    doc = ini.parse("[global]\n\tfsid = x\n\tmon_host = y\n\t\tdeeper\n")
    assert ini.to_dict(doc) == {"global": {"fsid": "x", "mon_host": "y\ndeeper"}}


def test_repeated_and_multi_valued_keys_read_as_lists():
    doc = ini.parse("[pci]\ndevice_spec = a\n[x]\nk = 1\nk = 2\n[DEFAULT]\nv = 1\n")
    assert ini.to_dict(doc) == {
        "pci": {"device_spec": ["a"]},
        "x": {"k": ["1", "2"]},
        "DEFAULT": {"v": "1"},
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("[a]\nkey = v\x00\n", "binary"),
        ("key = v\n[a]\n", "line 1: key outside any [section]"),
        ("[a]\njust words\n", "line 2: neither"),
        ("[a\nk = v\n", "line 1: malformed section header"),
        ("[]\n", "line 1: malformed section header"),
        ("[a]\n= v\n", "line 2: empty key"),
    ],
)
def test_not_ini_is_refused(text, message):
    with pytest.raises(ini.IniError, match=message.replace("[", r"\[")):
        ini.parse(text)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    "value, texts",
    [
        (True, ["true"]),
        (False, ["false"]),
        (5, ["5"]),
        (-1, ["-1"]),
        (0.5, ["0.5"]),
        ("a,b", ["a,b"]),
        (["a", "b", True], ["a,b,true"]),
        (("a",), ["a"]),
        ([], [""]),
        ({"ceph": "rbd", "file": "file"}, ["ceph:rbd,file:file"]),
        ("", [""]),
        (" padded ", ['" padded "']),
        ('"quoted"', ['""quoted""']),
        ("'", ['"\'"']),
        ("$my_ip", ["$my_ip"]),
    ],
)
def test_render_value_uses_oslo_syntax(value, texts):
    assert ini.render_value("DEFAULT", "opt", value) == texts
    # What we write reads back as the value we meant.
    assert [ini.parse_value(text) for text in texts] == [
        ini.parse_value(text) for text in ini.render_value("x", "y", value)
    ]


def test_written_values_read_back_exactly():
    for value in [" padded ", '"quoted"', "'", "", "a = b", "#not a comment"]:
        text, _ = merged("[a]\n", {"a": {"k": value}})
        assert ini.to_dict(ini.parse(text))["a"]["k"] == value


def test_list_for_multi_valued_key_writes_one_line_per_value():
    assert ini.render_value("pci", "device_spec", ["{a}", "{b}"]) == ["{a}", "{b}"]
    assert ini.render_value("ceph", "vmware_cluster_name", ["c1", "c2"]) == ["c1", "c2"]
    # A string for a multi-valued key is one line; a list elsewhere is comma-joined.
    assert ini.render_value("pci", "device_spec", "{a}") == ["{a}"]
    assert ini.render_value("libvirt", "device_spec", ["a", "b"]) == ["a,b"]


@pytest.mark.parametrize(
    "value, message",
    [
        (None, "value is None"),
        ("a\nb", "value contains a newline"),
        ("a\rb", "value contains a newline"),
        (["a", "b\nc"], "value contains a newline"),
        (object(), "cannot write a value of type object"),
        ([["nested"]], "cannot write a value of type list"),
    ],
)
def test_bad_values_are_refused(value, message):
    with pytest.raises(ini.IniError, match=message):
        ini.render_value("s", "k", value)


@pytest.mark.parametrize(
    "sections, message",
    [
        ({"a\nb": {"k": "v"}}, "contains a newline or a bracket"),
        ({"a]b": {"k": "v"}}, "contains a newline or a bracket"),
        ({"": {"k": "v"}}, "non-empty"),
        ({"s": {"k\n": "v"}}, "contains a newline"),
        ({"s": {"k]": "v"}}, "contains a newline"),
        ({"s": {"k=v": "v"}}, "contains a newline"),
        ({"s": {" k": "v"}}, "not a plain name"),
        ({"s": {"#k": "v"}}, "not a plain name"),
        ({"s": {1: "v"}}, "non-empty strings"),
        ({"s": ["k"]}, "must be a mapping"),
        (["s"], "must be a mapping"),
    ],
)
def test_bad_sections_and_keys_are_refused(sections, message):
    with pytest.raises(ini.IniError, match=message):
        ini.merge(ini.parse("[s]\n"), sections)


def test_errors_never_show_values():
    with pytest.raises(ini.IniError) as info:
        ini.merge(ini.parse("[s]\n"), {"s": {"password": "hunter2\nx"}})
    assert "hunter2" not in str(info.value)
    assert "[s] password" in str(info.value)


def test_validation_happens_before_any_edit():
    doc = ini.parse("[s]\na = 1\n")
    with pytest.raises(ini.IniError):
        ini.merge(doc, {"s": {"a": "2", "b": None}})
    assert ini.render(doc) == "[s]\na = 1\n"


# --------------------------------------------------------------------------- merging


def test_existing_key_is_rewritten_in_place_with_its_spelling():
    text = "[DEFAULT]\n# c\ndebug=False\nverbose\t=\tfalse\n# tail\n"
    out, changes = merged(text, {"DEFAULT": {"debug": True, "verbose": True}})
    assert out == "[DEFAULT]\n# c\ndebug=true\nverbose\t=\ttrue\n# tail\n"
    assert changes == {
        "DEFAULT/debug": {"old": "False", "new": "true"},
        "DEFAULT/verbose": {"old": "false", "new": "true"},
    }


def test_new_key_goes_after_its_commented_default():
    text = "[libvirt]\n#\n# Images format.\n#images_type = default\n\n#images_rbd_pool = rbd\n\n"
    out, _ = merged(text, {"libvirt": {"images_type": "rbd"}})
    assert out == (
        "[libvirt]\n#\n# Images format.\n#images_type = default\nimages_type = rbd\n\n"
        "#images_rbd_pool = rbd\n\n"
    )


def test_commented_default_must_name_the_same_key():
    text = "[s]\n#images_type_x = 1\n# images_type is great\nlast = 1\n\n[t]\n"
    out, _ = merged(text, {"s": {"images_type": "rbd"}})
    assert out == (
        "[s]\n#images_type_x = 1\n# images_type is great\nlast = 1\nimages_type = rbd\n\n[t]\n"
    )


def test_new_key_goes_at_the_end_of_its_last_block_before_blank_lines():
    text = "[a]\nx = 1\n\n[b]\ny = 1\n\n[a]\nz = 1\n# end of a\n\n\n[c]\n"
    out, _ = merged(text, {"a": {"new": "v"}})
    assert out == "[a]\nx = 1\n\n[b]\ny = 1\n\n[a]\nz = 1\n# end of a\nnew = v\n\n\n[c]\n"


def test_key_in_a_repeated_section_is_found_in_any_block():
    text = "[a]\nx = 1\n[b]\n[a]\ny = 1\n"
    out, changes = merged(text, {"a": {"x": "2", "y": "1"}})
    assert out == "[a]\nx = 2\n[b]\n[a]\ny = 1\n"
    assert list(changes) == ["a/x"]


def test_missing_section_is_appended_after_a_blank_line():
    out, changes = merged("[a]\nx = 1\n", {"b": {"k": "v", "l": 2}})
    assert out == "[a]\nx = 1\n\n[b]\nk = v\nl = 2\n"
    assert changes == {"b/k": {"old": None, "new": "v"}, "b/l": {"old": None, "new": "2"}}


def test_empty_document_gets_sections():
    out, _ = merged("", {"DEFAULT": {"a": 1}, "x": {"b": 2}})
    assert out == "[DEFAULT]\na = 1\n\n[x]\nb = 2\n"


def test_missing_final_newline_stays_missing():
    out, _ = merged("[a]\nx = 1", {"a": {"y": 2}})
    assert out == "[a]\nx = 1\ny = 2"
    out, _ = merged("[a]\nx = 1", {"a": {"x": 2}})
    assert out == "[a]\nx = 2"
    out, _ = merged("[a]\nx = 1", {"b": {"y": 2}})
    assert out == "[a]\nx = 1\n\n[b]\ny = 2"


def test_crlf_files_get_crlf_lines():
    out, _ = merged("[a]\r\nx = 1\r\n", {"a": {"y": 2, "x": 3}, "b": {"z": 1}})
    assert out == "[a]\r\nx = 3\r\ny = 2\r\n\r\n[b]\r\nz = 1\r\n"


def test_ceph_style_section_keeps_tab_indentation():
    sections = {"client": {"rbd cache": True, "log file": "/x"}}
    out, _ = merged("[client]\n\trbd cache = false\n", sections)
    assert out == "[client]\n\trbd cache = true\n\tlog file = /x\n"


def test_equal_values_change_nothing_even_when_quoted():
    text = '[vnc]\naddress = "$my_ip"\nflag = true\n'
    out, changes = merged(text, {"vnc": {"address": "$my_ip", "flag": True}})
    assert (out, changes) == (text, {})


def test_repeated_single_valued_key_is_collapsed_to_one_line():
    text = "[a]\nk = 1\nother = x\nk = 2\n"
    out, changes = merged(text, {"a": {"k": "3"}})
    assert out == "[a]\nk = 3\nother = x\n"
    assert changes == {"a/k": {"old": ["1", "2"], "new": "3"}}


def test_multi_valued_key_gets_exactly_the_listed_lines():
    text = "[pci]\n#device_spec =\ndevice_spec = {a}\nalias = x\ndevice_spec = {b}\n"
    out, changes = merged(text, {"pci": {"device_spec": ["{b}", "{c}"]}})
    assert out == "[pci]\n#device_spec =\ndevice_spec = {b}\ndevice_spec = {c}\nalias = x\n"
    assert changes == {"pci/device_spec": {"old": ["{a}", "{b}"], "new": ["{b}", "{c}"]}}
    # Same list again: nothing to do; the order of the lines matters.
    assert merged(out, {"pci": {"device_spec": ["{b}", "{c}"]}}) == (out, {})
    assert merged(out, {"pci": {"device_spec": ["{c}", "{b}"]}})[1]


def test_empty_list_removes_a_multi_valued_key():
    out, changes = merged("[pci]\ndevice_spec = a\n", {"pci": {"device_spec": []}})
    assert out == "[pci]\n"
    assert changes == {"pci/device_spec": {"old": ["a"], "new": None}}


def test_new_multi_valued_key_after_its_commented_default():
    text = "[pci]\n#device_spec =\n\n#alias =\n"
    out, changes = merged(text, {"pci": {"device_spec": ["{a}", "{b}"]}})
    assert out == "[pci]\n#device_spec =\ndevice_spec = {a}\ndevice_spec = {b}\n\n#alias =\n"
    assert changes == {"pci/device_spec": {"old": None, "new": ["{a}", "{b}"]}}


def test_continuation_lines_go_with_their_key():
    text = "[a]\nk = one\n  two\nz = 1\n"
    out, changes = merged(text, {"a": {"k": "three"}})
    assert out == "[a]\nk = three\nz = 1\n"
    assert changes == {"a/k": {"old": "one\ntwo", "new": "three"}}


def test_edit_that_would_not_read_back_is_refused():
    # The section's first key is tab-indented, so a new key is too; after the
    # unindented last key it would read as a continuation of it.
    doc = ini.parse("[s]\n\ta = 1\nb = 2\n")
    with pytest.raises(ini.IniError, match="cannot be written safely"):
        ini.merge(doc, {"s": {"c": "3"}})


def test_secret_values_are_masked_in_changes():
    text = "[a]\npassword = old\n"
    _, changes = merged(
        text,
        {
            "a": {
                "password": "new",
                "rbd_secret_uuid": "u",
                "api_key": "k",
                "auth_token": "t",
                "plain": "p",
                "custom": "c",
            },
            "b": {"listed": "l", "other": "o"},
        },
        secret_keys=["custom", "b/listed"],
    )
    assert changes == {
        "a/password": {"old": ini.MASK, "new": ini.MASK},
        "a/rbd_secret_uuid": {"old": None, "new": ini.MASK},
        "a/api_key": {"old": None, "new": ini.MASK},
        "a/auth_token": {"old": None, "new": ini.MASK},
        "a/plain": {"old": None, "new": "p"},
        "a/custom": {"old": None, "new": ini.MASK},
        "b/listed": {"old": None, "new": ini.MASK},
        "b/other": {"old": None, "new": "o"},
    }


# --------------------------------------------------------------------------- removing


def test_remove_takes_every_occurrence_and_keeps_comments():
    text = "[a]\n#k = default\nk = 1\n  cont\nx = 1\nk = 2\n\n[b]\nk = 3\n"
    out, changes = removed(text, {"a": ["k"], "c": "k", "b": ["missing"]})
    assert out == "[a]\n#k = default\nx = 1\n\n[b]\nk = 3\n"
    assert changes == {"a/k": {"old": ["1\ncont", "2"], "new": None}}


def test_remove_masks_secrets_and_is_idempotent():
    out, changes = removed("[a]\npassword = s\n", {"a": ["password"]})
    assert changes == {"a/password": {"old": ini.MASK, "new": None}}
    assert removed(out, {"a": ["password"]}) == (out, {})


@pytest.mark.parametrize("sections", [{"a": [None]}, {"a": 5}, {"a]": ["k"]}, ["a"]])
def test_remove_refuses_bad_input(sections):
    with pytest.raises(ini.IniError):
        ini.remove(ini.parse("[a]\nk = 1\n"), sections)


def test_mask_dict_hides_secret_values_only():
    data = {"a": {"password": "p", "host": "h", "keys": ["1", "2"]}}
    assert ini.mask_dict(data) == {"a": {"password": ini.MASK, "host": "h", "keys": ini.MASK}}


# --------------------------------------------------------------------------- URL passwords


@pytest.mark.parametrize(
    "value, shown",
    [
        ("rabbit://nova:s3cr=t@ctl:5672/", "rabbit://nova:********@ctl:5672/"),
        ("rabbit://u:p@h1:5672,u2:p2@h2:5672/", "rabbit://u:********@h1:5672,u2:********@h2:5672/"),
        ("rabbit://u:p@[::1]:5672,v:q@[fe80::1]:5672/vhost",
         "rabbit://u:********@[::1]:5672,v:********@[fe80::1]:5672/vhost"),
        ("mysql+pymysql://nova:pa@ss:w/rd,x@db/nova?charset=utf8",
         "mysql+pymysql://nova:********@db/nova?charset=utf8"),
        ("rabbit://u:pa://ss@h/", "rabbit://u:********@h/"),
        ("rabbit://:only-password@h/", "rabbit://:********@h/"),
        ("a://u:p@h b://u2:p2@h2", "a://u:********@h b://u2:********@h2"),
        ("url=http://u:p@h/x", "url=http://u:********@h/x"),
        ("rabbit://guest@ctl:5672/", "rabbit://guest@ctl:5672/"),
        ("rabbit://u1@h1,u2@h2/", "rabbit://u1@h1,u2@h2/"),
        ("http://ctl:9292", "http://ctl:9292"),
        ("volumes", "volumes"),
        ("", ""),
    ],
)
def test_url_passwords_are_masked(value, shown):
    assert ini.mask_url_passwords(value) == shown


def test_changes_mask_url_passwords_and_secret_options():
    text = "[DEFAULT]\ntransport_url = rabbit://nova:0ld=pw@ctl:5672/\n[database]\nconnection = x\n"
    sections = {
        "DEFAULT": {"transport_url": "rabbit://nova:s3cr=t@ctl:5672/"},
        "database": {"connection": "mysql+pymysql://nova:dbpw@db/nova"},
        "glance": {"api_servers": "http://u:apipw@ctl:9292,http://u:apipw2@ctl2:9292"},
        "pci": {"alias": ["http://a:alias1@h", "plain"]},  # multi-valued: one value a line
        "ceph": {"chap_password": "c4ap-v4lue"},  # a backend option: any section name
    }
    _, changes = merged(text, sections)
    assert changes == {
        "DEFAULT/transport_url": {"old": ini.MASK, "new": ini.MASK},  # oslo secret=True
        "database/connection": {"old": ini.MASK, "new": ini.MASK},
        "glance/api_servers": {
            "old": None, "new": "http://u:********@ctl:9292,http://u:********@ctl2:9292"},
        "pci/alias": {"old": None, "new": ["http://a:********@h", "plain"]},
        "ceph/chap_password": {"old": None, "new": ini.MASK},
    }
    for secret in ("0ld=pw", "s3cr=t", "dbpw", "apipw", "alias1", "c4ap-v4lue"):
        assert secret not in repr(changes)


def test_mask_dict_masks_url_passwords_and_secret_options():
    data = {"DEFAULT": {"transport_url": "rabbit://u:p@h/", "my_url": "http://u:p@h/"},
            "cache": {"memcache_password": "p"}}  # a deprecated name of [cache] password
    assert ini.mask_dict(data) == {
        "DEFAULT": {"transport_url": ini.MASK, "my_url": "http://u:********@h/"},
        "cache": {"memcache_password": ini.MASK},
    }
