"""
The services the formula restarts, rendered by Salt's real state compiler from
pillar.example: each is a ``ceph_openstack.service_running`` state (restart, then check
that the unit stayed up, naming its log) with the state ID and the watch list the
``service.running`` states had, in the rollout and in the rotation's restart step. On a
host where systemctl exists but systemd is not PID 1, the state fails, called directly
and through a watch, where Salt's own ``service.running`` does nothing and succeeds.
"""

import os
import shutil

import pytest

from tests.conftest import ROOT
from tests.support.formula import formula_loaders, low_chunks

#: Rendering asks nothing of Ceph.
pytestmark = pytest.mark.release_independent

CEPH_CONF = {"ceph_openstack": "ceph_openstack-ceph-conf"}


def keyring(client):
    return {"ceph_openstack": f"ceph_openstack-keyring-{client}"}


#: The cinder.conf options of pillar.example's backup, which cinder-volume does not read.
BACKUP_KEYS = ["DEFAULT/backup_ceph_chunk_size", "DEFAULT/backup_ceph_conf",
               "DEFAULT/backup_ceph_pool", "DEFAULT/backup_ceph_stripe_count",
               "DEFAULT/backup_ceph_stripe_unit", "DEFAULT/backup_ceph_user",
               "DEFAULT/backup_driver", "DEFAULT/restore_discard_excess_bytes"]

EXPECTED = {
    "ceph_openstack-service-cinder_volume": (
        "cinder-volume", "cinder_volume", "/var/log/cinder/cinder-volume.log",
        [{"openstack_ini": "ceph_openstack-cinder-conf"}, CEPH_CONF, keyring("cinder")]),
    "ceph_openstack-service-cinder_backup": (
        "cinder-backup", "cinder_backup", "/var/log/cinder/cinder-backup.log",
        [{"openstack_ini": "ceph_openstack-cinder-conf"}, CEPH_CONF,
         keyring("cinder-backup")]),
    "ceph_openstack-service-glance_api": (
        "glance-api", "glance_api", "/var/log/glance/glance-api.log",
        [{"openstack_ini": "ceph_openstack-glance-conf"},
         {"openstack_ini": "ceph_openstack-glance-single-store-options"}, CEPH_CONF,
         keyring("glance")]),
    "ceph_openstack-service-nova_compute": (
        "nova-compute", "nova_compute", "/var/log/nova/nova-compute.log",
        [{"openstack_ini": "ceph_openstack-nova-conf"}, CEPH_CONF,
         keyring("cinder")]),
}

#: The options of the watched files each service does not read (restart-free changes).
IGNORED = {"ceph_openstack-service-cinder_volume": BACKUP_KEYS,
           "ceph_openstack-service-cinder_backup": ["DEFAULT/enabled_backends", "ceph/*"]}


@pytest.fixture
def loaders(minion_opts, tmp_path):
    loaders = formula_loaders(minion_opts, tmp_path / "pillar", ROOT / "pillar.example")
    yield loaders
    loaders.reset_state()


def services(chunks):
    return {chunk["__id__"]: chunk for chunk in chunks
            if "-service-" in chunk["__id__"]}


def test_each_service_restarts_through_service_running_with_its_log(loaders):
    found = services(low_chunks(loaders, ["controller", "compute"]))
    assert sorted(found) == sorted(EXPECTED)
    for sid, (unit, service, log, watch) in EXPECTED.items():
        chunk = found[sid]
        assert (chunk["state"], chunk["fun"]) == ("ceph_openstack", "service_running"), sid
        assert (chunk["name"], chunk["service"], chunk["log"]) == (unit, service, log), sid
        assert chunk["watch"] == watch, sid
        assert sorted(chunk.get("ignore", [])) == sorted(IGNORED.get(sid, [])), sid


def test_lookup_moves_or_drops_a_log_and_root_prefixes_it(loaders):
    pillar = {"ceph_openstack": {"lookup": {
        "root": "/srv/roots/ctl1",
        "service_logs": {"glance_api": "/srv/log/glance.log", "cinder_backup": None}}}}
    found = services(low_chunks(loaders, ["controller"], pillar=pillar))
    assert found["ceph_openstack-service-glance_api"]["log"] == "/srv/roots/ctl1/srv/log/glance.log"
    assert "log" not in found["ceph_openstack-service-cinder_backup"]
    assert found["ceph_openstack-service-cinder_volume"]["log"] == (
        "/srv/roots/ctl1/var/log/cinder/cinder-volume.log")


def test_no_service_state_without_services_restart(loaders):
    pillar = {"ceph_openstack": {"services": {"restart": False}}}
    assert services(low_chunks(loaders, ["controller", "compute"], pillar=pillar)) == {}


