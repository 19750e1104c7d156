"""
The services the formula restarts, rendered by Salt's real state compiler from
pillar.example: each is a ``ceph_openstack.service_running`` state (restart, then check
that the unit stayed up, naming its log) with the state ID and the watch list the
``service.running`` states had, in the rollout and in the rotation's restart step.
"""

import pytest

from tests.conftest import ROOT
from tests.support.formula import formula_loaders, low_chunks

#: Rendering asks nothing of Ceph.
pytestmark = pytest.mark.release_independent

KEYRINGS = [{"ceph_openstack": "ceph_openstack-keyring-cinder"},
            {"ceph_openstack": "ceph_openstack-keyring-glance"},
            {"ceph_openstack": "ceph_openstack-keyring-cinder-backup"}]
CEPH_CONF = {"ceph_openstack": "ceph_openstack-ceph-conf"}

EXPECTED = {
    "ceph_openstack-service-cinder_volume": (
        "cinder-volume", "cinder_volume", "/var/log/cinder/cinder-volume.log",
        [{"openstack_ini": "ceph_openstack-cinder-conf"}, CEPH_CONF] + KEYRINGS),
    "ceph_openstack-service-cinder_backup": (
        "cinder-backup", "cinder_backup", "/var/log/cinder/cinder-backup.log",
        [{"openstack_ini": "ceph_openstack-cinder-conf"}, CEPH_CONF] + KEYRINGS),
    "ceph_openstack-service-glance_api": (
        "glance-api", "glance_api", "/var/log/glance/glance-api.log",
        [{"openstack_ini": "ceph_openstack-glance-conf"},
         {"openstack_ini": "ceph_openstack-glance-single-store-options"}, CEPH_CONF]
        + KEYRINGS),
    "ceph_openstack-service-nova_compute": (
        "nova-compute", "nova_compute", "/var/log/nova/nova-compute.log",
        [{"openstack_ini": "ceph_openstack-nova-conf"}, CEPH_CONF,
         {"ceph_openstack": "ceph_openstack-keyring-cinder"}]),
}


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
    assert sorted(found) == [f"ceph_openstack-rotate-service-{unit}" for unit in
                             ("cinder_backup", "cinder_volume", "glance_api", "nova_compute")]
    volume = found["ceph_openstack-rotate-service-cinder_volume"]
    assert (volume["fun"], volume["service"], volume["log"]) == (
        "service_running", "cinder_volume", "/var/log/cinder/cinder-volume.log")
    assert volume["watch"] == [{"ceph_openstack": "ceph_openstack-rotate-restart-cinder"}]
