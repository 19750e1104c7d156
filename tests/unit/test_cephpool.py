"""
Unit tests of the cephpool execution module: the real ceph_cli helper, with
only ``cmd.run_all`` replaced by answers recorded from the lab cluster
(tests/unit/data/cephpool).
"""

import pathlib
import sys
from unittest import mock

import pytest
from salt.exceptions import CommandExecutionError

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "data" / "cephpool"))
import fake_ceph  # noqa: E402

cephpool = fake_ceph.load("salt/_modules/cephpool.py", "cephpool_exec_under_test")

CONFIG = {
    "ceph_openstack:conf": "/srv/lab/ceph.conf",
    "ceph_openstack:keyring": "/srv/lab/admin.keyring",
}


@pytest.fixture
def ceph():
    return fake_ceph.FakeCeph()


@pytest.fixture
def configure_loader_modules(ceph):
    return {
        cephpool: {
            "__salt__": {"cmd.run_all": ceph, "config.get": fake_ceph.config_get(CONFIG)},
            "__context__": {},
            "__opts__": {},
        }
    }


LS_DETAIL = ("ceph", ("osd", "pool", "ls", "detail"))
RULE_DUMP = ("ceph", ("osd", "crush", "rule", "dump"))


# -- loading -------------------------------------------------------------------


def test_virtual_needs_the_ceph_cli():
    with mock.patch("salt.utils.path.which", return_value="/usr/bin/ceph"):
        assert cephpool.__virtual__() == "cephpool"
    with mock.patch("salt.utils.path.which", return_value=None):
        loaded, reason = cephpool.__virtual__()
    assert loaded is False and "ceph" in reason


def test_every_public_function_has_a_cli_example():
    for name in fake_ceph.PUBLIC_FUNCTIONS:
        assert "salt '*' cephpool." in getattr(cephpool, name).__doc__, name


# -- reading, and the per-run cache ---------------------------------------------


def test_list_returns_every_pool_in_cephs_order(ceph):
    assert cephpool.list_() == [
        "volumes",
        "images",
        "backups",
        "vms",
        "rgwpool",
        "locked",
        "auto",
        "device_health_metrics",
    ]
    assert ceph.calls == [LS_DETAIL]


def test_connection_comes_from_config_and_keywords(ceph):
    cephpool.exists("volumes")
    cephpool.exists("volumes", conf="/other/ceph.conf", client_id="ops", timeout=3)
    first, second = ceph.argv
    assert first[:9] == [
        "ceph",
        "--cluster",
        "ceph",
        "--id",
        "admin",
        "--conf",
        "/srv/lab/ceph.conf",
        "--keyring",
        "/srv/lab/admin.keyring",
    ]
    assert first[9:11] == ["--connect-timeout", "10"]
    assert second[:7] == ["ceph", "--cluster", "ceph", "--id", "ops", "--conf", "/other/ceph.conf"]
    assert "3" in second
    # A cache per connection: the second cluster was read on its own.
    assert ceph.calls == [LS_DETAIL, LS_DETAIL]
    assert ceph.options[0]["python_shell"] is False


def test_reads_share_one_listing_per_run(ceph):
    assert cephpool.exists("volumes") and not cephpool.exists("nope")
    assert cephpool.get("images", resolve_crush_rule=False)["pg_num"] == 8
    assert cephpool.application_get("volumes") == {"rbd": {}}
    assert cephpool.list_()
    assert ceph.calls == [LS_DETAIL]


def test_an_old_listing_is_read_again(ceph):
    with mock.patch.object(cephpool.time, "monotonic", return_value=1000.0):
        cephpool.exists("volumes")
    with mock.patch.object(
        cephpool.time, "monotonic", return_value=1000.0 + cephpool._CACHE_SECONDS
    ):
        cephpool.exists("volumes")
    assert ceph.calls == [LS_DETAIL, LS_DETAIL]


def test_our_writes_drop_the_cached_listing(ceph):
    cephpool.set_("images", pg_num=16)
    assert cephpool.get("images", resolve_crush_rule=False)["pg_num"] == 16
    assert ceph.calls == [
        LS_DETAIL,
        ("ceph", ("osd", "pool", "set", "images", "pg_num", "16")),
        LS_DETAIL,
    ]


