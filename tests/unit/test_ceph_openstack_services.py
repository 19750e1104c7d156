"""
The OpenStack services the formula manages: their health as systemd and their logs tell
it (ceph_openstack.services, verify) and the restart that checks the unit stayed up
(ceph_openstack.service_running and its mod_watch).

Only ``cmd.run_all`` answers for systemd (``systemctl show``, as Debian 12's systemd 252
prints it); Salt's own ``service.*`` states and functions and ``slsutil.renderer`` are
loader dunders. Log files are real files in a temporary directory.
"""

import gzip
import os
import time

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.modules import load

execmod = load("salt/_modules/ceph_openstack.py", "ceph_openstack_exec_services_under_test")
statemod = load("salt/_states/ceph_openstack.py", "ceph_openstack_state_services_under_test")
ini_exec = load("salt/_modules/openstack_ini.py", "ceph_openstack_services_ini_exec")

SETTLE = 0.3  # seconds: short, so the tests that wait stay fast
CINDER_LOG = "/var/log/cinder/cinder-volume.log"
BOOTED = "salt.utils.systemd.booted"


class Unit:
    """What systemd shows of one unit: a list of successive states, one per
    ``systemctl show`` (the last one repeats)."""

    def __init__(self, *states):
        self.states = list(states)
        self.shown = 0

    def next(self):
        state = self.states[min(self.shown, len(self.states) - 1)]
        self.shown += 1
        return state


def proc(pid, up, restarts=0, active="active", sub="running", clock_drift=0.0):
    """A unit whose current process ``pid`` started ``up`` seconds ago (by the monotonic
    clock; the wall clock has moved ``clock_drift`` seconds more since)."""
    return {"LoadState": "loaded", "ActiveState": active, "SubState": sub,
            "MainPID": pid, "NRestarts": restarts,
            "ExecMainStartTimestamp": time.strftime(
                "%a %Y-%m-%d %H:%M:%S %Z", time.localtime(time.time() - up - clock_drift)),
            "ExecMainStartTimestampMonotonic": int((time.monotonic() - up) * 1e6)}


def down(active="inactive", sub="dead", restarts=0):
    return {"LoadState": "loaded", "ActiveState": active, "SubState": sub, "MainPID": 0,
            "NRestarts": restarts, "ExecMainStartTimestamp": "",
            "ExecMainStartTimestampMonotonic": 0}


NOT_FOUND = dict(down(), LoadState="not-found")


class Systemd:
    """``cmd.run_all`` for ``systemctl show -p ... -- UNIT``; ``hooks[n]`` runs before the
    n-th call answers (1-based)."""

    def __init__(self):
        self.units = {}
        self.calls = []
        self.hooks = {}

    def __call__(self, cmd, **kwargs):
        self.calls.append((list(cmd), kwargs))
        hook = self.hooks.get(len(self.calls))
        if hook:
            hook()
        assert cmd[:2] == ["systemctl", "show"], cmd
        assert kwargs.get("python_shell") is False and kwargs.get("timeout"), kwargs
        unit = cmd[-1]
        wanted = cmd[cmd.index("-p") + 1].split(",")
        if unit not in self.units:
            state = NOT_FOUND
        else:
            state = self.units[unit].next()
        stdout = "\n".join(f"{key}={state[key]}" for key in wanted)
        return {"retcode": 0, "stdout": stdout, "stderr": "", "pid": 4242}


def stamp(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) + \
        ".%03d" % int((epoch % 1) * 1000)


def log_line(epoch, message, pid=4711):
    return f"{stamp(epoch)} {pid} INFO cinder.volume.manager [-] {message}\n"


CINDER_STARTED = [
    "Starting volume driver RBDDriver (1.2.0)",
    "Driver initialization completed successfully.",
]


@pytest.fixture
def systemd():
    return Systemd()


