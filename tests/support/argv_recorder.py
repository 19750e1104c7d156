"""
Record the argv of every process started while a block runs, and look for secrets.

``record_argv()`` is a context manager; the list it yields fills with one
:class:`Exec` per program started (and per ``execve`` of a running one)::

    with record_argv() as execs:
        states.cephauth.present("client.x", caps=..., key=key)
    assert execs.commands("ceph")
    assert_secret_absent(key, argv=execs, comment=ret.comment)

Two sources, used together:

* polling ``/proc/*/cmdline`` every ``interval`` seconds (default 2 ms) sees
  every process on the machine that lives longer than a poll, whoever started
  it (a daemon, a helper of a helper);
* ``strace -f -e trace=execve`` attached to this test process (when strace is
  installed and ptrace is allowed) sees every ``execve`` of its descendants,
  however short-lived, including failed attempts along ``PATH``.

:func:`assert_secret_absent` (and :func:`find_secret`) search argv lists,
texts, objects, exceptions, files and directory trees for a secret and report
only *where* it occurs, never the secret or the text around it.
"""

import collections
import contextlib
import json
import os
import re
import shutil
import select
import signal
import subprocess
import sys
import tempfile
import time

#: One program start: the process id, its argv and which source saw it.
Exec = collections.namedtuple("Exec", "pid argv via")


class ArgvRecording(list):
    """The list of :class:`Exec` recorded, with a few conveniences."""

    #: True when strace was attached (else only /proc polling recorded).
    straced = False

    def argvs(self):
        """Just the argv lists."""
        return [list(item.argv) for item in self]

    def commands(self, program):
        """The argvs that run ``program`` (a basename), directly or via an interpreter
        (``/usr/bin/python3 /usr/bin/ceph ...`` counts as ``ceph``), one per process."""
        found, pids = [], set()
        for item in self:
            for index, arg in enumerate(item.argv[:2]):
                if os.path.basename(arg) == program:
                    if item.pid not in pids:
                        pids.add(item.pid)
                        found.append(list(item.argv[index:]))
                    break
        return found


# -- /proc polling ---------------------------------------------------------------


def _proc_stat(pid):
    """``((pid, start time), parent pid)``: the identity, so that a reused PID counts as a
    new process, and the parent; None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return (pid, int(fields[19])), int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def _proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            raw = cmdline.read()
    except OSError:
        return None
    if not raw:
        return None  # kernel threads, zombies
    return tuple(part.decode("utf-8", "replace") for part in raw.rstrip(b"\0").split(b"\0"))


def _poll(interval, output):
    """
    The poller's main loop (run in its own process, see :class:`_ProcPoller`).

    Records each (process, cmdline) pair not present at the start as a JSON
    line ``[pid, parent pid, argv]`` in ``output``; says "ready" on stdout once the
    baseline is taken; stops, after a last scan, when its stdin closes.
    """
    baseline, seen = set(), set()

    def scan(record):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            stat = _proc_stat(int(entry))
            if stat is None:
                continue
            ident, parent = stat
            if not record:
                baseline.add(ident)
            elif ident not in baseline:  # not "started while active"
                argv = _proc_cmdline(ident[0])
                if argv and (ident, argv) not in seen:
                    seen.add((ident, argv))
                    output.write(json.dumps([ident[0], parent, argv]) + "\n")
                    output.flush()

    scan(record=False)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        scan(record=True)
        if select.select([sys.stdin], [], [], interval)[0]:
            scan(record=True)
            return


class _ProcPoller:
    """
    Polls /proc from a separate process.

    A thread would do: but strace stops every thread of a traced process at
    every system call, which would slow the poller down until it misses
    processes; a process started before strace attaches is not traced.
    """

    def __init__(self, interval):
        self.output = tempfile.NamedTemporaryFile(prefix="argv-proc-", delete=False)
        self.output.close()
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--poll", str(interval),
             self.output.name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the /proc poller did not start")

    def stop(self):
        """Stop polling; return the recorded ``[(pid, parent pid, argv)]`` and remove the
        output."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
            self.process.stdout.close()
            with open(self.output.name, encoding="utf-8") as output:
                return [(pid, parent, tuple(argv))
                        for pid, parent, argv in map(json.loads, output)]
        finally:
            os.unlink(self.output.name)


# -- strace ----------------------------------------------------------------------

_EXECVE = re.compile(r"^(\d+)\s+execve\(")
_C_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(\.\.\.)?')


