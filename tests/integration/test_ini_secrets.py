"""
No password of an OpenStack option in any state output: the formula changes
``[DEFAULT] transport_url`` (several hosts, '=' in a password) and ``[database]
connection`` of nova.conf and cinder.conf from pillar ``nova:conf`` / ``cinder:conf``,
and a URL with credentials in an option OpenStack does not mark secret, on the real
minions through the master, first with ``test=True`` and then for real. The files get the
values; no password appears in the returns, the master's job cache or its events.
"""

import pathlib

import pytest

from tests.integration.test_rollout import orchestrate
from tests.support.argv_recorder import find_secret

PASSWORDS = {
    # the stock files' own (lab/files): the old values of the changed options
    "stock_rabbit": "RABBIT_PASS",
    "stock_cinder_db": "CINDER_DBPASS",
    # the pillar's
    "nova_rabbit": "n0va=rabbit",
    "nova_rabbit2": "n0va@second",
    "nova_db": "n0va-db-pw",
    "cinder_rabbit": "s3cr=t",
    "cinder_db": "c1nder/db=pw",
    "auth_uri": "auth-url-pw",
}
P = PASSWORDS
CONF = {
    "nova": {
        "DEFAULT": {"transport_url": f"rabbit://nova:{P['nova_rabbit']}@ctl:5672,"
                                     f"nova2:{P['nova_rabbit2']}@ctl2:5672/"},
        "database": {"connection": f"mysql+pymysql://nova:{P['nova_db']}@db/nova"},
        # not secret for OpenStack: only the URL's password is masked
        "keystone_authtoken": {"www_authenticate_uri": f"http://svc:{P['auth_uri']}@ctl:5000/"},
    },
    "cinder": {
        "DEFAULT": {"transport_url": f"rabbit://cinder:{P['cinder_rabbit']}@ctl:5672/"},
        "database": {"connection": f"mysql+pymysql://cinder:{P['cinder_db']}@db/cinder"},
    },
}
FILES = {"cmp1": "etc/nova/nova.conf", "ctl1": "etc/cinder/cinder.conf"}
TARGET = "ctl1,cmp1"


def _states(ret):
    """{minion: {state id: state return}} of a ``salt ... state.apply`` CLI result, which
    must have no failed state."""
    assert ret.returncode == 0, ret.stdout[-3000:]
    states = {minion: {sid.split("_|-")[1]: state for sid, state in minion_states.items()}
              for minion, minion_states in ret.data.items()}
    assert set(states) == set(FILES), states
    failed = {(minion, sid) for minion, by_id in states.items()
              for sid, state in by_id.items() if state["result"] is False}
    assert not failed, failed
    return states


@pytest.fixture(scope="module")
def ini_runs(salt_master, salt_cli, salt_run_cli, lab_pillar, sandbox, event_listener):
    """A converged lab; then the pillar's conf with passwords applied on ctl1 and cmp1,
    first with test=True, then for real, both through the master."""
    lab_pillar.edit({})
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
    _, failed = orchestrate(salt_run_cli)
    assert not failed, failed
    originals = {minion: (sandbox(minion) / path).read_bytes() for minion, path in FILES.items()}
    lab_pillar.edit({"ceph_openstack": {name: {"conf": conf} for name, conf in CONF.items()}})
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
    try:
        predicted = salt_cli.run("-L", "state.apply", "ceph_openstack", "test=True",
                                 minion_tgt=TARGET)
        applied = salt_cli.run("-L", "state.apply", "ceph_openstack", minion_tgt=TARGET)
        files = {minion: (sandbox(minion) / path).read_text() for minion, path in FILES.items()}
        events = [event.full_data for event in list(event_listener.store)
                  if event.daemon_id == salt_master.id]
        yield {"predicted": predicted, "applied": applied, "files": files, "events": events}
    finally:
        lab_pillar.edit({})
        salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt="*")
        for minion, text in originals.items():
            (sandbox(minion) / FILES[minion]).write_bytes(text)


def test_the_values_were_written(ini_runs):
    assert f"transport_url = {CONF['nova']['DEFAULT']['transport_url']}" in \
        ini_runs["files"]["cmp1"]
    assert f"connection = {CONF['cinder']['database']['connection']}" in \
        ini_runs["files"]["ctl1"]


@pytest.mark.parametrize("run", ["predicted", "applied"])
def test_changes_are_reported_masked(ini_runs, run):
    states = _states(ini_runs[run])
    nova = states["cmp1"]["ceph_openstack-nova-conf"]
    cinder = states["ctl1"]["ceph_openstack-cinder-conf"]
    assert nova["result"] is (None if run == "predicted" else True)
    mask = "********"
    assert nova["changes"]["DEFAULT/transport_url"]["new"] == mask
    assert nova["changes"]["database/connection"]["new"] == mask
    assert nova["changes"]["keystone_authtoken/www_authenticate_uri"]["new"] == \
        f"http://svc:{mask}@ctl:5000/"
    assert nova["changes"]["keystone_authtoken/www_authenticate_uri"]["old"] == \
        "http://controller:5000/"
    assert cinder["changes"]["DEFAULT/transport_url"] == {"old": mask, "new": mask}
    assert cinder["changes"]["database/connection"] == {"old": mask, "new": mask}
    assert "DEFAULT/transport_url" in nova["comment"]  # the comment names keys, not values


def test_no_password_in_returns_job_cache_or_events(ini_runs, salt_master):
    job_cache = pathlib.Path(salt_master.config["cachedir"]) / "jobs"
    assert any(job_cache.rglob("*")), "the master keeps no job cache to search"
    assert ini_runs["events"], "no master event was seen"
    found = {}
    for name, password in PASSWORDS.items():
        where = find_secret(password, job_cache,
                            test_stdout=ini_runs["predicted"].stdout,
                            test_data=ini_runs["predicted"].data,
                            stdout=ini_runs["applied"].stdout,
                            stderr=ini_runs["applied"].stderr,
                            data=ini_runs["applied"].data,
                            events=ini_runs["events"])
        if where:
            found[name] = where
    assert not found
