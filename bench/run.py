#!/usr/bin/env python3
"""
Benchmark: the ceph_openstack formula against the naive runbook SLS (bench/naive).

Usage (from the project root; ``./run bench`` does the same)::

    .venv/bin/python bench/run.py [--dir /tmp/coslab-bench] [--repeat 3] [--keep]

On a fresh lab of its own (Ceph + libvirtd + Salt master and minions mon1, ctl1,
cmp1, started here and stopped by PID at the end, also on error), it measures

1. per role (mon1, then ctl1, then cmp1, which need the keys the mon published):
   the wall time of a first ``salt <minion> state.apply <sls>``, of a no-op
   re-run (median of up to --repeat runs), the states' own summed duration, and the
   ``ceph`` / ``rbd`` / ``rados`` / ``virsh`` processes each run spawned;
2. the same for the naive baseline ``naive_runbook`` (bench/naive/);
3. the no-op mon converge (wall time and CLI count) with 4, 16 and 64 pools
   and cephx users, for both.

Processes are counted by wrapper scripts: each minion runs with
``<lab>/bench/wrap/<minion>`` first in its PATH, where ``ceph``, ``rbd``,
``rados`` and ``virsh`` append one line (the argv, base64-looking values
redacted) to ``<lab>/bench/counts/<minion>.log`` and exec the real binary.

Prints a table and writes the same figures to bench/results/latest.json.
"""

import argparse
import collections
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lab import release  # noqa: E402
from lab.__main__ import Lab  # noqa: E402
from lab.salt import SaltLab, prepare_sandbox  # noqa: E402

DEFAULT_DIR = os.environ.get("BENCH_LAB_DIR", "/tmp/coslab-bench")
NAIVE_ROOT = os.path.join(ROOT, "bench", "naive")
RESULTS = os.path.join(ROOT, "bench", "results", "latest.json")
BINARIES = ("ceph", "rbd", "rados", "virsh", "session")
#: "session": a ceph_session helper (one connection for many ceph commands), started
#: under the python3 that the wrapper directory provides next to its ceph.
WRAPPED = BINARIES[:4]
#: Where the real binaries are: the system's, after the lab's Ceph release wrappers
#: (``--ceph``; lab/release.py) when it runs from another release's root.
REAL_PATH = release.path_with(release.selected(), "/usr/bin:/bin:/usr/sbin:/sbin")
FORMULA_SLS = "ceph_openstack"
NAIVE_SLS = "naive_runbook"
ROLE_ORDER = ("mon1", "ctl1", "cmp1")
SCALES = (4, 16, 64)
TARGET_SPEEDUP = 3.0

#: The example pillar's pools and users (pillar.example), which the naive SLS mirrors
#: with its own names (prefix "nv-") so the two never touch each other's objects.
BASE_POOLS = {"volumes": 32, "images": 32, "backups": 32, "vms": 32}
BASE_CAPS = {
    "cinder": {"mon": "profile rbd",
               "osd": "profile rbd pool={volumes}, profile rbd pool={vms}, "
                      "profile rbd-read-only pool={images}",
               "mgr": "profile rbd pool={volumes}, profile rbd pool={vms}"},
    "glance": {"mon": "profile rbd", "osd": "profile rbd pool={images}",
               "mgr": "profile rbd pool={images}"},
    "cinder-backup": {"mon": "profile rbd", "osd": "profile rbd pool={backups}",
                      "mgr": "profile rbd pool={backups}"},
}
HOSTS = {"ceph-node1": "192.0.2.145", "controller1": "192.0.2.121", "compute1": "192.0.2.131"}
NAIVE_PREFIX = "nv-"
NAIVE_SECRET_UUID = "0d7f5ad6-6b1e-4a3e-9c55-3f5e1b0b7a11"
#: Extra pools/users for the scaling runs: one placement group each, so 64 pools
#: per side stay light on the one memstore OSD.
SCALE_PG_NUM = 1
SCALE_CAPS = {"mon": "profile rbd", "osd": "profile rbd-read-only pool={images}"}

