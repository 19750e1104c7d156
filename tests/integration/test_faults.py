"""
Faults during the orchestrated rollout: the mon stopped, libvirtd stopped, a config
file that cannot be written, a minion offline, a minion that stops answering mid-run.

Each test injects one fault, runs the orchestration, and asserts

* a clear failure whose comment names the cause (the cluster and its timeout, the
  libvirt URI, the file path, the minion id),
* no partial file: every file in the minions' sandbox roots is byte-identical to
  before and no temporary file (``.<name>.*``) is left next to a managed file,

then clears the fault and asserts that a re-run converges (no failure) and that a
further run changes nothing. Every test restores the lab in ``finally`` (and re-runs
the orchestration there), so the modules that run after this one see a converged lab.
"""

import os
import signal
import subprocess
import threading
import time

import psutil
import pytest

from tests.integration.test_rollout import (
    ORCH,
    SECRET_UUID,
    changed,
    orch_steps,
    orchestrate,
)

MINION_IDS = ("mon1", "ctl1", "cmp1")
MONS = ("mon1", "mon2")


# --- helpers -----------------------------------------------------------------------------


def refresh_pillar(salt_cli, target="*"):
    ret = salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt=target)
    assert ret.returncode == 0, ret


def sandbox_files(sandbox):
    """{path: bytes} of every file in the minions' sandbox roots."""
    files = {}
    for minion in MINION_IDS:
        for dirpath, _, names in os.walk(sandbox(minion)):
            for name in names:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as handle:
                    files[path] = handle.read()
    return files


def leftovers(before, after):
    """Files that appeared since ``before``: temporary files of an interrupted write, or
    anything else a failed run left behind."""
    return sorted(set(after) - set(before))


def assert_untouched(before, sandbox):
    after = sandbox_files(sandbox)
    assert leftovers(before, after) == []
    assert sorted(set(before) - set(after)) == []
    assert [path for path in before if after[path] != before[path]] == []


def failed_states(steps, step):
    """{(minion, state id): comment} of the states that failed in one orchestration step."""
    return {
        (minion, sid): sret.get("comment")
        for minion, states in steps[step][2].items()
        for sid, sret in states.items() if sret.get("result") is False
    }


def assert_later_steps_skipped(steps, failed, after):
    """Steps after ``after`` did not run: each failed on its requisite."""
    order = list(steps)
    for step in order[order.index(after) + 1:]:
        assert step in failed, (step, steps[step])
        assert steps[step][2] == {}, (step, steps[step])


def converge(salt_run_cli):
    """Run the orchestration twice: (failures of the first, changes of the second, failures
    of the second). Never raises, so it can restore the lab in a ``finally``."""
    try:
        _, failed = orchestrate(salt_run_cli)
        steps, failed_again = orchestrate(salt_run_cli)
        return failed, changed(steps), failed_again
    except Exception as exc:  # pylint: disable=broad-except
        return {"converge": repr(exc)}, None, None


def assert_converged(result):
    failed, changes, failed_again = result
    assert failed == {}
    assert failed_again == {}
    assert changes == {}


def chattr(flag, path):
    return subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def converged(salt_run_cli, salt_cli, lab_pillar):
    """The lab after a converging rollout with the plain pillar (this module runs first)."""
    lab_pillar.edit({})
    refresh_pillar(salt_cli)
    steps, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    yield steps
    lab_pillar.edit({})
    refresh_pillar(salt_cli)


@pytest.fixture
def timed():
    """Measures a block: ``with timed('rollout'): ...``; each figure is printed (see it
    with -s) and kept in ``timed.figures``."""
    figures = {}

    class Timer:
        def __init__(self, what):
            self.what = what

        def __enter__(self):
            self.start = time.monotonic()

        def __exit__(self, *exc):
            figures[self.what] = time.monotonic() - self.start
            print(f"{self.what}: {figures[self.what]:.1f} s")

    Timer.figures = figures
    return Timer


# --- the faults --------------------------------------------------------------------------