def test_get_reports_properties_by_osd_pool_get_names(ceph):
    backups = cephpool.get("backups")
    assert backups == {
        "pool_id": 3,
        "create_time": "2026-11-25T12:46:49.624129+0000",
        "pg_num": 8,
        "pgp_num": 8,
        "size": 1,
        "min_size": 1,
        "pg_autoscale_mode": "warn",
        "target_size_ratio": 0.2,
        "crush_rule": "fast",
        "max_objects": 1000,
        "max_bytes": 10 << 30,
        "application_metadata": {"rbd": {}},
        "flags": ["hashpspool", "selfmanaged_snaps"],
        "pg_num_min": 0,
        "pg_num_max": 0,
    }
    assert cephpool.get("volumes")["crush_rule"] == "replicated_rule"
    assert ceph.calls == [LS_DETAIL, RULE_DUMP]


def test_get_without_rule_names_skips_the_rule_dump(ceph):
    assert cephpool.get("backups", resolve_crush_rule=False)["crush_rule"] == 1
    assert ceph.calls == [LS_DETAIL]


def test_get_reports_the_pg_num_target_while_ceph_moves_towards_it(ceph):
    ceph.pool("images").update(pg_num=13, pg_num_target=4, pg_placement_num_target=4)
    props = cephpool.get("images", resolve_crush_rule=False)
    assert (props["pg_num"], props["pgp_num"]) == (4, 4)


def test_get_of_a_missing_pool_raises(ceph):
    with pytest.raises(CommandExecutionError, match="pool nope does not exist"):
        cephpool.get("nope")


def test_application_get():
    assert cephpool.application_get("rgwpool") == {"rgw": {}}
    assert cephpool.application_get("images") == {}


# -- input checks: before any call to Ceph ------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["", None, 7, "a/b", "a b", "tab\there", "new\nline", ".mgr", "-x", "img@snap", "x" * 256],
)
def test_bad_pool_names_fail_before_ceph(ceph, name):
    for call in (
        lambda: cephpool.exists(name),
        lambda: cephpool.get(name),
        lambda: cephpool.create(name, pg_num=8),
        lambda: cephpool.set_(name, size=2),
        lambda: cephpool.delete(name, confirm=True),
        lambda: cephpool.init(name),
        lambda: cephpool.validate(name),
    ):
        with pytest.raises(CommandExecutionError, match="^name: "):
            call()
    assert ceph.calls == []


def test_the_longest_legal_name_passes():
    assert cephpool.validate("x" * 255) == {}


@pytest.mark.parametrize(
    "properties, message",
    [
        ({"pg_num": 0}, "pg_num must be a whole number from 1 to 65536, not 0"),
        ({"pg_num": -8}, "pg_num must be a whole number"),
        ({"pg_num": "many"}, "pg_num must be a whole number"),
        ({"pg_num": True}, "pg_num must be a whole number"),
        ({"pg_num": 8.5}, "pg_num must be a whole number"),
        ({"pg_num": 65537}, "pg_num must be a whole number"),
        ({"pgp_num": 0}, "pgp_num must be"),
        ({"size": 11}, "size must be a whole number from 1 to 10"),
        ({"min_size": 0}, "min_size must be"),
        ({"pg_autoscale_mode": "maybe"}, "pg_autoscale_mode must be 'on', 'off' or 'warn'"),
        ({"target_size_ratio": -0.1}, "target_size_ratio must be a number of at least 0"),
        ({"target_size_ratio": "lots"}, "target_size_ratio must be"),
        ({"target_size_ratio": float("nan")}, "target_size_ratio must be"),
        ({"max_bytes": "10X"}, "max_bytes must be a number of bytes"),
        ({"max_bytes": -1}, "max_bytes must be"),
        ({"max_objects": "1k"}, "max_objects must be a whole number of at least 0"),
        ({"crush_rule": ""}, "crush_rule must be a non-empty name"),
        ({"crush_rule": "--force"}, "crush_rule must be"),
        ({"pgnum": 8}, "pgnum is not a pool property managed here"),
        ({"size": 2, "min_size": 3}, "min_size 3 cannot exceed size 2"),
        ({"pg_num": 8, "pgp_num": 16}, "pgp_num 16 cannot exceed pg_num 8"),
    ],
)
def test_bad_properties_fail_before_ceph_naming_the_argument(ceph, properties, message):
    with pytest.raises(CommandExecutionError, match=message.replace("(", r"\(")):
        cephpool.validate("volumes", **properties)
    with pytest.raises(CommandExecutionError, match=message.replace("(", r"\(")):
        cephpool.set_("volumes", **properties)
    with pytest.raises(CommandExecutionError, match=message.replace("(", r"\(")):
        cephpool.create("fresh", **properties)
    assert ceph.calls == []


