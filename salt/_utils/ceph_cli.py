"""
Run the ``ceph`` and ``rbd`` command-line tools for the ceph_openstack modules.

Onedir Salt cannot import the distribution's ``python3-rados``, so every
Ceph-facing module drives the CLIs with JSON output through this one helper:
connection keywords, argv, timeouts, JSON parsing, errors and stdin for
secrets live here and nowhere else.

Utility modules get no ``__salt__``, so callers pass their own
``__salt__["cmd.run_all"]`` and ``__salt__["config.get"]``.

Secrets: the command output is never logged (``output_loglevel='quiet'``) and
secrets travel on stdin only, never in argv.
"""

import json
import logging
import time

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

#: Connection keywords every Ceph-facing function accepts, with their defaults.
CONNECTION_DEFAULTS = {
    "cluster": "ceph",
    "conf": None,
    "client_id": "admin",
    "keyring": None,
    "timeout": 10,
}

#: How long a cluster that did not answer is taken as down within one run.
_UNREACHABLE_SECONDS = 60

#: Extra seconds the process gets beyond Ceph's own connect timeout before it
#: is killed, so Ceph's clearer error wins when it can.
_KILL_GRACE = 5


def connection(config_get, **kwargs):
    """
    Resolve the connection keywords.

    An explicit keyword wins, else ``config.get('ceph_openstack:<keyword>')``
    (minion config, grains or pillar), else the built-in default. Other
    keywords (Salt's ``__pub_*`` and the like) are ignored.
    """
    conn = {}
    for name, default in CONNECTION_DEFAULTS.items():
        value = kwargs.get(name)
        if value is None:
            value = config_get(f"ceph_openstack:{name}", default)
        conn[name] = value
    try:
        conn["timeout"] = int(conn["timeout"])
    except (TypeError, ValueError):
        raise CommandExecutionError(
            f"timeout must be a whole number of seconds, not {conn['timeout']!r}"
        )
    if conn["timeout"] <= 0:
        raise CommandExecutionError("timeout must be a positive number of seconds")
    # One connection per run for the ceph commands (ceph_session), unless switched off.
    conn["session"] = config_get("ceph_openstack:session", True) is not False
    return conn


def cache_key(conn):
    """A hashable key for ``__context__`` caches of one cluster connection."""
    return tuple(conn[name] for name in CONNECTION_DEFAULTS if name != "timeout")


def argv(conn, binary, args):
    """The full argv for ``binary`` (``ceph`` or ``rbd``) with the connection options."""
    cmd = [binary, "--cluster", conn["cluster"], "--id", conn["client_id"]]
    if conn["conf"]:
        cmd += ["--conf", conn["conf"]]
    if conn["keyring"]:
        cmd += ["--keyring", conn["keyring"]]
    if binary == "ceph":
        cmd += ["--connect-timeout", str(conn["timeout"])]
    else:
        # rbd has no --connect-timeout; these are the librados equivalents.
        cmd += [
            f"--client_mount_timeout={conn['timeout']}",
            f"--rados_mon_op_timeout={conn['timeout']}",
            f"--rados_osd_op_timeout={conn['timeout']}",
        ]
    return cmd + [str(arg) for arg in args]