#: Words that make up a CLI sub-command (for the per-command breakdown).
_COMMAND_WORDS = {
    "osd", "pool", "ls", "detail", "create", "get", "set", "application", "enable", "auth",
    "get-or-create", "get-key", "caps", "add", "import", "export", "del", "rm", "init", "info",
    "rbd_info", "df", "status", "fsid", "mon", "dump", "crush", "rule", "health", "version",
    "config", "quorum_status", "lspools", "stat", "list", "print-key", "secret-list",
    "secret-define", "secret-set-value", "secret-get-value", "secret-dumpxml",
    "secret-undefine", "versions", "mgr",
}
_VALUE_OPTIONS = {
    "--cluster", "--id", "-i", "--name", "-n", "--conf", "-c", "--keyring", "-k",
    "--connect-timeout", "--format", "-f", "-p", "--pool", "--connect", "--secret", "--file",
    "--base64", "--out",
}


# -- process counting ---------------------------------------------------------------------


class CliCounter:
    """Wrapper scripts per minion that log each ceph/rbd/rados/virsh process they start."""

    def __init__(self, lab_dir, minions):
        self.dir = os.path.join(lab_dir, "bench")
        self.minions = list(minions)

    def wrapdir(self, minion):
        return os.path.join(self.dir, "wrap", minion)

    def log(self, minion):
        return os.path.join(self.dir, "counts", f"{minion}.log")

    def install(self):
        os.makedirs(os.path.join(self.dir, "counts"), exist_ok=True)
        for minion in self.minions:
            os.makedirs(self.wrapdir(minion), exist_ok=True)
            self._install_session(minion)
            for binary in WRAPPED:
                real = shutil.which(binary, path=REAL_PATH)
                if not real:
                    raise SystemExit(f"bench: {binary} not found in {REAL_PATH}")
                script = os.path.join(self.wrapdir(minion), binary)
                # One append (a single short write) per process, then exec: the wrapper
                # costs one /bin/sh start and no extra fork. Arguments ending in "=" (base64
                # values such as a cephx key on the naive SLS's virsh argv) are redacted.
                with open(script, "w") as out:
                    out.write(
                        "#!/bin/sh\n"
                        f"line={binary}\n"
                        'for a in "$@"; do\n'
                        "  case $a in *=) a='<redacted>' ;; esac\n"
                        '  line="$line\t$a"\n'
                        "done\n"
                        f"printf '%s\\n' \"$line\" >> {self.log(minion)}\n"
                        f'exec {real} "$@"\n'
                    )
                os.chmod(script, 0o755)
            open(self.log(minion), "w").close()

    def _install_session(self, minion):
        """``python3`` beside the wrapped ``ceph``: ceph_session's helper runs under it
        (the real ceph's interpreter); logged as one ``session`` line, no arguments."""
        real_ceph = shutil.which("ceph", path=REAL_PATH)
        interpreter = os.path.join(os.path.dirname(real_ceph), "python3")  # a release's root
        if not os.access(interpreter, os.X_OK):
            with open(real_ceph, "rb") as ceph:
                interpreter = ceph.readline().decode()[2:].split()[0]
        script = os.path.join(self.wrapdir(minion), "python3")
        with open(script, "w") as out:
            out.write("#!/bin/sh\n"
                      f"printf 'session\\n' >> {self.log(minion)}\n"
                      f'exec {interpreter} "$@"\n')
        os.chmod(script, 0o755)

    def env(self, minion):
        env = dict(os.environ)
        env["PATH"] = self.wrapdir(minion) + os.pathsep + env.get("PATH", REAL_PATH)
        return env

    def reset(self):
        for minion in self.minions:
            open(self.log(minion), "w").close()

    def read(self, minion):
        try:
            with open(self.log(minion)) as log:
                return [line.rstrip("\n").split("\t") for line in log if line.strip()]
        except FileNotFoundError:
            return []


def command_label(argv):
    """``ceph osd pool ls`` from a logged argv: the binary and its sub-command words."""
    words, skip = [argv[0]], False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = arg in _VALUE_OPTIONS
            continue
        if arg not in _COMMAND_WORDS:
            if len(words) > 1:
                break
            continue
        words.append(arg)
    return " ".join(words)


# -- the bench lab ------------------------------------------------------------------------


