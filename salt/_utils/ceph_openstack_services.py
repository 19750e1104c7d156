"""
The health of the OpenStack services the formula manages, as systemd and their logs tell
it: what ``systemctl show`` says of a unit, whether its process stays up, and whether its
log says since the unit's current start that its Ceph driver started. The execution
module's ``ceph_openstack.unit_status``, ``services``, ``service_health`` and ``verify``
answer with it; the ``ceph_openstack.service_running`` state checks a (re)start through
``service_health``.

A unit that crash-loops is "active" between systemd's restarts, and a service that rejects
an option exits shortly after a restart that itself succeeded: a unit counts as running
once the same process has been up ``settle`` seconds. Where a service logs that its Ceph
driver started, the log since the unit's current start must say so.

A helper gets no ``__salt__`` or ``__context__`` (it is no loader module): the execution
module passes ``__salt__["cmd.run_all"]`` (``run_all``) and its ``__context__``
(``context``, where Salt keeps whether systemd is PID 1).
"""

import os
import re
import time

import salt.utils.systemd
from salt.exceptions import CommandExecutionError

#: Log lines that show a service's Ceph driver initialized, by the formula's service key
#: (glance-api logs no single such line; nova-compute needs none).
INIT_LINES = {
    "cinder_volume": ("Starting volume driver RBDDriver",
                      "Driver initialization completed successfully."),
    "cinder_backup": ("Backup driver was successfully initialized.",),
}

#: Log lines that show a service's Ceph driver failed to start.
FAILED_LINES = {
    "cinder_volume": ("Failed to initialize driver.",),
    "cinder_backup": ("Failed to initialize driver.", "._setup_backup_driver' failed"),
}

#: Services some releases of which never log their INIT_LINES: cinder-backup before
#: 2023.1 (Debian 12's 21.3) logs its line from a branch that cannot run. For those, no
#: line and no failure line means "not checked", said in a note, not a failure.
SILENT_RELEASES = {"cinder_backup"}

_UNIT_PROPERTIES = ("LoadState", "ActiveState", "SubState", "MainPID", "NRestarts",
                    "ExecMainStartTimestamp", "ExecMainStartTimestampMonotonic")

#: Bytes of a log read from the unit's start on (its driver starts within them).
_LOG_LIMIT = 4 << 20

#: A log line's leading timestamp, as oslo.log writes it (local time).
_STAMP = re.compile(rb"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)(?:[.,](\d{1,6}))?")

