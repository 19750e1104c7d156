"""
Unit tests of the cephpool state module over the real execution module and
ceph_cli helper, with only ``cmd.run_all`` replaced by the recorded lab
cluster of tests/unit/data/cephpool (which applies our writes, so states can
run twice).
"""

import pathlib
import sys
from unittest import mock

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "data" / "cephpool"))
import fake_ceph  # noqa: E402

cephpool = fake_ceph.load("salt/_modules/cephpool.py", "cephpool_exec_for_states")
cephpool_state = fake_ceph.load("salt/_states/cephpool.py", "cephpool_state_under_test")

CONFIG = {"ceph_openstack:conf": "/srv/lab/ceph.conf"}
LS_DETAIL = ("ceph", ("osd", "pool", "ls", "detail"))


@pytest.fixture
def ceph():
    return fake_ceph.FakeCeph()


@pytest.fixture
def configure_loader_modules(ceph):
    config_get = fake_ceph.config_get(CONFIG)
    exec_funcs = {
        f"cephpool.{name.rstrip('_')}": getattr(cephpool, name)
        for name in fake_ceph.PUBLIC_FUNCTIONS
    }
    return {
        cephpool: {
            "__salt__": {"cmd.run_all": ceph, "config.get": config_get},
            "__context__": {},
            "__opts__": {},
        },
        cephpool_state: {
            "__salt__": {**exec_funcs, "config.get": config_get},
            "__context__": {},
            "__opts__": {"test": False},
        },
    }


def run(state, *args, test=False, **kwargs):
    """Run a state function the way a state run would: a fresh __context__ per run."""
    cephpool.__context__.clear()
    cephpool_state.__context__.clear()
    with mock.patch.dict(cephpool_state.__opts__, {"test": test}):
        ret = state(*args, **kwargs)
    assert set(ret) == {"name", "result", "changes", "comment"}
    return ret


def present(*args, **kwargs):
    return run(cephpool_state.present, *args, **kwargs)


def absent(*args, **kwargs):
    return run(cephpool_state.absent, *args, **kwargs)


# -- pools that are right already ----------------------------------------------


def test_virtual_needs_the_execution_module():
    assert cephpool_state.__virtual__() == "cephpool"
    with mock.patch.dict(cephpool_state.__salt__, clear=True):
        assert cephpool_state.__virtual__()[0] is False


def test_a_pool_that_is_right_reports_nothing(ceph):
    ret = present("volumes", pg_num=8, size=1)
    assert ret == {
        "name": "volumes",
        "result": True,
        "changes": {},
        "comment": "Pool volumes is in the desired state.",
    }
    assert ceph.writes() == []


def test_four_pools_that_are_right_cost_one_ceph_call(ceph):
    for name in ("images", "vms"):  # make all four initialised for RBD
        ceph.pool(name)["application_metadata"] = {"rbd": {}}
        ceph.validated.add(name)
    cephpool.__context__.clear()  # one run for all four
    for name in ("volumes", "images", "backups", "vms"):
        ret = cephpool_state.present(
            name, pg_num=8, size=1, max_objects=1000 if name == "backups" else 0
        )
        assert ret["result"] is True and ret["changes"] == {}, ret
    assert ceph.count("ceph") == 1
    assert ceph.count("rados") == 4  # one rbd_info read per pool
    assert ceph.count() == 5


def _initialise_all(ceph):
    for name in ("images", "vms"):
        ceph.pool(name)["application_metadata"] = {"rbd": {}}
        ceph.validated.add(name)


def test_pools_seen_initialised_are_not_read_again(ceph, tmp_path):
    _initialise_all(ceph)
    rados_per_run = []
    with mock.patch.dict(cephpool_state.__opts__, {"cachedir": str(tmp_path)}):
        for _ in range(2):
            before = ceph.count("rados")
            for name in ("volumes", "images", "backups", "vms"):
                assert present(name)["changes"] == {}
            rados_per_run.append(ceph.count("rados") - before)
    assert rados_per_run == [4, 0]
    recorded = (tmp_path / "ceph_openstack" / "rbd_initialised_pools").read_text().split()
    assert len(recorded) == 4