def test_mon_stopped(converged, salt_run_cli, salt_cli, lab_pillar, ceph_lab, sandbox, timed):
    """A pillar edit that needs Ceph (a new pool) while the mon, mgr and OSD are down.

    Each Ceph-facing state waits for its own connect timeout (nothing remembers that the
    cluster did not answer), so with the default 10 s the mon step alone takes ~100 s:
    the mons (mon1, mon2) get a 3 s timeout here, through the documented ``config.get``
    knob ``ceph_openstack:timeout`` (a grain: the pillar validator refuses that key).
    """
    pool = "faults"
    timeout = 3
    lab_pillar.edit({"ceph_openstack": {"pools": {pool: {"pg_num": 8}}}})
    refresh_pillar(salt_cli)
    for mon in MONS:
        set_grain = salt_cli.run("grains.setval", "ceph_openstack",
                                 f'{{"timeout": {timeout}}}', minion_tgt=mon)
        assert set_grain.returncode == 0, set_grain
    before = sandbox_files(sandbox)
    ceph_lab.down()
    try:
        with timed("rollout with the mon down"):
            steps, failed = orchestrate(salt_run_cli)
        assert "ceph_openstack-mon" in failed, failed
        assert_later_steps_skipped(steps, failed, "ceph_openstack-mon")
        states = failed_states(steps, "ceph_openstack-mon")
        print("mon step failures:", states)
        assert ("mon1", f"ceph_openstack-pool-{pool}") in states, states
        causes = {sid: comment for (minion, sid), comment in states.items()
                  if not comment.startswith("One or more requisite failed")}
        assert set(minion for minion, _ in states) == set(MONS)
        for sid, comment in causes.items():
            # ceph_cli: "ceph: no answer from cluster 'ceph' (conf <path>, client.admin)
            # within 3 s; are the mons up and reachable?"
            assert "no answer from cluster 'ceph'" in comment, (sid, comment)
            assert f"conf {ceph_lab.conf}" in comment, (sid, comment)
            assert f"within {timeout} s" in comment, (sid, comment)
        # every Ceph call gives up within its connect timeout + the kill grace (5 s)
        for mon in MONS:
            durations = {sid: sret["duration"] / 1000
                         for sid, sret in steps["ceph_openstack-mon"][2][mon].items()}
            print(f"{mon} step durations (s):", durations)
            assert max(durations[sid] for sid in causes) < timeout + 5, durations
        assert_untouched(before, sandbox)
    finally:
        for mon in MONS:
            salt_cli.run("grains.delkey", "ceph_openstack", "force=True", minion_tgt=mon)
        with timed("ceph_lab.up"):
            ceph_lab.up()
        result = converge(salt_run_cli)
        pools = ceph_lab.ceph("osd", "pool", "ls")
        lab_pillar.edit({})
        refresh_pillar(salt_cli)
        if pool in pools:
            ceph_lab.ceph("osd", "pool", "delete", pool, pool, "--yes-i-really-really-mean-it",
                          json_out=False)
    assert_converged(result)
    assert pool in pools
    for mon in MONS:
        assert salt_cli.run("grains.get", "ceph_openstack", minion_tgt=mon).data == ""


@pytest.mark.parametrize("fault", ["stopped", "hung"])
def test_libvirtd_down(fault, converged, salt_run_cli, ceph_lab, libvirt_lab, sandbox, timed):
    """The compute must define the libvirt secret while libvirtd is stopped (its socket
    gone) or hung (SIGSTOP: the socket accepts, nobody answers)."""
    libvirt_lab.virsh("secret-undefine", SECRET_UUID)
    before = sandbox_files(sandbox)
    pid = libvirt_lab.running()["libvirtd"]
    if fault == "stopped":
        libvirt_lab.down()
    else:
        os.killpg(pid, signal.SIGSTOP)
    try:
        with timed(f"rollout with libvirtd {fault}"):
            steps, failed = orchestrate(salt_run_cli)
        assert "ceph_openstack-computes" in failed, failed
        assert "ceph_openstack-mon" not in failed and "ceph_openstack-controllers" not in failed
        assert_later_steps_skipped(steps, failed, "ceph_openstack-computes")
        states = failed_states(steps, "ceph_openstack-computes")
        print("computes step failures:", states)
        assert list(states) == [("cmp1", "ceph_openstack-libvirt-secret-cinder")], states
        comment = states[("cmp1", "ceph_openstack-libvirt-secret-cinder")]
        assert f"libvirt at {libvirt_lab.uri}" in comment, comment
        if fault == "stopped":
            # "libvirt at <uri>: secret lookup failed: Failed to connect socket to
            # '<socket>': No such file or directory"
            assert f"Failed to connect socket to '{libvirt_lab.socket}'" in comment, comment
        else:
            # "libvirt at <uri> did not answer within 10 s (secret lookup); is libvirtd
            # running and responsive?"
            assert "did not answer within 10 s" in comment, comment
            assert "is libvirtd running" in comment, comment
        duration = steps["ceph_openstack-computes"][2]["cmp1"][
            "ceph_openstack-libvirt-secret-cinder"]["duration"] / 1000
        assert duration < 10 + 2, duration
        assert_untouched(before, sandbox)
    finally:
        if fault == "stopped":
            libvirt_lab.up()
        else:
            os.killpg(pid, signal.SIGCONT)
        result = converge(salt_run_cli)
    assert_converged(result)
    key = ceph_lab.ceph("auth", "get-key", "client.cinder", json_out=False).strip()
    assert libvirt_lab.virsh("secret-get-value", SECRET_UUID).strip() == key


