"""
Record the Ceph CLI answers the cephpool unit tests replay.

Run from the project root: ``python tests/unit/data/cephpool/record.py``. It
starts a throw-away lab cluster (lab.ceph.CephLab) in a temporary directory,
shapes a few pools, and writes here:

- ``ls_detail.json``: stdout of ``ceph osd pool ls detail --format json``
- ``crush_rule_dump.json``: stdout of ``ceph osd crush rule dump --format json``
- ``answers.json``: ``{case: {"retcode", "stdout", "stderr"}}`` of other calls
  (successes, refusals and failures) exactly as the CLIs printed them
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from lab import proc  # noqa: E402
from lab.ceph import CephLab  # noqa: E402


def main():
    with tempfile.TemporaryDirectory(prefix="cprec-") as tmp:
        lab = CephLab(os.path.join(tmp, "ceph"))
        lab.up()
        try:
            record(lab, tmp)
        finally:
            lab.down()


def record(lab, tmp):
    def cli(binary, *args, conf=lab.conf, json_out=False):
        cmd = [binary, "--conf", conf, "--keyring", lab.admin_keyring]
        cmd += ["--connect-timeout", "3"] if binary == "ceph" else ["--client_mount_timeout=3"]
        cmd += [*args] + (["--format", "json"] if json_out else [])
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return {"retcode": out.returncode, "stdout": out.stdout, "stderr": out.stderr}

    ceph = lab.ceph
    ceph("osd", "crush", "rule", "create-replicated", "fast", "default", "osd", json_out=False)
    for pool in ("volumes", "images", "backups", "vms", "rgwpool", "locked", "auto"):
        ceph("osd", "pool", "create", pool, "8", json_out=False)
    for pool in ("volumes", "backups", "vms"):
        lab.rbd("pool", "init", pool)
    ceph("osd", "pool", "application", "enable", "rgwpool", "rgw", json_out=False)
    ceph("osd", "pool", "set-quota", "backups", "max_objects", "1000", json_out=False)
    ceph("osd", "pool", "set-quota", "backups", "max_bytes", str(10 << 30), json_out=False)
    ceph("osd", "pool", "set", "backups", "target_size_ratio", "0.2", json_out=False)
    ceph("osd", "pool", "set", "backups", "pg_autoscale_mode", "warn", json_out=False)
    ceph("osd", "pool", "set", "backups", "crush_rule", "fast", json_out=False)
    # vms is initialised for RBD, then its rbd_info goes away: not initialised any more
    subprocess.run(["rados", "--conf", lab.conf, "-p", "vms", "rm", "rbd_info"], check=True)
    ceph("osd", "pool", "set", "locked", "pg_num_min", "8", json_out=False)
    ceph("osd", "pool", "set", "locked", "nosizechange", "true", json_out=False)
    ceph("osd", "pool", "set", "auto", "pg_autoscale_mode", "on", json_out=False)

    (HERE / "ls_detail.json").write_text(
        cli("ceph", "osd", "pool", "ls", "detail", json_out=True)["stdout"]
    )
    (HERE / "crush_rule_dump.json").write_text(
        cli("ceph", "osd", "crush", "rule", "dump", json_out=True)["stdout"]
    )

    dead = os.path.join(tmp, "dead.conf")
    with open(dead, "w") as conf:
        conf.write(f"[global]\nfsid = {lab.fsid}\nmon host = 127.0.0.1:{proc.free_port()}\n")
    answers = {
        "rbd_info_validated": cli("rados", "-p", "volumes", "get", "rbd_info", "-"),
        "rbd_info_missing": cli("rados", "-p", "images", "get", "rbd_info", "-"),
        "pool_create": cli("ceph", "osd", "pool", "create", "new", "--pg_num", "16"),
        "pool_set": cli("ceph", "osd", "pool", "set", "images", "pg_num", "16"),
        "pool_set_pg_limit": cli("ceph", "osd", "pool", "set", "images", "pg_num", "65536"),
        "set_quota": cli("ceph", "osd", "pool", "set-quota", "images", "max_objects", "5"),
        "application_enable": cli("ceph", "osd", "pool", "application", "enable", "images", "rbd"),
        "rbd_pool_init": cli("rbd", "pool", "init", "images"),
        "pool_delete": cli(
            "ceph", "osd", "pool", "delete", "new", "new", "--yes-i-really-really-mean-it"
        ),
        "no_answer": cli("ceph", "osd", "pool", "ls", "detail", conf=dead, json_out=True),
    }
    (HERE / "answers.json").write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