def test_a_recreated_pool_is_checked_again(ceph, tmp_path):
    _initialise_all(ceph)
    with mock.patch.dict(cephpool_state.__opts__, {"cachedir": str(tmp_path)}):
        present("vms")
        ceph.pool("vms")["create_time"] = "2026-11-26T00:00:00.000000+0000"
        ceph.validated.discard("vms")
        before = ceph.count("rados")
        assert present("vms")["changes"] == {"init": {"old": False, "new": True}}
        assert ceph.count("rados") - before == 1


def test_a_dry_run_records_nothing(ceph, tmp_path):
    _initialise_all(ceph)
    with mock.patch.dict(cephpool_state.__opts__, {"cachedir": str(tmp_path)}):
        assert present("vms", test=True)["changes"] == {}
    assert not (tmp_path / "ceph_openstack").exists()


def test_crush_rule_costs_one_more_ceph_call_per_run(ceph):
    cephpool.__context__.clear()
    for name in ("volumes", "backups"):
        cephpool_state.present(name, crush_rule="fast" if name == "backups" else "replicated_rule")
    assert ceph.calls.count(LS_DETAIL) == 1
    assert ceph.count("ceph") == 2


# -- changes: test mode predicts them, a real run makes them, a second run finds none


def test_test_mode_predicts_exactly_and_changes_nothing(ceph):
    wanted = dict(pg_num=16, size=3, max_bytes="1G", target_size_ratio=0.1)
    predicted = present("images", test=True, **wanted)
    assert predicted["result"] is None
    assert predicted["changes"] == {
        "pg_num": {"old": 8, "new": 16},
        "pgp_num": {"old": 8, "new": 16},
        "size": {"old": 1, "new": 3},
        "min_size": {"old": 1, "new": 2},
        "target_size_ratio": {"old": 0.0, "new": 0.1},
        "max_bytes": {"old": 0, "new": 1 << 30},
        "application": {"old": [], "new": ["rbd"]},
        "init": {"old": False, "new": True},
    }
    assert "would be changed" in predicted["comment"]
    assert ceph.writes() == []

    done = present("images", **wanted)
    assert done["result"] is True
    assert done["changes"] == predicted["changes"]
    assert done["comment"].startswith("Pool images changed: pg_num, pgp_num, size")
    # rbd pool init enables the application: no separate `application enable`
    assert ("ceph", ("osd", "pool", "application", "enable", "images", "rbd")) not in ceph.writes()
    assert ceph.writes()[-1] == ("rbd", ("pool", "init", "images"))

    again = present("images", **wanted)
    assert (again["result"], again["changes"]) == (True, {})


def test_application_without_init(ceph):
    ret = present("images", application="rgw", init=False)
    assert ret["changes"] == {"application": {"old": [], "new": ["rgw"]}}
    assert ceph.writes() == [("ceph", ("osd", "pool", "application", "enable", "images", "rgw"))]
    assert present("images", application="rgw", init=False)["changes"] == {}


def test_a_lost_rbd_info_is_initialised_again(ceph):
    ret = present("vms")
    assert ret["changes"] == {"init": {"old": False, "new": True}}
    assert ceph.writes() == [("rbd", ("pool", "init", "vms"))]


def test_application_none_and_init_false_leave_applications_alone(ceph):
    assert present("rgwpool", application=None, init=False)["changes"] == {}
    assert ceph.writes() == []


# -- a missing pool ------------------------------------------------------------------


