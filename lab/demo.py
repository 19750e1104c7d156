"""
The demo: the whole orchestrated rollout on a fresh lab, a readable summary of
what changed per node, then a real glance-api started from the glance-api.conf
the rollout wrote and a qcow2 image brought into it as raw by the images step,
a run that changes nothing, the verify result, and the clone check of a volume
cloned from that image as client.cinder.

It never ends in a traceback: a step that fails prints ``demo FAILED at <step>:
<cause>`` and the log to read, the lab is stopped (unless ``keep``) and the
demo returns 1. Each rollout's full return is kept in ``<lab>/demo/``.
"""

import contextlib
import json
import os
import shutil
import subprocess
import time

import yaml

from lab import openstack, proc, report
from lab import salt as salt_lab
from lab.ceph import sandbox_client_conf
from lab.glance import CLOUD, unsupported as glance_unsupported

ORCH = "orch.ceph_openstack"
IMAGE = "demo-image"


class StepFailed(Exception):
    """Raised inside a step: ``cause`` says why it failed, ``log`` where to read more."""

    def __init__(self, cause, log=None):
        super().__init__(cause)
        self.cause = cause
        self.log = log


class DemoFailed(Exception):
    """The demo stopped at ``step``."""

    def __init__(self, step, cause, log):
        super().__init__(f"{step}: {cause}")
        self.step, self.cause, self.log = step, cause, log


@contextlib.contextmanager
def _step(name, log=None):
    """Any error inside becomes DemoFailed at step ``name``; ``log`` (a path, or a callable
    giving one, asked only on failure) is the log to read unless the error names one."""
    try:
        yield
    except Exception as error:  # pylint: disable=broad-except
        if isinstance(error, StepFailed):
            cause = error.cause
        else:
            cause = f"{type(error).__name__}: {_one_line(error)}"
        log = getattr(error, "log", None) or (log() if callable(log) else log)
        raise DemoFailed(name, cause, log) from error


def _one_line(text, limit=400):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _lab_up_log(lab):
    """The log of the lab part that did not come up: the last one started (the lab starts
    Ceph, libvirtd, Salt in turn, each recording its PIDs as it starts them)."""
    logs = [(lab.ceph, lab.ceph.logdir),
            (lab.libvirt, os.path.join(lab.libvirt.logdir, "libvirtd.out")),
            (lab.salt, os.path.join(lab.salt.master_dir, "var", "log", "salt", "master"))]
    found = logs[0][1]
    for part, log in logs:
        if proc.pids(part.piddir):
            found = log
    return found


def _minion_log(lab, minion):
    if minion in lab.nodes.nodes:  # a real node's own log, as the host sees its writes
        return os.path.join(lab.nodes.upper(minion), "var", "log", "salt", "minion")
    return os.path.join(lab.salt.dir, "minions", minion, "var", "log", "salt", "minion")


def _roots(lab):
    return {minion: salt_lab.sandbox_root(lab.dir, minion) for minion in lab.salt.minions}


def _rollout(lab, number, quiet=False):
    """One ``state.orchestrate`` run: its return kept in ``<lab>/demo/rollout-N.json``,
    its summary printed; raises StepFailed at the first failed state or step."""
    saved = os.path.join(lab.dir, "demo", f"rollout-{number}.json")
    os.makedirs(os.path.dirname(saved), exist_ok=True)
    ret = lab.salt.salt_run("state.orchestrate", ORCH)
    with open(saved, "w") as out:
        json.dump(ret, out, indent=1)
    lines, failure = report.summarize(ret, _roots(lab))
    if not quiet or failure:
        print("\n".join(lines))
    if failure:
        step, minion, cause = failure
        log = _minion_log(lab, minion) if minion else os.path.join(
            lab.salt.master_dir, "var", "log", "salt", "master")
        raise StepFailed(f"step {step}: {_one_line(cause)} (whole return: {saved})", log)
    return ret


def _start_glance(lab):
    """glance-api from ctl1's glance-api.conf and keyring; the images pillar for it."""
    lab.glance.up_for_controller(salt_lab.sandbox_root(lab.dir, "ctl1"))
    images = os.path.join(lab.dir, "images")
    os.makedirs(images, exist_ok=True)
    raw, qcow2 = os.path.join(images, "disk.raw"), os.path.join(images, f"{IMAGE}.qcow2")
    with open(raw, "wb") as out:
        out.write(b"demo disk\n" * (1 << 20))  # 10 MiB
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2], check=True,
                   capture_output=True)
    pillar = {"ceph_openstack": {"images": {
        "cloud": CLOUD, "clouds_yaml": lab.glance.clouds_yaml,
        "upload": {IMAGE: {"source": qcow2, "min_disk": 1}},
    }}}
    with open(os.path.join(lab.dir, "pillar", "overrides.sls"), "w") as out:
        yaml.safe_dump(pillar, out)
    lab.salt.salt("*", "saltutil.refresh_pillar", "wait=True")


