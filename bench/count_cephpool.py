#!/usr/bin/env python3
"""
Count the Ceph CLI processes one state run spends converging four pools that
are already right (the cost the cephpool modules promise: one
``ceph osd pool ls detail`` per run, read from ``__context__`` afterwards).

Usage (from the project root, with Salt importable)::

    python bench/count_cephpool.py

It starts a throw-away lab cluster (lab.ceph.CephLab) in a temporary
directory, syncs the project's modules into a masterless minion (Salt's own
``saltutil.sync_all`` + ``state.high`` through ``salt.client.Caller``), creates
the runbook's pools ``volumes``, ``images``, ``backups`` and ``vms`` with
``cephpool.present``, then runs the same states again and counts every
``ceph`` / ``rbd`` / ``rados`` process that run starts (by wrapping
``subprocess.Popen``, which ``cmd.run_all`` uses). It prints the numbers and
exits non-zero if the ``ceph`` count is above 2 or a state reports a change.
A count, not a timing: the run time is printed for information only.
"""

import collections
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from unittest import mock

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.ceph import CephLab  # noqa: E402

POOLS = {
    "volumes": {"pg_num": 8, "max_bytes": "1G"},
    "images": {"pg_num": 8},
    "backups": {"pg_num": 8, "max_objects": 10000},
    "vms": {"pg_num": 8, "pg_autoscale_mode": "warn"},
}
BINARIES = ("ceph", "rbd", "rados")


def minion(tmp, lab):
    """A masterless minion whose file root is the project's salt/ tree, synced."""
    import salt.client
    import salt.config

    opts = salt.config.minion_config(None)
    opts.update(
        {
            "id": "bench",
            "root_dir": tmp,
            "cachedir": os.path.join(tmp, "cache"),
            "pki_dir": os.path.join(tmp, "pki"),
            "sock_dir": os.path.join(tmp, "sock"),
            "extension_modules": os.path.join(tmp, "extmods"),
            "log_file": os.path.join(tmp, "minion.log"),
            "file_client": "local",
            "file_roots": {"base": [str(ROOT / "salt")]},
            "pillar_roots": {"base": [os.path.join(tmp, "pillar")]},
            "ceph_openstack": {"conf": lab.conf, "keyring": lab.admin_keyring},
        }
    )
    for sub in ("cache", "pki", "sock", "extmods", "pillar"):
        os.makedirs(os.path.join(tmp, sub), exist_ok=True)
    salt.client.Caller(mopts=dict(opts)).cmd("saltutil.sync_all")
    return salt.client.Caller(mopts=dict(opts))  # a fresh loader that sees the synced modules


def highstate(crush_rule=None):
    high = {}
    for name, properties in POOLS.items():
        args = [{key: value} for key, value in properties.items()]
        if crush_rule:
            args.append({"crush_rule": crush_rule})
        high[name] = {"cephpool": ["present", *args], "__sls__": "bench", "__env__": "base"}
    return high


def counted_run(caller, high):
    """Run ``state.high`` once; ``(Counter of Ceph CLI processes, results, seconds)``."""
    counts = collections.Counter()
    real_popen = subprocess.Popen

    def popen(args, *rest, **kwargs):
        argv0 = args[0] if isinstance(args, (list, tuple)) else str(args).split()[0]
        if os.path.basename(str(argv0)) in BINARIES:
            counts[os.path.basename(str(argv0))] += 1
        return real_popen(args, *rest, **kwargs)

    started = time.monotonic()
    with mock.patch("subprocess.Popen", popen):
        results = caller.cmd("state.high", high)
    return counts, results, time.monotonic() - started


def report(title, counts, results, seconds):
    if not isinstance(results, dict):
        raise SystemExit(f"{title}: the state run failed: {results}")
    changed = [r["name"] for r in results.values() if r["changes"] or r["result"] is not True]
    print(
        f"{title}: ceph={counts['ceph']} rbd={counts['rbd']} rados={counts['rados']} "
        f"total={sum(counts.values())} states={len(results)} changed={changed} "
        f"({seconds:.2f} s, for information)"
    )
    return changed


def main():
    with tempfile.TemporaryDirectory(prefix="cpbench-") as tmp:
        lab = CephLab(os.path.join(tmp, "ceph"))
        lab.up()
        try:
            caller = minion(os.path.join(tmp, "minion"), lab)
            report("first run (creates the pools)", *counted_run(caller, highstate()))
            counts, results, seconds = counted_run(caller, highstate())
            changed = report("second run (4 existing pools)", counts, results, seconds)
            rule_counts, rule_results, rule_seconds = counted_run(
                caller, highstate(crush_rule="replicated_rule")
            )
            changed += report("with crush_rule given", rule_counts, rule_results, rule_seconds)
        finally:
            lab.down()
    print(counts["ceph"])
    if counts["ceph"] > 2 or rule_counts["ceph"] > 2 or changed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
