"""
Orchestration steps that wait for slow nodes and name the ones that never answered.

Used by ``orch.ceph_openstack`` and ``orch.ceph_openstack_rotate`` in place of Salt's
``salt.state`` and ``salt.function``, with the same arguments and the same return shape
(``changes: {"out": "highstate", "ret": {minion: return}}`` and ``{"ret": {...}}``), so
requisites, ``onchanges`` and outputters work as before. They differ in two ways:

* ``timeout`` and ``gather_job_timeout`` reach Salt's client (``salt.state`` passes no
  ``gather_job_timeout``, so the master's 10 s decides): after ``timeout`` s Salt asks the
  nodes that have not returned whether they still run the job (``saltutil.find_job``) and
  gives each ``gather_job_timeout`` s to say so; a node that does is waited for again, for
  as long as it runs the job. The orchestrations take both from pillar
  ``ceph_openstack:rollout``.
* Every targeted node is accounted for. One that answered neither (no return, Salt's
  ``Minion did not return``, an empty batch return, or left out of a batch because it did
  not answer its ping) is reported as ``<minion> did not answer in N s``
  (N = ``timeout`` + ``gather_job_timeout``, the least Salt waited for it); one whose
  states failed as ``states failed on <minion>: <state IDs>``. Salt's own ``salt.state``
  says ``Run failed on minions: ...`` for both; and Salt's batch leaves a node that did not
  answer its ping out of the returns, which ``salt.state`` then does not count.

These states run on the master, inside ``salt-run state.orchestrate``: sync them there with
``salt-run saltutil.sync_all`` (or ``saltutil.sync_states``). The orchestrations check the
master's copy first and stop, changing nothing, when it is missing or differs.
"""

import logging

import salt.utils.minions

log = logging.getLogger(__name__)

__virtualname__ = "ceph_openstack_rollout"

#: At most this many state IDs are named per node in a comment.
SHOWN_STATES = 5


def __virtual__():
    return __virtualname__