def test_config_file_not_writable(converged, salt_run_cli, salt_cli, lab_pillar, sandbox, timed):
    """nova.conf must change but cannot be replaced (immutable: root ignores file modes)."""
    nova = sandbox("cmp1") / "etc/nova/nova.conf"
    original = nova.read_bytes()
    # the example pillar already sets network=writeback
    edit = {"nova": {"options": {"disk_cachemodes": "network=writethrough"}}}
    lab_pillar.edit({"ceph_openstack": edit})
    refresh_pillar(salt_cli)
    before = sandbox_files(sandbox)
    made = chattr("+i", nova)
    if made.returncode:
        lab_pillar.edit({})
        refresh_pillar(salt_cli)
        pytest.skip(f"chattr +i does not work here: {made.stderr.strip()}")
    try:
        with timed("rollout with nova.conf immutable"):
            steps, failed = orchestrate(salt_run_cli)
        assert "ceph_openstack-computes" in failed, failed
        assert "ceph_openstack-controllers" not in failed
        states = failed_states(steps, "ceph_openstack-computes")
        assert list(states) == [("cmp1", "ceph_openstack-nova-conf")], states
        comment = states[("cmp1", "ceph_openstack-nova-conf")]
        print("computes step failures:", states)
        # openstack_ini: "Cannot write <path>: Operation not permitted"
        assert str(nova) in comment, comment
        assert "Cannot write" in comment and "Operation not permitted" in comment, comment
        assert nova.read_bytes() == original
        assert [n for n in os.listdir(nova.parent) if n.startswith(".nova.conf.")] == []
        assert_untouched(before, sandbox)
    finally:
        chattr("-i", nova)
        result = converge(salt_run_cli)
        converged_text = nova.read_text()
        lab_pillar.edit({})
        refresh_pillar(salt_cli)
        nova.write_bytes(original)  # the formula never removes a key: put the stock file back
    assert_converged(result)
    assert "disk_cachemodes = network=writethrough" in converged_text


def test_minion_offline(converged, salt_run_cli, salt_cli, lab_pillar, minions, sandbox, timed):
    """cmp1's salt-minion is stopped: the rollout stops before any change, naming cmp1.

    Every step requires the one before and the preflight asks every node, so the run fails
    at the sync step (after the pillar's rollout:timeout + rollout:gather_job_timeout, 20 +
    10 s here) and neither the mon nor the controllers change; nothing is half rolled out.
    """
    timeout, gather = 20, 10
    lab_pillar.edit({"ceph_openstack": {"rollout": {"timeout": timeout,
                                                    "gather_job_timeout": gather}}})
    refresh_pillar(salt_cli)
    before = sandbox_files(sandbox)
    minions["cmp1"].terminate()
    try:
        with timed("rollout with cmp1 offline"):
            steps, failed = orchestrate(salt_run_cli)
        print("steps:", {step: (result, comment) for step, (result, comment, _) in steps.items()})
        assert failed, steps
        first = next(step for step in steps if step in failed)
        # The sync step fails first, from the preflight's answers: "cmp1 did not answer in
        # 30 s (...)"; a sync job would only wait as long again.
        assert first == "ceph_openstack-sync", failed
        # The cause, without a function step's closing list of every minion it ran on.
        cause = failed[first].split("Function saltutil.sync_all ran on")[0]
        assert f"cmp1 did not answer in {timeout + gather} s" in cause, failed
        assert "mon1" not in cause and "ctl1" not in cause, failed
        assert_later_steps_skipped(steps, failed, first)
        assert timed.figures["rollout with cmp1 offline"] < 90
        assert_untouched(before, sandbox)
    finally:
        with timed("cmp1 restart"):
            minions["cmp1"].start(start_timeout=120)
        lab_pillar.edit({})
        refresh_pillar(salt_cli)
        result = converge(salt_run_cli)
    assert_converged(result)