@pytest.fixture
def settings(tmp_path):
    """What settings.jinja renders for a controller with Cinder (volume and backup) and
    Glance; the config files do not exist (no RBD user), the logs are under tmp_path."""
    logs = tmp_path / "log"
    logs.mkdir()
    return {
        "cluster": "ceph", "root": "", "roles": ["controller"], "clients": {},
        "secrets": {}, "libvirt_uri": None, "restart": True,
        "paths": {"ceph_conf": str(tmp_path / "ceph.conf"),
                  "cinder_conf": str(tmp_path / "cinder.conf"),
                  "glance_conf": str(tmp_path / "glance-api.conf"),
                  "nova_conf": str(tmp_path / "nova.conf")},
        "services": {
            "cinder_volume": {"unit": "cinder-volume", "log": str(logs / "cinder-volume.log")},
            "cinder_backup": {"unit": "cinder-backup", "log": str(logs / "cinder-backup.log")},
            "glance_api": {"unit": "glance-api", "log": str(logs / "glance-api.log")},
        },
    }


@pytest.fixture
def context():
    return {BOOTED: True}


@pytest.fixture
def state_calls():
    return []


@pytest.fixture
def opts():
    return {"test": False}


@pytest.fixture
def configure_loader_modules(systemd, settings, context, state_calls, opts):
    def renderer(path, default_renderer=None, **kwargs):
        assert path == "salt://ceph_openstack/settings.jinja"
        return settings

    def running(name, **kwargs):
        state_calls.append(("service.running", name, kwargs))
        return {"name": name, "result": True, "changes": {},
                "comment": f"The service {name} is already running"}

    def mod_watch(name, sfun=None, **kwargs):
        state_calls.append(("service.mod_watch", name, sfun, kwargs))
        if opts["test"]:
            return {"name": name, "result": None, "changes": {},
                    "comment": "Service is set to be restarted"}
        return {"name": name, "result": True, "changes": {name: True},
                "comment": "Service restarted"}

    return {
        execmod: {
            "__salt__": {"cmd.run_all": systemd, "slsutil.renderer": renderer,
                         "openstack_ini.get": ini_exec.get},
            "__context__": context,
            "__opts__": opts,
        },
        ini_exec: {
            "__opts__": opts,
            "__context__": {},
        },
        statemod: {
            "__salt__": {"service.offline": lambda: False,
                         "ceph_openstack.service_health": execmod.service_health,
                         "ceph_openstack.verify": execmod.verify},
            "__states__": {"service.running": running, "service.mod_watch": mod_watch},
            "__opts__": opts,
            "__context__": {},
        },
    }


def write_log(path, lines):
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(lines)


# -- execution module: what systemd says ---------------------------------------------------


def test_every_public_function_has_a_cli_example():
    for name in ("unit_status", "services", "service_health"):
        assert f"salt '*' ceph_openstack.{name}" in getattr(execmod, name).__doc__, name
    assert "ceph_openstack.verify" in execmod.verify.__doc__
    for name in ("service_running", "mod_watch"):
        assert "ceph_openstack.service_running" in getattr(statemod, name).__doc__, name


def test_unit_status_reads_systemctl_show(systemd):
    systemd.units["cinder-volume"] = Unit(proc(1234, up=120, restarts=2))
    status = execmod.unit_status("cinder-volume")
    assert (status["loaded"], status["active"], status["sub"], status["pid"],
            status["restarts"]) == ("loaded", "active", "running", 1234, 2)
    assert 119 < status["up_seconds"] < 125
    assert abs(status["started_at"] - (time.time() - 120)) < 5
    cmd, kwargs = systemd.calls[0]
    assert cmd[:3] == ["systemctl", "show", "--no-pager"] and cmd[-2:] == ["--", "cinder-volume"]
    assert cmd[cmd.index("-p") + 1] == (
        "LoadState,ActiveState,SubState,MainPID,NRestarts,ExecMainStartTimestamp,"
        "ExecMainStartTimestampMonotonic")


def test_the_start_time_is_systemds_record_where_the_clock_moved_since(systemd):
    systemd.units["cinder-volume"] = Unit(proc(1, up=3600, clock_drift=30))
    started_at = execmod.unit_status("cinder-volume")["started_at"]
    assert started_at == int(started_at)  # the record, to the second
    assert abs(started_at - (time.time() - 3630)) <= 1


