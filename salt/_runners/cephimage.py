"""
Check the copy-on-write chain of a Glance image from the master.

.. code-block:: bash

    salt-run cephimage.clone_check 9c5a0e56-5cd0-4b4b-9c7d-2f3e4a1b6c7d
    salt-run cephimage.clone_check cirros tgt=ceph-mon1 tgt_type=glob volumes_pool=cinder

Runs the ``cephimage.clone_check`` execution function on the targeted minions
(by default the mons, which hold the admin keyring) and returns the answer of
the first one that gave one, with a ``minion`` key naming it: the cluster is
the same whichever mon asks. The pools come from that minion's pillar unless
given (``images_pool``, ``volumes_pool``).

When no minion could check, ``salt-run`` exits with status 1: the return then
holds ``retcode: 1``, which ``salt-run`` (3006 and 3008 alike) takes as its
exit status, and the job is marked failed (``__context__["retcode"]``).
"""

import salt.client
import salt.utils.args


def clone_check(image_id, tgt="G@role:mon", tgt_type="compound", timeout=30, **kwargs):
    """
    Report whether ``<images_pool>/<image_id>@<snap>`` exists and is protected
    and which volumes are clones of it or full copies (see the execution
    function ``cephimage.clone_check``; its keywords ``images_pool``,
    ``volumes_pool``, ``snap`` and the connection keywords are passed on).

    CLI Example:

    .. code-block:: bash

        salt-run cephimage.clone_check 9c5a0e56-5cd0-4b4b-9c7d-2f3e4a1b6c7d
    """
    kwargs = salt.utils.args.clean_kwargs(**kwargs)
    client = salt.client.get_local_client(mopts=__opts__)
    returns = client.cmd(
        tgt,
        "cephimage.clone_check",
        arg=[image_id],
        kwarg=kwargs,
        tgt_type=tgt_type,
        timeout=timeout,
        full_return=True,
    )
    failures = {}
    for minion in sorted(returns or {}):
        answer = returns[minion]
        ret = answer.get("ret") if isinstance(answer, dict) else answer
        if isinstance(ret, dict) and not (isinstance(answer, dict) and answer.get("retcode")):
            return {"minion": minion, **ret}
        failures[minion] = ret
    __context__["retcode"] = 1
    if not failures:
        return {"error": f"no minion matching {tgt!r} ({tgt_type}) answered within {timeout} s",
                "retcode": 1}
    return {"error": "cephimage.clone_check failed on every targeted minion",
            "minions": failures, "retcode": 1}