def test_the_rotation_restarts_through_service_running_too(loaders):
    loaders.grains["role"] = ["controller", "compute"]
    chunks = loaders.modules.state.show_low_sls(
        "ceph_openstack.rotate.restart",
        pillar={"ceph_openstack_rotate": {"clients": ["cinder"]}})
    assert isinstance(chunks, list) and all(isinstance(c, dict) for c in chunks), chunks
    found = {c["__id__"]: c for c in chunks if "-service-" in c["__id__"]}
    # Only the services that read client.cinder's keyring (pillar.example: the Cinder
    # backend and Nova's disks); cinder-backup and glance-api use their own clients.
    assert sorted(found) == [f"ceph_openstack-rotate-service-{unit}" for unit in
                             ("cinder_volume", "nova_compute")]
    volume = found["ceph_openstack-rotate-service-cinder_volume"]
    assert (volume["fun"], volume["service"], volume["log"]) == (
        "service_running", "cinder_volume", "/var/log/cinder/cinder-volume.log")
    assert volume["watch"] == [
        {"ceph_openstack_rotation": "ceph_openstack-rotate-restart-cinder"}]


def test_rotating_glances_key_restarts_glance_api_alone(loaders):
    loaders.grains["role"] = ["controller", "compute"]
    chunks = loaders.modules.state.show_low_sls(
        "ceph_openstack.rotate.restart",
        pillar={"ceph_openstack_rotate": {"clients": ["glance"]}})
    found = {c["__id__"]: c for c in chunks if "-service-" in c["__id__"]}
    assert list(found) == ["ceph_openstack-rotate-service-glance_api"]
    assert found["ceph_openstack-rotate-service-glance_api"]["watch"] == [
        {"ceph_openstack_rotation": "ceph_openstack-rotate-restart-glance"}]


# -- through Salt's real loader and state machinery on this host ----------------------------

SYSTEMD_BOOTED = os.path.isdir("/run/systemd/system")
OFFLINE = not SYSTEMD_BOOTED and shutil.which("systemctl") is not None


@pytest.mark.skipif(not OFFLINE, reason="needs systemctl without systemd as PID 1 (a "
                                        "container or chroot), where Salt's service module "
                                        "runs in systemd's offline mode")
def test_offline_mode_fails_where_salts_service_running_does_nothing(loaders):
    assert loaders.states.service.running("cinder-volume").comment == (
        "Running in OFFLINE mode. Nothing to do")  # Salt's own: result True
    ret = loaders.states.ceph_openstack.service_running(
        "cinder-volume", log="/var/log/cinder/cinder-volume.log")
    assert ret.result is False
    assert ret.comment.startswith("cinder-volume was not started or checked: systemd is not "
                                  "running as PID 1 here")
    # Watched: Salt calls the module's mod_watch, which fails the same way, also under test.
    high = {
        "changed": {"test": ["succeed_with_changes"], "__env__": "base", "__sls__": "t"},
        "ceph_openstack-service-cinder_volume": {
            "ceph_openstack": ["service_running", {"name": "cinder-volume"},
                               {"watch": [{"test": "changed"}]}],
            "__env__": "base", "__sls__": "t"},
    }
    for test in (False, True):
        results = {r.state_id.split("_|-")[1]: r for r in
                   loaders.modules.state.high(high, test=test)}
        service = results["ceph_openstack-service-cinder_volume"]
        assert service.result is False, test
        assert service.comment.startswith("cinder-volume was not restarted: systemd is not "
                                          "running as PID 1 here"), test
    health = loaders.modules.ceph_openstack.service_health("cinder-volume")
    assert (health["status"], health["ok"]) == ("no systemd", False)


@pytest.mark.skipif(not SYSTEMD_BOOTED, reason="needs systemd as PID 1")
def test_a_unit_systemd_does_not_know_is_reported_not_installed(loaders):
    health = loaders.modules.ceph_openstack.service_health("ceph-openstack-no-such-unit")
    assert health["status"] == "not installed", health
    assert health["problem"] == ("ceph-openstack-no-such-unit is not installed (systemd has "
                                 "no unit ceph-openstack-no-such-unit)")


@pytest.mark.parametrize("roles, services", [
    (["controller", "compute"], ["cinder_backup", "cinder_volume", "glance_api", "nova_compute"]),
    (["compute"], ["nova_compute"]),
    (["mon"], []),
])
def test_verify_reads_the_services_of_the_nodes_roles(loaders, roles, services):
    """settings.jinja (what verify reads) names the services the role SLS restart."""
    # One role set per loader: Salt 3006's modules keep the grains they were loaded with.
    loaders.grains["role"] = roles
    found = loaders.modules.slsutil.renderer("salt://ceph_openstack/settings.jinja",
                                             default_renderer="jinja|json")["services"]
    assert sorted(found) == services
    if "cinder_volume" in services:
        assert found["cinder_volume"] == {"unit": "cinder-volume",
                                          "log": "/var/log/cinder/cinder-volume.log"}
