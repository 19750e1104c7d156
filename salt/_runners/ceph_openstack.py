"""
The drift report: what differs, per node and per Ceph cluster, from the ceph_openstack
pillar, and which command fixes each item. It changes nothing.

.. code-block:: bash

    salt-run saltutil.sync_runners                     # once, and sync_output for the table
    salt-run saltutil.sync_output
    salt-run ceph_openstack.report                     # a table; exit status 1 when anything drifts
    salt-run ceph_openstack.report --out json          # the same as a document, for monitoring

One job reaches every node the formula targets (each cluster's mons, the controllers and
the computes, as the orchestration targets them from the pillar): each runs
``ceph_openstack_report.drift``, the formula under ``test=True`` plus, on a mon, the Ceph
health checks that concern the formula and each user's key type and age. A node the
targets name that does not answer within ``timeout`` seconds is reported missing.

``salt-run`` exits with the document's ``retcode``: 0 when nothing drifts, 1 when any item
(or a missing node) is found; the job is then marked failed too
(``__context__["retcode"]``), as ``cephimage.clone_check`` does.
"""

import logging
import os
import re
import time

import salt.client
import salt.fileserver
import salt.loader
import salt.pillar
import salt.utils.minions
import salt.utils.yaml

log = logging.getLogger(__name__)

__virtualname__ = "ceph_openstack"

#: The exec function every node runs, in one job.
NODE_FUNCTION = "ceph_openstack_report.drift"

#: The outputter of the human table (salt/_output/ceph_openstack_report.py).
OUTPUTTER = "ceph_openstack_report"

#: The formula's default targets, when the fileserver has no defaults.yaml to read them
#: from (salt/states/ceph_openstack/defaults.yaml has the same).
DEFAULT_TARGETS = {"mon": "G@role:mon", "controller": "G@role:controller",
                   "compute": "G@role:compute"}

#: Fileserver directories of the formula's synced modules (the orchestration's preflight
#: compares the same).
SYNCED = ("_modules", "_states", "_utils")

#: A cephx key in base64 (see salt/_modules/ceph_openstack_report.py): scrubbed from what a
#: node answered when it is not the report's own document (an exception's text).
_KEY = re.compile(r"A[Qg][A-Za-z0-9+/]{36}==|A[Qg][A-Za-z0-9+/]{57}=")


def __virtual__():
    if __opts__.get("__role", "master") != "master":
        return (False, "the ceph_openstack runner runs on a Salt master (salt-run)")
    return __virtualname__


def _master_pillar(saltenv, pillarenv):
    """``(pillar, problems)``: the pillar the orchestration renders with, compiled for the
    master's own ID and grains (``salt-run state.orchestrate`` does the same), and a
    problem item when it does not compile."""
    grains = __opts__.get("grains") or salt.loader.grains(__opts__)
    pillar = salt.pillar.Pillar(__opts__, grains, __opts__["id"], saltenv,
                                pillarenv=pillarenv).compile_pillar()
    errors = pillar.get("_errors") if isinstance(pillar, dict) else None
    if not errors:
        return pillar, []
    return pillar, [{"node": "(master)", "kind": "pillar",
                     "what": f"the pillar of {__opts__['id']} (the targets come from it)",
                     "detail": _scrub([str(error) for error in errors]),
                     "fix": f"salt-run pillar.show_pillar {__opts__['id']}", "error": True}]


def _default_targets(fileserver, saltenv):
    """``targets`` of the formula's defaults.yaml, through the master's fileserver."""
    found = fileserver.find_file("ceph_openstack/defaults.yaml", saltenv)
    path = found.get("path") if isinstance(found, dict) else None
    if path and os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as handle:
                defaults = salt.utils.yaml.safe_load(handle) or {}
            found = (defaults.get("ceph_openstack") or {}).get("targets")
            if isinstance(found, dict):
                return dict(DEFAULT_TARGETS, **found)
        except (OSError, salt.utils.yaml.YAMLError) as exc:
            log.warning("ceph_openstack.report: cannot read %s: %s", path, exc)
    return dict(DEFAULT_TARGETS)