def test_unit_status_without_systemd_as_pid_1_says_so(systemd, context):
    context[BOOTED] = False
    with pytest.raises(CommandExecutionError, match="systemd is not running as PID 1"):
        execmod.unit_status("cinder-volume")
    assert systemd.calls == []


def test_a_unit_up_for_long_is_running_without_waiting(systemd):
    systemd.units["glance-api"] = Unit(proc(300, up=3600))
    began = time.monotonic()
    report = execmod.service_health("glance-api", log="/var/log/glance/glance-api.log",
                                    service="glance_api", settle=30)
    assert time.monotonic() - began < 5  # no 30 s wait for a process an hour old
    assert report["ok"] and report["status"] == "running" and report["problem"] is None
    assert len(systemd.calls) == 1


def test_a_crash_looping_unit_is_active_yet_reported(systemd):
    # Between systemd's restarts the unit is "active": the process changes all the same.
    systemd.units["cinder-volume"] = Unit(proc(500, up=0.05, restarts=3),
                                          proc(517, up=0.01, restarts=4))
    report = execmod.service_health("cinder-volume", log=CINDER_LOG, settle=SETTLE)
    assert report["status"] == "crash-looping" and not report["ok"]
    assert report["problem"] == (
        f"cinder-volume is crash-looping (restarted 4 times); see {CINDER_LOG}")
    assert len(systemd.calls) == 2  # seen again once the youngest had settle seconds


def test_a_unit_between_two_restarts_is_crash_looping_at_once(systemd):
    systemd.units["cinder-volume"] = Unit(down("activating", "auto-restart", restarts=7))
    report = execmod.service_health("cinder-volume", log=CINDER_LOG, settle=SETTLE)
    assert report["problem"] == (
        f"cinder-volume is crash-looping (restarted 7 times); see {CINDER_LOG}")


def test_a_service_that_exits_after_its_start_is_not_running(systemd):
    systemd.units["glance-api"] = Unit(proc(900, up=0.1), down("failed", "failed"))
    report = execmod.service_health("glance-api", log="/var/log/glance/glance-api.log",
                                    settle=SETTLE)
    assert report["status"] == "stopped"
    assert report["problem"] == ("glance-api is not running (failed/failed); "
                                 "see /var/log/glance/glance-api.log")


def test_a_unit_that_is_not_installed(systemd):
    report = execmod.service_health("cinder-backup", settle=SETTLE)
    assert report["status"] == "not installed"
    assert report["problem"] == "cinder-backup is not installed (systemd has no unit cinder-backup)"


def test_nova_compute_waiting_for_its_conductor_is_still_starting(systemd):
    systemd.units["nova-compute"] = Unit(proc(77, up=40, active="activating", sub="start"))
    report = execmod.service_health("nova-compute", log="/var/log/nova/nova-compute.log",
                                    settle=SETTLE)
    assert report["problem"] == ("nova-compute is still starting (activating/start); "
                                 "see /var/log/nova/nova-compute.log")


def test_without_systemd_nothing_is_claimed(systemd, context):
    context[BOOTED] = False
    report = execmod.service_health("cinder-volume", log=CINDER_LOG, settle=SETTLE)
    assert report["status"] == "no systemd" and not report["ok"]
    assert report["problem"] == ("systemd is not running as PID 1 here: "
                                 "cannot tell whether cinder-volume runs")
    assert systemd.calls == []


def test_systemctl_failing_is_reported_not_raised(systemd):
    def failing(cmd, **kwargs):
        return {"retcode": 1, "stdout": "", "stderr": "Failed to connect to bus: No medium found"}

    execmod.__salt__["cmd.run_all"] = failing
    report = execmod.service_health("cinder-volume", settle=SETTLE)
    assert report["status"] == "unknown"
    assert report["problem"] == (
        "systemctl show cinder-volume failed: Failed to connect to bus: No medium found")


# -- execution module: the Ceph driver's start in the log ----------------------------------