class BenchSaltLab(SaltLab):
    """The lab's Salt, with bench/naive in file_roots and the counting PATH per minion."""

    def __init__(self, directory, ceph, libvirt, counter):
        super().__init__(directory, ceph, libvirt)
        self.counter = counter

    def master_config(self):
        config = super().master_config()
        config["file_roots"]["base"].append(NAIVE_ROOT)
        return config

    def minion_env(self, minion_id):
        # Each minion runs under its own PATH of counting wrappers.
        return self.counter.env(minion_id)


class BenchLab(Lab):
    def __init__(self, directory):
        # The release asked for now (--ceph), not the one a lab left in the directory
        # recorded: the bench wipes that lab and makes a new one.
        super().__init__(directory, release.selected())
        self.counter = CliCounter(self.dir, ROLE_ORDER)
        self.salt = BenchSaltLab(os.path.join(self.dir, "salt"), self.ceph, self.libvirt,
                                 self.counter)
        self.naive_dir = os.path.join(self.dir, "naive")


# -- pillar -------------------------------------------------------------------------------


def scale_names(n_pools, n_users):
    pools = [f"scale{i:02d}" for i in range(max(0, n_pools - len(BASE_POOLS)))]
    users = [f"scale{i:02d}" for i in range(max(0, n_users - len(BASE_CAPS)))]
    return pools, users


def caps_text(caps, prefix):
    names = {pool: prefix + pool for pool in BASE_POOLS}
    return {kind: value.format(**names) for kind, value in caps.items()}


def overrides(lab, n_pools=None, n_users=None):
    """The bench's pillar overrides: extra pools/users for the formula, the naive pillar."""
    pools, users = scale_names(n_pools or 0, n_users or 0)
    formula = {
        "pools": {name: {"pg_num": SCALE_PG_NUM} for name in pools},
        # roles [mon]: the key is published to the mons only, no keyring elsewhere.
        "clients": {name: {"caps": caps_text(SCALE_CAPS, ""), "roles": ["mon"]}
                    for name in users},
    }
    naive_pools = {NAIVE_PREFIX + name: pg for name, pg in BASE_POOLS.items()}
    naive_pools.update({NAIVE_PREFIX + name: SCALE_PG_NUM for name in pools})
    naive_clients = {}
    for name, caps in list(BASE_CAPS.items()) + [(u, SCALE_CAPS) for u in users]:
        text = caps_text(caps, NAIVE_PREFIX)
        naive_clients[NAIVE_PREFIX + name] = " ".join(f"{k} '{v}'" for k, v in text.items())
    naive = {
        "conf": lab.ceph.conf,
        "keyring": lab.ceph.admin_keyring,
        "uri": lab.libvirt.uri,
        "roots": os.path.join(lab.naive_dir, "roots"),
        "owner": "nobody:nogroup",
        "hosts": HOSTS,
        "secret_uuid": NAIVE_SECRET_UUID,
        "names": {
            "volumes": NAIVE_PREFIX + "volumes", "images": NAIVE_PREFIX + "images",
            "backups": NAIVE_PREFIX + "backups", "vms": NAIVE_PREFIX + "vms",
            "cinder": NAIVE_PREFIX + "cinder", "glance": NAIVE_PREFIX + "glance",
            "cinder_backup": NAIVE_PREFIX + "cinder-backup",
        },
        "pools": naive_pools,
        "clients": naive_clients,
    }
    return {"ceph_openstack": formula, "naive_runbook": naive}


def write_overrides(lab, n_pools=None, n_users=None, refresh=True):
    path = os.path.join(lab.dir, "pillar", "overrides.sls")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        out.write("# written by bench/run.py\n")
        yaml.safe_dump(overrides(lab, n_pools, n_users), out, default_flow_style=False)
    if refresh:
        ret = lab.salt.salt("*", "saltutil.refresh_pillar", "wait=True", timeout=60)
        if set(ret) != set(ROLE_ORDER) or not all(v is True for v in ret.values()):
            raise RuntimeError(f"refresh_pillar: {ret}")


# -- measuring ----------------------------------------------------------------------------


