"""Process helpers for the lab: free ports, daemons tracked by PID files, waiting."""

import os
import signal
import socket
import subprocess
import threading
import time


#: Ports this process has handed out: a daemon configured now may listen on its port only
#: later (the two clusters' mons, a mon's v1 and v2), so none may be handed out twice.
_GIVEN = set()
_GIVING = threading.Lock()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now and that this process
    has not handed out before."""
    with _GIVING:
        while True:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            if port not in _GIVEN:
                _GIVEN.add(port)
                return port


def start_daemon(name, argv, piddir, logdir, env=None, preexec_fn=None, cwd=None):
    """
    Start ``argv`` in the foreground of its own session and record its PID.

    The lab tracks every process it starts in ``<piddir>/<name>.pid`` so that
    ``down`` can stop exactly those processes, even from another invocation.
    """
    os.makedirs(piddir, exist_ok=True)
    os.makedirs(logdir, exist_ok=True)
    with open(os.path.join(logdir, f"{name}.out"), "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            preexec_fn=preexec_fn,
            cwd=cwd,
        )
    with open(os.path.join(piddir, f"{name}.pid"), "w") as pidfile:
        pidfile.write(str(proc.pid))
    return proc


def alive(pid):
    """True when ``pid`` runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def pids(piddir):
    """``{name: pid}`` for every PID file in ``piddir``."""
    found = {}
    if not os.path.isdir(piddir):
        return found
    for entry in sorted(os.listdir(piddir)):
        if entry.endswith(".pid"):
            try:
                with open(os.path.join(piddir, entry)) as pidfile:
                    found[entry[:-4]] = int(pidfile.read().strip())
            except (OSError, ValueError):
                continue
    return found


def stop_all(piddir, timeout=15, names=None):
    """Stop every process recorded in ``piddir`` (or those of ``names`` only): TERM, then
    KILL, and remove their files."""
    recorded = {name: pid for name, pid in pids(piddir).items() if names is None or name in names}
    for pid in recorded.values():
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in recorded.values()):
        _reap(recorded.values())
        time.sleep(0.1)
    for pid in recorded.values():
        if alive(pid):
            _signal_group(pid, signal.SIGKILL)
    _reap(recorded.values())
    for name in recorded:
        try:
            os.unlink(os.path.join(piddir, f"{name}.pid"))
        except FileNotFoundError:
            pass
    return recorded


def _signal_group(pid, signum):
    # Each daemon leads its own session, so its group holds its helpers too.
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _reap(pids_):
    for pid in pids_:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def wait_for(predicate, timeout, what, interval=0.2):
    """Poll ``predicate`` until it returns a true value; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # pylint: disable=broad-except
            last_error = exc
        time.sleep(interval)
    reason = f": {last_error}" if last_error else ""
    raise TimeoutError(f"{what} not ready after {timeout} s{reason}")


def rss_kib(pid):
    """Resident set size of ``pid`` in KiB (0 when gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
