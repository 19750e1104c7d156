"""
The check a node makes before it is retired (``orch.ceph_openstack_retire``, SLS
``ceph_openstack.retire.ready``): no libvirt domain here may still use a secret of the
formula, unless pillar ``ceph_openstack_retire:force``. See README "Retiring a node".
"""

from salt.exceptions import CommandExecutionError

__virtualname__ = "ceph_openstack_retire"

RETIRE_ORCH = "orch.ceph_openstack_retire"


def __virtual__():
    return __virtualname__


def _request():
    """The ``ceph_openstack_retire`` pillar the orchestration passes to every step."""
    request = __pillar__.get("ceph_openstack_retire") or {}
    return request if isinstance(request, dict) else {}


def ready(name="ceph_openstack_retire", secrets=None, uri=None):
    """
    Before a node leaves: fail, changing nothing, while libvirt domains here (running or
    only defined) use a libvirt secret of the formula, naming them: retiring undefines
    the secrets and rotates the keys, so those guests would lose their disks. With pillar
    ``ceph_openstack_retire:force: true`` the run goes on, and the comment names them.

    secrets
        ``{uuid: client}`` of the formula's libvirt secrets (every one in pillar).

    .. code-block:: yaml

        ceph_openstack-retire-ready:
          ceph_openstack_retire.ready:
            - secrets: {691c3607-7ca3-433a-a0c0-5805cea8afa0: cinder}
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    me = __grains__["id"]
    if not secrets or "virtsecret.users" not in __salt__:
        ret["comment"] = f"{me} has no libvirt secret of the formula in use: ready to retire"
        return ret
    kwargs = {"uri": uri} if uri else {}
    used = []
    try:
        for uuid, client in sorted(secrets.items()):
            domains = __salt__["virtsecret.users"](uuid, **kwargs)
            if domains:
                used.append(f"domains {', '.join(domains)} use libvirt secret {uuid} "
                            f"(client.{client})")
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"{me}: {exc}; nothing changed")
        return ret
    if not used:
        ret["comment"] = f"no libvirt domain on {me} uses a secret of the formula: ready to retire"
        return ret
    if _request().get("force") is True:
        ret["comment"] = (f"on {me}, {'; '.join(used)}: retired anyway "
                          "(ceph_openstack_retire:force); they lose their disks when their "
                          "cephx tickets expire")
        return ret
    ret.update(result=False, comment=(
        f"on {me}, {'; '.join(used)}. Retiring {me} undefines its secrets and rotates the "
        "keys, so they would lose their disks: live-migrate them to another compute or shut "
        f"them down and undefine them, then run {RETIRE_ORCH} again; or set "
        "ceph_openstack_retire:force: true. Nothing changed"))
    return ret
