"""
Formula-level functions for ceph_openstack: cluster facts for the mine,
pillar validation, the health of the OpenStack services the formula manages,
and the verify step of the rollout.

CLI Example:

.. code-block:: bash

    salt -G role:mon ceph_openstack.cluster_info
    salt '*' ceph_openstack.validate
    salt '*' ceph_openstack.missing_keys
    salt '*' ceph_openstack.client_uses cinder-backup
    salt '*' ceph_openstack.services
    salt '*' ceph_openstack.verify
"""

import importlib.util
import logging
import os
import sys
import time

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


ceph_cli = _helper("ceph_cli")
ceph_openstack_mine = _helper("ceph_openstack_mine")
ceph_openstack_pillar = _helper("ceph_openstack_pillar")
ceph_openstack_services = _helper("ceph_openstack_services")
cephx = _helper("cephx")

log = logging.getLogger(__name__)

__virtualname__ = "ceph_openstack"

#: Seconds a unit's process must have stayed up (same MainPID, no restart by systemd).
SETTLE = 5


def __virtual__():
    return __virtualname__


def _conn(kwargs):
    return ceph_cli.connection(__salt__["config.get"], **kwargs)


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
    key = f"ceph_openstack.monmap:{ceph_cli.cache_key(conn)!r}"
    read_at, monmap = __context__.get(key, (None, None))
    if read_at is None or time.monotonic() - read_at > 60:
        monmap = ceph_cli.run(__salt__["cmd.run_all"], conn, ["mon", "dump"],
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
    return ceph_openstack_pillar.problems(pillar)


def _settings():
    """The formula's resolved settings (paths, roles, clients, secrets; no keys)."""
    return __salt__["slsutil.renderer"](
        "salt://ceph_openstack/settings.jinja", default_renderer="jinja|json"
    )


def missing_keys():
    """
    The keys this node's roles need that it cannot read yet, by client reference
    (``cinder``, ``cinder@dr`` on another cluster): neither in its pillar nor published
    by a mon in a mine entry this minion may read. A node added to minion-ID targets
    after the mons published has them all missing until a mon publishes again (the
    reactor ``reactor/ceph_openstack_join.sls`` runs orch.ceph_openstack_join for it).
    No key is returned.

    CLI Example:

    .. code-block:: bash

        salt cmp7 ceph_openstack.missing_keys
    """
    settings = _settings()
    roles = {"controller", "compute"} & set(settings["roles"])
    context, missing = {}, []
    for ref, client in sorted(settings["clients"].items()):
        if not roles & set(client["roles"]):
            continue
        key, _ = ceph_openstack_mine.client_key(
            __salt__["mine.get"], context, __pillar__, client["client"],
            {"mon": settings["mon_targets"][client["cluster"]]},
            None if client["cluster"] == settings["cluster"] else client["cluster"])
        if not key:
            missing.append(ref)
    return missing


def held():
    """
    The formula's clients whose keys this node holds, ``{cluster: [client, ...]}``: a
    keyring at the formula's path, or (on a compute) the client's libvirt secret of the
    pillar defined here. What orch.ceph_openstack_retire rotates when this node leaves.
    No key is returned.

    CLI Example:

    .. code-block:: bash

        salt cmp3 ceph_openstack.held
    """
    settings = _settings()
    refs = {ref for ref, client in settings["clients"].items()
            if os.path.lexists(client["keyring"])}
    if settings["secrets"] and "virtsecret.list" in __salt__:
        kwargs = {"uri": settings["libvirt_uri"]} if settings["libvirt_uri"] else {}
        defined = {secret["uuid"] for secret in __salt__["virtsecret.list"](**kwargs)}
        refs |= {ref for uuid, ref in settings["secrets"].items() if uuid.lower() in defined}
    found = {}
    for ref in sorted(refs):
        client = settings["clients"].get(ref)
        if client:
            found.setdefault(client["cluster"], []).append(client["client"])
    return found


def _ini(path):
    # Unmasked: rbd_secret_uuid is a name, not a secret; nothing read here is returned.
    try:
        return __salt__["openstack_ini.get"](path, unmask=True)
    except CommandExecutionError:
        return None


def _rbd_users(settings):
    """(file, pool, user, secret uuid, ceph conf) for every RBD user the local config files
    name; the conf is the one the file names for it (None: OpenStack's default)."""
    paths = settings["paths"]
    found = []
    cinder = _ini(paths["cinder_conf"]) or {}
    default = cinder.get("DEFAULT", {})
    for backend in filter(None, str(default.get("enabled_backends", "")).split(",")):
        section = cinder.get(backend.strip(), {})
        found.append((paths["cinder_conf"], section.get("rbd_pool"), section.get("rbd_user"),
                      section.get("rbd_secret_uuid"), section.get("rbd_ceph_conf")))
    if "ceph" in str(default.get("backup_driver", "")).lower():
        found.append((paths["cinder_conf"], default.get("backup_ceph_pool"),
                      default.get("backup_ceph_user"), None, default.get("backup_ceph_conf")))
    glance = _ini(paths["glance_conf"]) or {}
    for store in str(glance.get("DEFAULT", {}).get("enabled_backends", "")).split(","):
        name, _, kind = store.partition(":")
        if kind.strip() == "rbd":
            section = glance.get(name.strip(), {})
            found.append((paths["glance_conf"], section.get("rbd_store_pool"),
                          section.get("rbd_store_user"), None,
                          section.get("rbd_store_ceph_conf")))
    libvirt = (_ini(paths["nova_conf"]) or {}).get("libvirt", {})
    if libvirt.get("images_type") == "rbd":
        found.append((paths["nova_conf"], libvirt.get("images_rbd_pool"),
                      libvirt.get("rbd_user"), libvirt.get("rbd_secret_uuid"),
                      libvirt.get("images_rbd_ceph_conf")))
    return found


def client_uses(client, ceph_cluster=None):
    """
    Where this node's cinder.conf, glance-api.conf and nova.conf use ``client.<client>``
    of the pillar's cluster ``ceph_cluster`` (None: the main one) as an RBD user (a
    Cinder backend, the Ceph backup, a Glance RBD store, Nova's RBD disks), as
    ``["<file>: client.<client> on pool <pool>", ...]``; ``[]`` when none does. The
    keyring of a client marked absent in pillar is removed only where this is empty
    (``ceph_openstack.keyring_absent``).

    CLI Example:

    .. code-block:: bash

        salt -C 'G@role:controller or G@role:compute' ceph_openstack.client_uses cinder-backup
        salt ctl1 ceph_openstack.client_uses cinder ceph_cluster=dr
    """
    settings = _settings()
    main_conf = settings["paths"]["ceph_conf_real"]
    conf = (os.path.join(os.path.dirname(main_conf), f"{ceph_cluster}.conf")
            if ceph_cluster else main_conf)
    return [f"{path}: client.{user} on pool {pool}"
            for path, pool, user, _, found in _rbd_users(settings)
            if user == client and (found or main_conf) == conf]


def _client_conn(client, kwargs):
    """The connection of a pillar client (a settings ``clients`` entry) with its own
    keyring here, to its own cluster."""
    return _conn(dict(kwargs, conf=client["conf"], client_id=client["client"],
                      keyring=client["keyring"], cluster=client["cluster"]))


def _client_of(settings, user, conf):
    """The pillar client (settings ``clients`` entry) that ``user`` is on the cluster whose
    conf is ``conf`` (None: the main cluster), or None."""
    conf = conf or settings["paths"]["ceph_conf_real"]
    for client in settings["clients"].values():
        if client.get("client") == user and client.get("conf_real") == conf:
            return client
    return None


def verify(settle=SETTLE, **kwargs):
    """
    Check this node from its own point of view, with its own keyrings: each
    RBD user that cinder.conf, glance-api.conf or nova.conf names has its
    keyring here and can list the pool the file names (on the cluster the
    file's conf names), and each libvirt secret those files name holds that
    user's key. On a compute, each other libvirt secret of the formula (a
    Cinder backend's, on any cluster) holds the key of its client, whose
    keyring here logs in. Each OpenStack service the
    formula manages here is running and stays up (``settle`` seconds, see
    ``ceph_openstack.services``) and, where it logs it, its Ceph driver started:
    one check per service (``service cinder-volume``), a problem names the
    service's log file.

    The services are left out, saying why under ``notes``, where pillar
    ``services:restart`` is false (the formula does not manage them; they may
    run elsewhere or be managed by other means) and where ``lookup:root`` is set
    (the formula's files are then not the ones the services here read, as in
    the sandbox lab).

    Returns ``{"ok": bool, "checks": {check: "ok" or the problem}}``, plus
    ``"notes": {subject: text}`` for what was not checked.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack.verify
        salt '*' ceph_openstack.verify settle=10
    """
    settings = _settings()
    checks = {}
    for path, pool, user, secret_uuid, conf in _rbd_users(settings):
        client = _client_of(settings, user, conf)
        label = f"{path}: client.{user} on pool {pool}"
        if client is None:
            checks[label] = (f"client.{user} of the cluster of {conf} is not in pillar "
                             "ceph_openstack:clients nor in ceph_openstack:clusters:<name>:"
                             "clients" if conf else
                             f"client.{user} is not in pillar ceph_openstack:clients")
            continue
        if client["cluster"] != settings["cluster"]:
            label += f" of cluster {client['cluster']}"
        keyring = client["keyring"]
        if not os.path.exists(keyring):
            checks[label] = f"keyring {keyring} is missing"
            continue
        conn = _client_conn(client, kwargs)
        try:
            ceph_cli.run(__salt__["cmd.run_all"], conn,
                                      ["ls", "--pool", pool], binary="rbd")
            checks[label] = "ok"
        except CommandExecutionError as exc:
            checks[label] = str(exc)
        if secret_uuid:
            checks[f"{path}: libvirt secret {secret_uuid}"] = _check_secret(
                secret_uuid, keyring, settings
            )
    more_checks, notes = _other_secrets(settings, checks, kwargs)
    checks.update(more_checks)
    if not checks:
        if {"controller", "compute"} & set(settings["roles"]):
            checks["config files"] = (
                "no RBD user named in cinder.conf, glance-api.conf or nova.conf"
            )
        else:
            checks["no OpenStack role here"] = "ok"
    if settings.get("services"):
        not_checked = _services_not_checked(settings)
        if not_checked:
            notes["services"] = not_checked
        else:
            specs = ceph_openstack_services.service_specs(settings)
            for unit, health in _observe(specs, float(settle), 0).items():
                checks[f"service {unit}"] = health["problem"] or "ok"
                if health["note"]:
                    notes[f"service {unit}"] = health["note"]
    report = {"ok": all(v == "ok" for v in checks.values()), "checks": checks}
    if notes:
        report["notes"] = notes
    return report


def _other_secrets(settings, checks, kwargs):
    """On a compute, ``(checks, notes)`` of the formula's libvirt secrets nova.conf does not
    name (a Cinder backend's, of any cluster: Cinder hands Nova its rbd_secret_uuid at
    attach time): the client's keyring here logs in to its cluster, and the secret holds
    its key. A secret libvirt does not have yet (a new one in pillar, before the rollout
    defines it) is a note: what is here is checked, as for the files."""
    found, notes = {}, {}
    if "compute" not in settings["roles"]:
        return found, notes
    uri = {"uri": settings["libvirt_uri"]} if settings.get("libvirt_uri") else {}
    for uuid, ref in sorted((settings.get("secrets") or {}).items()):
        if any(label.endswith(f": libvirt secret {uuid}") for label in checks):
            continue
        client = settings["clients"].get(ref)
        if client is None:
            continue  # the validator refuses a secret of an unknown client
        label = f"libvirt secret {uuid} of client.{client['client']}"
        if client["cluster"] != settings["cluster"]:
            label += f" of cluster {client['cluster']}"
        try:
            if __salt__["virtsecret.get"](uuid, **uri) is None:
                notes[label] = "not defined in libvirt here yet (the rollout defines it)"
                continue
        except CommandExecutionError as exc:
            found[label] = str(exc)
            continue
        keyring = client["keyring"]
        if not os.path.exists(keyring):
            found[label] = f"keyring {keyring} is missing"
            continue
        conn = _client_conn(client, kwargs)
        try:
            ceph_cli.run(__salt__["cmd.run_all"], conn, ["mon", "stat"])
        except CommandExecutionError as exc:
            found[label] = f"client.{client['client']} cannot log in with {keyring}: {exc}"
            continue
        found[label] = _check_secret(uuid, keyring, settings)
    return found, notes


def _check_secret(secret_uuid, keyring, settings):
    if "compute" not in settings["roles"]:
        return "ok"  # controllers name the secret for nova; only computes hold it
    key = cephx.keyring_file_key(keyring)
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


# -- the OpenStack services the formula manages ---------------------------------------------
#
# What systemd and the services' logs say is read in _utils/ceph_openstack_services.py.


def _observe(specs, settle, init_timeout):
    return ceph_openstack_services.observe(
        __salt__["cmd.run_all"], __context__, specs, settle, init_timeout)


def unit_status(name):
    """
    What systemd says of unit ``name`` now: ``loaded`` (LoadState), ``active``
    (ActiveState), ``sub`` (SubState), ``pid`` (MainPID, 0 when none), ``restarts``
    (NRestarts: restarts by systemd since the unit was last started by hand),
    ``started_at`` (when its current process started, seconds since the epoch) and
    ``up_seconds``.

    Raises CommandExecutionError when systemd is not running as PID 1 here (no
    ``/run/systemd/system``, as in a chroot) or ``systemctl show`` fails.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack.unit_status cinder-volume
    """
    return ceph_openstack_services.unit_status(__salt__["cmd.run_all"], __context__, name)


def services(names=None, settle=SETTLE, init_timeout=0):
    """
    The health of the OpenStack services the formula manages on this node, as systemd
    and their logs tell it: cinder-volume where pillar ``cinder:backends`` has backends
    and cinder-backup where ``cinder:backup`` is set (controllers), glance-api where
    ``glance`` is set (controllers), nova-compute where ``nova`` is set (computes); unit
    names and log files from ``lookup:services`` and ``lookup:service_logs``.

    A unit is running when its process has stayed up ``settle`` seconds (same MainPID,
    no restart by systemd): a crash-looping unit is "active" between systemd's restarts.
    This waits only while a unit's process is younger than that. Where a service logs
    that its Ceph driver started (cinder-volume, cinder-backup), its log since the
    unit's current start must say so; ``init_timeout`` seconds are given to it (0: look
    once). Without systemd as PID 1 nothing can be told, and each service says so.

    names
        Only these services: formula keys (``cinder_volume``) or unit names, a list or
        a comma-separated string.

    Returns ``{unit: {"ok", "problem", "status", "active", "sub", "pid", "restarts",
    "up_seconds", "driver", "note", "log", "service", "unit"}}``; ``status`` is one of
    running, crash-looping, starting, stopped, not installed, unknown, no systemd.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack.services
        salt -G role:controller ceph_openstack.services cinder_volume settle=10
    """
    specs = ceph_openstack_services.service_specs(_settings(), names)
    return _observe(specs, float(settle), float(init_timeout or 0))


def service_health(name, log=None, service=None, settle=SETTLE, init_timeout=0):
    """
    The health of one unit, as ``services`` reports each (see there): running once its
    process has stayed up ``settle`` seconds; for ``service`` ``cinder_volume`` or
    ``cinder_backup``, its Ceph driver's start found in ``log`` since the unit started,
    waiting up to ``init_timeout`` seconds for it.

    name
        The systemd unit, e.g. ``cinder-volume``.
    log
        Its log file, named in problems and read for the driver's start.
    service
        The formula's key of the service: cinder_volume, cinder_backup, glance_api or
        nova_compute.

    CLI Example:

    .. code-block:: bash

        salt '*' ceph_openstack.service_health cinder-volume service=cinder_volume \
            log=/var/log/cinder/cinder-volume.log
    """
    spec = {"unit": name, "service": service, "log": log}
    return _observe([spec], float(settle), float(init_timeout or 0))[name]


def _services_not_checked(settings):
    """Why verify leaves the services alone here, or None."""
    units = ", ".join(spec["unit"] for spec in ceph_openstack_services.service_specs(settings))
    if not settings.get("restart"):
        return (f"not checked ({units}): pillar ceph_openstack:services:restart is false, "
                "so the formula does not manage them here "
                "(salt-call ceph_openstack.services reports them)")
    if settings.get("root"):
        return (f"not checked ({units}): lookup:root is {settings['root']}, so these are "
                "not the files the services on this host read")
    return None