def _targets(pillar, defaults=None):
    """
    ``{"mon": [each cluster's mon target], "controller": ..., "compute": ..., "tgt": <all
    of them as one compound target>}`` from the ``ceph_openstack`` pillar, as map.jinja
    builds them for the orchestration: the pillar's ``targets`` over the defaults, and
    each other cluster's ``targets:mon`` (default: the main cluster's).
    """
    co = (pillar or {}).get("ceph_openstack") or {}
    found = dict(defaults or DEFAULT_TARGETS)
    if isinstance(co.get("targets"), dict):
        found.update(co["targets"])
    mons = [found["mon"]]
    for spec in (co.get("clusters") or {}).values() if isinstance(co.get("clusters"),
                                                                   dict) else []:
        other = (spec.get("targets") or {}).get("mon") if isinstance(spec, dict) else None
        if isinstance(other, str) and other not in mons:
            mons.append(other)
    parts = []
    for part in mons + [found["controller"], found["compute"]]:
        if part not in parts:
            parts.append(part)
    return {"mon": mons, "controller": found["controller"], "compute": found["compute"],
            "tgt": parts[0] if len(parts) == 1 else " or ".join(f"( {p} )" for p in parts)}


def _formula_files(fileserver, saltenv):
    """``({path: hash}, hash_type)`` of the formula's modules as the master serves them."""
    files, hash_type = {}, __opts__.get("hash_type", "sha256")
    for top in SYNCED:
        for path in fileserver.file_list({"saltenv": saltenv, "prefix": top}):
            if path.startswith(top + "/") and path.endswith(".py"):
                found = fileserver.file_hash({"path": path, "saltenv": saltenv}) or {}
                files[path] = found.get("hsum")
                hash_type = found.get("hash_type") or hash_type
    return files, hash_type


def _scrub(value):
    if isinstance(value, str):
        return _KEY.sub("<cephx key>", value)
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def _failed_node(node, ret):
    """The node entry of a node whose answer is not a report (the function is missing,
    or raised)."""
    text = str(ret)
    if "is not available" in text:
        item = {"node": node, "kind": "modules", "what": f"{NODE_FUNCTION} is not available",
                "fix": f"salt {node} saltutil.sync_all", "detail": [text]}
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        item = {"node": node, "kind": "node", "what": f"{NODE_FUNCTION} failed",
                "fix": f"see the error (salt {node} {NODE_FUNCTION})",
                "detail": lines[:1] + lines[-3:] if len(lines) > 4 else lines, "error": True}
    return {"status": "failed", "items": [_scrub(item)]}


def _no_answer(node, returns):
    """True when ``node`` did not answer: not in the job's returns, or marked there by
    LocalClient as one that did not return (``{"failed": True}`` or its text on 3008,
    ``False`` on 3006)."""
    if node not in returns:
        return True
    answer = returns[node]
    if answer is False or answer is None:
        return True
    if isinstance(answer, dict) and answer.get("failed") is True and "ret" not in answer:
        return True
    ret = answer.get("ret") if isinstance(answer, dict) else answer
    return isinstance(ret, str) and ret.startswith("Minion did not return")


def _assemble(expected, returns, timeout, seconds=None, target_info=None, problems=None):
    """
    The report document from the nodes' answers: ``expected``, the minion IDs the targets
    name; ``returns``, ``{minion: {"ret": ..., "retcode": ...}}`` of the job. Pure: unit
    tested.

    ``{"retcode", "drift", "summary": {"ok", "drift", "missing", "failed", "items"},
    "nodes": {minion: {"status", "roles", "items", ...}}, "clusters": {name: {"mon",
    "health", "items", "keys", "other_checks"}}, "targets", "seconds"}``, plus
    ``"problems"``: items of the report itself (``problems``, e.g. the master's pillar
    does not compile; no node matches the targets).
    """
    nodes, clusters = {}, {}
    for node in sorted(set(expected) | set(returns)):
        answer = returns.get(node)
        ret = answer.get("ret") if isinstance(answer, dict) and "ret" in answer else answer
        if _no_answer(node, returns):
            nodes[node] = {"status": "missing", "items": [{
                "node": node, "kind": "missing node",
                "what": f"no answer within {timeout} s",
                "detail": ["its salt-minion is down or unreachable, or too busy to say that "
                           "the job still runs (salt-run manage.status)"],
                "fix": f"start its salt-minion, then salt {node} state.apply ceph_openstack "
                       "(a busy node: a longer timeout=, gather_job_timeout=)"}]}
            continue
        if not (isinstance(ret, dict) and isinstance(ret.get("items"), list)):
            nodes[node] = _failed_node(node, ret)
            continue
        entry = {"status": "drift" if ret["items"] else "ok", "roles": ret.get("roles", []),
                 "items": ret["items"], "seconds": ret.get("seconds")}
        if ret.get("notes"):
            entry["notes"] = ret["notes"]
        nodes[node] = entry
        for name, view in sorted((ret.get("clusters") or {}).items()):
            if name not in clusters:  # the first mon by ID that answered for it
                clusters[name] = view
    status = {word: [node for node, entry in nodes.items() if entry["status"] == word]
              for word in ("ok", "drift", "missing", "failed")}
    problems = list(problems or [])
    if not nodes:
        problems.append({"node": "(master)", "kind": "targets",
                         "what": "no minion matches the targets",
                         "detail": [(target_info or {}).get("tgt", "")],
                         "fix": "check ceph_openstack:targets in the pillar (salt-run "
                                "pillar.show_pillar) and the minions' grains"})
    count = (sum(len(entry["items"]) for entry in nodes.values())
             + sum(len(view.get("items") or []) for view in clusters.values())
             + len(problems))
    drifting = bool(count)
    doc = {
        "retcode": 1 if drifting else 0,
        "drift": drifting,
        "summary": dict(status, items=count),
        "nodes": nodes,
        "clusters": clusters,
    }
    if problems:
        doc["problems"] = problems
    if target_info is not None:
        doc["targets"] = target_info
    if seconds is not None:
        doc["seconds"] = round(seconds, 2)
    return doc


