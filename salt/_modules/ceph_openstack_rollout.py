"""
What the orchestration (orch.ceph_openstack) asks every node before it changes anything:
are this node's synced modules the formula's, does it have one copy of them only (synced or
installed), and is its pillar valid? And, for the master rendering an orchestration, which
minions a target matches in its own data (``matched``).

One call per node, in one job, instead of a ``saltutil.sync_all`` on every node (about
1.2 s each, most of it asking the master's fileserver about every module type) and a
separate state job for validation. Only the nodes whose modules differ are synced.

CLI Example:

.. code-block:: bash

    salt '*' ceph_openstack_rollout.preflight '{"_utils/cephx.py": "<sha256>"}'
"""

import hashlib
import importlib.metadata
import os

import salt.utils.minions

__virtualname__ = "ceph_openstack_rollout"

#: Fileserver directory -> the directory of the minion's extension modules it syncs to.
SYNCED = {"_modules": "modules", "_states": "states", "_utils": "utils"}

#: The installed package (pip or salt-pip), and where its files sit in site-packages.
PACKAGE = "saltext.ceph_openstack"
PACKAGE_DIR = "saltext/ceph_openstack"


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
    extmods = _extmods()
    found = []
    for path, want in sorted((files or {}).items()):
        top, _, rest = path.partition("/")
        if top not in SYNCED or not rest:
            continue
        if _digest(os.path.join(extmods, SYNCED[top], rest), hash_type) != want:
            found.append(path)
    return found


def _extmods():
    return __opts__.get("extension_modules") or os.path.join(__opts__["cachedir"], "extmods")


def _installed():
    """``(version, {"modules/cephpool.py", ...})`` of the installed package, or None."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    files, kinds = set(), set(SYNCED.values())
    for path in dist.files or ():
        parts = str(path).split("/")
        if len(parts) == 4 and "/".join(parts[:2]) == PACKAGE_DIR and parts[2] in kinds:
            files.add("/".join(parts[2:]))
    return dist.version, str(dist.locate_file(PACKAGE_DIR)), files


def routes(files=None):
    """
    How this minion gets the formula's modules: ``{"installed": <version or None>,
    "synced": [<extmods files the package has too>], "problem": <text or None>}``.

    Salt's loader takes a synced copy (extmods) before an installed package's file of the
    same name, so a minion with both runs the synced copies, whatever their age. The
    problem names both, which one the loader uses, and how to remove the other. With the
    package installed and ``files`` (what the master's fileserver serves under
    ``_modules``, ``_states`` and ``_utils``, as for :func:`stale`) not empty, the
    orchestration's sync step would make such copies: that is a problem too.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack_rollout.routes
    """
    installed = _installed()
    if installed is None:
        return {"installed": None, "synced": [], "problem": None}
    version, where, package_files = installed
    extmods = _extmods()
    synced = sorted(path for path in package_files
                    if os.path.isfile(os.path.join(extmods, path)))
    minion = __opts__.get("id")
    problem = None
    if synced:
        shown = ", ".join(synced[:4]) + (f" and {len(synced) - 4} more" * (len(synced) > 4))
        problem = (
            f"{minion} has {PACKAGE} {version} installed ({where}) and synced copies of its "
            f"modules in {extmods} ({shown}); Salt's loader uses the synced copies. Keep one: "
            f"to use the package, stop serving salt/_modules, _states and _utils (file_roots "
            f"or gitfs) and run `salt {minion} saltutil.sync_all`, which deletes the synced "
            f"files the master no longer serves; to use the synced copies, uninstall the "
            f"package (`salt-pip uninstall {PACKAGE}` on the node, or pip in its Salt's "
            f"environment)."
        )
    elif files:
        problem = (
            f"{minion} has {PACKAGE} {version} installed ({where}) while the master serves "
            f"the formula's modules (salt/_modules, _states, _utils): syncing them would hide "
            f"the installed package from Salt's loader. Serve the SLS alone (file_roots: the "
            f"package's formula directory), or uninstall the package "
            f"(`salt-pip uninstall {PACKAGE}` on the node)."
        )
    return {"installed": version, "synced": synced, "problem": problem}


def _fresh_pillar():
    """The minion's pillar compiled anew by the master, as a state run gets it."""
    try:
        return __salt__["pillar.items"](unmask=True)
    except TypeError:  # Salt before 3008 has no masking and no unmask argument
        return __salt__["pillar.items"]()


def preflight(files, hash_type="sha256"):
    """
    ``{"stale": [...], "problems": [...], "routes": <problem or None>}``: the formula
    files to sync to this minion (see :func:`stale`), the problems of its
    ``ceph_openstack`` pillar, compiled fresh as a state run would, each naming its
    key, and a minion that has both the installed package and synced copies (see
    :func:`routes`). The pillar problems are only meaningful when nothing is stale
    (else the validator here may be an old one): the orchestration validates synced
    nodes again.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack_rollout.preflight '{"_utils/cephx.py": "<sha256>"}'
    """
    found = stale(files, hash_type)
    problems = []
    if not found:
        pillar = _fresh_pillar().get("ceph_openstack", {})
        problems = __salt__["ceph_openstack.validate"](pillar)
    return {"stale": found, "problems": problems, "routes": routes(files)["problem"]}


def matched(tgt, tgt_type="compound"):
    """
    The minion IDs the master's own data match with ``tgt``, answering or not: accepted
    keys, and the grains and pillar the master cached for them (a minion it has no data for
    does not match a grain or pillar expression). Run by the master when it renders an
    orchestration (orch.ceph_openstack_retire: is a node still named by the targets, does
    it have a key at all); on a minion it knows no keys.

    CLI Example:

    .. code-block:: bash

        salt-call ceph_openstack_rollout.matched 'G@role:compute and L@cmp3'
    """
    found = salt.utils.minions.CkMinions(__opts__).check_minions(tgt, tgt_type, greedy=False)
    minions = found.get("minions", []) if isinstance(found, dict) else found
    return sorted(minions or [])