def test_the_driver_lines_since_the_start_count(systemd, tmp_path):
    log = tmp_path / "cinder-volume.log"
    started = time.time() - 60
    write_log(log, [log_line(started - 3600, "Caught SIGTERM, stopping children"),
                    log_line(started + 1, CINDER_STARTED[0]),
                    "Traceback-less continuation line\n",
                    log_line(started + 4, CINDER_STARTED[1])])
    systemd.units["cinder-volume"] = Unit(proc(10, up=60))
    report = execmod.service_health("cinder-volume", log=str(log), service="cinder_volume",
                                    settle=SETTLE)
    assert report["ok"] and report["driver"] == "initialized", report


def test_driver_lines_of_an_earlier_run_do_not_count(systemd, tmp_path):
    # A big log: lines of the run before (with the driver's start), then this run's start
    # without it. The search by time must not take the old lines.
    log = tmp_path / "cinder-volume.log"
    started = time.time() - 60
    old = started - 7200
    lines = [log_line(old + i * 0.5, f"periodic task {i} " + "x" * 120) for i in range(4000)]
    lines[2000] = log_line(old + 1000, CINDER_STARTED[0])
    lines[2001] = log_line(old + 1000.5, CINDER_STARTED[1])
    lines += [log_line(started + 1, CINDER_STARTED[0]),
              log_line(started + 2, "ERROR cinder.volume.manager Failed to initialize driver.")]
    write_log(log, lines)
    assert os.path.getsize(log) > 500_000
    systemd.units["cinder-volume"] = Unit(proc(10, up=60))
    report = execmod.service_health("cinder-volume", log=str(log), service="cinder_volume",
                                    settle=SETTLE)
    # This run's failure line counts, the old run's success line does not.
    assert report["driver"] == "failed" and not report["ok"]
    assert report["problem"].startswith(
        f"cinder-volume's Ceph driver failed to start: \"Failed to initialize driver.\" in "
        f"{log} since cinder-volume started at ")
    assert "restart it once the cause is fixed" in report["problem"]


def test_cinder_backup_has_its_own_line(systemd, tmp_path):
    log = tmp_path / "cinder-backup.log"
    started = time.time() - 30
    write_log(log, [log_line(started + 2, "Backup driver was successfully initialized.")])
    systemd.units["cinder-backup"] = Unit(proc(11, up=30))
    report = execmod.service_health("cinder-backup", log=str(log), service="cinder_backup",
                                    settle=SETTLE)
    assert report["driver"] == "initialized" and report["ok"]
    # Debian 12's cinder-backup (21.3) never logs that line: no line and no failure is a
    # note ("not checked"), not a failure.
    write_log(log, [log_line(started + 2, CINDER_STARTED[1])])  # cinder-volume's, not its
    systemd.units["cinder-backup"] = Unit(proc(11, up=30))
    report = execmod.service_health("cinder-backup", log=str(log), service="cinder_backup",
                                    settle=SETTLE, init_timeout=30)
    assert report["ok"] and report["driver"] == "not checked"
    assert "some releases never do" in report["note"]
    # Its driver failing (oslo.service's looping call) fails it.
    write_log(log, [log_line(started + 2, "Fixed interval looping call 'cinder.backup."
                                          "manager.BackupManager._setup_backup_driver' failed")])
    systemd.units["cinder-backup"] = Unit(proc(11, up=30))
    report = execmod.service_health("cinder-backup", log=str(log), service="cinder_backup",
                                    settle=SETTLE, init_timeout=30)
    assert not report["ok"] and report["driver"] == "failed"
    assert "cinder-backup's Ceph driver failed to start" in report["problem"]


def test_a_log_rotated_since_the_start_is_read_with_its_predecessor(systemd, tmp_path):
    log = tmp_path / "cinder-volume.log"
    started = time.time() - 86400
    write_log(str(log) + ".1", [log_line(started - 10, "old run"),
                                log_line(started + 1, CINDER_STARTED[0]),
                                log_line(started + 3, CINDER_STARTED[1]),
                                log_line(started + 40000, "periodic")])
    write_log(log, [log_line(started + 50000, "periodic")])
    systemd.units["cinder-volume"] = Unit(proc(10, up=86400))
    report = execmod.service_health("cinder-volume", log=str(log), service="cinder_volume",
                                    settle=SETTLE)
    assert report["driver"] == "initialized" and report["ok"]


