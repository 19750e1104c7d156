"""
Record the ceph CLI output the cephauth unit tests replay (ceph_cli.json).

Run against a throw-away lab cluster (lab.ceph.CephLab), never a real one: the
recording holds that cluster's keys. Usage: python record.py <dir>/ceph.conf

``python record.py --mon-dump RELEASE <dir>/ceph.conf`` adds that release's ``ceph mon
dump`` (run with the release's ``ceph`` first on PATH) to mon_dump.json, for the
cephx key-type checks.
"""

import json
import os
import subprocess
import sys

NEW_KEY = "AQBhAAAAAAAAABAAvHOq2W2wbY4Wcf7yCmXw3Q=="


def main(conf):
    def run(*args, stdin=None):
        out = subprocess.run(["ceph", "--conf", conf, *args], input=stdin,
                             capture_output=True, text=True, check=False)
        return {"retcode": out.returncode, "stdout": out.stdout, "stderr": out.stderr}

    for entity in ("client.cinder", "client.glance", "client.quoted", "client.new",
                   "client.keyed", "client.bad"):
        run("auth", "del", entity)
    run("auth", "add", "client.cinder", "mon", "profile rbd",
        "osd", "profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images",
        "mgr", "profile rbd pool=volumes, profile rbd pool=vms")
    run("auth", "add", "client.glance", "mon", "profile rbd", "osd", "profile rbd pool=images",
        "mgr", "profile rbd pool=images")
    run("auth", "add", "client.quoted", "mon", 'allow command "osd blocklist", allow r',
        "osd", "allow rx pool=images")

    rec = {
        "auth_ls": run("auth", "ls", "--format", "json"),
        "auth_add": run("auth", "add", "client.new", "mon", "profile rbd", "--format", "json"),
        "auth_add_with_key": run("auth", "add", "client.keyed", "mon", "profile rbd", "-i", "-",
                                 "--format", "json", stdin=f"[client.keyed]\n\tkey = {NEW_KEY}\n"),
        "auth_add_bad_caps": run("auth", "add", "client.bad", "mon", "allow bogus", "-i", "-",
                                 "--format", "json", stdin=f"[client.bad]\n\tkey = {NEW_KEY}\n"),
        "auth_add_mismatch": run("auth", "add", "client.cinder", "mon", "allow r",
                                 "--format", "json"),
        "auth_caps": run("auth", "caps", "client.new", "mon", "allow r", "--format", "json"),
        "auth_caps_missing": run("auth", "caps", "client.missing", "mon", "allow r",
                                 "--format", "json"),
        "auth_caps_bad_grant": run("auth", "caps", "client.new", "mon", "allow bogus",
                                   "--format", "json"),
        "auth_del": run("auth", "del", "client.new", "--format", "json"),
        "auth_import": run("auth", "import", "-i", "-", "--format", "json",
                           stdin=f'[client.new]\n\tkey = {NEW_KEY}\n\tcaps mon = "profile rbd"\n'),
        "auth_import_bad_key": run(
            "auth", "import", "-i", "-", "--format", "json",
            stdin='[client.new]\n\tkey = not-a-key\n\tcaps mon = "profile rbd"\n',
        ),
    }
    for entity in ("client.new", "client.keyed", "client.bad"):
        run("auth", "del", entity)
    for name, out in rec.items():
        print(name, out["retcode"], out["stderr"].strip()[:100])
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ceph_cli.json")
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(rec, stream, indent=1, sort_keys=True)


def record_mon_dump(release, conf):
    out = subprocess.run(["ceph", "--conf", conf, "mon", "dump", "--format", "json"],
                         capture_output=True, text=True, check=True)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mon_dump.json")
    try:
        with open(path, encoding="utf-8") as stream:
            dumps = json.load(stream)
    except FileNotFoundError:
        dumps = {}
    dumps[release] = {"retcode": 0, "stdout": out.stdout, "stderr": ""}
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(dumps, stream, indent=1, sort_keys=True)


if __name__ == "__main__":
    if sys.argv[1] == "--mon-dump":
        record_mon_dump(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1])