def test_every_problem_is_reported_at_once():
    with pytest.raises(CommandExecutionError) as exc:
        cephpool.validate("", pg_num=0, colour="red", application="two words")
    for arg in ("name", "pg_num", "colour", "application"):
        assert arg in str(exc.value)


def test_values_are_normalized():
    assert cephpool.validate(
        "volumes",
        pg_num="16",
        pg_autoscale_mode=False,  # YAML's unquoted off
        target_size_ratio="0.5",
        max_bytes="10G",
        max_objects=0,
        size=None,  # not managed
        __pub_jid="20260101",  # Salt's own keywords are ignored
        timeout=3,  # connection keywords too
    ) == {
        "pg_num": 16,
        "pg_autoscale_mode": "off",
        "target_size_ratio": 0.5,
        "max_bytes": 10 << 30,
        "max_objects": 0,
    }
    assert cephpool.validate("v", max_bytes="1TiB", pg_autoscale_mode=True) == {
        "max_bytes": 1 << 40,
        "pg_autoscale_mode": "on",
    }


def test_a_bad_timeout_fails_before_ceph(ceph):
    with pytest.raises(CommandExecutionError, match="timeout must be"):
        cephpool.exists("volumes", timeout="soon")
    assert ceph.calls == []


# -- set_ -------------------------------------------------------------------------


def test_set_in_test_mode_predicts_and_writes_nothing(ceph):
    changes = cephpool.set_("images", test=True, pg_num=16, size=3, max_bytes="1G")
    assert changes == {
        "pg_num": {"old": 8, "new": 16},
        "pgp_num": {"old": 8, "new": 16},  # Ceph moves pgp_num with pg_num
        "size": {"old": 1, "new": 3},
        "min_size": {"old": 1, "new": 2},  # size - size // 2
        "max_bytes": {"old": 0, "new": 1 << 30},
    }
    assert ceph.writes() == []


def test_set_applies_in_a_safe_order_and_reports_what_changed(ceph):
    changes = cephpool.set_("images", pg_num=16, size=3, max_bytes="1G", pg_autoscale_mode="warn")
    assert ceph.writes() == [
        ("ceph", ("osd", "pool", "set", "images", "pg_autoscale_mode", "warn")),
        ("ceph", ("osd", "pool", "set", "images", "pg_num", "16")),
        ("ceph", ("osd", "pool", "set", "images", "size", "3")),
        ("ceph", ("osd", "pool", "set", "images", "min_size", "2")),
        ("ceph", ("osd", "pool", "set-quota", "images", "max_bytes", str(1 << 30))),
    ]
    assert changes == {
        "pg_autoscale_mode": {"old": "off", "new": "warn"},
        "pg_num": {"old": 8, "new": 16},
        "pgp_num": {"old": 8, "new": 16},
        "size": {"old": 1, "new": 3},
        "min_size": {"old": 1, "new": 2},
        "max_bytes": {"old": 0, "new": 1 << 30},
    }
    # a second call finds everything in place
    assert (
        cephpool.set_("images", pg_num=16, size=3, max_bytes="1G", pg_autoscale_mode="warn") == {}
    )


def test_set_with_nothing_to_change_writes_nothing(ceph):
    assert (
        cephpool.set_(
            "backups",
            pg_num=8,
            size=1,
            min_size=1,
            target_size_ratio=0.2,
            max_objects=1000,
            max_bytes="10G",
            crush_rule="fast",
            pg_autoscale_mode="warn",
        )
        == {}
    )
    assert ceph.writes() == []
    assert ceph.calls == [LS_DETAIL, RULE_DUMP]


def test_size_change_always_sets_min_size_after_it(ceph):
    # size 3/min_size 2 -> size 1: Ceph resets min_size to its own default; we set 1 explicitly.
    ceph.pool("images").update(size=3, min_size=2)
    changes = cephpool.set_("images", size=1)
    assert changes == {"size": {"old": 3, "new": 1}, "min_size": {"old": 2, "new": 1}}
    assert ceph.writes() == [
        ("ceph", ("osd", "pool", "set", "images", "size", "1", "--yes-i-really-mean-it")),
        ("ceph", ("osd", "pool", "set", "images", "min_size", "1")),
    ]


def test_size_change_keeps_a_given_min_size_even_when_unchanged(ceph):
    ceph.pool("images").update(size=2, min_size=2)
    assert cephpool.set_("images", size=3, min_size=2) == {"size": {"old": 2, "new": 3}}
    # the size write resets min_size, so min_size is written back
    assert ceph.writes()[-1] == ("ceph", ("osd", "pool", "set", "images", "min_size", "2"))
    assert ceph.pool("images")["min_size"] == 2