def _seconds(value, default):
    """A whole number of seconds from a state argument (the pillar's validator checks the
    pillar; this keeps a bad argument from reaching Salt's client)."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default


def _waits(timeout, gather_job_timeout):
    """``(timeout, gather_job_timeout)`` as Salt's client takes them: the master's own
    settings where the step gives none."""
    return (_seconds(timeout, __opts__.get("timeout") or 5),
            _seconds(gather_job_timeout, __opts__.get("gather_job_timeout") or 10))


def _expected(tgt, tgt_type):
    """The minions the master expects to answer ``tgt``: accepted keys that match it (from
    the grains and pillar cached on the master, greedily, as Salt's client does)."""
    try:
        found = salt.utils.minions.CkMinions(__opts__).check_minions(tgt, tgt_type)
    except Exception as exc:  # pylint: disable=broad-except
        log.warning("ceph_openstack_rollout: cannot resolve target %r: %s", tgt, exc)
        return set()
    minions = found.get("minions", []) if isinstance(found, dict) else found
    return set(minions or [])


def _run(tgt, tgt_type, fun, arg, kwarg, timeout, gather_job_timeout, batch):
    """Publish ``fun`` through the master (``saltutil.cmd``): ``{minion: {"ret": ...}}``."""
    cmd_kw = {
        "arg": arg,
        "kwarg": kwarg,
        "tgt_type": tgt_type,
        "timeout": timeout,
        "gather_job_timeout": gather_job_timeout,
        "expect_minions": True,
    }
    if batch is not None:
        cmd_kw["batch"] = str(batch)
    return __salt__["saltutil.cmd"](tgt, fun, **cmd_kw) or {}


def _answer(mdata, batch=False):
    """``(answered, return)`` of one node's entry in ``saltutil.cmd``'s result.

    Salt marks a node that did not answer as ``{"failed": True}`` (no return), or
    ``"Minion did not return"`` with ``out: no_return``; a batch gives such a node an
    empty return (``{}``), or leaves it out when it did not answer the batch's ping.
    """
    if not isinstance(mdata, dict):
        return False, None
    if "return" in mdata and "ret" not in mdata:
        mdata["ret"] = mdata.pop("return")
    if "ret" not in mdata or mdata.get("out") == "no_return":
        return False, None
    if mdata.get("failed") and mdata["ret"] in (None, {}, False):
        return False, None
    if batch and mdata["ret"] == {}:
        return False, None
    return True, mdata["ret"]


def _silent_line(minion, timeout, gather_job_timeout):
    return (f"{minion} did not answer in {timeout + gather_job_timeout} s "
            f"(rollout:timeout {timeout} s, then rollout:gather_job_timeout "
            f"{gather_job_timeout} s for Salt's find_job)")


def _failed_ids(m_ret):
    """IDs of the states that failed in one node's state return, the causes first (a state
    skipped for a failed requisite only after them)."""
    causes, skipped = [], []
    for key, sret in m_ret.items():
        if not isinstance(sret, dict) or sret.get("result") is not False:
            continue
        sid = sret.get("__id__") or (key.split("_|-")[1] if "_|-" in key else key)
        comment = str(sret.get("comment") or "")
        (skipped if comment.startswith("One or more requisite failed") else causes).append(
            (sret.get("__run_num__", 0), sid))
    ids = [sid for _, sid in sorted(causes)] or [sid for _, sid in sorted(skipped)]
    shown = ", ".join(ids[:SHOWN_STATES])
    return shown + (f" and {len(ids) - SHOWN_STATES} more" if len(ids) > SHOWN_STATES else "")


def _has_changes(m_ret):
    return isinstance(m_ret, dict) and any(
        isinstance(sret, dict) and sret.get("changes") for sret in m_ret.values())


def state(
    name,
    tgt,
    tgt_type="glob",
    sls=None,
    highstate=None,
    pillar=None,
    test=None,
    batch=None,
    timeout=None,
    gather_job_timeout=None,
    saltenv=None,
    pillarenv=None,
    queue=False,
    concurrent=False,
    **kwargs,
):  # pylint: disable=unused-argument
    """
    Apply ``sls`` (or the highstate) on the nodes ``tgt`` matches, waiting for slow
    ones, and name each node that never answered apart from each node whose states failed.

    name
        The step's name (an ID; not used otherwise).

    tgt, tgt_type
        Which nodes, as for ``salt.state`` (``tgt_type`` defaults to ``glob``).

    sls
        The SLS to apply (a name or a list); or ``highstate: True``.

    pillar, saltenv, pillarenv, queue, concurrent, test
        Passed to ``state.sls`` as ``salt.state`` does; ``test`` defaults to the
        orchestration's own ``test``.

    batch
        Apply on this many nodes at a time (``10``, ``10%``), as ``salt.state``.

    timeout
        Seconds to wait for a node's return before asking it whether it still runs the job;
        a node that says so is waited for again. Default: the master's ``timeout``.

    gather_job_timeout
        Seconds each node has to answer that question. Default: the master's
        ``gather_job_timeout``. A node that answered neither is reported as
        ``<minion> did not answer in <timeout + gather_job_timeout> s``.

    .. code-block:: yaml

        ceph_openstack-computes:
          ceph_openstack_rollout.state:
            - tgt: 'G@role:compute'
            - tgt_type: compound
            - sls: ceph_openstack
            - batch: 10
            - timeout: 120
            - gather_job_timeout: 60

    CLI Example (the orchestrations use it; run by hand as an orchestration):

    .. code-block:: bash

        salt-run state.orchestrate orch.ceph_openstack
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if highstate:
        fun, arg = "state.highstate", []
    elif sls:
        fun, arg = "state.sls", [",".join(sls) if isinstance(sls, list) else sls]
    else:
        ret.update(result=False, comment="No highstate or sls specified, no execution made")
        return ret
    kwarg = {"queue": queue, "concurrent": bool(concurrent)}
    if test is not None or __opts__.get("test"):
        kwarg["test"] = test if test is not None else __opts__.get("test")
    for key, value in (("pillar", pillar), ("saltenv", saltenv), ("pillarenv", pillarenv)):
        if value is not None:
            kwarg[key] = value
    timeout, gather_job_timeout = _waits(timeout, gather_job_timeout)
    expected = _expected(tgt, tgt_type)
    cmd_ret = _run(tgt, tgt_type, fun, arg, kwarg, timeout, gather_job_timeout, batch)

    for mdata in cmd_ret.values():
        if isinstance(mdata, dict) and mdata.get("jid"):
            ret["__jid__"] = mdata["jid"]
            break
    silent, failed, errors, changed, unchanged, returns = [], [], {}, [], [], {}
    for minion in sorted(set(cmd_ret) | expected):
        answered, m_ret = _answer(cmd_ret.get(minion), batch=batch is not None)
        if not answered:
            silent.append(minion)
            returns[minion] = _silent_line(minion, timeout, gather_job_timeout)
            continue
        if not isinstance(m_ret, dict):
            # A list of errors (a render or pillar error), or anything but state results.
            errors[minion] = "; ".join(str(item) for item in m_ret if item) \
                if isinstance(m_ret, (list, tuple)) else repr(m_ret)
            returns[minion] = m_ret
        elif not __utils__["state.check_result"](m_ret, recurse=True):
            failed.append(minion)
            returns[minion] = m_ret
        elif _has_changes(m_ret):
            changed.append(minion)
            returns[minion] = m_ret
        else:
            unchanged.append(minion)

    if returns:
        ret["changes"] = {"out": "highstate", "ret": returns}
    if not expected and not cmd_ret:
        ret.update(result=False, comment=f"No minions matched the target {tgt!r}")
        return ret
    lines = [_silent_line(minion, timeout, gather_job_timeout) for minion in silent]
    lines += [f"states failed on {minion}: {_failed_ids(returns[minion])}" if returns[minion]
              else f"{minion} returned no state results" for minion in failed]
    lines += [f"{minion} returned errors: {text}" for minion, text in sorted(errors.items())]
    if lines:
        ret["result"] = False
        done = sorted(changed + unchanged)
        if done:
            lines.append("States ran successfully on " + ", ".join(done) + ".")
        ret["comment"] = "\n".join(lines)
        return ret
    ret["comment"] = "States ran successfully."
    if changed:
        ret["comment"] += " Updating {}.".format(", ".join(changed))
    if unchanged:
        ret["comment"] += " No changes made to {}.".format(", ".join(unchanged))
    if (test or __opts__.get("test")) and ret["changes"]:
        ret["result"] = None
    return ret


def function(
    name,
    tgt,
    tgt_type="glob",
    arg=None,
    kwarg=None,
    batch=None,
    timeout=None,
    gather_job_timeout=None,
    **kwargs,
):  # pylint: disable=unused-argument
    """
    Run the execution function ``name`` on the nodes ``tgt`` matches, waiting for slow
    ones, and name each node that never answered apart from each node where it failed.

    name
        The function, e.g. ``saltutil.sync_all``.

    tgt, tgt_type, arg, kwarg, batch
        As for ``salt.function``.

    timeout, gather_job_timeout
        As for :func:`state`.

    With ``test=True`` nothing runs (the comment says what would), as ``salt.function``.

    .. code-block:: yaml

        ceph_openstack-sync:
          ceph_openstack_rollout.function:
            - name: saltutil.sync_all
            - tgt: cmp01,cmp02
            - tgt_type: list
            - kwarg: {refresh: true}
            - timeout: 120
            - gather_job_timeout: 60

    CLI Example (the orchestrations use it; run by hand as an orchestration):

    .. code-block:: bash

        salt-run state.orchestrate orch.ceph_openstack
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if __opts__.get("test"):
        ret.update(result=None, comment=f"Function {name} would be executed on target {tgt}")
        return ret
    timeout, gather_job_timeout = _waits(timeout, gather_job_timeout)
    expected = _expected(tgt, tgt_type)
    cmd_ret = _run(tgt, tgt_type, name, list(arg or []), dict(kwarg or {}), timeout,
                   gather_job_timeout, batch)
    for mdata in cmd_ret.values():
        if isinstance(mdata, dict) and mdata.get("jid"):
            ret["__jid__"] = mdata["jid"]
            break
    silent, failed, returns = [], [], {}
    for minion in sorted(set(cmd_ret) | expected):
        mdata = cmd_ret.get(minion)
        answered, m_ret = _answer(mdata, batch=batch is not None)
        returns[minion] = m_ret if answered else _silent_line(minion, timeout,
                                                             gather_job_timeout)
        if not answered:
            silent.append(minion)
        elif mdata.get("retcode") or m_ret is False:
            failed.append(minion)
    if not expected and not cmd_ret:
        ret.update(result=False, comment=f"No minions matched the target {tgt!r}")
        return ret
    ret["changes"] = {"ret": returns}
    lines = [_silent_line(minion, timeout, gather_job_timeout) for minion in silent]
    lines += [f"{name} failed on {minion}" for minion in failed]
    ran = sorted(set(returns) - set(silent))
    if lines:
        ret["result"] = False
        ret["comment"] = "\n".join(lines)
        if ran:
            ret["comment"] += f"\nFunction {name} ran on {', '.join(ran)}."
        return ret
    ret["comment"] = f"Function ran successfully. Function {name} ran on {', '.join(ran)}."
    return ret
