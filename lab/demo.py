"""
The demo: the whole orchestrated rollout on a fresh lab, a readable summary of
what changed per node, the verify result, and a second run that changes nothing.
"""

import os
import shutil
import time

ORCH = "orch.ceph_openstack"


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


def run_demo(lab, keep=False):
    if lab.salt.running() or lab.ceph.running() or lab.libvirt.running():
        lab.down()
    shutil.rmtree(lab.dir, ignore_errors=True)
    print(f"== lab: {lab.dir}")
    try:
        timings = lab.up()
        print("   up: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        ok = True
        for title in ("first rollout", "second rollout (should change nothing)"):
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
        roots = os.path.join(lab.dir, "roots")
        print(f"== config files written under {roots}/<minion>/etc")
        print("demo " + ("succeeded" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        if keep:
            print(f"lab left running: ./run lab down --dir {lab.dir}")
        else:
            lab.down()
