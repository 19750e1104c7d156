"""
The libvirt secret that lets QEMU open Ceph RBD disks, managed without exposing the key.

.. code-block:: yaml

    ceph-client-cinder-secret:
      virtsecret.present:
        - name: 691c3607-7ca3-433a-a0c0-5805cea8afa0
        - usage: client.cinder secret
        - value: {{ cinder_key }}

Every compute node must hold the same UUID (nova.conf and cinder.conf name it
in ``rbd_secret_uuid``), so the state never changes a UUID in place: it
defines the secret when missing and sets a new value in place on key
rotation. A new UUID for the same usage is a new secret; libvirt lets only
one secret hold a usage, so with ``replace: True`` the old one is undefined
first, but only while no libvirt domain uses it (guests keep the old UUID in
their disk definitions until nova rebuilds them). The key
never appears in ``changes``, ``comment``, logs or any argv; changes report
``"set"`` / ``"changed"``.

Connection options (``uri``, ``backend``, ``timeout``) are those of the
``virtsecret`` execution module, with the same ``config.get`` defaults.

Private secrets: libvirt never reveals the value of a private secret, so it
cannot be compared. ``present`` then sets the value on every run and reports
it (``value: {old: unknown (private), new: set}``, comment "value set (private
secret: cannot compare)"): setting the same value again is harmless, and
claiming "no change" without knowing would be a lie. Keep ``private: False``
(the default, as the upstream runbook does) for a quiet second run.
"""

import importlib.util
import os
import sys
import logging
import re

from salt.exceptions import CommandExecutionError


