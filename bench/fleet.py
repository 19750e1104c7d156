"""
Fleet benchmark: the orchestration over one mon, one controller and N computes.

``bench/run.py --fleet 5,20`` (or ``.venv/bin/python bench/fleet.py 5,20``). For each N,
on a fresh lab of its own (``<dir>/n<N>``: one Ceph cluster, a Salt master, minions
``mon1``, ``ctl1``, ``cmp01``..``cmpNN``, each compute with a secret-only libvirtd of its
own), with minion-ID targets (``L@...``) and the lab's pillar, it measures

* the first orchestration and a no-op one (median of ``--repeat`` runs): wall time of
  ``salt-run state.orchestrate orch.ceph_openstack``, each step's own duration, and the
  rest (``salt-run`` start, rendering with its preflight job, the job returns);
* a compute's own no-op ``salt cmp01 state.apply ceph_openstack`` against Salt's floor:
  ``state.apply`` of an SLS with one state that does nothing (bench/fleet_sls/fleet_floor.sls);
* memory: proportional set size (PSS) of the master (all its processes), of each minion
  and of each libvirtd, idle after the runs;
* per run, the nodes a step named as not answering ("<minion> did not answer in N s") and
  the load average when the run ended.

From N = 5 and N = 20 it derives the extra no-op time per added compute and the share of
the no-op spent on syncing modules (the sync step and the preflight job that decides it).
Writes bench/results/fleet.json and prints a table; stops every process it started, by PID.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lab import proc, release  # noqa: E402
from lab.ceph import CephLab  # noqa: E402
from lab.libvirt import LibvirtLab  # noqa: E402
from lab.salt import SaltLab  # noqa: E402

DEFAULT_DIR = os.environ.get("BENCH_FLEET_DIR", "/tmp/coslab-fleet")
FLOOR_ROOT = os.path.join(ROOT, "bench", "fleet_sls")
RESULTS = os.path.join(ROOT, "bench", "results", "fleet.json")
SECRET_DRIVER = "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_secret.so"
STEPS = ("sync", "validate", "mon", "controllers", "computes", "verify")


class SecretOnlyLibvirt(LibvirtLab):
    """A libvirtd that loads only the secret driver (``secret:///session``), ~13 MB."""

    def __init__(self, directory, drivers):
        super().__init__(directory)
        self.drivers = drivers
        self.uri = f"secret:///session?socket={self.socket}"

    def _env(self):
        env = super()._env()
        env["LIBVIRT_DRIVER_DIR"] = self.drivers
        return env


class FleetSaltLab(SaltLab):
    """The lab's master and minions; each compute's libvirt URI is its own daemon's."""

    def __init__(self, directory, ceph, libvirts, minions):
        super().__init__(directory, ceph, None, minions)
        self.libvirts = libvirts

    def master_config(self):
        config = super().master_config()
        config["file_roots"]["base"].append(FLOOR_ROOT)
        return config

    def minion_config(self, minion_id):
        config = super().minion_config(minion_id)
        if minion_id in self.libvirts:
            config["ceph_openstack"]["libvirt"] = {"uri": self.libvirts[minion_id].uri}
        return config


class FleetLab:
    def __init__(self, directory, computes):
        self.dir = os.path.abspath(directory)
        self.computes = [f"cmp{i:02d}" for i in range(1, computes + 1)]
        minions = {"mon1": ["mon"], "ctl1": ["controller"]}
        minions.update({name: ["compute"] for name in self.computes})
        # The release asked for now (--ceph), not one recorded by a lab wiped before up.
        self.ceph = CephLab(os.path.join(self.dir, "ceph"), release.selected())
        drivers = os.path.join(self.dir, "libvirt-drivers")
        self.libvirts = {name: SecretOnlyLibvirt(os.path.join(self.dir, f"libvirt-{name}"),
                                                 drivers) for name in self.computes}
        self.salt = FleetSaltLab(os.path.join(self.dir, "salt"), self.ceph, self.libvirts,
                                 minions)

    def up(self):
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)  # the libvirtds run unprivileged
        drivers = os.path.join(self.dir, "libvirt-drivers")
        os.makedirs(drivers, exist_ok=True)
        os.chmod(drivers, 0o755)
        link = os.path.join(drivers, os.path.basename(SECRET_DRIVER))
        if not os.path.exists(link):
            os.symlink(SECRET_DRIVER, link)
        self.write_targets()
        timings = {}
        start = time.monotonic()
        self.ceph.up()
        timings["ceph"] = time.monotonic() - start
        start = time.monotonic()
        for daemon in self.libvirts.values():
            daemon.up()
        timings["libvirt"] = time.monotonic() - start
        start = time.monotonic()
        self.salt.up(timeout=600)
        timings["salt"] = time.monotonic() - start
        return timings

    def write_targets(self):
        """Minion-ID targets (what a plain master without grain matching uses)."""
        pillar = os.path.join(self.dir, "pillar")
        os.makedirs(pillar, exist_ok=True)
        targets = {"mon": "L@mon1", "controller": "L@ctl1",
                   "compute": "L@" + ",".join(self.computes)}
        with open(os.path.join(pillar, "overrides.sls"), "w") as out:
            yaml.safe_dump({"ceph_openstack": {"targets": targets}}, out)

    def down(self):
        stopped = {}
        stopped.update(self.salt.down())
        for daemon in self.libvirts.values():
            stopped.update(daemon.down())
        stopped.update(self.ceph.down())
        return stopped

    def daemons(self):
        """``{name: pid}`` of every daemon of this lab that runs."""
        found = dict(self.salt.running())
        for name, daemon in self.libvirts.items():
            found.update({f"libvirtd-{name}": pid for pid in daemon.running().values()})
        return found


