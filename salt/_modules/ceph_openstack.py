"""
Formula-level functions for ceph_openstack: cluster facts for the mine,
pillar validation, and the verify step of the rollout.

CLI Example:

.. code-block:: bash

    salt -G role:mon ceph_openstack.cluster_info
    salt '*' ceph_openstack.validate
    salt '*' ceph_openstack.verify
"""

import logging
import os
import time

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "ceph_openstack"


def __virtual__():
    return __virtualname__


def _conn(kwargs):
    return __utils__["ceph_cli.connection"](__salt__["config.get"], **kwargs)


def cluster_info(**connection):
    """
    The cluster's fsid and mon addresses, as clients write them in ceph.conf.

    CLI Example:

    .. code-block:: bash

        salt -G role:mon ceph_openstack.cluster_info
    """
    conn = _conn(connection)
    # Read once per run (the state that publishes the facts reads them, then mine.update
    # does); bounded in time for minions whose __context__ outlives a run.
    key = f"ceph_openstack.monmap:{__utils__['ceph_cli.cache_key'](conn)!r}"
    read_at, monmap = __context__.get(key, (None, None))
    if read_at is None or time.monotonic() - read_at > 60:
        monmap = __utils__["ceph_cli.run"](__salt__["cmd.run_all"], conn, ["mon", "dump"],
                                           context=__context__)
        __context__[key] = (time.monotonic(), monmap)
    hosts = []
    for mon in monmap.get("mons", []):
        addrvec = (mon.get("public_addrs") or {}).get("addrvec") or []
        addrs = ",".join(f"{a['type']}:{a['addr']}" for a in addrvec)
        hosts.append(f"[{addrs}]" if addrs else mon.get("addr", "").split("/")[0])
    return {"fsid": monmap["fsid"], "mon_host": " ".join(hosts)}


def validate(pillar=None):
    """
    Check the ``ceph_openstack`` pillar and return a list of problems, each
    naming its pillar key (an empty list when it is valid).

    pillar
        The ``ceph_openstack`` dict to check; the minion's own pillar by default.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack.validate
    """
    if pillar is None:
        pillar = __pillar__.get("ceph_openstack", {})
    return __utils__["ceph_openstack_pillar.problems"](pillar)


def _settings():
    """The formula's resolved settings (paths, roles, clients, secrets; no keys)."""
    return __salt__["slsutil.renderer"](
        "salt://ceph_openstack/settings.jinja", default_renderer="jinja|json"
    )


def _ini(path):
    # Unmasked: rbd_secret_uuid is a name, not a secret; nothing read here is returned.
    try:
        return __salt__["openstack_ini.get"](path, unmask=True)
    except CommandExecutionError:
        return None


def _rbd_users(settings):
    """(file, pool, user, secret uuid) for every RBD user the local config files name."""
    paths = settings["paths"]
    found = []
    cinder = _ini(paths["cinder_conf"]) or {}
    default = cinder.get("DEFAULT", {})
    for backend in filter(None, str(default.get("enabled_backends", "")).split(",")):
        section = cinder.get(backend.strip(), {})
        found.append((paths["cinder_conf"], section.get("rbd_pool"), section.get("rbd_user"),
                      section.get("rbd_secret_uuid")))
    if "ceph" in str(default.get("backup_driver", "")).lower():
        found.append((paths["cinder_conf"], default.get("backup_ceph_pool"),
                      default.get("backup_ceph_user"), None))
    glance = _ini(paths["glance_conf"]) or {}
    for store in str(glance.get("DEFAULT", {}).get("enabled_backends", "")).split(","):
        name, _, kind = store.partition(":")
        if kind.strip() == "rbd":
            section = glance.get(name.strip(), {})
            found.append((paths["glance_conf"], section.get("rbd_store_pool"),
                          section.get("rbd_store_user"), None))
    libvirt = (_ini(paths["nova_conf"]) or {}).get("libvirt", {})
    if libvirt.get("images_type") == "rbd":
        found.append((paths["nova_conf"], libvirt.get("images_rbd_pool"),
                      libvirt.get("rbd_user"), libvirt.get("rbd_secret_uuid")))
    return found


def verify(**kwargs):
    """
    Check this node from its own point of view, with its own keyrings: each
    RBD user that cinder.conf, glance-api.conf or nova.conf names has its
    keyring here and can list the pool the file names, and each libvirt
    secret those files name holds that user's key.

    Returns ``{"ok": bool, "checks": {check: "ok" or the problem}}``.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack.verify
    """
    settings = _settings()
    clients = settings["clients"]
    checks = {}
    for path, pool, user, secret_uuid in _rbd_users(settings):
        label = f"{path}: client.{user} on pool {pool}"
        if user not in clients:
            checks[label] = f"client.{user} is not in pillar ceph_openstack:clients"
            continue
        keyring = clients[user]["keyring"]
        if not os.path.exists(keyring):
            checks[label] = f"keyring {keyring} is missing"
            continue
        conn = _conn(dict(kwargs, conf=settings["paths"]["ceph_conf"], client_id=user,
                          keyring=keyring, cluster=settings["cluster"]))
        try:
            __utils__["ceph_cli.run"](__salt__["cmd.run_all"], conn,
                                      ["ls", "--pool", pool], binary="rbd")
            checks[label] = "ok"
        except CommandExecutionError as exc:
            checks[label] = str(exc)
        if secret_uuid:
            checks[f"{path}: libvirt secret {secret_uuid}"] = _check_secret(
                secret_uuid, keyring, settings
            )
    if not checks:
        if {"controller", "compute"} & set(settings["roles"]):
            checks["config files"] = (
                "no RBD user named in cinder.conf, glance-api.conf or nova.conf"
            )
        else:
            checks["no OpenStack role here"] = "ok"
    return {"ok": all(v == "ok" for v in checks.values()), "checks": checks}


def _check_secret(secret_uuid, keyring, settings):
    if "compute" not in settings["roles"]:
        return "ok"  # controllers name the secret for nova; only computes hold it
    key = __utils__["cephx.keyring_file_key"](keyring)
    if not key:
        return f"no key in {keyring}"
    uri = {"uri": settings["libvirt_uri"]} if settings.get("libvirt_uri") else {}
    try:
        matches = __salt__["virtsecret.value_matches"](secret_uuid, key, **uri)
    except CommandExecutionError as exc:
        return str(exc)
    if matches is None:
        return "ok"  # a private secret's value cannot be read back, so not compared
    return "ok" if matches else f"libvirt secret {secret_uuid} does not hold the key in {keyring}"