def test_a_log_compressed_since_the_start_is_not_checked_and_says_so(systemd, tmp_path):
    log = tmp_path / "cinder-volume.log"
    started = time.time() - 3 * 86400
    with gzip.open(str(log) + ".1.gz", "wt") as old:
        old.write(log_line(started + 1, CINDER_STARTED[0]))
    write_log(log, [log_line(started + 2 * 86400, "periodic")])
    systemd.units["cinder-volume"] = Unit(proc(10, up=3 * 86400))
    report = execmod.service_health("cinder-volume", log=str(log), service="cinder_volume",
                                    settle=SETTLE)
    assert report["ok"] and report["driver"] == "not checked"
    assert "was rotated since cinder-volume started" in report["note"]


def test_a_log_begun_after_the_start_holds_the_whole_run(systemd, tmp_path):
    # A fresh install: the service created its log when it started (nothing rotated).
    log = tmp_path / "cinder-volume.log"
    started = time.time() - 20
    write_log(log, [log_line(started + 2, line) for line in CINDER_STARTED])
    systemd.units["cinder-volume"] = Unit(proc(10, up=20))
    report = execmod.service_health("cinder-volume", log=str(log), service="cinder_volume",
                                    settle=SETTLE)
    assert report["driver"] == "initialized" and report["ok"]


def test_a_missing_log_is_a_note_naming_the_lookup_key(systemd, tmp_path):
    systemd.units["cinder-volume"] = Unit(proc(10, up=20))
    log = str(tmp_path / "nowhere.log")
    report = execmod.service_health("cinder-volume", log=log, service="cinder_volume",
                                    settle=SETTLE)
    assert report["ok"] and report["driver"] == "not checked"
    assert report["note"] == (f"the Ceph driver's start of cinder-volume was not checked: no "
                              f"{log} (pillar ceph_openstack:lookup:service_logs:cinder_volume)")


def test_the_driver_gets_init_timeout_seconds_and_the_unit_must_stay_up(systemd, tmp_path):
    log = tmp_path / "cinder-volume.log"
    started = time.time() - 0.1
    write_log(log, [log_line(started, "cinder-volume starting")])
    systemd.units["cinder-volume"] = Unit(proc(10, up=0.1))

    def driver_started():
        with open(log, "a", encoding="utf-8") as out:
            out.writelines(log_line(time.time(), line) for line in CINDER_STARTED)

    systemd.hooks[3] = driver_started  # while the check waits
    report = execmod.service_health("cinder-volume", log=str(log), service="cinder_volume",
                                    settle=SETTLE, init_timeout=10)
    assert report["ok"] and report["driver"] == "initialized", report
    # ... and a unit that dies meanwhile ends the wait as crash-looping.
    write_log(log, [])
    systemd.units["cinder-volume"] = Unit(proc(20, up=0.1), proc(20, up=SETTLE + 0.1),
                                          proc(21, up=0.0, restarts=1))
    systemd.hooks = {}
    began = time.monotonic()
    report = execmod.service_health("cinder-volume", log=str(log), service="cinder_volume",
                                    settle=SETTLE, init_timeout=10)
    assert time.monotonic() - began < 5
    assert report["status"] == "crash-looping" and not report["ok"]


# -- execution module: services() and verify ------------------------------------------------


def test_services_reports_the_nodes_services_after_one_wait(systemd, settings):
    systemd.units["cinder-volume"] = Unit(proc(1, up=0.05, restarts=1), proc(2, up=0.01,
                                                                             restarts=2))
    systemd.units["cinder-backup"] = Unit(proc(3, up=0.1))
    systemd.units["glance-api"] = Unit(proc(4, up=0.1))
    began = time.monotonic()
    reports = execmod.services(settle=SETTLE)
    assert time.monotonic() - began < SETTLE + 1.5  # one wait for all of them
    assert sorted(reports) == ["cinder-backup", "cinder-volume", "glance-api"]
    log = settings["services"]["cinder_volume"]["log"]
    assert reports["cinder-volume"]["problem"] == (
        f"cinder-volume is crash-looping (restarted 2 times); see {log}")
    assert reports["glance-api"]["ok"]
    # cinder-backup stays up but has no log: its driver is not checked, and that is said
    assert reports["cinder-backup"]["ok"] and reports["cinder-backup"]["driver"] == "not checked"
    assert list(execmod.services(names="glance_api", settle=SETTLE)) == ["glance-api"]
    assert list(execmod.services(names=["cinder-backup"], settle=SETTLE)) == ["cinder-backup"]