def _verify(lab):
    verify = lab.salt.salt("*", "ceph_openstack.verify")
    failed = []
    for minion in sorted(set(lab.salt.minions) | set(lab.nodes.nodes)):
        report_ = verify.get(minion)
        if not isinstance(report_, dict) or "checks" not in report_:
            failed.append(f"{minion}: {_one_line(report_ or 'no answer')}")
            continue
        for check, result in sorted(report_["checks"].items()):
            print(f"  {minion:6} {result if result == 'ok' else 'FAILED: ' + result:6}"
                  f"  {check.replace(lab.dir, '<lab>')}")
            if result != "ok":
                failed.append(f"{minion}: {check.replace(lab.dir, '<lab>')}: {result}")
    if failed:
        raise StepFailed("; ".join(failed), _minion_log(lab, failed[0].split(":")[0]))


def _clone_check(lab):
    """A volume cloned from the image as client.cinder, as Cinder does; the clone check."""
    conf = sandbox_client_conf(salt_lab.sandbox_root(lab.dir, "ctl1"), "cinder",
                               os.path.join(lab.dir, "cinder-client.conf"))
    images = lab.salt.salt("ctl1", "glanceimage.find", IMAGE, f"cloud={CLOUD}",
                           f"config_file={lab.glance.clouds_yaml}").get("ctl1")
    if not isinstance(images, list) or not images:
        raise StepFailed(f"Glance has no image {IMAGE}: {_one_line(images)}",
                         os.path.join(lab.glance.logdir, "glance-api.log"))
    image_id = images[0]["id"]
    clone = subprocess.run(["rbd", "-c", conf, "--id", "cinder", "clone",
                            f"images/{image_id}@snap", "volumes/volume-demo"],
                           capture_output=True, text=True)
    if clone.returncode:
        raise StepFailed(f"rbd clone images/{image_id}@snap as client.cinder: "
                         f"{_one_line(clone.stderr)}", lab.ceph.logdir)
    check = lab.salt.salt_run("cephimage.clone_check", image_id)
    check = check.get("return", check) if isinstance(check, dict) else check
    print(f"  glance image {image_id}: {images[0].get('direct_url')}")
    print(f"  {check.get('summary', json.dumps(check)) if isinstance(check, dict) else check}")
    if not (isinstance(check, dict) and check.get("clones")):
        raise StepFailed(f"the clone check found no copy-on-write clone: {_one_line(check)}",
                         os.path.join(lab.salt.master_dir, "var", "log", "salt", "master"))


def _services_at_work(lab):
    """On real nodes: Glance, Cinder and Ceph doing their job with what the formula wrote."""
    image_id = openstack.upload_image(IMAGE, b"demo disk\n" * (1 << 20))
    print(f"  glance image {image_id}: {openstack.image(image_id).get('direct_url')}")
    volume = openstack.volume_from_image(image_id, "demo-volume")
    info = json.loads(lab.ceph.rbd("info", f"volumes/volume-{volume['id']}", "--format",
                                   "json"))
    parent = info.get("parent") or {}
    print(f"  cinder volume {volume['id']}: parent {parent.get('pool')}/{parent.get('image')}"
          f"@{parent.get('snapshot')}")
    if (parent.get("pool"), parent.get("image")) != ("images", image_id):
        raise StepFailed(f"volume {volume['id']} is not a copy-on-write clone of image "
                         f"{image_id}: rbd info shows {_one_line(info)}",
                         os.path.join(lab.nodes.upper("ctl1"), "var/log/cinder/cinder-volume.log"))
    backup = openstack.backup(volume["id"], "demo-backup")
    print(f"  cinder backup {backup['id']}: in pool backups: "
          f"{', '.join(lab.ceph.rbd('ls', 'backups').split())}")
    up = {f"{s['binary']} {s['host']}": s["state"] for s in openstack.cinder_services()}
    print("  cinder services: " + ", ".join(f"{k} {v}" for k, v in sorted(up.items())))


def _health(lab):
    """Ceph health checks other than what the lab waits for, by code."""
    other = getattr(lab.ceph, "other_health_checks", None)
    try:
        codes = other() if other else []
    except Exception as error:  # pylint: disable=broad-except
        codes = [f"(not readable: {_one_line(error, 200)})"]
    if codes:
        print(f"   ceph reports other health checks (not waited on): {', '.join(codes)}")