def test_pgp_num_given_with_pg_num(ceph):
    assert cephpool.set_("images", pg_num=16, pgp_num=8) == {"pg_num": {"old": 8, "new": 16}}
    assert ceph.writes() == [
        ("ceph", ("osd", "pool", "set", "images", "pg_num", "16")),
        ("ceph", ("osd", "pool", "set", "images", "pgp_num", "8")),
    ]


def test_target_size_ratio_zero_clears_it(ceph):
    assert cephpool.set_("backups", target_size_ratio=0) == {
        "target_size_ratio": {"old": 0.2, "new": 0.0}
    }
    assert cephpool.get("backups", resolve_crush_rule=False)["target_size_ratio"] == 0.0


def test_crush_rule_by_name(ceph):
    assert cephpool.set_("images", crush_rule="fast") == {
        "crush_rule": {"old": "replicated_rule", "new": "fast"}
    }
    assert ceph.writes() == [("ceph", ("osd", "pool", "set", "images", "crush_rule", "fast"))]


@pytest.mark.parametrize(
    "pool, properties, problem",
    [
        ("images", {"min_size": 2}, "min_size 2 cannot exceed size 1"),
        ("images", {"pgp_num": 16}, "pgp_num 16 cannot exceed pg_num 8"),
        ("locked", {"pg_num": 4}, "pg_num 4 is below the pool's pg_num_min 8"),
        ("device_health_metrics", {"pg_num": 64}, "pg_num 64 is above the pool's pg_num_max 32"),
        ("locked", {"size": 2}, "the pool has the nosizechange flag set"),
        (
            "images",
            {"crush_rule": "nosuch"},
            "crush_rule nosuch does not exist (rules: fast, replicated_rule)",
        ),
    ],
)
def test_impossible_changes_are_refused_whole(ceph, pool, properties, problem):
    with pytest.raises(CommandExecutionError) as exc:
        cephpool.set_(pool, max_objects=10, **properties)
    assert problem in str(exc.value) and "nothing was changed" in str(exc.value)
    assert exc.value.info == {"problems": [problem]}
    assert ceph.writes() == []


def test_nopgchange_refuses_pg_changes(ceph):
    ceph.pool("images")["flags_names"] = "hashpspool,nopgchange"
    with pytest.raises(CommandExecutionError, match="nopgchange"):
        cephpool.set_("images", pg_num=16)
    assert cephpool.set_("images", size=1) == {}


def test_set_of_a_missing_pool_raises(ceph):
    with pytest.raises(CommandExecutionError, match="pool nope does not exist"):
        cephpool.set_("nope", size=2)
    assert ceph.writes() == []


def test_a_refused_write_stops_and_says_what_was_changed(ceph):
    ceph.answers[("osd", "pool", "set", "images", "size")] = fake_ceph.ANSWERS["pool_set_pg_limit"]
    with pytest.raises(CommandExecutionError) as exc:
        cephpool.set_("images", pg_num=16, size=3, max_objects=5)
    message = str(exc.value)
    assert "changed pg_num, pgp_num before; setting size failed" in message
    assert "exceeds max 750" in message  # Ceph's own reason
    assert exc.value.info == {
        "changes": {"pg_num": {"old": 8, "new": 16}, "pgp_num": {"old": 8, "new": 16}}
    }
    assert ceph.writes()[-1][1][4] == "size"  # nothing after the failed write


# -- create / application / init / delete ----------------------------------------


def test_create_sets_placement_at_creation_and_the_rest_after(ceph):
    assert cephpool.create("fresh", pg_num=16, crush_rule="fast", max_objects=100) == {
        "pg_num": 16,
        "crush_rule": "fast",
        "max_objects": 100,
    }
    assert ceph.writes() == [
        ("ceph", ("osd", "pool", "create", "fresh", "--pg_num", "16", "--rule", "fast")),
        ("ceph", ("osd", "pool", "set-quota", "fresh", "max_objects", "100")),
    ]
    props = cephpool.get("fresh")
    assert (props["pg_num"], props["crush_rule"], props["max_objects"]) == (16, "fast", 100)


def test_create_test_mode_checks_without_writing(ceph):
    assert cephpool.create("fresh", test=True, pg_num=32) == {"pg_num": 32}
    with pytest.raises(CommandExecutionError, match="crush_rule nosuch does not exist"):
        cephpool.create("fresh", test=True, crush_rule="nosuch")
    assert ceph.writes() == []


