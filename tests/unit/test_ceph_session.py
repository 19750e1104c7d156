"""
ceph_session (one connection for a run's ceph commands) and its use by ceph_cli.run.

The helper's counterpart here is a small script speaking the same JSON-lines protocol
(tests/functional/test_ceph_session.py runs the real one against the lab); only
``cmd.run_all`` (the one-process-per-command fallback) is replaced.
"""

import json
import sys
import textwrap

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.modules import load

ceph_cli = load("salt/_utils/ceph_cli.py", "ceph_cli_for_session_tests")
ceph_session = load("salt/_utils/ceph_session.py", "ceph_session_under_test")

CONN = {"cluster": "ceph", "conf": "/lab/ceph.conf", "client_id": "admin", "keyring": None,
        "timeout": 2, "session": True}

#: A stand-in helper: ready, then per request a reply chosen by the request's first word.
FAKE = textwrap.dedent('''
    import json, sys, time
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()  # connection options
    for line in sys.stdin:
        req = json.loads(line)
        word = req["args"][0]
        if word == "sleep":
            time.sleep(30)
        if word == "exit":
            sys.exit(0)
        if word == "missing":
            reply = {"ret": -2, "out": "", "outs": "failed to find client.x in keyring"}
        else:
            reply = {"ret": 0, "out": json.dumps(req), "outs": "done"}
        print(json.dumps(reply), flush=True)
''')


class RunAll:
    """``cmd.run_all`` of the per-process fallback: records argv, answers one JSON doc."""

    def __init__(self):
        self.calls = []

    def __call__(self, cmd, **kwargs):
        self.calls.append(cmd)
        return {"retcode": 0, "stdout": '{"via": "process"}', "stderr": ""}


@pytest.fixture
def fake_helper(tmp_path):
    script = tmp_path / "helper.py"
    script.write_text(FAKE)
    # Session appends ["-c", HELPER]: the stand-in ignores its arguments.
    return lambda conn, context, key: ceph_session.get(conn, context, key,
                                                       argv=[sys.executable, str(script)])


def run(args, context, session, run_all, **kwargs):
    return ceph_cli.run(run_all, CONN, args, context=context, session=session, **kwargs)


# -- the request and the reply ------------------------------------------------------------


def test_input_goes_into_the_request_never_into_args():
    line = ceph_session.request(["auth", "add", "client.x", "mon", "allow r", "-i", "-"],
                                stdin="[client.x]\n\tkey = K\n", json_out=False)
    assert json.loads(line) == {"args": ["auth", "add", "client.x", "mon", "allow r"],
                                "inbuf": "[client.x]\n\tkey = K\n"}
    assert json.loads(ceph_session.request(["osd", "pool", "ls"]))["format"] == "json"
    with pytest.raises(ValueError):
        ceph_session.request(["auth", "import", "-i", "/etc/keyring"])
    assert json.loads(ceph_session.request(["pool", "init", "volumes"], binary="rbd")) == {
        "rbd_pool_init": "volumes"}
    for other in (["ls", "--pool", "volumes"], ["pool", "init", "--force"]):
        with pytest.raises(ValueError):
            ceph_session.request(other, binary="rbd")


def test_a_reply_reads_like_the_clis_exit_status():
    assert ceph_session.as_run_all({"ret": -2, "out": "", "outs": "no such pool"}) == {
        "retcode": 2, "stdout": "", "stderr": "Error ENOENT: no such pool"}
    assert ceph_session.as_run_all({"ret": 0, "out": "[]", "outs": "created"}) == {
        "retcode": 0, "stdout": "[]", "stderr": "created"}


# -- finding the CLI's interpreter ----------------------------------------------------------


@pytest.mark.parametrize("first_line, sibling, expected", [
    ("#! /usr/bin/python3\n", False, ["/usr/bin/python3"]),
    ("#!/usr/bin/env python3\n", False, ["/usr/bin/env", "python3"]),
    ("#!/bin/sh\n", True, "sibling"),
    ("#!/bin/sh\n", False, None),
])
def test_the_interpreter_is_the_clis_own(tmp_path, first_line, sibling, expected):
    ceph = tmp_path / "ceph"
    ceph.write_text(first_line + "exec true\n")
    if sibling:
        (tmp_path / "python3").write_text("#!/bin/sh\n")
        (tmp_path / "python3").chmod(0o755)
    found = ceph_session.interpreter(which=lambda name: str(tmp_path / name))
    assert found == ([str(tmp_path / "python3")] if expected == "sibling" else expected)