def apply(lab, minion, sls, *extra):
    """One ``salt <minion> state.apply <sls> [extra]``: wall time, state figures, CLI
    processes."""
    lab.counter.reset()
    start = time.monotonic()
    ret = lab.salt.salt(minion, "state.apply", sls, *extra, timeout=600)
    wall = time.monotonic() - start
    states = ret.get(minion)
    record = {"wall_s": round(wall, 3)}
    if not isinstance(states, dict):
        record.update({"states": 0, "changed": 0, "failed": [f"{states!r}"[:500]], "states_s": 0})
    else:
        results = [s for s in states.values() if isinstance(s, dict) and "result" in s]
        record.update({
            "states": len(results),
            "changed": sum(1 for s in results if s.get("changes")),
            "failed": [f"{s.get('__id__')}: {str(s.get('comment'))[:300]}"
                       for s in results if s.get("result") is False],
            "states_s": round(sum(float(s.get("duration") or 0) for s in results) / 1000, 3),
            "by_state": _by_state(states),
            "changed_ids": sorted(key.split("_|-")[1] for key, s in states.items()
                                  if isinstance(s, dict) and s.get("changes")),
        })
    argvs = lab.counter.read(minion)
    cli = collections.Counter(argv[0] for argv in argvs)
    record["cli"] = {binary: cli.get(binary, 0) for binary in BINARIES}
    record["cli_total"] = sum(record["cli"].values())
    record["commands"] = dict(collections.Counter(command_label(a) for a in argvs).most_common())
    stray = {m: len(lab.counter.read(m)) for m in ROLE_ORDER if m != minion}
    if any(stray.values()):
        record["other_minions_cli"] = stray
    return record


def _by_state(states):
    """``{module.function: {"n": states, "ms": summed duration}}``, slowest first."""
    groups = collections.defaultdict(lambda: {"n": 0, "ms": 0.0})
    for key, state in states.items():
        if not isinstance(state, dict) or "result" not in state:
            continue
        parts = key.split("_|-")
        group = groups[f"{parts[0]}.{parts[-1]}" if len(parts) >= 4 else key]
        group["n"] += 1
        group["ms"] += float(state.get("duration") or 0)
    return {name: {"n": g["n"], "ms": round(g["ms"], 1)}
            for name, g in sorted(groups.items(), key=lambda item: -item[1]["ms"])}


def noop(lab, minion, sls, repeat, budget_s=15):
    """
    The no-op re-run: median wall/states time of two to ``repeat`` runs (no new run
    starts once ``budget_s`` seconds are spent); CLI counts of the last run, and of
    the first in ``first_noop_cli_total``.
    """
    runs, start = [], time.monotonic()
    # At least two runs: the first no-op after new pools still reads each new pool's
    # rbd_info once (cephpool then remembers it); the last run is the steady state.
    while len(runs) < 2 or (len(runs) < repeat and time.monotonic() - start < budget_s):
        runs.append(apply(lab, minion, sls))
    record = dict(runs[-1])
    record["first_noop_cli_total"] = runs[0]["cli_total"]
    record["wall_s"] = round(statistics.median(r["wall_s"] for r in runs), 3)
    record["states_s"] = round(statistics.median(r["states_s"] for r in runs), 3)
    record["runs_wall_s"] = [r["wall_s"] for r in runs]
    record["changed"] = max(r["changed"] for r in runs)
    record["failed"] = [f for r in runs for f in r["failed"]]
    if len({r["cli_total"] for r in runs}) > 1:
        record["cli_totals_differ"] = [r["cli_total"] for r in runs]
    return record


def check(record, what, expect_changes=None):
    problems = list(record["failed"])
    if expect_changes is False and record["changed"]:
        problems.append(f"{record['changed']} states changed on a re-run")
    if problems:
        print(f"   !! {what}: " + "; ".join(problems[:5]), flush=True)
    return not problems