def minion_processes(factory):
    """The salt-minion daemon's process and every process under it (Salt's keepalive
    parent runs the minion in a child)."""
    main = psutil.Process(factory.pid)
    return [main] + main.children(recursive=True)


def wait_for_job(event_listener, master_id, fun, minions, after, timeout=300):
    """Wait until the master publishes ``fun`` to exactly ``minions`` (a job's ``new``
    event seen after ``after``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in event_listener.get_events([(master_id, "salt/job/*/new")],
                                               after_time=after):
            if event.data.get("fun") == fun and sorted(event.data.get("minions") or []) \
                    == sorted(minions):
                return event
        time.sleep(0.05)
    raise AssertionError(f"no {fun} job published to {minions} within {timeout} s")


def test_compute_does_not_answer(converged, salt_run_cli, salt_cli, salt_master, lab_pillar,
                                 minions, sandbox, event_listener, timed):
    """cmp1's salt-minion stops answering (SIGSTOP) once the rollout has passed its
    preflight, while the controllers step runs: the computes step waits as long as pillar
    rollout:timeout + rollout:gather_job_timeout say, then fails naming cmp1 as a node that
    did not answer (not as one whose states failed); the mons and the controller converge.
    Once cmp1 answers again (SIGCONT), a re-run changes cmp1 only, and the next run nothing.
    """
    timeout, gather = 20, 10
    nova = sandbox("cmp1") / "etc/nova/nova.conf"
    cinder = sandbox("ctl1") / "etc/cinder/cinder.conf"
    originals = {nova: nova.read_bytes(), cinder: cinder.read_bytes()}
    lab_pillar.edit({"ceph_openstack": {
        "rollout": {"timeout": timeout, "gather_job_timeout": gather},
        "cinder": {"backends": {"ceph": {"options": {"rbd_max_clone_depth": 6}}}},
        "nova": {"options": {"disk_cachemodes": "network=writethrough"}},
    }})
    refresh_pillar(salt_cli)
    first, stopped = [], []
    run = threading.Thread(target=lambda: first.append(
        salt_run_cli.run("state.orchestrate", ORCH)))
    after = time.time()
    try:
        with timed("rollout with cmp1 not answering"):
            run.start()
            wait_for_job(event_listener, salt_master.id, "state.sls", ["ctl1"], after)
            stopped = minion_processes(minions["cmp1"])
            for process in stopped:
                process.send_signal(signal.SIGSTOP)
            run.join(600)
        assert not run.is_alive()
        steps = orch_steps(first[0])
        failed = {step: comment for step, (result, comment, _) in steps.items()
                  if result is False}
        print("steps:", {step: (result, comment) for step, (result, comment, _) in steps.items()})
        assert list(failed) == ["ceph_openstack-computes", "ceph_openstack-verify"], failed
        comment = failed["ceph_openstack-computes"]
        assert f"cmp1 did not answer in {timeout + gather} s" in comment, comment
        assert "states failed" not in comment, comment
        assert steps["ceph_openstack-verify"][2] == {}  # not run: it requires the computes
        # It waited for cmp1 as the pillar says (the batch's ping, then Salt's find_job).
        data = first[0].data.get("data", first[0].data)
        data = next(iter(data.values())) if len(data) == 1 else data
        computes = next(step for key, step in data.items() if "ceph_openstack-computes" in key)
        assert computes["duration"] / 1000 >= timeout + gather, computes["duration"]
        # The others converged; cmp1 changed nothing.
        assert "rbd_max_clone_depth = 6" in cinder.read_text()
        assert nova.read_bytes() == originals[nova]
        assert ("ctl1", "ceph_openstack-cinder-conf") in changed(steps)
    finally:
        for process in stopped:
            try:
                process.send_signal(signal.SIGCONT)
            except psutil.NoSuchProcess:
                pass
        run.join(600)

    try:
        # cmp1 answers again: the re-run converges it and does nothing else.
        ping = salt_cli.run("test.ping", minion_tgt="cmp1")
        assert ping.returncode == 0 and ping.data is True, ping
        steps, failed = orchestrate(salt_run_cli)
        assert failed == {}, failed
        assert {minion for minion, _ in changed(steps)} == {"cmp1"}, changed(steps)
        assert "disk_cachemodes = network=writethrough" in nova.read_text()
        steps, failed = orchestrate(salt_run_cli)
        assert (failed, changed(steps)) == ({}, {})
    finally:
        lab_pillar.edit({})
        refresh_pillar(salt_cli)
        result = converge(salt_run_cli)
    assert_converged(result)
    for path, original in originals.items():
        assert path.read_bytes() == original, path
