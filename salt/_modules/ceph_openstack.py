"""
Formula-level functions for ceph_openstack: cluster facts for the mine,
pillar validation, the health of the OpenStack services the formula manages,
and the verify step of the rollout.

CLI Example:

.. code-block:: bash

    salt -G role:mon ceph_openstack.cluster_info
    salt '*' ceph_openstack.validate
    salt '*' ceph_openstack.missing_keys
    salt '*' ceph_openstack.services
    salt '*' ceph_openstack.verify
"""

import importlib.util
import logging
import os
import re
import time

import salt.utils.systemd
from salt.exceptions import CommandExecutionError


def _helper(name):
    """This project's helper module ``name``: ``utils/<name>.py`` beside this file's
    directory, synced or installed alike (``_utils`` in a checkout); see README, "Where
    the modules find their helpers"."""
    base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(base, "utils", name + ".py")
    if not os.path.exists(path):
        path = os.path.join(base, "_utils", name + ".py")
    spec = importlib.util.spec_from_file_location(f"{__name__}.{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ceph_cli = _helper("ceph_cli")
ceph_openstack_mine = _helper("ceph_openstack_mine")
ceph_openstack_pillar = _helper("ceph_openstack_pillar")
cephx = _helper("cephx")

log = logging.getLogger(__name__)

__virtualname__ = "ceph_openstack"

#: Seconds a unit's process must have stayed up (same MainPID, no restart by systemd).
SETTLE = 5

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


def __virtual__():
    return __virtualname__


def _conn(kwargs):
    return ceph_cli.connection(__salt__["config.get"], **kwargs)


def cluster_info(**connection):
    """
    The cluster's fsid and mon addresses, as clients write them in ceph.conf.

    CLI Example:

    .. code-block:: bash

        salt -G role:mon ceph_openstack.cluster_info
    """
    conn = _conn(connection)
    # Read once per run (the state that publishes the facts reads them, then mine.update
    # does); bounded in time for minions whose __context__ outlives a run.
    key = f"ceph_openstack.monmap:{ceph_cli.cache_key(conn)!r}"
    read_at, monmap = __context__.get(key, (None, None))
    if read_at is None or time.monotonic() - read_at > 60:
        monmap = ceph_cli.run(__salt__["cmd.run_all"], conn, ["mon", "dump"],
                                           context=__context__)
        __context__[key] = (time.monotonic(), monmap)
    hosts = []
    for mon in monmap.get("mons", []):
        addrvec = (mon.get("public_addrs") or {}).get("addrvec") or []
        addrs = ",".join(f"{a['type']}:{a['addr']}" for a in addrvec)
        hosts.append(f"[{addrs}]" if addrs else mon.get("addr", "").split("/")[0])
    return {"fsid": monmap["fsid"], "mon_host": " ".join(hosts)}


def validate(pillar=None):
    """
    Check the ``ceph_openstack`` pillar and return a list of problems, each
    naming its pillar key (an empty list when it is valid).

    pillar
        The ``ceph_openstack`` dict to check; the minion's own pillar by default.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack.validate
    """
    if pillar is None:
        pillar = __pillar__.get("ceph_openstack", {})
    return ceph_openstack_pillar.problems(pillar)


def _settings():
    """The formula's resolved settings (paths, roles, clients, secrets; no keys)."""
    return __salt__["slsutil.renderer"](
        "salt://ceph_openstack/settings.jinja", default_renderer="jinja|json"
    )


def missing_keys():
    """
    The keys this node's roles need that it cannot read yet, by client reference
    (``cinder``, ``cinder@dr`` on another cluster): neither in its pillar nor published
    by a mon in a mine entry this minion may read. A node added to minion-ID targets
    after the mons published has them all missing until a mon publishes again (the
    reactor ``reactor/ceph_openstack_join.sls`` runs orch.ceph_openstack_join for it).
    No key is returned.

    CLI Example:

    .. code-block:: bash

        salt cmp7 ceph_openstack.missing_keys
    """
    settings = _settings()
    roles = {"controller", "compute"} & set(settings["roles"])
    context, missing = {}, []
    for ref, client in sorted(settings["clients"].items()):
        if not roles & set(client["roles"]):
            continue
        key, _ = ceph_openstack_mine.client_key(
            __salt__["mine.get"], context, __pillar__, client["client"],
            {"mon": settings["mon_targets"][client["cluster"]]},
            None if client["cluster"] == settings["cluster"] else client["cluster"])
        if not key:
            missing.append(ref)
    return missing


def _ini(path):
    # Unmasked: rbd_secret_uuid is a name, not a secret; nothing read here is returned.
    try:
        return __salt__["openstack_ini.get"](path, unmask=True)
    except CommandExecutionError:
        return None


def _rbd_users(settings):
    """(file, pool, user, secret uuid, ceph conf) for every RBD user the local config files
    name; the conf is the one the file names for it (None: OpenStack's default)."""
    paths = settings["paths"]
    found = []
    cinder = _ini(paths["cinder_conf"]) or {}
    default = cinder.get("DEFAULT", {})
    for backend in filter(None, str(default.get("enabled_backends", "")).split(",")):
        section = cinder.get(backend.strip(), {})
        found.append((paths["cinder_conf"], section.get("rbd_pool"), section.get("rbd_user"),
                      section.get("rbd_secret_uuid"), section.get("rbd_ceph_conf")))
    if "ceph" in str(default.get("backup_driver", "")).lower():
        found.append((paths["cinder_conf"], default.get("backup_ceph_pool"),
                      default.get("backup_ceph_user"), None, default.get("backup_ceph_conf")))
    glance = _ini(paths["glance_conf"]) or {}
    for store in str(glance.get("DEFAULT", {}).get("enabled_backends", "")).split(","):
        name, _, kind = store.partition(":")
        if kind.strip() == "rbd":
            section = glance.get(name.strip(), {})
            found.append((paths["glance_conf"], section.get("rbd_store_pool"),
                          section.get("rbd_store_user"), None,
                          section.get("rbd_store_ceph_conf")))
    libvirt = (_ini(paths["nova_conf"]) or {}).get("libvirt", {})
    if libvirt.get("images_type") == "rbd":
        found.append((paths["nova_conf"], libvirt.get("images_rbd_pool"),
                      libvirt.get("rbd_user"), libvirt.get("rbd_secret_uuid"),
                      libvirt.get("images_rbd_ceph_conf")))
    return found


def _client_conn(client, kwargs):
    """The connection of a pillar client (a settings ``clients`` entry) with its own
    keyring here, to its own cluster."""
    return _conn(dict(kwargs, conf=client["conf"], client_id=client["client"],
                      keyring=client["keyring"], cluster=client["cluster"]))


def _client_of(settings, user, conf):
    """The pillar client (settings ``clients`` entry) that ``user`` is on the cluster whose
    conf is ``conf`` (None: the main cluster), or None."""
    conf = conf or settings["paths"]["ceph_conf_real"]
    for client in settings["clients"].values():
        if client.get("client") == user and client.get("conf_real") == conf:
            return client
    return None


def verify(settle=SETTLE, **kwargs):
    """
    Check this node from its own point of view, with its own keyrings: each
    RBD user that cinder.conf, glance-api.conf or nova.conf names has its
    keyring here and can list the pool the file names (on the cluster the
    file's conf names), and each libvirt secret those files name holds that
    user's key. On a compute, each other libvirt secret of the formula (a
    Cinder backend's, on any cluster) holds the key of its client, whose
    keyring here logs in. Each OpenStack service the
    formula manages here is running and stays up (``settle`` seconds, see
    ``ceph_openstack.services``) and, where it logs it, its Ceph driver started:
    one check per service (``service cinder-volume``), a problem names the
    service's log file.

    The services are left out, saying why under ``notes``, where pillar
    ``services:restart`` is false (the formula does not manage them; they may
    run elsewhere or be managed by other means) and where ``lookup:root`` is set
    (the formula's files are then not the ones the services here read, as in
    the sandbox lab).

    Returns ``{"ok": bool, "checks": {check: "ok" or the problem}}``, plus
    ``"notes": {subject: text}`` for what was not checked.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack.verify
        salt '*' ceph_openstack.verify settle=10
    """
    settings = _settings()
    checks = {}
    for path, pool, user, secret_uuid, conf in _rbd_users(settings):
        client = _client_of(settings, user, conf)
        label = f"{path}: client.{user} on pool {pool}"
        if client is None:
            checks[label] = (f"client.{user} of the cluster of {conf} is not in pillar "
                             "ceph_openstack:clients nor in ceph_openstack:clusters:<name>:"
                             "clients" if conf else
                             f"client.{user} is not in pillar ceph_openstack:clients")
            continue
        if client["cluster"] != settings["cluster"]:
            label += f" of cluster {client['cluster']}"
        keyring = client["keyring"]
        if not os.path.exists(keyring):
            checks[label] = f"keyring {keyring} is missing"
            continue
        conn = _client_conn(client, kwargs)
        try:
            ceph_cli.run(__salt__["cmd.run_all"], conn,
                                      ["ls", "--pool", pool], binary="rbd")
            checks[label] = "ok"
        except CommandExecutionError as exc:
            checks[label] = str(exc)
        if secret_uuid:
            checks[f"{path}: libvirt secret {secret_uuid}"] = _check_secret(
                secret_uuid, keyring, settings
            )
    more_checks, notes = _other_secrets(settings, checks, kwargs)
    checks.update(more_checks)
    if not checks:
        if {"controller", "compute"} & set(settings["roles"]):
            checks["config files"] = (
                "no RBD user named in cinder.conf, glance-api.conf or nova.conf"
            )
        else:
            checks["no OpenStack role here"] = "ok"
    if settings.get("services"):
        not_checked = _services_not_checked(settings)
        if not_checked:
            notes["services"] = not_checked
        else:
            for unit, health in _observe(_specs(settings), float(settle), 0).items():
                checks[f"service {unit}"] = health["problem"] or "ok"
                if health["note"]:
                    notes[f"service {unit}"] = health["note"]
    report = {"ok": all(v == "ok" for v in checks.values()), "checks": checks}
    if notes:
        report["notes"] = notes
    return report


def _other_secrets(settings, checks, kwargs):
    """On a compute, ``(checks, notes)`` of the formula's libvirt secrets nova.conf does not
    name (a Cinder backend's, of any cluster: Cinder hands Nova its rbd_secret_uuid at
    attach time): the client's keyring here logs in to its cluster, and the secret holds
    its key. A secret libvirt does not have yet (a new one in pillar, before the rollout
    defines it) is a note: what is here is checked, as for the files."""
    found, notes = {}, {}
    if "compute" not in settings["roles"]:
        return found, notes
    uri = {"uri": settings["libvirt_uri"]} if settings.get("libvirt_uri") else {}
    for uuid, ref in sorted((settings.get("secrets") or {}).items()):
        if any(label.endswith(f": libvirt secret {uuid}") for label in checks):
            continue
        client = settings["clients"].get(ref)
        if client is None:
            continue  # the validator refuses a secret of an unknown client
        label = f"libvirt secret {uuid} of client.{client['client']}"
        if client["cluster"] != settings["cluster"]:
            label += f" of cluster {client['cluster']}"
        try:
            if __salt__["virtsecret.get"](uuid, **uri) is None:
                notes[label] = "not defined in libvirt here yet (the rollout defines it)"
                continue
        except CommandExecutionError as exc:
            found[label] = str(exc)
            continue
        keyring = client["keyring"]
        if not os.path.exists(keyring):
            found[label] = f"keyring {keyring} is missing"
            continue
        conn = _client_conn(client, kwargs)
        try:
            ceph_cli.run(__salt__["cmd.run_all"], conn, ["mon", "stat"])
        except CommandExecutionError as exc:
            found[label] = f"client.{client['client']} cannot log in with {keyring}: {exc}"
            continue
        found[label] = _check_secret(uuid, keyring, settings)
    return found, notes


def _check_secret(secret_uuid, keyring, settings):
    if "compute" not in settings["roles"]:
        return "ok"  # controllers name the secret for nova; only computes hold it
    key = cephx.keyring_file_key(keyring)
    if not key:
        return f"no key in {keyring}"
    uri = {"uri": settings["libvirt_uri"]} if settings.get("libvirt_uri") else {}
    try:
        matches = __salt__["virtsecret.value_matches"](secret_uuid, key, **uri)
    except CommandExecutionError as exc:
        return str(exc)
    if matches is None:
        return "ok"  # a private secret's value cannot be read back, so not compared
    return "ok" if matches else f"libvirt secret {secret_uuid} does not hold the key in {keyring}"


# -- the OpenStack services the formula manages ---------------------------------------------
#
# A unit that crash-loops is "active" between systemd's restarts, and a service that rejects
# an option exits shortly after a restart that itself succeeded: a unit counts as running
# once the same process has been up SETTLE seconds. Where a service logs that its Ceph
# driver started, the log since the unit's current start must say so.

def _systemd_booted():
    return salt.utils.systemd.booted(__context__)


def _no_systemd(unit):
    return f"systemd is not running as PID 1 here: cannot tell whether {unit} runs"


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def unit_status(name):
    """
    What systemd says of unit ``name`` now: ``loaded`` (LoadState), ``active``
    (ActiveState), ``sub`` (SubState), ``pid`` (MainPID, 0 when none), ``restarts``
    (NRestarts: restarts by systemd since the unit was last started by hand),
    ``started_at`` (when its current process started, seconds since the epoch) and
    ``up_seconds``.

    Raises CommandExecutionError when systemd is not running as PID 1 here (no
    ``/run/systemd/system``, as in a chroot) or ``systemctl show`` fails.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack.unit_status cinder-volume
    """
    if not _systemd_booted():
        raise CommandExecutionError(_no_systemd(name))
    result = __salt__["cmd.run_all"](
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


def _read_all(specs, failed):
    """``{unit: status}`` now; a unit systemctl cannot tell of goes into ``failed``."""
    seen = {}
    for spec in specs:
        try:
            seen[spec["unit"]] = unit_status(spec["unit"])
        except CommandExecutionError as exc:
            failed[spec["unit"]] = _report(spec, "unknown", exc.strerror or str(exc))
    return seen


def _observe(specs, settle, init_timeout):
    """{unit: report} of every spec ({unit, service, log}), observed together: one wait
    for the youngest unit to have been up ``settle`` seconds, then up to
    ``init_timeout`` seconds for the Ceph driver lines still missing."""
    reports = {}
    if not _systemd_booted():
        for spec in specs:
            reports[spec["unit"]] = _report(spec, "no systemd", _no_systemd(spec["unit"]))
        return reports
    first = _read_all(specs, reports)
    young = [status["up_seconds"] for status in first.values()
             if _running(status) and status["up_seconds"] is not None
             and status["up_seconds"] < settle]
    if young:
        time.sleep(settle - min(young))
        last = _read_all([s for s in specs if s["unit"] in first], reports)
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
        now = _read_all([spec for spec, _ in pending.values()], failed)
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


def _specs(settings, names=None):
    wanted = _names(names)
    specs = []
    for service, spec in sorted((settings.get("services") or {}).items()):
        if wanted is None or service in wanted or spec["unit"] in wanted:
            specs.append({"unit": spec["unit"], "service": service, "log": spec.get("log")})
    return specs


def services(names=None, settle=SETTLE, init_timeout=0):
    """
    The health of the OpenStack services the formula manages on this node, as systemd
    and their logs tell it: cinder-volume where pillar ``cinder:backends`` has backends
    and cinder-backup where ``cinder:backup`` is set (controllers), glance-api where
    ``glance`` is set (controllers), nova-compute where ``nova`` is set (computes); unit
    names and log files from ``lookup:services`` and ``lookup:service_logs``.

    A unit is running when its process has stayed up ``settle`` seconds (same MainPID,
    no restart by systemd): a crash-looping unit is "active" between systemd's restarts.
    This waits only while a unit's process is younger than that. Where a service logs
    that its Ceph driver started (cinder-volume, cinder-backup), its log since the
    unit's current start must say so; ``init_timeout`` seconds are given to it (0: look
    once). Without systemd as PID 1 nothing can be told, and each service says so.

    names
        Only these services: formula keys (``cinder_volume``) or unit names, a list or
        a comma-separated string.

    Returns ``{unit: {"ok", "problem", "status", "active", "sub", "pid", "restarts",
    "up_seconds", "driver", "note", "log", "service", "unit"}}``; ``status`` is one of
    running, crash-looping, starting, stopped, not installed, unknown, no systemd.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack.services
        salt -G role:controller ceph_openstack.services cinder_volume settle=10
    """
    return _observe(_specs(_settings(), names), float(settle), float(init_timeout or 0))


def service_health(name, log=None, service=None, settle=SETTLE, init_timeout=0):
    """
    The health of one unit, as ``services`` reports each (see there): running once its
    process has stayed up ``settle`` seconds; for ``service`` ``cinder_volume`` or
    ``cinder_backup``, its Ceph driver's start found in ``log`` since the unit started,
    waiting up to ``init_timeout`` seconds for it.

    name
        The systemd unit, e.g. ``cinder-volume``.
    log
        Its log file, named in problems and read for the driver's start.
    service
        The formula's key of the service: cinder_volume, cinder_backup, glance_api or
        nova_compute.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack.service_health cinder-volume service=cinder_volume \
            log=/var/log/cinder/cinder-volume.log
    """
    spec = {"unit": name, "service": service, "log": log}
    return _observe([spec], float(settle), float(init_timeout or 0))[name]


def _services_not_checked(settings):
    """Why verify leaves the services alone here, or None."""
    units = ", ".join(spec["unit"] for spec in _specs(settings))
    if not settings.get("restart"):
        return (f"not checked ({units}): pillar ceph_openstack:services:restart is false, "
                "so the formula does not manage them here "
                "(salt-call ceph_openstack.services reports them)")
    if settings.get("root"):
        return (f"not checked ({units}): lookup:root is {settings['root']}, so these are "
                "not the files the services on this host read")
    return None