def run(run_all, conn, args, binary="ceph", stdin=None, json_out=True, context=None,
        messages=None, session=None):
    """
    Run one Ceph CLI command and return its parsed JSON (or text) output.

    run_all
        The caller's ``__salt__["cmd.run_all"]``.

    conn
        The dict from :func:`connection`.

    args
        Arguments after the connection options, e.g. ``["osd", "pool", "ls"]``.

    stdin
        Text fed to the command's standard input: the only way a secret may
        reach the CLI.

    json_out
        Append ``--format json`` and return the decoded document (``None`` for
        empty output).

    context
        The caller's ``__context__``: after a timeout, later calls on the same
        connection in the same run fail at once instead of waiting out their own
        timeout (a state run with the mons down fails in one timeout, not one
        per state).

    messages
        A list that receives what the command printed on stderr when it
        succeeds: Ceph's own word on what it did (``pool 'x' already exists``
        and ``pool 'x' created`` both exit 0).

    session
        ``ceph_session.get`` (the caller's helper ``ceph_session``):
        with a ``context``, ``ceph`` commands then go through one connection
        kept for the run instead of one process each (see ``ceph_session``);
        where that does not work, one process per command as without it.

    Raises ``CommandExecutionError`` on a timeout or a non-zero exit; its
    ``info`` holds ``retcode`` and the first line of stderr so callers can
    tell "does not exist" (ENOENT, 2) from real failures.
    """
    memo = ("ceph_cli.unreachable",) + cache_key(conn)
    earlier = (context or {}).get(memo)
    if earlier and time.monotonic() - earlier[0] < _UNREACHABLE_SECONDS:
        raise CommandExecutionError(
            f"{earlier[1]} (not retried: no answer earlier in this run)", info={"retcode": None}
        )
    # Log the verb only: arguments may name entities the operator considers private.
    log.debug("ceph_openstack: running %s %s", binary, " ".join(map(str, args[:3])))
    ret = None
    sessionable = binary == "ceph" or (binary == "rbd" and list(args[:2]) == ["pool", "init"])
    if session is not None and context is not None and sessionable and conn.get("session", True):
        ret = _through_session(session, conn, args, stdin, json_out, context, binary)
    if ret is None:
        cmd = argv(conn, binary, list(args) + (["--format", "json"] if json_out else []))
        ret = run_all(
            cmd,
            python_shell=False,
            stdin=stdin,
            output_loglevel="quiet",
            ignore_retcode=True,
            timeout=conn["timeout"] + _KILL_GRACE,
            env={"LC_ALL": "C"},
        )
    stdout = ret.get("stdout") or ""
    stderr = (ret.get("stderr") or "").strip()
    if ret.get("retcode"):
        if stdout.startswith("Timed out after") or _timed_out(ret["retcode"], stderr):
            message = _timeout_message(conn, binary)
            if context is not None:
                context[memo] = (time.monotonic(), message)
            raise CommandExecutionError(message, info={"retcode": None})
        raise CommandExecutionError(
            _failure_message(conn, binary, args, ret["retcode"], stderr),
            info={"retcode": ret["retcode"], "stderr": _last_line(stderr)},
        )
    if messages is not None and stderr:
        messages.append(stderr)
    if not json_out:
        return stdout
    if not stdout.strip():
        return None
    try:
        return json.loads(stdout)
    except ValueError:
        raise CommandExecutionError(
            f"{binary} {' '.join(map(str, args[:3]))} returned output that is not JSON"
        )


def _through_session(session, conn, args, stdin, json_out, context, binary="ceph"):
    """
    ``cmd.run_all``-style result of ``ceph <args>`` through the run's session,
    or ``None`` when there is none (or it broke: then this command and the
    rest of the run use one process each). A session that gets no reply in
    time is reported like the CLI's own timeout.
    """
    key = ("ceph_cli.session",) + cache_key(conn)
    try:
        current = session(conn, context, key)
    except Exception as exc:  # pylint: disable=broad-except
        if getattr(exc, "timed_out", False):
            return {"retcode": 110, "stdout": "", "stderr": "timed out"}
        raise
    if current is None:
        return None
    try:
        return current.run(args, stdin=stdin, json_out=json_out, binary=binary)
    except ValueError:
        return None  # what a session does not run (-i <file>, most of rbd): one process
    except Exception as exc:  # pylint: disable=broad-except
        # ceph_session's errors (a utils module cannot import its sibling).
        context.pop(key, None)
        current.close()
        if getattr(exc, "timed_out", False):
            return {"retcode": 110, "stdout": "", "stderr": "timed out"}
        log.debug("ceph_openstack: ceph session ended (%s); one process per command", exc)
        context[key] = False
        return None


def _last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _where(conn):
    conf = conn["conf"] or f"/etc/ceph/{conn['cluster']}.conf"
    return f"cluster '{conn['cluster']}' (conf {conf}, client.{conn['client_id']})"


def _timeout_message(conn, binary):
    return (
        f"{binary}: no answer from {_where(conn)} within {conn['timeout']} s; "
        "are the mons up and reachable?"
    )


def _timed_out(retcode, stderr):
    """Ceph's own connect timeout: ETIMEDOUT, or "timed out" as its last word."""
    return retcode == 110 or "timed out" in _last_line(stderr).lower()


def _failure_message(conn, binary, args, retcode, stderr):
    reason = _last_line(stderr) or f"exit code {retcode}"
    verb = " ".join(map(str, args[:3]))
    return f"{binary} {verb} failed on {_where(conn)}: {reason}"


def is_missing(exc):
    """True when a ``CommandExecutionError`` from :func:`run` means ENOENT."""
    return isinstance(getattr(exc, "info", None), dict) and exc.info.get("retcode") == 2