def _c_unescape(text):
    """Decode strace's C escapes (\\n, \\", \\ooo, \\xhh) into text."""
    raw = text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def parse_strace(text):
    """``[(pid, argv), ...]`` from ``strace -f -e trace=execve`` output."""
    found = []
    for line in text.splitlines():
        match = _EXECVE.match(line)
        if not match:
            continue
        rest = line[match.end():]
        # execve("path", ["arg0", "arg1", ...], 0x... /* n vars */) = 0
        start = rest.find("[")
        if start < 0:
            continue
        argv, position = [], start + 1
        while True:
            while position < len(rest) and rest[position] in ", ":
                position += 1
            string = _C_STRING.match(rest, position)
            if not string:
                break
            argv.append(_c_unescape(string.group(1)))
            position = string.end()
        found.append((int(match.group(1)), tuple(argv)))
    return found


def _tracer_of(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class _Strace:
    """strace attached to ``pid`` and its future children, writing to a temp file."""

    def __init__(self, pid):
        self.pid = pid
        self.output = tempfile.NamedTemporaryFile(prefix="argv-strace-", delete=False)
        self.output.close()
        self.process = subprocess.Popen(
            ["strace", "-f", "-qq", "-e", "trace=execve", "-e", "signal=none",
             "-s", "65535", "-o", self.output.name, "-p", str(pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.process.poll() is None:
            if _tracer_of(pid) == self.process.pid:
                self.attached = True
                return
            time.sleep(0.005)
        self.attached = False

    def stop(self):
        """Detach (SIGINT) and return the recorded ``[(pid, argv)]``; removes the output."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            with open(self.output.name, encoding="utf-8", errors="replace") as output:
                return parse_strace(output.read())
        finally:
            os.unlink(self.output.name)


@contextlib.contextmanager
def record_argv(interval=0.002, strace=True, pid=None):
    """
    Record the argv of every process started while the block runs.

    interval
        Seconds between two polls of /proc.

    strace
        Also attach ``strace -f -e trace=execve`` to ``pid`` (default: this
        process). Silently skipped when strace is missing or cannot attach;
        ``recording.straced`` tells which. While attached, every system call of
        the traced process is slower (ptrace stops it), which is fine for tests.

    Yields an :class:`ArgvRecording` (a list of :class:`Exec`, one per distinct
    process and argv), complete once the block has left.
    """
    recording = ArgvRecording()
    poller = _ProcPoller(interval)
    tracer = None
    try:
        if strace and shutil.which("strace"):
            tracer = _Strace(pid or os.getpid())
            if not tracer.attached:
                tracer.stop()
                tracer = None
        recording.straced = tracer is not None
        yield recording
    finally:
        helpers = {poller.process.pid} | ({tracer.process.pid} if tracer else set())
        found = [(p, None, argv, "strace") for p, argv in (tracer.stop() if tracer else [])]
        found += [(p, parent, argv, "proc") for p, parent, argv in poller.stop()]
        recording.extend(without_helpers(found, helpers))


def without_helpers(found, helpers):
    """
    The :class:`Exec` of ``found`` (``(pid, parent pid or None, argv, via)`` tuples, in
    order, each process and argv once), leaving out the recorder's own ``helpers`` (PIDs)
    and the processes they start: strace forks short-lived children with its own argv
    at start-up to probe the kernel's ptrace features. A child polled with its parent's
    argv is a fork that has not exec'd yet (``sh -c 'sleep 1'`` forking for ``sleep``:
    Debian 13's dash lets the poller see it), not a program of its own.
    """
    started = {(pid, argv) for pid, _, argv, _ in found}
    execs, seen = [], set()
    for pid, parent, argv, via in found:
        if pid in helpers or parent in helpers or (pid, argv) in seen \
                or (parent, argv) in started:
            continue
        seen.add((pid, argv))
        execs.append(Exec(pid, argv, via))
    return execs


# -- looking for secrets ---------------------------------------------------------

_CHUNK = 1 << 20


def _needles(secret, fragments):
    needles = {secret, secret.replace("/", "\\/")}  # JSON encoders may escape "/"
    needles.update(fragment for fragment in fragments if fragment)
    return sorted(needles, key=len, reverse=True)


def _mask(text, needles):
    for needle in needles:
        text = text.replace(needle, "<secret>")
    return text


def _search_text(text, needles, where, found):
    for needle in needles:
        position = text.find(needle)
        if position >= 0:
            line = text.count("\n", 0, position) + 1
            found.append(f"{where}, line {line}, offset {position}")
            return


def _search_file(path, needles, found):
    raw_needles = [needle.encode() for needle in needles]
    overlap = max(len(needle) for needle in raw_needles)
    try:
        with open(path, "rb") as stream:
            offset, tail, lines = 0, b"", 1
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    return
                window = tail + chunk
                for needle in raw_needles:
                    position = window.find(needle)
                    if position >= 0:
                        at = offset - len(tail) + position
                        line = lines + window.count(b"\n", 0, position) - tail.count(b"\n")
                        found.append(f"file {_mask(str(path), needles)}, line {line}, "
                                     f"offset {at}")
                        return
                lines += chunk.count(b"\n")
                offset += len(chunk)
                tail = window[-overlap:]
    except OSError as exc:
        found.append(f"file {_mask(str(path), needles)} could not be read ({exc.strerror})")


def _search_path(path, needles, found):
    path = os.fspath(path)
    if os.path.isdir(path):
        for directory, _dirs, files in os.walk(path):
            for filename in sorted(files):
                full = os.path.join(directory, filename)
                if os.path.isfile(full) and not os.path.islink(full):
                    _search_file(full, needles, found)
    elif os.path.exists(path):
        _search_file(path, needles, found)


def _is_argv_list(value):
    return isinstance(value, list) and value and all(
        isinstance(item, Exec) or (isinstance(item, (list, tuple))
                                   and all(isinstance(arg, str) for arg in item))
        for item in value
    )


def _search(value, needles, where, found):
    if isinstance(value, os.PathLike):
        _search_path(value, needles, found)
    elif isinstance(value, (str, bytes)):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        _search_text(text, needles, where, found)
    elif isinstance(value, BaseException):
        texts = [str(value), repr(value), repr(value.args), repr(getattr(value, "info", ""))]
        for cause in (value.__cause__, value.__context__):
            if cause is not None:
                texts.append(repr(cause))
        _search_text("\n".join(texts), needles, where, found)
    elif _is_argv_list(value):
        for number, item in enumerate(value):
            pid, argv = (item.pid, item.argv) if isinstance(item, Exec) else (None, item)
            for index, arg in enumerate(argv):
                if any(needle in arg for needle in needles):
                    program = _mask(os.path.basename(argv[0]) if argv else "?", needles)
                    process = f"pid {pid}" if pid is not None else f"process #{number}"
                    found.append(f"{where}: {process} ({program}), argument {index}")
    else:
        try:
            text = json.dumps(value, default=repr, sort_keys=True)
        except (TypeError, ValueError):
            text = ""
        _search_text(text + "\n" + repr(value), needles, where, found)


def find_secret(secret, *places, fragments=(), **named_places):
    """
    Where ``secret`` occurs, as a list of descriptions that never contain it.

    Places can be: ``str``/``bytes`` (a text), ``os.PathLike`` (a file, or a
    directory searched recursively; plain strings are texts, not paths), a list
    of :class:`Exec` or of argv lists, an exception (message, args, ``info``,
    cause), or any other object (searched in its JSON and ``repr``). Named
    places (``comment=ret.comment``) are reported by their name. ``fragments``
    are extra substrings to look for (e.g. the random half of a key, to catch a
    truncated leak).
    """
    if not secret:
        raise ValueError("an empty secret cannot be searched for")
    needles = _needles(secret, fragments)
    found = []
    labelled = [(f"place #{number}", value) for number, value in enumerate(places)]
    labelled += list(named_places.items())
    for where, value in labelled:
        if isinstance(value, os.PathLike):
            where = f"path {_mask(os.fspath(value), needles)}"
        _search(value, needles, where, found)
    return found


def assert_secret_absent(secret, *places, fragments=(), **named_places):
    """Fail, naming only the places, when ``secret`` occurs in any of them
    (see :func:`find_secret` for what a place can be)."""
    __tracebackhide__ = True  # pylint: disable=unused-variable
    found = find_secret(secret, *places, fragments=fragments, **named_places)
    if found:
        raise AssertionError(
            f"the secret occurs in {len(found)} place(s):\n  " + "\n  ".join(found)
        )


if __name__ == "__main__" and sys.argv[1:2] == ["--poll"]:
    with open(sys.argv[3], "w", encoding="utf-8") as _output:
        _poll(float(sys.argv[2]), _output)
