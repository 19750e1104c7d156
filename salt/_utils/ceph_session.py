"""
One connection to the mons for many ``ceph`` commands in a run.

A ``ceph`` process costs about 150 ms before its command reaches a mon
(interpreter start, cluster connect, fetching the mons' command table). A
converge that creates 64 pools and 32 users pays that per write. A session is
one helper process that connects once and then runs command after command:

* it runs under the interpreter of the ``ceph`` CLI itself (its ``#!`` line,
  or a ``python3`` next to a ``ceph`` wrapper script), with the CLI's own
  modules: ``rados`` and ``ceph_argparse``. Onedir Salt cannot import them,
  the CLI's interpreter always can, on every release;
* each command line is turned into the mons' JSON command by the release's own
  ``ceph_argparse.validate_command``, as the CLI does, but checked only against
  the signatures whose prefix matches (the CLI checks all of them, about
  100 ms of CPU per command; ``ceph``'s interactive stdin mode pays that too);
* ``rbd pool init <pool>`` runs there too, as librbd's ``pool_init`` (what the
  ``rbd`` tool calls); other ``rbd`` commands stay processes;
* requests and replies are JSON lines on the helper's stdin and stdout, each
  reply with the command's own return code, output and status text. Input
  (``-i -``, e.g. a keyring with a key) travels inside the request, on stdin:
  keys never reach an argv.

When no interpreter with those modules is found, or the helper cannot start or
connect, :func:`get` returns ``None`` for the rest of the run and callers run
one ``ceph`` process per command, as before.

A session lives in the caller's ``__context__`` (one job) and ends when the job
ends (the helper reads end-of-file); one idle for :data:`MAX_IDLE` seconds is
replaced, for minions whose ``__context__`` outlives a job.
"""

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import time

log = logging.getLogger(__name__)

#: A session idle for this long is replaced (``__context__`` may outlive a job).
MAX_IDLE = 60

#: Seconds beyond the command timeout the helper gets before it is killed.
GRACE = 5

#: The helper: run with ``-c`` (no secret in it); requests on stdin, replies on stdout.
HELPER = r'''
import json, sys

def reply(doc):
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()

try:
    import rados
    import ceph_argparse
    from ceph_argparse import json_command, parse_json_funcsigs, validate_command
except Exception as exc:
    reply({"error": "cannot import the Ceph CLI's modules: %s" % exc})
    sys.exit(0)

opts = json.loads(sys.stdin.readline())
timeout = int(opts["timeout"])
try:
    # The connect and command timeouts of librados itself (connect()'s own is advisory).
    conf = {"client_mount_timeout": str(timeout), "rados_mon_op_timeout": str(timeout)}
    if opts.get("keyring"):
        conf["keyring"] = opts["keyring"]
    cluster = rados.Rados(name="client." + opts["client_id"], clustername=opts["cluster"],
                          conffile=opts.get("conf") or "", conf=conf)
    cluster.connect(timeout=timeout)
    ret, out, outs = json_command(cluster, prefix="get_command_descriptions", timeout=timeout)
    if ret:
        raise RuntimeError("get_command_descriptions: %s %s" % (ret, outs))
    sigdict = parse_json_funcsigs(out.decode("utf-8"), "cli")
except Exception as exc:
    reply({"error": "cannot connect: %s" % exc,
           "timed_out": isinstance(exc, getattr(rados, "TimedOut", ()))
           or abs(getattr(exc, "errno", 0) or 0) == 110 or "timed out" in str(exc).lower()})
    sys.exit(0)

def prefix(sig):
    words = []
    for desc in sig:
        if getattr(desc, "t", None) is not ceph_argparse.CephPrefix:
            break
        words.append(desc.instance.prefix)
    return words

prefixes = {name: prefix(cmd["sig"]) for name, cmd in sigdict.items()}
reply({"ready": True})

def pool_init(pool):
    """What ``rbd pool init <pool>`` does: librbd's own pool_init (application + validation)."""
    import rbd
    ioctx = cluster.open_ioctx(pool)
    try:
        rbd.RBD().pool_init(ioctx, False)
    finally:
        ioctx.close()

for line in sys.stdin:
    req = json.loads(line)
    if "rbd_pool_init" in req:
        try:
            pool_init(req["rbd_pool_init"])
            reply({"ret": 0, "out": "", "outs": ""})
        except Exception as exc:
            reply({"ret": -(abs(getattr(exc, "errno", 0) or 0) or 5), "out": "", "outs": str(exc)})
        continue
    args = req["args"]
    words = []
    for arg in args:
        if arg.startswith("-"):
            break
        words.append(arg)
    candidates = {name: sigdict[name] for name, pre in prefixes.items()
                  if pre and pre == words[:len(pre)]}
    valid = validate_command(candidates, args) if candidates else {}
    if not valid:
        valid = validate_command(sigdict, args)
    if not valid:
        reply({"ret": -22, "out": "", "outs": "invalid command"})
        continue
    if req.get("format"):
        valid["format"] = req["format"]
    try:
        ret, out, outs = json_command(cluster, argdict=valid,
                                      inbuf=(req.get("inbuf") or "").encode("utf-8"),
                                      timeout=timeout)
    except Exception as exc:
        ret, out, outs = -5, b"", str(exc)
    reply({"ret": ret, "out": out.decode("utf-8", "replace"), "outs": outs})
'''


class SessionError(Exception):
    """The helper is gone or gave no usable reply; the command's outcome is unknown."""