def test_verify_has_one_check_per_service_naming_its_log(systemd, settings):
    log = settings["services"]["cinder_volume"]["log"]
    write_log(log, [log_line(time.time() - 50, line) for line in CINDER_STARTED])
    write_log(settings["services"]["cinder_backup"]["log"],
              [log_line(time.time() - 50, "Backup driver was successfully initialized.")])
    systemd.units["cinder-volume"] = Unit(proc(1, up=0.05, restarts=3),
                                          proc(2, up=0.01, restarts=4))
    systemd.units["cinder-backup"] = Unit(proc(3, up=60))
    systemd.units["glance-api"] = Unit(proc(4, up=60))
    report = execmod.verify(settle=SETTLE)
    assert report["ok"] is False
    assert report["checks"]["service cinder-volume"] == (
        f"cinder-volume is crash-looping (restarted 4 times); see {log}")
    assert report["checks"]["service cinder-backup"] == "ok"
    assert report["checks"]["service glance-api"] == "ok"
    # the existing check is still there: these config files name no RBD user
    assert "config files" in report["checks"]


def test_verify_without_systemd_does_not_claim_the_services_run(systemd, context, settings):
    context[BOOTED] = False
    report = execmod.verify(settle=SETTLE)
    assert report["checks"]["service glance-api"] == (
        "systemd is not running as PID 1 here: cannot tell whether glance-api runs")
    assert report["ok"] is False


@pytest.mark.parametrize("change, says", [
    ({"restart": False}, "pillar ceph_openstack:services:restart is false"),
    ({"root": "/tmp/coslab/roots/ctl1"}, "lookup:root is /tmp/coslab/roots/ctl1"),
])
def test_verify_leaves_services_the_formula_does_not_manage(systemd, settings, change, says):
    settings.update(change)
    report = execmod.verify(settle=SETTLE)
    assert not any(check.startswith("service ") for check in report["checks"])
    assert systemd.calls == []
    assert says in report["notes"]["services"]
    assert "cinder-backup, cinder-volume, glance-api" in report["notes"]["services"]


def test_verify_on_a_node_without_services_is_as_before(systemd, settings):
    settings.update(services={}, roles=["mon"])
    assert execmod.verify(settle=SETTLE) == {
        "ok": True, "checks": {"no OpenStack role here": "ok"}}
    assert systemd.calls == []


# -- state: service_running and its mod_watch -----------------------------------------------


def run(name="cinder-volume", **kwargs):
    kwargs.setdefault("log", CINDER_LOG)
    kwargs.setdefault("settle", SETTLE)
    return statemod.service_running(name, **kwargs)


def watch(name="cinder-volume", **kwargs):
    kwargs.setdefault("log", CINDER_LOG)
    kwargs.setdefault("settle", SETTLE)
    return statemod.mod_watch(name, sfun="service_running", **kwargs)


def test_already_running_but_crash_looping_fails(systemd, state_calls):
    systemd.units["cinder-volume"] = Unit(proc(500, up=0.05, restarts=3),
                                          proc(517, up=0.01, restarts=4))
    ret = run(enable=True)
    assert ret["result"] is False
    assert ret["comment"] == (
        "The service cinder-volume is already running; cinder-volume is crash-looping "
        f"(restarted 4 times); see {CINDER_LOG}")
    assert state_calls == [("service.running", "cinder-volume", {"enable": True})]


WATCHING = {"watch": [{"openstack_ini": "ceph_openstack-cinder-conf"}]}
CINDER_CONF_TAG = ("openstack_ini_|-ceph_openstack-cinder-conf_|-/etc/cinder/cinder.conf"
                   "_|-options_present")


