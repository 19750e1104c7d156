"""
The demo: the whole orchestrated rollout on a fresh lab, a readable summary of
what changed per node, then a real glance-api started from the glance-api.conf
the rollout wrote and a qcow2 image brought into it as raw by the images step,
a second run that changes nothing, the verify result, and the clone check of
a volume cloned from that image as client.cinder.
"""

import json
import os
import shutil
import subprocess
import time

import yaml

from lab import salt as salt_lab
from lab.ceph import sandbox_client_conf
from lab.glance import CLOUD

ORCH = "orch.ceph_openstack"
IMAGE = "demo-image"


def _state_returns(orch_ret):
    """{step: {minion: [state returns]}} from a state.orchestrate JSON return."""
    data = orch_ret.get("data", orch_ret)
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), dict):
        data = next(iter(data.values()))
    steps = {}
    for step_id, step in (data or {}).items():
        minions = (step.get("changes") or {}).get("ret") or {}
        steps[step_id.split("_|-")[1]] = (step, {
            minion: [s for s in states.values() if isinstance(s, dict) and "result" in s]
            for minion, states in minions.items() if isinstance(states, dict)
        })
    return steps


def summarize(orch_ret):
    """Lines describing each step: result, and per minion what changed."""
    lines = []
    ok = True
    for step_id, (step, minions) in _state_returns(orch_ret).items():
        ok = ok and step.get("result") is not False
        mark = {True: "ok", False: "FAILED", None: "would change"}.get(step.get("result"), "?")
        lines.append(f"  {step_id:28} {mark}")
        for minion, states in sorted(minions.items()):
            changed = [s for s in states if s.get("changes")]
            failed = [s for s in states if s.get("result") is False]
            what = ", ".join(sorted({s.get("__id__", s.get("name", "?"))
                                     .replace("ceph_openstack-", "") for s in changed}))
            lines.append(f"    {minion:6} {len(states):3} states, {len(changed):2} changed"
                         + (f": {what}" if what else ""))
            for state in failed:
                lines.append(f"           FAILED {state.get('__id__')}: {state.get('comment')}")
        if step.get("result") is False and not minions:
            lines.append(f"           {step.get('comment')}")
    return ok, lines


def _start_glance(lab):
    """glance-api from ctl1's glance-api.conf and keyring; the images pillar for it."""
    lab.glance.up_for_controller(salt_lab.sandbox_root(lab.dir, "ctl1"))
    images = os.path.join(lab.dir, "images")
    os.makedirs(images, exist_ok=True)
    raw, qcow2 = os.path.join(images, "disk.raw"), os.path.join(images, f"{IMAGE}.qcow2")
    with open(raw, "wb") as out:
        out.write(b"demo disk\n" * (1 << 20))  # 10 MiB
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2], check=True)
    pillar = {"ceph_openstack": {"images": {
        "cloud": CLOUD, "clouds_yaml": lab.glance.clouds_yaml,
        "upload": {IMAGE: {"source": qcow2, "min_disk": 1}},
    }}}
    with open(os.path.join(lab.dir, "pillar", "overrides.sls"), "w") as out:
        yaml.safe_dump(pillar, out)
    lab.salt.salt("*", "saltutil.refresh_pillar", "wait=True")


def _clone_check(lab):
    """A volume cloned from the image as client.cinder, as Cinder does; the clone check."""
    conf = sandbox_client_conf(salt_lab.sandbox_root(lab.dir, "ctl1"), "cinder",
                               os.path.join(lab.dir, "cinder-client.conf"))
    images = lab.salt.salt("ctl1", "glanceimage.find", IMAGE, f"cloud={CLOUD}",
                           f"config_file={lab.glance.clouds_yaml}")["ctl1"]
    image_id = images[0]["id"]
    subprocess.run(["rbd", "-c", conf, "--id", "cinder", "clone", f"images/{image_id}@snap",
                    "volumes/volume-demo"], check=True, capture_output=True)
    lab.salt.salt_run("saltutil.sync_runners")
    report = lab.salt.salt_run("cephimage.clone_check", image_id)
    report = report.get("return", report) if isinstance(report, dict) else report
    print(f"  glance image {image_id}: {images[0]['direct_url']}")
    print(f"  {report.get('summary', json.dumps(report))}")
    return bool(report.get("clones"))


def run_demo(lab, keep=False):
    if any(part.running() for part in (lab.glance, lab.salt, lab.libvirt, lab.ceph)):
        lab.down()
    shutil.rmtree(lab.dir, ignore_errors=True)
    print(f"== lab: {lab.dir}")
    try:
        timings = lab.up()
        print("   up: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        ok = True
        for title in ("first rollout", "glance-api started; rollout with an image to upload",
                      "second rollout (should change nothing)"):
            if title.startswith("glance"):
                start = time.monotonic()
                _start_glance(lab)
                print(f"== glance-api up in {time.monotonic() - start:.1f} s at {lab.glance.url}"
                      " (ctl1's glance-api.conf)")
            start = time.monotonic()
            ret = lab.salt.salt_run("state.orchestrate", ORCH)
            ok_run, lines = summarize(ret)
            ok = ok and ok_run
            print(f"== {title}: {time.monotonic() - start:.1f} s")
            print("\n".join(lines))
        verify = lab.salt.salt("*", "ceph_openstack.verify")
        print("== verify (each node with its own keyrings)")
        for minion, report in sorted(verify.items()):
            if isinstance(report, dict):
                for check, result in sorted(report["checks"].items()):
                    print(f"  {minion:6} {result if result == 'ok' else 'FAILED: ' + result:6}"
                          f"  {check.replace(lab.dir, '<lab>')}")
                ok = ok and report["ok"]
        print("== copy-on-write: a volume cloned from the image as client.cinder")
        ok = _clone_check(lab) and ok
        roots = os.path.join(lab.dir, "roots")
        print(f"== config files written under {roots}/<minion>/etc")
        print("demo " + ("succeeded" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        if keep:
            print(f"lab left running: ./run lab down --dir {lab.dir}")
        else:
            lab.down()