#: systemctl's wall-clock timestamps ("Sat 2026-12-05 10:00:00 UTC"), local time.
_SHOWN_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def _no_systemd(unit):
    return f"systemd is not running as PID 1 here: cannot tell whether {unit} runs"


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def unit_status(run_all, context, name):
    """What systemd says of unit ``name`` now (``ceph_openstack.unit_status`` says what
    each key means); CommandExecutionError when systemd is not PID 1 here or
    ``systemctl show`` fails."""
    if not salt.utils.systemd.booted(context):
        raise CommandExecutionError(_no_systemd(name))
    result = run_all(
        ["systemctl", "show", "--no-pager", "-p", ",".join(_UNIT_PROPERTIES), "--", name],
        python_shell=False, ignore_retcode=True, timeout=30,
    )
    if result.get("retcode"):
        raise CommandExecutionError(
            f"systemctl show {name} failed: "
            + ((result.get("stderr") or result.get("stdout") or "").strip()
               or f"exit status {result.get('retcode')}"))
    props = {}
    for line in (result.get("stdout") or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    status = {
        "unit": name,
        "loaded": props.get("LoadState", ""),
        "active": props.get("ActiveState", ""),
        "sub": props.get("SubState", ""),
        "pid": _int(props.get("MainPID")) or 0,
        "restarts": _int(props.get("NRestarts")),
        "started_at": None,
        "up_seconds": None,
    }
    started = _int(props.get("ExecMainStartTimestampMonotonic"))
    if started and status["pid"]:
        up = max(0.0, time.monotonic() - started / 1e6)
        status["up_seconds"] = round(up, 3)
        status["started_at"] = _started_at(props.get("ExecMainStartTimestamp"), up)
    return status


def _started_at(shown, up):
    """The wall-clock time the process started, no later than it did: log lines from
    then on are its own. systemd's record (to the second) where the clock has since been
    adjusted; now minus the uptime, to the millisecond, where both agree."""
    match = _SHOWN_TIME.search(shown or "")
    derived = time.time() - up
    try:
        recorded = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
    except (AttributeError, ValueError, OverflowError):
        return round(derived - 1.0, 3)  # no record: a second's margin
    if recorded <= derived < recorded + 1.0:
        return round(derived - 0.002, 3)  # log lines are stamped to the millisecond
    return recorded


def _running(status):
    return status["active"] == "active" and status["sub"] == "running" and bool(status["pid"])


def _verdict(unit, first, last, log):
    """(status word, problem or None) of a unit seen as ``first``, then as ``last``."""
    see = f"; see {log}" if log else ""
    restarts = last["restarts"]
    if last["loaded"] == "not-found":
        return "not installed", f"{unit} is not installed (systemd has no unit {unit})"
    grew = (first["restarts"] is not None and restarts is not None
            and restarts > first["restarts"])
    moved = bool(first["pid"] and last["pid"] and first["pid"] != last["pid"])
    if grew or moved or last["sub"] == "auto-restart":
        how = (f"restarted {restarts} times" if restarts
               else f"its process changed from PID {first['pid']} to {last['pid']}")
        return "crash-looping", f"{unit} is crash-looping ({how}){see}"
    if last["active"] == "activating":
        return "starting", f"{unit} is still starting ({last['active']}/{last['sub']}){see}"
    if not _running(last):
        after = f" after systemd restarted it {restarts} times" if restarts else ""
        return "stopped", (f"{unit} is not running ({last['active'] or 'unknown'}/"
                           f"{last['sub'] or 'unknown'}){after}{see}")
    return "running", None


def _stamp(line):
    match = _STAMP.match(line)
    if not match:
        return None
    try:
        when = time.mktime(time.strptime(match.group(1).decode().replace("T", " "),
                                         "%Y-%m-%d %H:%M:%S"))
    except (ValueError, OverflowError):
        return None
    fraction = match.group(2)
    return when + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def _next_stamp(log, offset, size):
    """(offset, timestamp) of the first timestamped line starting at or after ``offset``;
    (end, None) when there is none."""
    if offset > 0:
        log.seek(offset - 1)
        log.readline()  # to the start of the next line (stays put at a line's start)
    else:
        log.seek(0)
    pos = log.tell()
    for _ in range(500):  # a traceback's lines carry no timestamp
        line = log.readline()
        if not line:
            return size, None
        when = _stamp(line)
        if when is not None:
            return pos, when
        pos += len(line)
    return pos, None


def _offset(log, size, since):
    """Offset of the first line logged at or after ``since`` (a binary search by time)."""
    low, high = 0, size
    while high - low > 65536:
        middle = (low + high) // 2
        when = _next_stamp(log, middle, size)[1]
        if when is not None and when < since:
            low = middle
        else:
            high = middle
    pos, when = _next_stamp(log, low, size)
    while when is not None and when < since:
        log.seek(pos)
        log.readline()
        pos, when = _next_stamp(log, log.tell(), size)
    return pos


def _log_since(path, since):
    """The text ``path`` logged since ``since`` (the first _LOG_LIMIT bytes of it), reading
    ``<path>.1`` too when the log was rotated after that; None when the log no longer goes
    back that far (rotated more than once, or compressed at once)."""
    with open(path, "rb") as current:
        size = os.fstat(current.fileno()).st_size
        first = _next_stamp(current, 0, size)[1]
        if first is not None and first <= since:
            current.seek(_offset(current, size, since))
            return current.read(_LOG_LIMIT).decode("utf-8", "replace")
        older = next((p for p in (path + ".1", path + ".1.gz") if os.path.exists(p)), None)
        if older is None or os.path.getmtime(older) < since:
            current.seek(0)  # the file begins after the start: nothing rotated since
            return current.read(_LOG_LIMIT).decode("utf-8", "replace")
        if older.endswith(".gz"):
            return None
        with open(older, "rb") as old:
            old_size = os.fstat(old.fileno()).st_size
            old_first = _next_stamp(old, 0, old_size)[1]
            if old_first is None or old_first > since:
                return None
            old.seek(_offset(old, old_size, since))
            data = old.read(_LOG_LIMIT)
        current.seek(0)
        data += current.read(max(0, _LOG_LIMIT - len(data)))
        return data.decode("utf-8", "replace")


def _when(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _driver(unit, service, log, status):
    """("initialized", None), ("not initialized" or "failed", problem) or ("not checked",
    why) for a running unit whose service logs its Ceph driver's start; (None, None) for
    others."""
    lines = INIT_LINES.get(service)
    if not lines or not log:
        return None, None
    if status.get("started_at") is None:
        return "not checked", (f"the Ceph driver's start of {unit} was not checked: systemd "
                               "gives no start time for its process")
    try:
        text = _log_since(log, status["started_at"])
    except FileNotFoundError:
        return "not checked", (f"the Ceph driver's start of {unit} was not checked: no {log} "
                               f"(pillar ceph_openstack:lookup:service_logs:{service})")
    except OSError as exc:
        return "not checked", (f"the Ceph driver's start of {unit} was not checked: "
                               f"cannot read {log}: {exc.strerror or exc}")
    if text is None:
        return "not checked", (f"the Ceph driver's start of {unit} was not checked: {log} "
                               f"was rotated since {unit} started at "
                               f"{_when(status['started_at'])}")
    failed = [line for line in FAILED_LINES.get(service, ()) if line in text]
    if failed:
        return "failed", (f"{unit}'s Ceph driver failed to start: \"{failed[0]}\" in {log} "
                          f"since {unit} started at {_when(status['started_at'])}; restart "
                          "it once the cause is fixed")
    missing = [line for line in lines if line not in text]
    if not missing:
        return "initialized", None
    if service in SILENT_RELEASES:
        return "not checked", (f"{unit} logged neither \"{missing[0]}\" (some releases never "
                               f"do) nor a driver failure in {log} since it started")
    return "not initialized", (
        f"{unit}'s Ceph driver did not start: no \"{missing[0]}\" in {log} since {unit} "
        f"started at {_when(status['started_at'])} (up {status['up_seconds']:.0f} s); "
        "restart it once the cause is fixed")


def _report(spec, status_word, problem, status=None):
    status = status or {}
    return {
        "unit": spec["unit"], "service": spec.get("service"), "log": spec.get("log"),
        "status": status_word, "active": status.get("active"), "sub": status.get("sub"),
        "pid": status.get("pid"), "restarts": status.get("restarts"),
        "up_seconds": status.get("up_seconds"), "driver": None, "note": None,
        "problem": problem, "ok": problem is None,
    }


def _read_all(run_all, context, specs, failed):
    """``{unit: status}`` now; a unit systemctl cannot tell of goes into ``failed``."""
    seen = {}
    for spec in specs:
        try:
            seen[spec["unit"]] = unit_status(run_all, context, spec["unit"])
        except CommandExecutionError as exc:
            failed[spec["unit"]] = _report(spec, "unknown", exc.strerror or str(exc))
    return seen


def observe(run_all, context, specs, settle, init_timeout):
    """{unit: report} of every spec ({unit, service, log}), observed together: one wait
    for the youngest unit to have been up ``settle`` seconds, then up to
    ``init_timeout`` seconds for the Ceph driver lines still missing. A report's keys are
    those ``ceph_openstack.services`` lists."""
    reports = {}
    if not salt.utils.systemd.booted(context):
        for spec in specs:
            reports[spec["unit"]] = _report(spec, "no systemd", _no_systemd(spec["unit"]))
        return reports
    first = _read_all(run_all, context, specs, reports)
    young = [status["up_seconds"] for status in first.values()
             if _running(status) and status["up_seconds"] is not None
             and status["up_seconds"] < settle]
    if young:
        time.sleep(settle - min(young))
        last = _read_all(run_all, context, [s for s in specs if s["unit"] in first],
                         reports)
    else:
        last = first
    pending = {}
    for spec in specs:
        unit = spec["unit"]
        if unit in reports or unit not in last:
            continue
        word, problem = _verdict(unit, first[unit], last[unit], spec.get("log"))
        reports[unit] = _report(spec, word, problem, last[unit])
        if problem is None and INIT_LINES.get(spec.get("service")) and spec.get("log"):
            pending[unit] = (spec, last[unit])
    deadline = time.monotonic() + max(0, init_timeout or 0)
    while pending:
        for unit, (spec, status) in list(pending.items()):
            word, detail = _driver(unit, spec.get("service"), spec.get("log"), status)
            if word == "not initialized" and time.monotonic() < deadline:
                continue
            reports[unit]["driver"] = word
            if word in ("not initialized", "failed"):
                reports[unit].update(problem=detail, ok=False)
            else:
                reports[unit]["note"] = detail
            del pending[unit]
        if not pending:
            break
        time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))
        failed = {}
        now = _read_all(run_all, context, [spec for spec, _ in pending.values()], failed)
        reports.update(failed)
        for unit, (spec, status) in list(pending.items()):
            if unit not in now:
                del pending[unit]  # systemctl failed: reported as unknown
                continue
            word, problem = _verdict(unit, status, now[unit], spec.get("log"))
            if problem:
                reports[unit] = _report(spec, word, problem, now[unit])
                del pending[unit]
    return reports


def _names(names):
    if names is None:
        return None
    if isinstance(names, str):
        names = names.split(",")
    return {str(name).strip() for name in names if str(name).strip()}


def service_specs(settings, names=None):
    """The specs (``{unit, service, log}``) of the services the formula manages here (the
    ``services`` of the formula's settings), or of those in ``names`` only: formula keys
    (``cinder_volume``) or unit names, a list or a comma-separated string."""
    wanted = _names(names)
    found = []
    for service, spec in sorted((settings.get("services") or {}).items()):
        if wanted is None or service in wanted or spec["unit"] in wanted:
            found.append({"unit": spec["unit"], "service": service, "log": spec.get("log")})
    return found