def test_create_refuses_an_existing_pool(ceph):
    # `ceph osd pool create` would exit 0 and change nothing
    with pytest.raises(CommandExecutionError, match="pool volumes exists already"):
        cephpool.create("volumes", pg_num=32)
    assert ceph.writes() == []


def test_create_reports_a_half_done_create(ceph):
    ceph.answers[("osd", "pool", "set-quota")] = {
        "retcode": 22,
        "stdout": "",
        "stderr": "Error EINVAL: nope\n",
    }
    with pytest.raises(CommandExecutionError, match="pool fresh was created, but") as exc:
        cephpool.create("fresh", max_bytes=5)
    assert exc.value.info["created"] is True


def test_application_enable(ceph):
    assert cephpool.application_enable("images", "rbd") is True
    assert cephpool.application_enable("images", "rbd") is False  # re-read after our write
    assert cephpool.application_get("images") == {"rbd": {}}
    assert ceph.writes() == [("ceph", ("osd", "pool", "application", "enable", "images", "rbd"))]


def test_application_enable_refuses_a_second_application(ceph):
    with pytest.raises(
        CommandExecutionError, match="already has application rgw enabled; refusing"
    ):
        cephpool.application_enable("rgwpool", "rbd")
    with pytest.raises(CommandExecutionError, match="application must be"):
        cephpool.application_enable("images", "")
    assert ceph.writes() == []


def test_initialized_reads_rbd_info_with_rados(ceph):
    assert cephpool.initialized("volumes") is True
    rados_argv = ceph.argv[-1]
    assert rados_argv[0] == "rados" and rados_argv[-5:] == ["-p", "volumes", "get", "rbd_info", "-"]
    assert "--client_mount_timeout=10" in rados_argv
    assert cephpool.initialized("vms") is False  # rbd enabled, rbd_info gone
    assert cephpool.initialized("images") is False  # no rbd: no need to look
    assert ceph.calls == [
        LS_DETAIL,
        ("rados", ("-p", "volumes", "get", "rbd_info", "-")),
        ("rados", ("-p", "vms", "get", "rbd_info", "-")),
    ]


def test_initialized_passes_on_other_rados_errors(ceph):
    ceph.answers[("-p",)] = {
        "retcode": 1,
        "stdout": "",
        "stderr": "error getting volumes/rbd_info: (1) Operation not permitted\n",
    }
    with pytest.raises(CommandExecutionError, match="Operation not permitted"):
        cephpool.initialized("volumes")


def test_init_runs_rbd_pool_init(ceph):
    assert cephpool.init("images") is True
    assert ceph.writes() == [("rbd", ("pool", "init", "images"))]
    assert ceph.argv[-1][0] == "rbd" and "--format" not in ceph.argv[-1]
    assert cephpool.initialized("images") is True


def test_init_refuses_a_pool_of_another_application(ceph):
    # rbd pool init would print a warning, exit 0 and do nothing
    with pytest.raises(CommandExecutionError, match="already has application rgw"):
        cephpool.init("rgwpool")
    assert ceph.writes() == []


def test_delete_needs_confirm(ceph):
    for confirm in (False, "yes", 1):
        with pytest.raises(CommandExecutionError, match="pass confirm=True"):
            cephpool.delete("volumes", confirm=confirm)
    assert ceph.calls == []


def test_delete(ceph):
    assert cephpool.delete("volumes", confirm=True) is True
    assert ceph.writes() == [
        ("ceph", ("osd", "pool", "delete", "volumes", "volumes", "--yes-i-really-really-mean-it"))
    ]
    assert cephpool.delete("volumes", confirm=True) is False
    assert not cephpool.exists("volumes")


# -- a cluster that does not answer ---------------------------------------------------


def test_no_answer_is_a_clear_error(ceph):
    ceph.answers[("osd",)] = fake_ceph.ANSWERS["no_answer"]
    with pytest.raises(CommandExecutionError, match="no answer from cluster 'ceph' .* within 3 s"):
        cephpool.get("volumes", timeout=3)
    # the process is killed a little after Ceph's own timeout would fire
    assert ceph.options[0]["timeout"] == 3 + cephpool.ceph_cli._KILL_GRACE


def test_a_killed_process_is_a_clear_error(ceph):
    ceph.answers[("osd",)] = {"retcode": 1, "stdout": "Timed out after 8 seconds", "stderr": ""}
    with pytest.raises(CommandExecutionError, match="no answer"):
        cephpool.list_(timeout=3)