@pytest.mark.parametrize("changes", [{"DEFAULT/enabled_backends": {}}, {}])
def test_a_unit_whose_watched_file_changed_is_left_to_the_restart(systemd, changes,
                                                                  monkeypatch):
    # The first rollout on a real node: cinder-volume runs with the stock (LVM) config, so
    # it has no Ceph driver line and may be crash-looping; cinder.conf changed, so Salt
    # restarts it next (mod_watch), which checks it. Failing here would stop that restart.
    systemd.units["cinder-volume"] = Unit(proc(500, up=0.05, restarts=3),
                                          proc(517, up=0.01, restarts=4))
    monkeypatch.setattr(statemod, "__low__", WATCHING, raising=False)
    monkeypatch.setattr(statemod, "__running__", {CINDER_CONF_TAG: {
        "__id__": "ceph_openstack-cinder-conf", "result": True, "changes": changes}},
        raising=False)
    ret = run()
    if changes:
        assert ret["result"] is True and systemd.calls == []
    else:  # nothing changed: no restart follows, so the crash loop fails the state
        assert ret["result"] is False and "crash-looping" in ret["comment"]


def test_already_running_and_up_is_fine_at_once(systemd):
    systemd.units["cinder-volume"] = Unit(proc(500, up=7200))
    ret = run(settle=30)
    assert ret["result"] is True and ret["changes"] == {}
    assert ret["comment"].startswith("The service cinder-volume is already running; "
                                     "cinder-volume is up (PID 500, ")
    assert len(systemd.calls) == 1


def test_a_restart_whose_service_exits_fails_naming_its_log(systemd, state_calls):
    systemd.units["cinder-volume"] = Unit(proc(600, up=0.0), proc(612, up=0.0, restarts=1))
    ret = watch()
    assert ret["result"] is False
    assert ret["changes"] == {"cinder-volume": True}  # it was restarted all the same
    assert ret["comment"] == ("Service restarted; cinder-volume is crash-looping "
                              f"(restarted 1 times); see {CINDER_LOG}")
    assert state_calls[0][:3] == ("service.mod_watch", "cinder-volume", "running")


BACKUP_ONLY = ["DEFAULT/backup_*", "DEFAULT/restore_*"]


@pytest.mark.parametrize("changed_keys, restarted", [
    (["DEFAULT/backup_ceph_pool"], False),              # cinder-backup's option alone
    (["DEFAULT/backup_ceph_pool", "ceph/rbd_max_clone_depth"], True),
    (["mode"], True),                                     # the file itself changed
])
def test_only_what_the_service_reads_restarts_it(systemd, state_calls, monkeypatch,
                                                  changed_keys, restarted):
    systemd.units["cinder-volume"] = Unit(proc(700, up=3600))
    monkeypatch.setattr(statemod, "__low__", WATCHING, raising=False)
    monkeypatch.setattr(statemod, "__running__", {CINDER_CONF_TAG: {
        "__id__": "ceph_openstack-cinder-conf", "result": True,
        "changes": {key: {} for key in changed_keys}}}, raising=False)
    ret = watch(ignore=BACKUP_ONLY, settle=0)
    calls = [call for call in state_calls if call[0] == "service.mod_watch"]
    assert bool(calls) is restarted
    if not restarted:
        assert ret["result"] is True and ret["changes"] == {}
        assert ret["comment"].startswith("cinder-volume not restarted: the options that "
                                         "changed are not cinder-volume's")


def test_a_restart_is_due_when_the_watched_changes_cannot_be_seen(systemd, state_calls):
    systemd.units["cinder-volume"] = Unit(proc(700, up=3600))
    watch(ignore=BACKUP_ONLY, settle=0)
    assert [call[0] for call in state_calls] == ["service.mod_watch"]


def test_a_restart_that_stays_down_fails(systemd):
    systemd.units["glance-api"] = Unit(proc(600, up=0.0), down())
    ret = watch("glance-api", log="/var/log/glance/glance-api.log")
    assert ret["result"] is False
    assert ret["comment"] == ("Service restarted; glance-api is not running (inactive/dead); "
                              "see /var/log/glance/glance-api.log")