def report(timeout=60, verify=True, health=True, saltenv="base", pillarenv=None, tgt=None,
           gather_job_timeout=None):
    """
    What differs from the ceph_openstack pillar on every node the formula targets, and
    on each Ceph cluster; changes nothing, one job per node.

    Per node: every state of the formula that would change something under ``test=True``
    (files, options, keyrings, libvirt secrets, pools, users' caps, published keys,
    packages, services), failing ``ceph_openstack.verify`` checks (``verify=False``
    skips them), synced modules that differ from the master's, and nodes that do not
    answer within ``timeout`` seconds (missing). Per cluster (from its first mon by ID):
    the Ceph health checks that name the formula's pools or users (``health=False`` skips
    them), the other checks by code, and each formula user's key type, creation time,
    age and last rotation. Each item names the pillar key and the command that fixes it.

    The targets are the orchestration's, from the pillar compiled for the master
    (``saltenv``, ``pillarenv``); ``tgt`` (a compound target) narrows or replaces them.
    After ``timeout`` seconds, Salt asks the nodes that have not answered whether the job
    still runs there (``saltutil.find_job``, which has ``gather_job_timeout`` seconds,
    default the master's ``gather_job_timeout``) and waits for those where it does; the
    others are missing.

    Prints a table, or with ``--out json`` (any ``--out``) the document; ``salt-run``
    exits 1 when anything drifts (or a node is missing), else 0.

    CLI Example:

    .. code-block:: bash

        salt-run ceph_openstack.report
        salt-run ceph_openstack.report --out json
        salt-run ceph_openstack.report timeout=120 verify=False
        salt-run ceph_openstack.report tgt='L@ctl1,cmp1'
    """
    started = time.monotonic()
    fileserver = salt.fileserver.Fileserver(__opts__)
    pillar, problems = _master_pillar(saltenv, pillarenv)
    found = _targets(pillar, _default_targets(fileserver, saltenv))
    if tgt:
        found["tgt"] = tgt
    files, hash_type = _formula_files(fileserver, saltenv)
    expected = salt.utils.minions.CkMinions(__opts__).check_minions(
        found["tgt"], "compound").get("minions", [])
    client = salt.client.get_local_client(mopts=__opts__)
    returns = client.cmd(
        found["tgt"], NODE_FUNCTION,
        kwarg={"files": files, "hash_type": hash_type, "verify": bool(verify),
               "health": bool(health)},
        tgt_type="compound", timeout=int(timeout), full_return=True,
        **({"gather_job_timeout": int(gather_job_timeout)} if gather_job_timeout else {}),
    ) or {}
    doc = _assemble(expected, returns, timeout, time.monotonic() - started, found, problems)
    if doc["retcode"]:
        __context__["retcode"] = doc["retcode"]
    if __opts__.get("output"):
        return doc
    return {"outputter": OUTPUTTER, "data": doc}