def salt_round_trip(lab, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.monotonic()
        lab.salt.salt("mon1", "test.ping")
        times.append(time.monotonic() - start)
    return round(statistics.median(times), 3)


def versions():
    out = {}
    for name, cmd in (("salt", [os.path.join(ROOT, ".venv", "bin", "salt"), "--version"]),
                      ("ceph", [shutil.which("ceph", path=REAL_PATH) or "ceph", "--version"]),
                      ("virsh", [shutil.which("virsh", path=REAL_PATH) or "virsh", "--version"])):
        try:
            out[name] = subprocess.run(cmd, capture_output=True, text=True,
                                       timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            out[name] = f"unknown ({exc})"
    return out


# -- report -------------------------------------------------------------------------------


def _cli_cells(rec):
    return " ".join(f"{rec['cli'][b]:5d}" for b in BINARIES) + f" {rec['cli_total']:5d}"


def _top_commands(rec, limit=4):
    items = list(rec["commands"].items())
    text = ", ".join(f"{label} x{n}" for label, n in items[:limit])
    return text + (", ..." if len(items) > limit else "")


def print_report(results):
    meta = results["meta"]
    print()
    print(f"== per role ({meta['pillar']})")
    print(f"   {'':8} {'minion':6} {'run':6} {'wall s':>7} {'states s':>8} {'states':>6}"
          f" {'chg':>4}  {'ceph':>5} {'rbd':>5} {'rados':>5} {'virsh':>5} {'sess':>5}"
          f" {'total':>5}")
    for impl in ("formula", "naive"):
        for minion in ROLE_ORDER:
            for run in ("first", "noop"):
                rec = results["roles"][impl][minion][run]
                print(f"   {impl:8} {minion:6} {run:6} {rec['wall_s']:7.2f} {rec['states_s']:8.2f}"
                      f" {rec['states']:6d} {rec['changed']:4d}  {_cli_cells(rec)}"
                      + ("  FAILED" if rec["failed"] else ""))
    rec = results["roles"]["formula"]["cmp1"].get("noop_virsh_backend")
    if rec:
        print(f"   {'formula':8} {'cmp1':6} {'noop*':6} {rec['wall_s']:7.2f} {rec['states_s']:8.2f}"
              f" {rec['states']:6d} {rec['changed']:4d}  {_cli_cells(rec)}"
              "   * virtsecret backend virsh (onedir Salt without libvirt-python)")
    print(f"   (wall = `salt <minion> state.apply` end to end; no-op = median of up to "
          f"{meta['repeat']} runs; a bare `salt mon1 test.ping` takes "
          f"{meta['salt_round_trip_s']:.2f} s)")
    print("   no-op CLI calls by command:")
    for impl in ("formula", "naive"):
        for minion in ROLE_ORDER:
            for run in ("noop", "noop_virsh_backend"):
                rec = results["roles"][impl][minion].get(run)
                if rec and rec["commands"]:
                    print(f"     {impl:8} {minion:6} {_top_commands(rec, 6)}"
                          + (" (virsh backend)" if run != "noop" else ""))

    print()
    print("== no-op mon converge vs number of pools and users (mon1)")
    print(f"   {'N':>3}  {'formula wall':>12} {'states s':>8} {'ceph':>5} {'rbd':>5} {'rados':>5}"
          f" {'sess':>5} {'total':>5}  |  {'naive wall':>10} {'states s':>8} {'ceph':>5} {'rbd':>5}"
          f" {'rados':>5} {'total':>5}  | speedup")
    for n in SCALES:
        f = results["scaling"]["formula"][str(n)]["noop"]
        v = results["scaling"]["naive"][str(n)]["noop"]
        speed = results["targets"]["speedup_by_n"][str(n)]
        print(f"   {n:3d}  {f['wall_s']:12.2f} {f['states_s']:8.2f} {f['cli']['ceph']:5d}"
              f" {f['cli']['rbd']:5d} {f['cli']['rados']:5d} {f['cli']['session']:5d}"
              f" {f['cli_total']:5d}  |  "
              f"{v['wall_s']:10.2f} {v['states_s']:8.2f} {v['cli']['ceph']:5d} {v['cli']['rbd']:5d}"
              f" {v['cli']['rados']:5d} {v['cli_total']:5d}  | {speed['wall']:.1f}x wall,"
              f" {speed['states']:.1f}x states")
    print("   first converge at each N (creates what the previous N lacked):")
    for n in SCALES:
        f = results["scaling"]["formula"][str(n)]["first"]
        v = results["scaling"]["naive"][str(n)]["first"]
        print(f"     N={n:2d}: formula {f['wall_s']:6.2f} s, {f['cli_total']:4d} CLI,"
              f" {f['changed']:3d} changed | naive {v['wall_s']:6.2f} s, {v['cli_total']:4d} CLI,"
              f" {v['changed']:3d} changed")
    print("   where the formula's no-op time goes (states' own duration, by state function):")
    for n in SCALES:
        rec = results["scaling"]["formula"][str(n)]["noop"]
        print(f"     N={n:2d}: {_top_commands(rec, 6)}")
        print("           " + ", ".join(f"{name} {g['n']}x {g['ms'] / 1000:.2f} s"
                                       for name, g in list(rec["by_state"].items())[:4]))

    t = results["targets"]
    print()
    print("== targets")
    print(f"   no-op mon converge >= {TARGET_SPEEDUP:.0f}x faster than naive (wall, every N): "
          f"{'MET' if t['speedup_met'] else 'NOT MET'} "
          f"(min {t['min_speedup_wall']:.1f}x wall, {t['min_speedup_states']:.1f}x states time)")
    print(f"   formula no-op CLI count flat in N: {'MET' if t['cli_flat'] else 'NOT MET'} "
          f"({', '.join(f'N={n}: {c}' for n, c in t['formula_cli_by_n'].items())};"
          f" per binary: {t['formula_cli_by_binary']})")
    print(f"   errors: {'none' if not results['problems'] else '; '.join(results['problems'])}")
    print(f"   total {meta['total_s']:.0f} s (lab up {meta['lab_up_s']:.0f} s); "
          f"figures in {os.path.relpath(RESULTS, ROOT)}")


def targets(results):
    speed = {}
    for n in SCALES:
        f = results["scaling"]["formula"][str(n)]["noop"]
        v = results["scaling"]["naive"][str(n)]["noop"]
        speed[str(n)] = {"wall": round(v["wall_s"] / f["wall_s"], 2),
                         "states": round(v["states_s"] / max(f["states_s"], 1e-3), 2)}
    cli = {str(n): results["scaling"]["formula"][str(n)]["noop"]["cli_total"] for n in SCALES}
    by_binary = {b: [results["scaling"]["formula"][str(n)]["noop"]["cli"][b] for n in SCALES]
                 for b in BINARIES}
    return {
        "speedup_by_n": speed,
        "min_speedup_wall": min(s["wall"] for s in speed.values()),
        "min_speedup_states": min(s["states"] for s in speed.values()),
        "speedup_met": all(s["wall"] >= TARGET_SPEEDUP for s in speed.values()),
        "formula_cli_by_n": cli,
        "formula_cli_by_binary": {b: v for b, v in by_binary.items() if any(v)},
        "cli_flat": len(set(cli.values())) == 1,
    }


# -- main ---------------------------------------------------------------------------------


def prepare(lab):
    """The naive SLS's sandboxes, the modules synced, and room for many pools."""
    # Raise the mon's placement-group cap: two sets of 64 pools share one OSD here.
    lab.ceph.ceph("config", "set", "global", "mon_max_pg_per_osd", "4000", json_out=False)
    for minion, roles in lab.salt.minions.items():
        prepare_sandbox(lab.naive_dir, minion, roles)
    sync = lab.salt.salt("*", "saltutil.sync_all", "refresh=True", timeout=120)
    if set(sync) != set(ROLE_ORDER):
        raise RuntimeError(f"saltutil.sync_all: {sync}")


def run(lab, repeat):
    results = {"roles": {"formula": {}, "naive": {}},
               "scaling": {"formula": {}, "naive": {}}, "problems": []}

    def ok(record, what, expect_changes=None):
        if not check(record, what, expect_changes):
            results["problems"].append(what)

    prepare(lab)
    results["meta_salt_round_trip_s"] = salt_round_trip(lab)

    for impl, sls in (("formula", FORMULA_SLS), ("naive", NAIVE_SLS)):
        for minion in ROLE_ORDER:
            first = apply(lab, minion, sls)
            ok(first, f"{impl} {minion} first run")
            again = noop(lab, minion, sls, repeat)
            ok(again, f"{impl} {minion} no-op", expect_changes=False)
            results["roles"][impl][minion] = {"first": first, "noop": again}
            print(f"   {impl:8} {minion}: first {first['wall_s']:.2f} s "
                  f"({first['changed']} changed, {first['cli_total']} CLI), "
                  f"no-op {again['wall_s']:.2f} s ({again['cli_total']} CLI)", flush=True)

    # The formula's compute no-op again with the virsh backend of virtsecret: what a
    # onedir minion without libvirt-python does (this venv has libvirt-python, so the
    # runs above use the libvirt API and spawn no virsh).
    grain = lab.salt.salt("cmp1", "grains.set", "ceph_openstack:libvirt:backend", "virsh",
                          "force=True")
    if not (grain.get("cmp1") or {}).get("result"):
        raise RuntimeError(f"grains.set on cmp1: {grain}")
    try:
        virsh = noop(lab, "cmp1", FORMULA_SLS, repeat)
        ok(virsh, "formula cmp1 no-op (virsh backend)", expect_changes=False)
        results["roles"]["formula"]["cmp1"]["noop_virsh_backend"] = virsh
        print(f"   formula  cmp1 (virsh backend): no-op {virsh['wall_s']:.2f} s "
              f"({virsh['cli_total']} CLI)", flush=True)
    finally:
        lab.salt.salt("cmp1", "grains.delkey", "ceph_openstack", "force=True")

    for n in SCALES:
        write_overrides(lab, n, n)
        for impl, sls in (("formula", FORMULA_SLS), ("naive", NAIVE_SLS)):
            first = apply(lab, "mon1", sls)
            ok(first, f"{impl} mon1 first converge N={n}")
            again = noop(lab, "mon1", sls, repeat)
            ok(again, f"{impl} mon1 no-op N={n}", expect_changes=False)
            results["scaling"][impl][str(n)] = {"first": first, "noop": again}
            print(f"   N={n:2d} {impl:8}: first {first['wall_s']:.2f} s "
                  f"({first['changed']} changed), no-op {again['wall_s']:.2f} s "
                  f"({again['cli_total']} CLI; first no-op {again['first_noop_cli_total']})",
                  flush=True)
    return results


def first_converge(lab, n_pools, n_users):
    """
    A first mon converge from nothing to ``n_pools`` pools and ``n_users`` users, for the
    formula and the naive SLS: test=True first (what would change), then the real run,
    then a no-op; the pools and users are counted in Ceph afterwards.
    """
    prepare(lab)
    write_overrides(lab, n_pools, n_users)
    out, problems = {}, []
    for impl, sls, prefix in (("formula", FORMULA_SLS, ""), ("naive", NAIVE_SLS, NAIVE_PREFIX)):
        predicted = apply(lab, "mon1", sls, "test=True")
        first = apply(lab, "mon1", sls)
        again = apply(lab, "mon1", sls)
        pools = [p for p in lab.ceph.ceph("osd", "pool", "ls")
                 if p.startswith(prefix) and (prefix or not p.startswith(NAIVE_PREFIX))
                 and p != "device_health_metrics" and not p.startswith(".")]
        users = [e["entity"] for e in lab.ceph.ceph("auth", "ls")["auth_dump"]
                 if e["entity"].startswith("client." + prefix)
                 and (prefix or not e["entity"].startswith("client." + NAIVE_PREFIX))
                 and e["entity"] != "client.admin" and "bootstrap" not in e["entity"]]
        out[impl] = {"test": predicted, "first": first, "noop": again,
                     "pools": len(pools), "users": len(users),
                     "predicted_equals_changed": predicted["changed_ids"] == first["changed_ids"]}
        for what, rec in (("test", predicted), ("first", first), ("noop", again)):
            if rec["failed"]:
                problems.append(f"{impl} {what}: {rec['failed'][:3]}")
        if again["changed"]:
            problems.append(f"{impl} no-op changed {again['changed']} states")
        print(f"   {impl:8}: test=True {predicted['wall_s']:.2f} s ({predicted['changed']} would"
              f" change), first {first['wall_s']:.2f} s ({first['changed']} changed,"
              f" {first['cli_total']} processes: {first['cli']}), no-op {again['wall_s']:.2f} s;"
              f" {len(pools)} pools, {len(users)} users in Ceph", flush=True)
    speedup = out["naive"]["first"]["wall_s"] / out["formula"]["first"]["wall_s"]
    print(f"   first converge {n_pools} pools / {n_users} users: formula "
          f"{out['formula']['first']['wall_s']:.2f} s vs naive "
          f"{out['naive']['first']['wall_s']:.2f} s = {speedup:.2f}x "
          f"({'MET' if speedup >= 2 else 'NOT MET'} >= 2x); formula's "
          f"test=True predicted exactly the changed states: "
          f"{out['formula']['predicted_equals_changed']}")
    return {"pools": n_pools, "users": n_users, "runs": out, "speedup": round(speedup, 2),
            "problems": problems}


def _first_main(spec, directory):
    """``--first P,U``: a fresh bench lab, then :func:`first_converge`."""
    n_pools, n_users = (int(v) for v in spec.split(","))
    lab = BenchLab(directory)
    if lab.salt.running() or lab.ceph.running() or lab.libvirt.running():
        lab.down()
    shutil.rmtree(lab.dir, ignore_errors=True)
    os.makedirs(lab.dir)
    lab.counter.install()
    write_overrides(lab, refresh=False)
    try:
        lab.up()
        print(f"== first mon converge, {n_pools} pools and {n_users} users, Ceph "
              f"{lab.ceph.release}: {lab.dir}")
        result = first_converge(lab, n_pools, n_users)
        result["ceph_release"] = lab.ceph.release
        result["loadavg"] = " ".join(open("/proc/loadavg").read().split()[:3])
        path = os.path.join(os.path.dirname(RESULTS), "first.json")
        with open(path, "w") as out:
            json.dump(result, out, indent=2, sort_keys=True)
        print(f"   load average {result['loadavg']}; errors: "
              f"{'; '.join(result['problems']) or 'none'}")
        return 1 if result["problems"] else 0
    finally:
        lab.down()


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--fleet"]:
        # The fleet benchmark (bench/fleet.py): --fleet [5,20] [--repeat N] [--dir D]
        from fleet import main as fleet_main  # pylint: disable=import-outside-toplevel

        rest = argv[1:]
        sizes = [rest.pop(0)] if rest and not rest[0].startswith("-") else []
        return fleet_main(sizes + rest)
    if argv[:1] == ["--first"]:
        # --first P,U [--dir D]: first mon converge from nothing, formula vs naive
        rest = argv[1:]
        spec = rest.pop(0) if rest and not rest[0].startswith("-") else "64,32"
        directory = rest[rest.index("--dir") + 1] if "--dir" in rest else DEFAULT_DIR
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        return _first_main(spec, directory)
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--dir", default=DEFAULT_DIR, help=f"lab directory ({DEFAULT_DIR})")
    parser.add_argument("--repeat", type=int, default=3,
                        help="no-op runs per measurement; the median is reported (3)")
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)

    started = time.monotonic()
    lab = BenchLab(args.dir)
    if lab.salt.running() or lab.ceph.running() or lab.libvirt.running():
        lab.down()  # a lab left by an earlier run in the same directory, by its PID files
    shutil.rmtree(lab.dir, ignore_errors=True)
    os.makedirs(lab.dir)
    lab.counter.install()
    # The naive pillar needs the lab paths only; the master reads it when it starts.
    write_overrides(lab, refresh=False)
    print(f"== bench lab, Ceph {lab.ceph.release}: {lab.dir}", flush=True)
    status = 1
    try:
        up = lab.up()
        print("   up: " + ", ".join(f"{k} {v:.1f} s" for k, v in up.items()), flush=True)
        results = run(lab, max(1, args.repeat))
        results["targets"] = targets(results)
        results["meta"] = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "lab_dir": lab.dir,
            "cpus": os.cpu_count(),
            "versions": versions(),
            "repeat": max(1, args.repeat),
            "pillar": "pillar.example: 4 pools, 3 users; naive: the same with prefix "
                      f"'{NAIVE_PREFIX}'",
            "scales": list(SCALES),
            "scale_extra_pg_num": SCALE_PG_NUM,
            "salt_round_trip_s": results.pop("meta_salt_round_trip_s"),
            "lab_up_s": round(sum(up.values()), 1),
            "total_s": round(time.monotonic() - started, 1),
        }
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "w") as out:
            json.dump(results, out, indent=2, sort_keys=True)
            out.write("\n")
        print_report(results)
        status = 0 if not results["problems"] else 1
    finally:
        if args.keep:
            print(f"lab left running: .venv/bin/python -m lab down --dir {lab.dir}")
        else:
            stopped = lab.down()
            print(f"   lab stopped ({len(stopped)} processes, by PID)"
                  f" after {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