def _helper(name):
    """This project's helper module ``name``: ``utils/<name>.py`` beside this file's
    directory, synced or installed alike (``_utils`` in a checkout), loaded once per
    version of that file; see README, "Where the modules find their helpers"."""
    base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(base, "utils", name + ".py")
    if not os.path.exists(path):
        path = os.path.join(base, "_utils", name + ".py")
    key = f"ceph_openstack.helpers:{path}:{os.stat(path).st_mtime_ns}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(f"ceph_openstack_helpers.{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[key] = module
    return sys.modules[key]


cephx = _helper("cephx")

log = logging.getLogger(__name__)

__virtualname__ = "virtsecret"

# Matched with fullmatch: "$" would let a trailing newline through.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def __virtual__():
    if "virtsecret.get" in __salt__:
        return __virtualname__
    return (False, "virtsecret state: the virtsecret execution module is not available")


def _input_problem(name, usage=None, value=None, flags=None):
    """The first problem with the arguments (naming the argument, never a value), or None."""
    if not isinstance(name, str) or not _UUID.fullmatch(name):
        return f"name must be a UUID in canonical 8-4-4-4-12 hex form, not {name!r}"
    if usage is not None:
        if not isinstance(usage, str) or not usage.strip():
            return "usage must be a non-empty string"
        if _CONTROL.search(usage) or usage != usage.strip():
            return "usage must be one line without control characters or leading/trailing spaces"
    if value is not None:
        problem = cephx.key_problem(value, "value")
        if problem:
            return problem
    for flag, setting in (flags or {}).items():
        if not isinstance(setting, bool):
            return f"{flag} must be true or false, not {setting!r}"
    return None


def _conn(uri, backend, timeout):
    return {"uri": uri, "backend": backend, "timeout": timeout}


def present(
    name,
    usage="client.cinder secret",
    value=None,
    private=False,
    ephemeral=False,
    replace=False,
    uri=None,
    backend=None,
    timeout=None,
):
    """
    Ensure the secret ``name`` (a UUID) exists with ``usage type='ceph'``
    named ``usage`` and holds the cephx key ``value``.

    name
        The secret's UUID, the ``rbd_secret_uuid`` of nova.conf and cinder.conf.
    usage
        The ceph usage name. Fails, changing nothing, when another secret holds
        it or when ``name`` is defined with another usage (both are named).
    value
        The cephx key (base64, as ``ceph auth get-key`` prints). Set in place
        when it differs (key rotation keeps the UUID). ``None`` leaves the value alone.
    private
        libvirt refuses to reveal the value: it can then not be compared (see
        the module documentation). A private secret cannot be made public again.
    ephemeral
        Keep the secret in memory only (lost when libvirtd restarts).
    replace
        When another secret holds ``usage`` (the UUID changed in pillar),
        undefine that secret first, reported as ``replaced``. Refused, changing
        nothing, while a libvirt domain uses it; the comment names the domains.
        ``False`` (the default) always refuses.
    uri, backend, timeout
        Connection options of the ``virtsecret`` execution module.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    flags = {"private": private, "ephemeral": ephemeral, "replace": replace}
    problem = _input_problem(name, usage, value, flags)
    if problem:
        ret["comment"] = problem
        return ret
    uuid = name.lower()
    conn = _conn(uri, backend, timeout)
    wanted_usage = f"ceph {usage!r}"

    try:
        current = __salt__["virtsecret.get"](uuid, **conn)
        holder = __salt__["virtsecret.find"](usage, **conn)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret

    if current is not None and (current["usage_type"], current["usage"]) != ("ceph", usage):
        ret["comment"] = (
            f"secret {uuid} is already defined with usage "
            f"{current['usage_type']} {current['usage']!r}, not {wanted_usage}; nothing changed"
        )
        return ret
    replaced = None
    if holder is not None and holder != uuid:
        held = f"usage {wanted_usage} is already held by secret {holder}"
        if not replace:
            ret["comment"] = f"{held}, so secret {uuid} cannot take it; nothing changed"
            return ret
        try:
            in_use = __salt__["virtsecret.users"](holder, **conn)
        except CommandExecutionError as exc:
            ret["comment"] = str(exc)
            return ret
        if in_use:
            ret["comment"] = (
                f"{held}, which domains {', '.join(in_use)} use; refusing to replace it "
                f"with secret {uuid} (keep the old UUID until those guests use the new "
                "one); nothing changed"
            )
            return ret
        replaced = holder
    if current is not None and current["private"] and not private:
        ret["comment"] = (
            f"secret {uuid} is private and libvirt cannot make it public again "
            "(undefine it, then run this state); nothing changed"
        )
        return ret

    matches = False
    if current is not None and value is not None:
        # Compare before changing anything: a redefinition may make it private.
        try:
            matches = __salt__["virtsecret.value_matches"](uuid, value, **conn)
        except CommandExecutionError as exc:
            ret["comment"] = str(exc)
            return ret

    changes, done = {}, []
    if replaced:
        changes["replaced"] = {"old": replaced, "new": uuid}
        done.append(f"unused secret {replaced} undefined")
    if current is None:
        changes["defined"] = {"old": None, "new": uuid}
        done.append(f"secret {uuid} defined with usage {wanted_usage}")
    else:
        for flag, setting in (("private", private), ("ephemeral", ephemeral)):
            if current[flag] != setting:
                changes[flag] = {"old": current[flag], "new": setting}
                done.append(f"{flag} set to {setting}")
    if value is not None:
        if current is None:
            changes["value"] = {"old": None, "new": "set"}
            done.append("value set")
        elif matches is None:
            changes["value"] = {"old": "unknown (private)", "new": "set"}
            done.append("value set (private secret: cannot compare)")
        elif not matches:
            changes["value"] = {"old": "different", "new": "changed"}
            done.append("value changed")

    if not changes:
        ret["result"] = True
        ret["comment"] = f"secret {uuid} ({wanted_usage}) is in the desired state"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = "would be: " + "; ".join(done)
        return ret

    try:
        if replaced:
            __salt__["virtsecret.undefine"](replaced, **conn)
            ret["changes"]["replaced"] = changes["replaced"]
        if current is None or "private" in changes or "ephemeral" in changes:
            __salt__["virtsecret.define"](
                uuid,
                usage,
                private=private,
                ephemeral=ephemeral,
                # a redefinition must not drop a description set by someone else
                description=current["description"] if current else None,
                **conn,
            )
            for key in ("defined", "private", "ephemeral"):
                if key in changes:
                    ret["changes"][key] = changes[key]
        if "value" in changes:
            __salt__["virtsecret.set_value"](uuid, value, **conn)
            ret["changes"]["value"] = changes["value"]
    except CommandExecutionError as exc:
        ret["comment"] = f"{exc}" + (
            f" (already done: {', '.join(ret['changes'])})" if ret["changes"] else ""
        )
        return ret

    ret["result"] = True
    ret["comment"] = "; ".join(done)
    return ret


def absent(name, force=False, uri=None, backend=None, timeout=None):
    """
    Ensure the secret ``name`` (a UUID) is not defined.

    This removes the secret and its value: guests whose disks use it can no
    longer open them (nova needs it for every attach and live migration).
    So it is refused, changing nothing, while a libvirt domain (running or
    only defined) uses the secret (``virtsecret.users``); the comment names
    those domains. ``test=True`` predicts the same refusal.

    name
        The secret's UUID.
    force
        Undefine it even when domains use it.
    uri, backend, timeout
        Connection options of the ``virtsecret`` execution module.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    problem = _input_problem(name, flags={"force": force})
    if problem:
        ret["comment"] = problem
        return ret
    uuid = name.lower()
    conn = _conn(uri, backend, timeout)
    try:
        if __salt__["virtsecret.get"](uuid, **conn) is None:
            ret["result"] = True
            ret["comment"] = f"secret {uuid} is already absent"
            return ret
        in_use = [] if force else __salt__["virtsecret.users"](uuid, **conn)
        if in_use:
            ret["comment"] = (
                f"secret {uuid} is used by domains {', '.join(in_use)}; refusing to "
                "undefine it (force=True to remove it anyway)"
            )
            return ret
        changes = {"defined": {"old": uuid, "new": None}}
        if __opts__["test"]:
            ret["result"] = None
            ret["changes"] = changes
            ret["comment"] = f"secret {uuid} would be undefined"
            return ret
        __salt__["virtsecret.undefine"](uuid, **conn)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret["result"] = True
    ret["changes"] = changes
    ret["comment"] = f"secret {uuid} undefined"
    return ret
