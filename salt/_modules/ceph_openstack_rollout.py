"""
What the orchestration (orch.ceph_openstack) asks every node before it changes anything:
are this node's synced modules the formula's, and is its pillar valid?

One call per node, in one job, instead of a ``saltutil.sync_all`` on every node (about
1.2 s each, most of it asking the master's fileserver about every module type) and a
separate state job for validation. Only the nodes whose modules differ are synced.

CLI Example:

.. code-block:: bash

    salt '*' ceph_openstack_rollout.preflight '{"_utils/cephx.py": "<sha256>"}'
"""

import hashlib
import os

__virtualname__ = "ceph_openstack_rollout"

#: Fileserver directory -> the directory of the minion's extension modules it syncs to.
SYNCED = {"_modules": "modules", "_states": "states", "_utils": "utils"}


def __virtual__():
    return __virtualname__


def _digest(path, hash_type):
    digest = hashlib.new(hash_type)
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(65536), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def stale(files, hash_type="sha256"):
    """
    The formula files whose synced copy on this minion differs from the master's.

    files
        ``{"_modules/cephpool.py": <hash>, ...}``: what the master's fileserver
        serves (``cp.hash_file`` of each), for ``_modules``, ``_states`` and
        ``_utils``.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack_rollout.stale '{"_utils/cephx.py": "<sha256>"}'
    """
    extmods = __opts__.get("extension_modules") or os.path.join(__opts__["cachedir"], "extmods")
    found = []
    for path, want in sorted((files or {}).items()):
        top, _, rest = path.partition("/")
        if top not in SYNCED or not rest:
            continue
        if _digest(os.path.join(extmods, SYNCED[top], rest), hash_type) != want:
            found.append(path)
    return found


def _fresh_pillar():
    """The minion's pillar compiled anew by the master, as a state run gets it."""
    try:
        return __salt__["pillar.items"](unmask=True)
    except TypeError:  # Salt before 3008 has no masking and no unmask argument
        return __salt__["pillar.items"]()


def preflight(files, hash_type="sha256"):
    """
    ``{"stale": [...], "problems": [...]}``: the formula files to sync to this
    minion (see :func:`stale`), and the problems of its ``ceph_openstack``
    pillar, compiled fresh as a state run would, each naming its key. The
    problems are only meaningful when nothing is stale (else the validator
    here may be an old one): the orchestration validates synced nodes again.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack_rollout.preflight '{"_utils/cephx.py": "<sha256>"}'
    """
    found = stale(files, hash_type)
    problems = []
    if not found:
        pillar = _fresh_pillar().get("ceph_openstack", {})
        problems = __salt__["ceph_openstack.validate"](pillar)
    return {"stale": found, "problems": problems}