def test_a_missing_pool_is_created_as_predicted(ceph):
    predicted = present("fresh", test=True, pg_num=16, max_objects=100)
    expected = {
        "pool": {"old": None, "new": "fresh"},
        "pg_num": {"old": None, "new": 16},
        "max_objects": {"old": None, "new": 100},
        "application": {"old": None, "new": ["rbd"]},
        "init": {"old": None, "new": True},
    }
    assert (predicted["result"], predicted["changes"]) == (None, expected)
    assert ceph.writes() == []

    done = present("fresh", pg_num=16, max_objects=100)
    assert (done["result"], done["changes"], done["comment"]) == (
        True,
        expected,
        "Pool fresh created.",
    )
    assert ceph.writes() == [
        ("ceph", ("osd", "pool", "create", "fresh", "--pg_num", "16")),
        ("ceph", ("osd", "pool", "set-quota", "fresh", "max_objects", "100")),
        ("rbd", ("pool", "init", "fresh")),
    ]
    again = present("fresh", pg_num=16, max_objects=100)
    assert (again["result"], again["changes"]) == (True, {})


def test_test_mode_checks_the_crush_rule_of_a_new_pool(ceph):
    ret = present("fresh", test=True, crush_rule="nosuch")
    assert ret["result"] is False and "crush_rule nosuch does not exist" in ret["comment"]
    assert ret["changes"] == {}


def test_a_half_done_create_reports_the_pool(ceph):
    ceph.answers[("osd", "pool", "set-quota")] = {
        "retcode": 22,
        "stdout": "",
        "stderr": "Error EINVAL: nope\n",
    }
    ret = present("fresh", max_bytes=5)
    assert ret["result"] is False
    assert ret["changes"] == {"pool": {"old": None, "new": "fresh"}}
    assert "was created, but" in ret["comment"] and "EINVAL: nope" in ret["comment"]


def test_a_pool_another_mon_creates_meanwhile_is_converged_not_reported_created(ceph):
    """Two mons apply the same state at once: both see the pool missing, the other one's
    ``osd pool create`` (and ``rbd pool init``) lands first, ours says "already exists"
    (exit 0, as the lab does) and the pool is converged as an existing one."""
    real = ceph._create
    theirs = {}

    def racing(name, options):
        if ceph.pool(name) is None:
            real(name, theirs or options)  # the other mon's create
            ceph.validated.add(name)
            ceph.pool(name)["application_metadata"]["rbd"] = {}
        return real(name, options)

    ceph._create = racing
    ret = present("fresh", pg_num=16)
    assert (ret["result"], ret["changes"]) == (True, {}), ret
    assert ret["comment"] == "Pool fresh is in the desired state."
    assert [w for w in ceph.writes() if w[0] == "rbd"] == []

    theirs["--pg_num"] = "8"  # the other mon still had an older pillar
    ret = present("other", pg_num=16)
    assert ret["result"] is True
    assert ret["changes"] == {"pg_num": {"old": 8, "new": 16}, "pgp_num": {"old": 8, "new": 16}}
    assert ceph.pool("other")["pg_num_target"] == 16


# -- refusals ----------------------------------------------------------------------


def test_another_application_is_refused_and_nothing_changes(ceph):
    ret = present("rgwpool", pg_num=16)
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"] == (
        "Refusing to change pool rgwpool, nothing was changed: application rgw is enabled on it "
        "already; refusing to enable rbd too"
    )
    assert ceph.writes() == []


def test_all_refusals_are_reported_together(ceph):
    ret = present("locked", pg_num=4, size=2, application="rbd", test=True)
    assert ret["result"] is False
    assert "pg_num 4 is below the pool's pg_num_min 8" in ret["comment"]
    assert "nosizechange" in ret["comment"]
    assert ceph.writes() == []


def test_autoscaled_pg_num_is_left_to_the_autoscaler(ceph):
    ret = present("auto", pg_num=32, application=None, init=False)
    assert (ret["result"], ret["changes"]) == (True, {})
    assert "pg_num stays 8: the autoscaler sets it" in ret["comment"]
    # turning the autoscaler off hands pg_num back
    ret = present("auto", pg_num=32, pg_autoscale_mode="off", application=None, init=False)
    assert set(ret["changes"]) == {"pg_autoscale_mode", "pg_num", "pgp_num"}