def test_no_ceph_cli_no_session():
    assert ceph_session.interpreter(which=lambda name: None) is None


# -- ceph_cli.run through a session -----------------------------------------------------------


def test_commands_share_one_helper_and_keep_their_own_results(fake_helper):
    run_all, context = RunAll(), {}
    first = run(["osd", "pool", "ls"], context, fake_helper, run_all)
    assert first == {"args": ["osd", "pool", "ls"], "format": "json"}
    second = run(["auth", "add", "client.x", "-i", "-"], context, fake_helper, run_all,
                 stdin="secret text", json_out=False)
    assert json.loads(second)["inbuf"] == "secret text"
    with pytest.raises(CommandExecutionError) as exc:
        run(["missing"], context, fake_helper, run_all)
    assert ceph_cli.is_missing(exc.value)
    assert "failed to find client.x" in exc.value.strerror
    assert run_all.calls == []
    sessions = [value for value in context.values() if isinstance(value, ceph_session.Session)]
    assert len(sessions) == 1
    sessions[0].close()


def test_a_busy_session_lasts_and_an_idle_one_is_replaced(fake_helper, monkeypatch):
    run_all, context = RunAll(), {}
    clock = [1000.0]
    monkeypatch.setattr(ceph_session.time, "monotonic", lambda: clock[0])

    def session():
        return next(v for v in context.values() if isinstance(v, ceph_session.Session))

    used = []
    for _ in range(5):  # a long converge: a command every 30 s, 150 s in all
        run(["osd", "pool", "ls"], context, fake_helper, run_all)
        used.append(session())
        clock[0] += ceph_session.MAX_IDLE / 2
    assert all(s is used[0] for s in used)
    clock[0] += ceph_session.MAX_IDLE
    run(["osd", "pool", "ls"], context, fake_helper, run_all)
    assert session() is not used[0] and used[0].proc.poll() is not None  # the idle one ended
    session().close()


def test_rbd_commands_but_pool_init_never_start_a_session(fake_helper):
    run_all, context = RunAll(), {}
    run(["ls", "--pool", "volumes"], context, fake_helper, run_all, binary="rbd")
    assert context == {} and len(run_all.calls) == 1


def test_without_a_usable_interpreter_each_command_is_a_process():
    # The venv's Python has no rados module: the real helper says so and exits.
    run_all, context = RunAll(), {}
    real = lambda conn, ctx, key: ceph_session.get(conn, ctx, key, argv=[sys.executable])
    assert run(["osd", "pool", "ls"], context, real, run_all) == {"via": "process"}
    assert run(["auth", "ls"], context, real, run_all) == {"via": "process"}
    assert [cmd[-4:] for cmd in run_all.calls] == [
        ["pool", "ls", "--format", "json"], ["auth", "ls", "--format", "json"]]
    assert False in context.values()  # not tried again in this run


def test_a_helper_that_ends_hands_over_to_processes(fake_helper):
    run_all, context = RunAll(), {}
    assert run(["exit"], context, fake_helper, run_all) == {"via": "process"}
    assert run(["osd", "pool", "ls"], context, fake_helper, run_all) == {"via": "process"}
    assert len(run_all.calls) == 2


def test_a_helper_without_reply_is_a_timeout_and_the_run_stops_asking(fake_helper):
    run_all, context = RunAll(), {}
    with pytest.raises(CommandExecutionError) as exc:
        run(["sleep"], context, fake_helper, run_all)
    assert "no answer from cluster 'ceph'" in exc.value.strerror
    with pytest.raises(CommandExecutionError) as exc:
        run(["osd", "pool", "ls"], context, fake_helper, run_all)
    assert "not retried" in exc.value.strerror
    assert run_all.calls == []


def test_sessions_switched_off_in_config_are_not_used(fake_helper):
    run_all = RunAll()
    conn = ceph_cli.connection(lambda key, default=None: {"ceph_openstack:session": False}
                               .get(key, default))
    assert conn["session"] is False
    assert ceph_cli.run(run_all, conn, ["osd", "pool", "ls"], context={},
                        session=fake_helper) == {"via": "process"}


def test_the_helper_never_logs_or_echoes_input():
    # The helper script itself: no print of a request, its inbuf or its args.
    assert "inbuf" not in "".join(
        line for line in ceph_session.HELPER.splitlines() if "reply(" in line)
    assert "stderr" not in ceph_session.HELPER