class SessionTimeout(SessionError):
    """The helper gave no reply within the command timeout (it has been stopped)."""

    timed_out = True


def interpreter(which=shutil.which):
    """
    The argv that runs Python with the ``ceph`` CLI's modules, or ``None``.

    The interpreter on the ``#!`` line of ``ceph`` (``/usr/bin/python3`` on
    Debian and Ubuntu), else a ``python3`` in the same directory as ``ceph``
    (a directory of wrapper scripts that enter another root, say).
    """
    ceph = which("ceph")
    if not ceph:
        return None
    try:
        with open(ceph, "rb") as script:
            first = script.readline(256).decode("utf-8", "replace")
    except OSError:
        return None
    if first.startswith("#!"):
        words = first[2:].split()
        if words and "python" in os.path.basename(words[-1] if words[0].endswith("env")
                                                  else words[0]):
            return words
    sibling = os.path.join(os.path.dirname(ceph), "python3")
    if os.access(sibling, os.X_OK):
        return [sibling]
    return None


def request(args, stdin=None, json_out=True, binary="ceph"):
    """
    The request line for ``ceph <args>``: ``-i -`` becomes the request's
    ``inbuf`` (the text given as ``stdin``), ``json_out`` its ``format``. Of
    ``rbd``, only ``rbd pool init <pool>`` (librbd's pool_init in the helper);
    anything else raises ``ValueError`` (the caller runs a process for it).
    """
    args = [str(arg) for arg in args]
    if binary == "rbd":
        if len(args) != 3 or args[:2] != ["pool", "init"] or args[2].startswith("-"):
            raise ValueError("a session runs only `rbd pool init <pool>` of rbd")
        return json.dumps({"rbd_pool_init": args[2]}) + "\n"
    if binary != "ceph":
        raise ValueError(f"a session does not run {binary}")
    inbuf = None
    if "-i" in args:
        where = args.index("-i")
        if args[where + 1:where + 2] != ["-"]:
            raise ValueError("a session reads input from the request only (-i -)")
        del args[where:where + 2]
        inbuf = stdin or ""
    doc = {"args": args}
    if inbuf is not None:
        doc["inbuf"] = inbuf
    if json_out:
        doc["format"] = "json"
    return json.dumps(doc) + "\n"


def as_run_all(reply):
    """
    A helper reply as ``cmd.run_all`` would have returned the ``ceph`` CLI's
    result: exit code = errno, ``Error EXXX: <status>`` on stderr for a failure.
    """
    ret = int(reply.get("ret", -5))
    if ret < 0:
        import errno  # pylint: disable=import-outside-toplevel

        name = errno.errorcode.get(-ret, "Unknown")
        return {"retcode": -ret, "stdout": reply.get("out") or "",
                "stderr": f"Error {name}: {reply.get('outs') or ''}"}
    return {"retcode": 0, "stdout": reply.get("out") or "", "stderr": reply.get("outs") or ""}


class Session:
    """One helper process connected to one cluster as one client."""

    def __init__(self, argv, conn):
        self.timeout = conn["timeout"]
        self.used = time.monotonic()
        self.buffer = b""
        env = {"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            list(argv) + ["-c", HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env, close_fds=True,
        )
        opts = {name: conn[name] for name in ("cluster", "conf", "client_id", "keyring",
                                              "timeout")}
        first = self._exchange(json.dumps(opts) + "\n")
        if not first.get("ready"):
            self.close()
            error = SessionTimeout if first.get("timed_out") else SessionError
            raise error(first.get("error") or "the session helper did not start")

    def fresh(self):
        return self.proc.poll() is None and time.monotonic() - self.used < MAX_IDLE

    def run(self, args, stdin=None, json_out=True, binary="ceph"):
        """``ceph <args>`` (or ``rbd pool init``) through the session, as a
        ``cmd.run_all``-style dict."""
        return as_run_all(self._exchange(request(args, stdin, json_out, binary)))

    def _exchange(self, line):
        try:
            self.proc.stdin.write(line.encode("utf-8"))
            self.proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise SessionError(f"the session helper is gone ({exc})")
        deadline = time.monotonic() + self.timeout + GRACE
        fileno = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise SessionTimeout("no reply within the timeout")
            ready, _, _ = select.select([fileno], [], [], left)
            if ready:
                chunk = os.read(fileno, 65536)
                if not chunk:
                    self.close()
                    raise SessionError("the session helper ended")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        self.used = time.monotonic()
        try:
            return json.loads(line)
        except ValueError:
            self.close()
            raise SessionError("the session helper replied with something that is not JSON")

    def close(self):
        """End the helper (end of input, then a signal if it lingers)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=1)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


def get(conn, context, key, argv=None):
    """
    The session for ``conn`` kept in ``context`` under ``key``: started on first
    use, replaced when stale; ``None`` when sessions do not work here (then
    not tried again in this run).
    """
    found = context.get(key)
    if found is False:
        return None
    if found is not None:
        if found.fresh():
            return found
        found.close()
    argv = argv or interpreter()
    if not argv:
        context[key] = False
        return None
    try:
        session = Session(argv, conn)
    except SessionTimeout:
        context[key] = False
        raise  # the cluster does not answer: the caller reports that, not a fallback's wait
    except (OSError, SessionError) as exc:
        log.debug("ceph_openstack: no ceph session (%s); one ceph process per command", exc)
        context[key] = False
        return None
    context[key] = session
    return session


def drop(context, key):
    """Close and forget the session under ``key`` (after it failed)."""
    found = context.pop(key, None)
    if found:
        found.close()