def test_a_failed_write_reports_what_changed_before(ceph):
    ceph.answers[("osd", "pool", "set", "images", "size")] = fake_ceph.ANSWERS["pool_set_pg_limit"]
    ret = present("images", pg_num=16, size=3)
    assert ret["result"] is False
    assert ret["changes"] == {"pg_num": {"old": 8, "new": 16}, "pgp_num": {"old": 8, "new": 16}}
    assert ret["comment"].startswith(
        "Pool images: changed pg_num, pgp_num before; setting size failed"
    )
    assert "exceeds max 750" in ret["comment"] and "Additional info" not in ret["comment"]
    assert ("rbd", ("pool", "init", "images")) not in ceph.writes()


# -- bad input and a cluster that does not answer ------------------------------------


@pytest.mark.parametrize(
    "args, kwargs, names",
    [
        (("",), {}, ["name"]),
        (("a/b",), {}, ["name"]),
        (("volumes",), {"pg_num": 0}, ["pg_num"]),
        (("volumes",), {"pg_num": "eight"}, ["pg_num"]),
        (("volumes",), {"pgnum": 8}, ["pgnum"]),
        (("volumes",), {"size": 2, "min_size": 3}, ["min_size"]),
        (("volumes",), {"application": "rgw"}, ["init"]),
        (("volumes",), {"init": "yes"}, ["init"]),
        (("volumes",), {"timeout": "soon"}, ["timeout"]),
        (("",), {"pg_num": -1, "colour": "red"}, ["name", "pg_num", "colour"]),
    ],
)
def test_bad_input_fails_before_any_ceph_call(ceph, args, kwargs, names):
    for test in (False, True):
        ret = present(*args, test=test, **kwargs)
        assert ret["result"] is False and ret["changes"] == {}
        assert ret["comment"].startswith("Bad input for cephpool")
        for name in names:
            assert name in ret["comment"]
    assert ceph.calls == []


def test_power_of_two_note(ceph):
    ret = present("images", pg_num=24, application=None, init=False)
    assert ret["result"] is True
    assert "pg_num 24 is not a power of two" in ret["comment"]


def test_a_cluster_that_does_not_answer(ceph):
    ceph.answers[("osd",)] = fake_ceph.ANSWERS["no_answer"]
    for state in (
        lambda: present("volumes", timeout=3),
        lambda: absent("volumes", confirm=True, timeout=3),
    ):
        ret = state()
        assert ret["result"] is False and ret["changes"] == {}
        assert ret["comment"].startswith("Pool volumes: ceph: no answer from cluster 'ceph'")
        assert "within 3 s; are the mons up" in ret["comment"]
        assert "Additional info" not in ret["comment"]


def test_connection_keywords_are_passed_on(ceph):
    present("volumes", conf="/elsewhere/ceph.conf", client_id="ops", keyring="/k", cluster="c")
    for argv in ceph.argv:
        assert argv[1:9] == [
            "--cluster",
            "c",
            "--id",
            "ops",
            "--conf",
            "/elsewhere/ceph.conf",
            "--keyring",
            "/k",
        ]


# -- absent ------------------------------------------------------------------------


def test_absent_of_a_missing_pool(ceph):
    ret = absent("nope")
    assert (ret["result"], ret["changes"], ret["comment"]) == (
        True,
        {},
        "Pool nope is already absent.",
    )


def test_absent_needs_confirm(ceph):
    for test in (False, True):
        ret = absent("volumes", test=test)
        assert ret["result"] is False and ret["changes"] == {}
        assert "Set confirm: True" in ret["comment"]
    assert ceph.writes() == []


def test_absent_deletes_as_predicted(ceph):
    predicted = absent("volumes", confirm=True, test=True)
    assert predicted["result"] is None and ceph.writes() == []
    done = absent("volumes", confirm=True)
    assert done["result"] is True and done["changes"] == predicted["changes"] == {
        "pool": {"old": "volumes", "new": None}
    }
    assert absent("volumes", confirm=True)["changes"] == {}


def test_absent_bad_input(ceph):
    for kwargs in ({"name": ".mgr"}, {"name": "x", "confirm": "yes"}, {"name": "x", "timeout": 0}):
        ret = absent(**kwargs)
        assert ret["result"] is False and ret["comment"].startswith("Bad input")
    assert ceph.calls == []
