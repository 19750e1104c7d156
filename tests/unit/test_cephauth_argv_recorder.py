"""
Unit tests of tests/support/argv_recorder.py, the leak-test helper: it must see
short-lived processes and grandchildren, and report where a secret is without
ever printing it.
"""

import pathlib
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.support.argv_recorder import (  # noqa: E402
    Exec,
    assert_secret_absent,
    find_secret,
    parse_strace,
    record_argv,
    without_helpers,
)

SECRET = "AQBhAAAAAAAAABAAvHOq2W2wbY4Wcf7yCmXw3Q=="


def _marked(execs, program, marker):
    """This test's runs of ``program``: the recorder sees the whole machine, where other
    test sessions may run the same commands."""
    return [argv for argv in execs.commands(program) if any(marker in arg for arg in argv)]


def test_records_short_lived_processes_and_grandchildren():
    marker = uuid.uuid4().hex
    script = f"sleep 0.05; exit 0 # {marker}"
    with record_argv() as execs:
        subprocess.run(["true", marker, SECRET], check=True)
        subprocess.run(["sh", "-c", script], check=True)
    if not execs.straced:
        pytest.skip("strace cannot attach here; the /proc test covers polling")
    assert _marked(execs, "true", marker) == [["true", marker, SECRET]]
    assert _marked(execs, "sh", marker) == [["sh", "-c", script]]
    assert ["sleep", "0.05"] in execs.commands("sleep")  # the grandchild


def test_proc_polling_alone_sees_processes_that_live_a_few_ms():
    marker = uuid.uuid4().hex
    with record_argv(strace=False) as execs:
        subprocess.run(["sh", "-c", f"sleep 0.05; exit 0 # {marker}"], check=True)
    assert not execs.straced
    assert _marked(execs, "sh", marker) == [["sh", "-c", f"sleep 0.05; exit 0 # {marker}"]]
    assert all(item.via == "proc" for item in execs)


def test_the_recorder_leaves_its_own_helpers_out():
    with record_argv() as execs:
        pass
    assert not execs.commands("strace")
    assert not [item for item in execs if "--poll" in item.argv]


def test_processes_started_by_the_helpers_are_left_out_too():
    # strace forks short-lived probes that carry its argv; the poller sees them with
    # strace as their parent.
    strace = ("strace", "-f", "-p", "1")
    found = [
        (10, 1, strace, "proc"),
        (12, 10, strace, "proc"),
        (13, 1, ("ceph", "-s"), "strace"),
        (13, 1, ("ceph", "-s"), "proc"),
        (14, 1, ("true",), "proc"),
        (14, 1, ("sh", "-c", "true"), "proc"),
        (15, 11, ("python3", "argv_recorder.py", "--poll"), "proc"),
        (16, 13, strace, "proc"),
    ]
    assert without_helpers(found, helpers={10, 11}) == [
        Exec(13, ("ceph", "-s"), "strace"),
        Exec(14, ("true",), "proc"),
        Exec(14, ("sh", "-c", "true"), "proc"),
        Exec(16, strace, "proc"),
    ]


def test_a_fork_not_yet_execd_is_not_a_program_of_its_own():
    script = ("sh", "-c", "sleep 0.05")
    found = [
        (20, 1, script, "proc"),
        (21, 20, script, "proc"),  # forked, not yet exec'd
        (21, 20, ("sleep", "0.05"), "proc"),
    ]
    assert without_helpers(found, helpers=set()) == [
        Exec(20, script, "proc"),
        Exec(21, ("sleep", "0.05"), "proc"),
    ]


def test_parse_strace_decodes_escapes_and_split_lines():
    output = (
        '101 execve("/usr/bin/ceph", ["ceph", "a \\"b\\"", "c\\nd", "\\303\\251"], '
        "0x7ffd /* 3 vars */) = 0\n"
        '102 execve("/x", ["x", "y"], 0x1 /* 1 vars */ <unfinished ...>\n'
        "103 +++ exited with 0 +++\n"
        "102 <... execve resumed>) = 0\n"
    )
    assert parse_strace(output) == [(101, ("ceph", 'a "b"', "c\nd", "é")), (102, ("x", "y"))]


def test_find_secret_names_places_never_the_secret(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "minion.log").write_text("line one\nkey = " + SECRET + "\n")
    (tmp_path / "clean.txt").write_text("nothing here")
    error = RuntimeError("wrapped")
    error.__cause__ = ValueError(f"val={SECRET}")
    found = find_secret(
        SECRET,
        tmp_path,
        argv=[Exec(42, ("ceph", "auth", SECRET), "strace"), Exec(43, ("rbd", "ls"), "proc")],
        plain_argv=[["virsh", "secret-set-value", "--base64", SECRET]],
        comment="no secret",
        changes={"key": {"new": SECRET}},
        error=error,
    )
    assert found == [
        f"file {tmp_path}/sub/minion.log, line 2, offset 15",
        "argv: pid 42 (ceph), argument 2",
        "plain_argv: process #0 (virsh), argument 3",
        "changes, line 1, offset 17",
        "error, line 5, offset 64",
    ]


def test_find_secret_sees_json_escaped_slashes():
    slashed = "AQDL1gZr8gE8HhAACJ8XsKhFP8vZDyKRfA/wnA=="
    assert find_secret(slashed, escaped='{"key": "' + slashed.replace("/", "\\/") + '"}') == [
        "escaped, line 1, offset 9"
    ]


def test_find_secret_fragments_catch_truncated_leaks():
    assert find_secret(SECRET, log="... " + SECRET[-24:] + " ...") == []
    assert find_secret(SECRET, fragments=[SECRET[-24:]], log="... " + SECRET[-24:]) == [
        "log, line 1, offset 4"
    ]


def test_assert_secret_absent_message_hides_the_secret(tmp_path):
    assert_secret_absent(SECRET, tmp_path, text="clean", argv=[["ceph", "auth", "ls"]])
    with pytest.raises(AssertionError) as err:
        assert_secret_absent(SECRET, text=f"x {SECRET}")
    assert str(err.value) == "the secret occurs in 1 place(s):\n  text, line 1, offset 2"
    assert SECRET not in str(err.value)


def test_large_files_are_searched_across_chunk_boundaries(tmp_path):
    big = tmp_path / "big.log"
    big.write_bytes(b"a" * ((1 << 20) - 10) + SECRET.encode() + b"\n")
    assert find_secret(SECRET, big) == [f"file {big}, line 1, offset {(1 << 20) - 10}"]