# -- measuring ----------------------------------------------------------------------------


#: How a step of the orchestration names a node that never answered.
SILENT = re.compile(r"^(\S+) did not answer in (\d+) s", re.MULTILINE)


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def orchestrate(lab):
    """One orchestration: wall time, each step's duration/result/changes, failures, and
    the nodes that did not answer."""
    start = time.monotonic()
    ret = lab.salt.salt_run("state.orchestrate", "orch.ceph_openstack", timeout=1800)
    wall = time.monotonic() - start
    data = ret.get("data", ret)
    if isinstance(data, dict) and len(data) == 1:
        data = next(iter(data.values()))
    steps, failed, changed, silent = {}, [], 0, set()
    if not isinstance(data, dict):  # a render error: a list of messages
        failed.append(f"render: {data!r}"[:300])
        data = {}
    for key, step in data.items():
        if not isinstance(step, dict):
            failed.append(f"{key}: {step!r}"[:300])
            continue
        name = key.split("_|-")[1].replace("ceph_openstack-", "")
        minions = (step.get("changes") or {}).get("ret") or {}
        changed += sum(1 for rets in minions.values() if isinstance(rets, dict)
                       for state in rets.values()
                       if isinstance(state, dict) and state.get("changes"))
        comment = str(step.get("comment"))
        silent.update(match.group(1) for match in SILENT.finditer(comment))
        # A placeholder (test.succeed_without_changes: "Success!") or a skipped verify
        # ("... none of the onchanges reqs changed") ran no job on any minion.
        steps[name] = {"s": round(float(step.get("duration") or 0) / 1000, 3),
                       "result": step.get("result"),
                       "ran": not (comment == "Success!" or "onchanges" in comment)}
        if step.get("result") is False:
            failed.append(f"{name}: {str(step.get('comment'))[:300]}")
    steps_s = sum(step["s"] for step in steps.values())
    return {"wall_s": round(wall, 3), "steps": steps, "rest_s": round(wall - steps_s, 3),
            "changed_states": changed, "failed": failed, "did_not_answer": sorted(silent),
            "loadavg": loadavg()}