def _run_steps(lab):
    start = time.monotonic()
    with _step("lab up", lambda: _lab_up_log(lab)):
        timings = lab.up()
    print("   up: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    _health(lab)
    if lab.node_kind == "real":
        _run_real_steps(lab, start)
        return
    without_glance = glance_unsupported(lab.ceph)
    if without_glance:
        print(f"== images and the clone check are left out: {without_glance}")
    rollouts = (
        ("first rollout", "everything from scratch", None),
        ("second rollout", "glance-api started; an image to upload", _start_glance),
        ("third rollout", "nothing left to change", None),
    )
    if without_glance:
        rollouts = rollouts[:1] + (("second rollout", "nothing left to change", None),)
    for number, (name, what, before) in enumerate(rollouts, 1):
        if before:
            with _step("glance-api start", lambda: os.path.join(lab.glance.logdir,
                                                                  "glance-api.log")):
                begin = time.monotonic()
                before(lab)
            print(f"== glance-api up in {time.monotonic() - begin:.1f} s at {lab.glance.url}"
                  " (ctl1's glance-api.conf)")
        print(f"== {name}: {what}")
        begin = time.monotonic()
        with _step(name):
            ret = _rollout(lab, number)
        print(f"   {name}: {time.monotonic() - begin:.1f} s")
        if number == len(rollouts):
            with _step(name):
                changes = report.changed(ret, _roots(lab))
                if changes:
                    raise StepFailed("a re-run changed " + "; ".join(changes))
    print("== verify (each node with its own keyrings)")
    with _step("verify"):
        _verify(lab)
    if not without_glance:
        print("== copy-on-write: a volume cloned from the image as client.cinder")
        with _step("clone check"):
            _clone_check(lab)
    _health(lab)
    print(f"== config files written under {os.path.join(lab.dir, 'roots')}/<minion>/etc")
    print(f"demo succeeded in {time.monotonic() - start:.0f} s")


def _run_real_steps(lab, start):
    """The demo on real nodes: two rollouts (the second changes and restarts nothing),
    verify, then Glance, Cinder and Ceph at work."""
    for number, (name, what) in enumerate((
            ("first rollout", "everything from scratch, the Ceph client packages included"),
            ("second rollout", "nothing left to change, nothing to restart")), 1):
        print(f"== {name}: {what}")
        units = lab.nodes.unit_pids()
        begin = time.monotonic()
        with _step(name):
            ret = _rollout(lab, number)
        print(f"   {name}: {time.monotonic() - begin:.1f} s")
        if number == 2:
            with _step(name):
                changes = report.changed(ret, _roots(lab))
                restarted = sorted(f"{n} {u}" for (n, u), pid in lab.nodes.unit_pids().items()
                                   if units[(n, u)] != pid)
                if changes or restarted:
                    raise StepFailed("a re-run changed " + "; ".join(changes + restarted))
    print("== verify (each node with its own keyrings, and its services)")
    with _step("verify"):
        _verify(lab)
    print("== Glance, Cinder and Ceph at work with what the formula wrote")
    with _step("services at work"):
        _services_at_work(lab)
    _health(lab)
    print(f"== each node's changes under {os.path.join(lab.dir, 'nodes')}/<node>/upper")
    print(f"demo succeeded in {time.monotonic() - start:.0f} s")


def run_demo(lab, keep=False):
    """Run the demo on a fresh lab in ``lab.dir``; 0 on success, 1 on failure."""
    print(f"== lab: {lab.dir}")
    status = 0
    try:
        with _step("removing the previous lab"):
            if any(part.running() for part in (lab.glance, lab.nodes, lab.salt, lab.libvirt,
                                               lab.ceph)):
                lab.down()
            shutil.rmtree(lab.dir, ignore_errors=True)
        _run_steps(lab)
    except DemoFailed as failed:
        status = 1
        print(f"demo FAILED at {failed.step}: {failed.cause}")
        if failed.log:
            print(f"   read: {failed.log}")
    except KeyboardInterrupt:
        status = 130
        print("demo interrupted")
    finally:
        if keep:
            print(f"lab left running in {lab.dir}: ./run lab down --dir {lab.dir} stops it")
        else:
            try:
                lab.down()
                print(f"lab stopped (its files and logs stay in {lab.dir}); "
                      "./run demo --keep leaves it running")
            except Exception as error:  # pylint: disable=broad-except
                status = status or 1
                print(f"demo FAILED at lab down: {type(error).__name__}: {_one_line(error)}")
    return status
