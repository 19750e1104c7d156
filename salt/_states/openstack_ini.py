"""
Manage keys in OpenStack (oslo.config) and Ceph ini files, keeping everything else byte for byte.

A thin layer over the ``openstack_ini`` execution module (see its docstring for the
value convention: booleans ``true``/``false``, lists comma-joined, a list for an oslo
multi-valued key such as ``[pci] device_spec`` writes one line per value).

.. code-block:: yaml

    /etc/nova/nova.conf:
      openstack_ini.options_present:
        - sections:
            libvirt:
              images_type: rbd
              images_rbd_pool: vms
              rbd_secret_uuid: 691c3607-7ca3-433a-a0c0-5805cea8afa0
        - user: root
        - group: nova
        - mode: "0640"

    legacy nova options:
      openstack_ini.options_absent:
        - name: /etc/nova/nova.conf
        - sections:
            libvirt: [live_migration_flag]

``changes`` maps ``section/key`` to ``{"old": ..., "new": ...}``, plus
``user``/``group``/``mode`` when those change. Secrets are masked there, also under
``test=True``: the whole value (``********``) of an option OpenStack marks secret
(``[DEFAULT] transport_url``, ``[database] connection``, passwords, ...), of a key named
like password/secret/key/token, or of one listed in ``secret_keys``; in any other value
the password of a URL (``rabbit://nova:********@ctl:5672/``). Comments name keys only.
"""

import importlib.util
import logging
import os
import sys

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


atomic_file = _helper("atomic_file")

log = logging.getLogger(__name__)

__virtualname__ = "openstack_ini"


def __virtual__():
    return __virtualname__


def _missing_directory(name):
    """The directory of file ``name`` (symlinks resolved) when it does not exist yet."""
    if not isinstance(name, str) or not os.path.isabs(name):
        return None  # the execution module names the problem
    return atomic_file.missing_directory(os.path.realpath(name))


def _run(name, function, comments, **kwargs):
    """Call the execution module (honouring test mode) and build the state return."""
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    test = bool(__opts__.get("test", False))
    missing = _missing_directory(name) if test else None
    try:
        changes = __salt__["openstack_ini.{}".format(function)](name, test=test, **kwargs)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    unchanged, would_change, changed = comments
    if not changes:
        ret["comment"] = unchanged.format(name)
    elif test:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = would_change.format(name, ", ".join(sorted(changes)))
        if missing:
            ret["comment"] += "; directory {} does not exist yet".format(missing)
    else:
        ret["changes"] = changes
        ret["comment"] = changed.format(name, ", ".join(sorted(changes)))
    return ret


def options_present(name, sections, secret_keys=None, user=None, group=None, mode=None):
    """
    Ensure ini keys hold the given values; every other byte of the file is kept.

    name
        Absolute path of the ini file (created if missing; its directory must exist).
    sections
        ``{section: {key: value}}``.
    secret_keys
        More keys (``key`` or ``section/key``) whose values are masked in changes;
        options OpenStack marks secret and keys named like password, secret, key or
        token are always masked, and so is the password of a URL in any value.
    user, group, mode
        Enforce owner, group and mode; unset ones are kept as they are.

    With ``test=True`` the result is None and ``changes`` lists what a real run
    would change; nothing is written.

    .. code-block:: yaml

        /etc/cinder/cinder.conf:
          openstack_ini.options_present:
            - sections:
                DEFAULT:
                  enabled_backends: [ceph]          # comma-joined: ceph
                ceph:
                  volume_driver: cinder.volume.drivers.rbd.RBDDriver
                  rbd_flatten_volume_from_snapshot: false
            - group: cinder
            - mode: "0640"
    """
    return _run(
        name,
        "options_present",
        (
            "{} already has the requested values",
            "{} would change: {}",
            "{} changed: {}",
        ),
        sections=sections,
        secret_keys=secret_keys,
        user=user,
        group=group,
        mode=mode,
    )


def options_absent(name, sections, drop_emptied=False):
    """
    Ensure ini keys are not set; comments and commented defaults stay.

    name
        Absolute path of the ini file (a missing file has nothing to remove).
    sections
        ``{section: [key, ...]}``; every occurrence of each key is removed.
    drop_emptied
        Also remove a section left with nothing but blank lines, and the blank lines
        then left at the end of the file: what ``options_present`` added comes out whole.

    .. code-block:: yaml

        /etc/glance/glance-api.conf:
          openstack_ini.options_absent:
            - sections:
                glance_store: [stores, default_store]
    """
    return _run(
        name,
        "options_absent",
        (
            "{} has none of the keys to remove",
            "{} would lose: {}",
            "{} lost: {}",
        ),
        sections=sections,
        drop_emptied=drop_emptied,
    )