def median_run(runs):
    """The run with the median wall time (its step figures stay consistent)."""
    ordered = sorted(runs, key=lambda run: run["wall_s"])
    middle = dict(ordered[(len(ordered) - 1) // 2])
    middle["runs_wall_s"] = [run["wall_s"] for run in runs]
    return middle


def apply_wall(lab, minion, sls, repeat):
    times = []
    for _ in range(repeat):
        start = time.monotonic()
        ret = lab.salt.salt(minion, "state.apply", sls, timeout=300)
        times.append(time.monotonic() - start)
        states = ret.get(minion)
        if not isinstance(states, dict) or any(
                not s.get("result") or s.get("changes") for s in states.values()):
            raise RuntimeError(f"{minion} state.apply {sls}: not a clean no-op: {states!r}"[:800])
    return round(statistics.median(times), 3)


def pss_kib(leader):
    """PSS in KiB of every process in the session ``leader`` leads (a daemon and helpers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getsid(int(entry)) != leader:
                continue
            with open(f"/proc/{entry}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return total


def memory(lab):
    kib = {name: pss_kib(pid) for name, pid in lab.daemons().items()}
    minions = [v for k, v in kib.items() if k.startswith("salt-minion-")]
    libvirtds = [v for k, v in kib.items() if k.startswith("libvirtd-")]
    mib = lambda v: round(v / 1024, 1)  # noqa: E731
    return {"master_mib": mib(kib.get("salt-master", 0)),
            "minion_mib_mean": mib(statistics.mean(minions)) if minions else 0,
            "minion_mib_max": mib(max(minions)) if minions else 0,
            "minions_mib_total": mib(sum(minions)),
            "libvirtd_mib_mean": mib(statistics.mean(libvirtds)) if libvirtds else 0}


def formula_files():
    """``{"_modules/x.py": sha256}`` of what the master serves (as the orchestration does)."""
    import hashlib  # pylint: disable=import-outside-toplevel

    files = {}
    for top in ("_modules", "_states", "_utils"):
        directory = os.path.join(ROOT, "salt", top)
        for name in sorted(os.listdir(directory)):
            if name.endswith(".py"):
                with open(os.path.join(directory, name), "rb") as handle:
                    files[f"{top}/{name}"] = hashlib.sha256(handle.read()).hexdigest()
    return files


def preflight_job(lab, repeat):
    """Wall time of the orchestration's preflight job alone, and of ``test.ping`` (Salt's
    floor for a job on every node), on all minions; medians."""
    target = ",".join(lab.salt.minions)
    files = json.dumps(formula_files())
    times = {"preflight_s": [], "ping_s": []}
    for _ in range(repeat):
        for key, args in (("preflight_s", ("ceph_openstack_rollout.preflight", files)),
                          ("ping_s", ("test.ping",))):
            start = time.monotonic()
            ret = lab.salt.salt("-L", target, *args, timeout=120)
            times[key].append(time.monotonic() - start)
            if set(ret) != set(lab.salt.minions):
                raise RuntimeError(f"{args[0]}: answers from {sorted(ret)}")
            stale = [m for m, r in ret.items() if isinstance(r, dict) and r.get("stale")]
            if stale:
                raise RuntimeError(f"preflight: modules differ on {stale}")
    return {key: round(statistics.median(values), 3) for key, values in times.items()}


def measure(lab, repeat):
    first = orchestrate(lab)
    print(f"   first orchestration {first['wall_s']:.1f} s, {first['changed_states']} "
          f"changed states, {len(first['did_not_answer'])} nodes did not answer, load "
          f"{first['loadavg']}" + (f"; FAILED {first['failed']}" if first["failed"] else ""),
          flush=True)
    noops = []
    for _ in range(repeat):
        noops.append(orchestrate(lab))
        print(f"   no-op orchestration {noops[-1]['wall_s']:.1f} s, "
              f"{noops[-1]['changed_states']} changed states, "
              f"{len(noops[-1]['did_not_answer'])} nodes did not answer, load "
              f"{noops[-1]['loadavg']}"
              + (f"; FAILED {noops[-1]['failed']}" if noops[-1]["failed"] else ""), flush=True)
    noop = median_run(noops)
    compute = lab.computes[0]
    apply_noop = apply_wall(lab, compute, "ceph_openstack", repeat)
    apply_floor = apply_wall(lab, compute, "fleet_floor", repeat)
    print(f"   {compute} no-op state.apply {apply_noop:.2f} s, one-state floor "
          f"{apply_floor:.2f} s", flush=True)
    jobs = preflight_job(lab, repeat)
    print(f"   preflight job on all {len(lab.salt.minions)} nodes {jobs['preflight_s']:.2f} s"
          f" (test.ping {jobs['ping_s']:.2f} s)", flush=True)
    problems = list(first["failed"]) + [f for run in noops for f in run["failed"]]
    problems += [f"no-op run changed {run['changed_states']} states" for run in noops
                 if run["changed_states"]]
    return {"first": first, "noop": noop, "compute_apply_noop_s": apply_noop,
            "compute_apply_floor_s": apply_floor, "jobs": jobs, "memory": memory(lab),
            "problems": problems}


def derive(results):
    """The issue's targets from the smallest and largest N."""
    sizes = sorted(int(n) for n in results)
    low, high = results[str(sizes[0])], results[str(sizes[-1])]
    per_compute = (high["noop"]["wall_s"] - low["noop"]["wall_s"]) / (sizes[-1] - sizes[0])
    apply_noop = statistics.mean(results[str(n)]["compute_apply_noop_s"] for n in sizes)
    share = {}
    for n in sizes:
        noop = results[str(n)]["noop"]
        sync = noop["steps"].get("sync", {}).get("s", 0)
        # The preflight job (run while the orchestration renders) decides the sync: count
        # it all as sync too (it also validates the pillar), an upper bound.
        preflight = results[str(n)]["jobs"]["preflight_s"]
        share[str(n)] = {"sync_step": round(sync / noop["wall_s"], 3),
                         "sync_step_and_preflight": round((sync + preflight) /
                                                          noop["wall_s"], 3)}
    return {"noop_s_per_added_compute": round(per_compute, 3),
            "compute_apply_noop_s": round(apply_noop, 3),
            "per_compute_met": per_compute <= apply_noop,
            "sync_share": share,
            "sync_share_met": all(s["sync_step"] < 0.10 for s in share.values())}


def print_report(results, derived, meta):
    print()
    print("== fleet: orchestration over 1 mon, 1 controller, N computes (batch 10)")
    head = " ".join(f"{step:>11}" for step in STEPS)
    print(f"   {'N':>3} {'run':6} {'wall s':>7} {head} {'rest s':>7} {'chg':>4} {'silent':>6}")
    for n in sorted(results, key=int):
        for run in ("first", "noop"):
            rec = results[n][run]
            cells = " ".join(
                f"{rec['steps'][s]['s']:>10.2f}" + ("" if rec["steps"][s]["ran"] else "-")
                if s in rec["steps"] else f"{'':>11}" for s in STEPS)
            print(f"   {n:>3} {run:6} {rec['wall_s']:7.2f} {cells} {rec['rest_s']:7.2f}"
                  f" {rec['changed_states']:4d} {len(rec.get('did_not_answer', [])):6d}")
    print("   (step s = the step's own duration; '-' = no job ran (a placeholder, or verify"
          " skipped: nothing changed); rest = salt-run start, render with its preflight job,"
          " returns; silent = nodes a step named as not answering)")
    print("   compute no-op state.apply vs Salt's one-state floor, and memory (PSS, idle):")
    for n in sorted(results, key=int):
        rec, mem = results[n], results[n]["memory"]
        print(f"   {n:>3}: apply {rec['compute_apply_noop_s']:.2f} s vs floor "
              f"{rec['compute_apply_floor_s']:.2f} s; preflight job "
              f"{rec['jobs']['preflight_s']:.2f} s (test.ping {rec['jobs']['ping_s']:.2f} s);"
              f" master {mem['master_mib']} MiB, "
              f"minion {mem['minion_mib_mean']} MiB mean ({mem['minions_mib_total']} MiB all),"
              f" libvirtd {mem['libvirtd_mib_mean']} MiB mean")
    if not derived:  # one size: nothing to compare
        print(f"   load average at the end: {meta['loadavg']}; total {meta['total_s']:.0f} s")
        return
    print()
    print("== targets")
    print(f"   no-op time per added compute {derived['noop_s_per_added_compute']:.2f} s <= a "
          f"compute's no-op apply {derived['compute_apply_noop_s']:.2f} s: "
          f"{'MET' if derived['per_compute_met'] else 'NOT MET'}")
    print("   sync < 10% of the no-op: " + ("MET" if derived["sync_share_met"] else "NOT MET") +
          " (" + ", ".join(f"N={n}: step {s['sync_step']:.1%}, step + preflight job "
                           f"{s['sync_step_and_preflight']:.1%}"
                           for n, s in derived["sync_share"].items()) + ")")
    print(f"   load average at the end: {meta['loadavg']}; total {meta['total_s']:.0f} s")


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("sizes", nargs="?", default="5,20", help="computes per lab (5,20)")
    parser.add_argument("--dir", default=DEFAULT_DIR, help=f"lab directory ({DEFAULT_DIR})")
    parser.add_argument("--repeat", type=int, default=3, help="no-op runs (median) (3)")
    parser.add_argument("--keep", action="store_true", help="leave the last lab running")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
    started = time.monotonic()
    results, problems = {}, []
    for index, n in enumerate(sizes):
        lab = FleetLab(os.path.join(args.dir, f"n{n}"), n)
        if lab.daemons() or lab.ceph.running():
            lab.down()
        shutil.rmtree(lab.dir, ignore_errors=True)
        print(f"== fleet lab N={n}, Ceph {lab.ceph.release}: {lab.dir}", flush=True)
        try:
            up = lab.up()
            print("   up: " + ", ".join(f"{k} {v:.1f} s" for k, v in up.items()), flush=True)
            results[str(n)] = measure(lab, max(1, args.repeat))
            problems += [f"N={n}: {p}" for p in results[str(n)]["problems"]]
        finally:
            if args.keep and index == len(sizes) - 1:
                print(f"lab left running in {lab.dir}")
            else:
                stopped = lab.down()
                print(f"   lab stopped ({len(stopped)} processes, by PID)", flush=True)
    derived = derive(results) if len(results) > 1 else {}
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "sizes": sizes, "repeat": args.repeat,
            "loadavg": loadavg(),
            "total_s": round(time.monotonic() - started, 1)}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as out:
        json.dump({"results": results, "derived": derived, "meta": meta,
                   "problems": problems}, out, indent=2, sort_keys=True)
        out.write("\n")
    if results:
        print_report(results, derived, meta)
    print(f"   errors: {'none' if not problems else '; '.join(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