def test_a_restart_that_stays_up_with_its_driver_started(systemd, tmp_path):
    log = tmp_path / "cinder-volume.log"
    write_log(log, [])
    systemd.units["cinder-volume"] = Unit(proc(700, up=0.0))

    def driver_started():
        with open(log, "a", encoding="utf-8") as out:
            out.writelines(log_line(time.time(), line) for line in CINDER_STARTED)

    systemd.hooks[3] = driver_started
    ret = watch(log=str(log), service="cinder_volume", init_timeout=10)
    assert ret["result"] is True and ret["changes"] == {"cinder-volume": True}
    assert ret["comment"].startswith("Service restarted; cinder-volume is up (PID 700, ")
    assert ret["comment"].endswith("; its Ceph driver started")


def test_a_restart_whose_driver_never_starts_fails(systemd, tmp_path):
    log = tmp_path / "cinder-volume.log"
    write_log(log, [])
    systemd.units["cinder-volume"] = Unit(proc(700, up=0.0))
    ret = watch(log=str(log), service="cinder_volume", init_timeout=1)
    assert ret["result"] is False
    line = execmod.ceph_openstack_services.INIT_LINES["cinder_volume"][0]
    assert f"cinder-volume's Ceph driver did not start: no \"{line}\" in {log}" in ret["comment"]


def test_test_mode_predicts_the_restart_and_does_nothing(systemd, state_calls, opts):
    opts["test"] = True
    ret = watch()
    assert ret["result"] is None
    assert ret["comment"] == "cinder-volume would be restarted (a watched state changed)"
    assert ret["changes"] == {"cinder-volume": True}
    assert systemd.calls == []
    assert [call[0] for call in state_calls] == ["service.mod_watch"]


@pytest.mark.parametrize("call", [run, watch])
def test_systemd_offline_mode_fails_instead_of_doing_nothing(systemd, state_calls, call):
    statemod.__salt__["service.offline"] = lambda: True
    ret = call()
    assert ret["result"] is False
    assert "systemd is not running as PID 1 here" in ret["comment"]
    assert "offline mode" in ret["comment"]
    assert "ceph_openstack:services:restart" in ret["comment"]
    assert state_calls == [] and systemd.calls == []


def test_a_failed_start_names_the_log(systemd, state_calls):
    def failing(name, **kwargs):
        return {"name": name, "result": False, "changes": {},
                "comment": "Job for cinder-volume.service failed"}

    statemod.__states__["service.running"] = failing
    ret = run()
    assert ret["result"] is False
    assert ret["comment"] == f"Job for cinder-volume.service failed; see {CINDER_LOG}"
    assert systemd.calls == []


def test_a_service_module_without_systemd_is_noted_not_failed(systemd, context):
    # e.g. a sysvinit node: Salt's service module is not systemd's, the restart happened
    context[BOOTED] = False
    del statemod.__salt__["service.offline"]
    ret = watch()
    assert ret["result"] is True
    assert ret["comment"] == (
        "Service restarted; not checked that it stays up: systemd is not running as PID 1 "
        "here: cannot tell whether cinder-volume runs")


def test_only_service_running_is_watched():
    ret = statemod.mod_watch("cinder-volume", sfun="keyring")
    assert ret["result"] is False and "ceph_openstack.keyring" in ret["comment"]


def test_verified_fails_naming_the_service_and_lists_notes(systemd, settings):
    systemd.units["cinder-volume"] = Unit(down("activating", "auto-restart", restarts=9))
    systemd.units["cinder-backup"] = Unit(proc(3, up=60))
    systemd.units["glance-api"] = Unit(proc(4, up=60))
    ret = statemod.verified()
    assert ret["result"] is False
    log = settings["services"]["cinder_volume"]["log"]
    assert (f"service cinder-volume: cinder-volume is crash-looping (restarted 9 times); "
            f"see {log}") in ret["comment"].splitlines()
    settings["restart"] = False
    ret = statemod.verified()
    assert "services: not checked (cinder-backup, cinder-volume, glance-api)" in ret["comment"]
