"""
Unit tests of the drift report: the node's reducer (ceph_openstack_report), the runner's
targets and document (salt-run ceph_openstack.report) and the table outputter. Loader
dunders are set by hand; the runner's LocalClient, pillar and fileserver are mocked.
"""

import json
import time
import types
from unittest import mock

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.modules import load

report = load("salt/_modules/ceph_openstack_report.py", "ceph_openstack_report_under_test")
runner = load("salt/_runners/ceph_openstack.py", "ceph_openstack_runner_under_test")
outputter = load("salt/_output/ceph_openstack_report.py", "ceph_openstack_output_under_test")

AES = "AQBvVRVpAAAAABAAxkdo1LlgAxVGSpUCsKoCvQ=="          # 40 characters, crypto type 1
AES256K = "AgBvVRVpAAAAACAA" + "A" * 43 + "="               # 60 characters, crypto type 2
ORCH = "salt-run state.orchestrate orch.ceph_openstack"


def state(module, sid, name, fun, result=True, changes=None, comment="", run_num=0):
    """One entry of a state.apply return, as Salt tags it."""
    return f"{module}_|-{sid}_|-{name}_|-{fun}", {
        "__id__": sid, "name": name, "result": result, "changes": changes or {},
        "comment": comment, "__run_num__": run_num, "__sls__": "ceph_openstack.mon",
    }


def run_of(*entries):
    return dict(entries)


MON_RUN = run_of(
    state("ceph_openstack", "ceph_openstack-pillar", "ceph_openstack", "pillar_valid"),
    state("cephpool", "ceph_openstack-pool-volumes", "volumes", "present", None,
          {"size": {"old": 2, "new": 1}}, "Pool volumes would be updated", 1),
    state("cephpool", "ceph_openstack-pool-images", "images", "present", run_num=2),
    state("ceph_openstack", "ceph_openstack-client-cinder", "cinder", "client_present",
          None, {"caps": {"old": {"mon": "allow r"}, "new": {"mon": "profile rbd"}}},
          "would set caps", 3),
    state("ceph_openstack", "ceph_openstack-published", "ceph_openstack", "published",
          run_num=4),
    state("cephpool", "ceph_openstack-pool-volumes@dr", "volumes", "present", run_num=5),
    state("ceph_openstack", "ceph_openstack-client-cinder@dr", "cinder", "client_present",
          run_num=6),
    state("ceph_openstack", "ceph_openstack-published@dr", "ceph_openstack", "published",
          run_num=7),
)

CTL_RUN = run_of(
    state("ceph_openstack", "ceph_openstack-keyring-cinder",
          "/etc/ceph/ceph.client.cinder.keyring", "keyring", None,
          {"key": "key changed", "file": {"old": None, "new": "written"}},
          "keyring would be written", 2),
    state("openstack_ini", "ceph_openstack-cinder-conf", "/etc/cinder/cinder.conf",
          "options_present", None,
          {"ceph/rbd_pool": {"old": "handmade", "new": "volumes"}},
          "would change ceph/rbd_pool", 3),
    state("ceph_openstack", "ceph_openstack-keyring-cinder@dr",
          "/etc/ceph/dr.client.cinder.keyring", "keyring", False, {},
          "no key of client.cinder in the mine: run the mons first", 4),
    state("ceph_openstack", "ceph_openstack-ceph-conf", "/etc/ceph/ceph.conf", "ceph_conf",
          run_num=1),
)


# -- the node's reducer ---------------------------------------------------------------------


def test_a_converged_run_has_no_item_and_names_the_clusters_a_mon_serves():
    clean = {tag: dict(ret, result=True, changes={}) for tag, ret in MON_RUN.items()}
    items, served = report._reduce_states("mon1", clean)
    assert items == []
    assert served == {"ceph": {"pools": ["volumes", "images"], "clients": ["cinder"]},
                      "dr": {"pools": ["volumes"], "clients": ["cinder"]}}


def test_mon_items_name_pool_and_user_with_pillar_key_and_fix():
    items, _ = report._reduce_states("mon1", MON_RUN)
    assert [(i["kind"], i["what"], i["pillar"], i["fix"]) for i in items] == [
        ("pool", "pool volumes", "ceph_openstack:pools:volumes",
         "salt mon1 state.apply ceph_openstack"),
        ("user", "client.cinder", "ceph_openstack:clients:cinder", ORCH),
    ]
    assert items[0]["detail"] == ["size: 2 -> 1"]
    assert items[0]["state"] == "ceph_openstack-pool-volumes"
    assert items[1]["detail"] == ['caps: {"mon": "allow r"} -> {"mon": "profile rbd"}']


def test_another_clusters_items_carry_its_pillar_key():
    run = dict(MON_RUN)
    tag, ret = state("cephpool", "ceph_openstack-pool-backups@dr", "backups", "present",
                     None, {"pool": {"old": None, "new": "backups"}}, run_num=9)
    run[tag] = ret
    items, served = report._reduce_states("mon2", run)
    (item,) = [i for i in items if i.get("cluster") == "dr"]
    assert (item["what"], item["pillar"]) == ("pool backups",
                                              "ceph_openstack:clusters:dr:pools:backups")
    assert "backups" in served["dr"]["pools"]


def test_node_items_in_run_order_failures_marked():
    items, served = report._reduce_states("ctl1", CTL_RUN)
    assert served == {}
    assert [(i["kind"], i["what"]) for i in items] == [
        ("keyring", "/etc/ceph/ceph.client.cinder.keyring"),
        ("options", "/etc/cinder/cinder.conf"),
        ("keyring", "/etc/ceph/dr.client.cinder.keyring (cluster dr)"),
    ]
    keyring, options, failed = items
    assert keyring["pillar"] == "ceph_openstack:clients:cinder"
    assert keyring["detail"] == ["file: (none) -> written", "key: key changed"]
    assert options["pillar"] == "ceph_openstack:cinder"
    assert options["detail"] == ["ceph/rbd_pool: handmade -> volumes"]
    assert options["fix"] == "salt ctl1 state.apply ceph_openstack"
    assert failed["error"] is True
    assert failed["pillar"] == "ceph_openstack:clusters:dr:clients:cinder"
    assert failed["detail"] == ["no key of client.cinder in the mine: run the mons first"]
    assert failed["fix"].startswith("see the error, then salt ctl1 state.apply")


def test_a_run_that_did_not_render_is_one_item():
    items, served = report._reduce_states("cmp1", ["Rendering SLS 'base:x' failed: boom"])
    assert served == {}
    assert [(i["kind"], i["error"]) for i in items] == [("render", True)]
    assert "ceph_openstack.validate" in items[0]["fix"]
    items, _ = report._reduce_states("cmp1", [
        'The function "state.apply" is running as PID 4242 and was started at ...'])
    assert items[0]["kind"] == "busy" and "saltutil.running" in items[0]["fix"]


def test_describe_changes_cuts_long_values_and_lists_nested_ones():
    lines = report._describe_changes({"a": {"b": {"old": "x" * 200, "new": 1}}, "c": "set"})
    assert lines[0].startswith("a b: " + "x" * 10) and lines[0].endswith("... -> 1")
    assert lines[1] == "c: set"


def test_no_key_leaves_the_node_even_when_a_state_shows_one():
    tag, ret = state("virtsecret", "x", "uuid", "present", None,
                     {"value": {"old": AES, "new": AES256K}}, f"key {AES} here")
    items, _ = report._reduce_states("cmp1", {tag: ret})
    text = json.dumps(report._scrub(items))
    assert AES not in text and AES256K not in text
    assert report.KEY_SHOWN in text


HEALTH = {
    "status": "HEALTH_WARN",
    "checks": {
        "AUTH_INSECURE_CLIENT_KEY_TYPE": {
            "severity": "HEALTH_WARN",
            "summary": {"message": "3 auth client entities with insecure key types"},
            "detail": [{"message": "entity client.cinder using insecure key type: aes"},
                       {"message": "entity client.glance using insecure key type: aes"},
                       {"message": "entity client.other using insecure key type: aes"}]},
        "POOL_APP_NOT_ENABLED": {
            "severity": "HEALTH_WARN",
            "summary": {"message": "application not enabled on 2 pool(s)"},
            "detail": [{"message": "application not enabled on pool 'volumes'"},
                       {"message": "application not enabled on pool 'scratch'"}]},
        "POOL_NEAR_FULL": {
            "severity": "HEALTH_WARN", "summary": {"message": "1 pool(s) nearfull"},
            "detail": [{"message": "pool 'scratch' is nearfull"}]},
        "MON_DISK_LOW": {"severity": "HEALTH_WARN", "summary": {"message": "low"},
                         "detail": [{"message": "mon.a is low on available space"}]},
    },
}


def test_health_checks_about_the_formula_become_items_with_their_fix():
    items, others = report._health_items("mon1", HEALTH, "ceph", "ceph", ["volumes", "images"],
                                        ["cinder", "glance"])
    assert others == ["MON_DISK_LOW", "POOL_NEAR_FULL"]
    insecure, app = items
    assert insecure["what"] == "AUTH_INSECURE_CLIENT_KEY_TYPE"
    assert insecure["detail"][1:] == ["entity client.cinder using insecure key type: aes",
                                      "entity client.glance using insecure key type: aes"]
    assert insecure["fix"] == (
        "salt-run state.orchestrate orch.ceph_openstack_rotate "
        'pillar=\'{"ceph_openstack_rotate": {"clients": ["cinder", "glance"]}}\'')
    assert app["detail"][1:] == ["application not enabled on pool 'volumes'"]
    assert app["fix"] == "salt mon1 state.apply ceph_openstack"
    assert app["pillar"] == "ceph_openstack:pools:volumes"


def test_rotation_fix_names_another_cluster():
    items, _ = report._health_items("mon2", HEALTH, "dr", "ceph", [], ["cinder"])
    assert json.loads(items[0]["fix"].split("pillar=")[1].strip("'")) == {
        "ceph_openstack_rotate": {"clients": ["cinder"], "cluster": "dr"}}
    assert items[0]["pillar"] == "ceph_openstack:clusters:dr:clients:cinder"


def test_key_summary_type_age_and_rotation_record():
    now = 1_800_000_000
    info = {"key": {"type": "aes", "created": now - 3 * 86400}, "pending": None}
    assert report._key_summary(info, None, now) == {
        "type": "aes", "created": now - 3 * 86400, "age_days": 3.0, "rotated": None,
        "pending": None}
    record = {"key_created": now - 86400, "at": now - 86000}
    info = {"key": {"type": "aes256k", "created": now - 86400},
            "pending": {"type": "aes256k", "created": now}}
    found = report._key_summary(info, record, now)
    assert (found["rotated"], found["pending"]) == (now - 86000, "aes256k")
    # a record of another key (rotated, then replaced by hand) is not this key's rotation
    assert report._key_summary(info, {"key_created": 5, "at": 6}, now)["rotated"] is None


def test_verify_items_leave_out_what_a_state_item_names():
    items, _ = report._reduce_states("ctl1", CTL_RUN)
    found = {"ok": False, "checks": {
        "/etc/cinder/cinder.conf: client.cinder on pool volumes":
            "keyring /etc/ceph/ceph.client.cinder.keyring is missing",
        "/etc/glance/glance-api.conf: client.glance on pool images":
            "error connecting to the cluster",
        "/etc/cinder/cinder.conf: client.cinder on pool volumes of cluster dr":
            "keyring /etc/ceph/dr.client.cinder.keyring is missing",
        "libvirt secret x": "ok"}}
    extra = report._verify_items("ctl1", found, items)
    assert [(i["kind"], i["what"]) for i in extra] == [
        ("check", "/etc/glance/glance-api.conf: client.glance on pool images")]
    assert extra[0]["fix"] == ("salt ctl1 state.apply ceph_openstack; "
                               "salt ctl1 ceph_openstack.verify")


# -- drift() with the loader dunders set ----------------------------------------------------


@pytest.fixture
def node(monkeypatch):
    calls = []

    def apply_(mods, test=None):
        calls.append(("state.apply", mods, test))
        report.__context__["retcode"] = 2  # what state.apply does after a failed state
        return CTL_RUN if "controller" in report.__grains__["role"] else MON_RUN

    def ceph_run(run_all, conn, args, context=None):
        calls.append(("ceph", tuple(args), conn.get("conf")))
        return HEALTH

    def key_info(entity, **connection):
        calls.append(("key_info", entity, connection.get("conf")))
        if entity == "client.gone":
            raise CommandExecutionError("client.gone does not exist")
        return {"entity": entity, "key": {"type": "aes", "created": 1_700_000_000},
                "pending": None}

    config = {"ceph_openstack:clusters:dr": {"conf": "/etc/dr/dr.conf", "keyring": "/k",
                                             "other": 1}}
    report.__salt__ = {
        "state.apply": apply_,
        "config.get": lambda key, default=None: config.get(key, default),
        "cmd.run_all": None,
        "cephauth.key_info": key_info,
        "cephauth.rotation_record": lambda entity, **connection: None,
        "ceph_openstack_rollout.stale": lambda files, hash_type: ["_modules/cephpool.py"],
        "ceph_openstack.verify": lambda settle: {"ok": True, "checks": {"x": "ok"}},
    }
    monkeypatch.setattr(report, "ceph_cli", types.SimpleNamespace(
        connection=lambda config_get, **connection: dict(connection), run=ceph_run))
    report.__context__ = {}
    report.__pillar__ = {"ceph_openstack": {"cluster": "ceph"}}
    report.__grains__ = {"id": "mon1", "role": "mon"}
    return calls


def test_drift_on_a_mon_reads_each_served_cluster_on_its_own_connection(node):
    found = report.drift(files={"_modules/cephpool.py": "abc"})
    assert found["node"] == "mon1" and found["roles"] == ["mon"]
    assert [i["kind"] for i in found["items"]] == ["modules", "pool", "user"]
    assert found["items"][0]["fix"] == "salt mon1 saltutil.sync_all"
    assert set(found["clusters"]) == {"ceph", "dr"}
    assert ("ceph", ("health", "detail"), None) in node
    assert ("ceph", ("health", "detail"), "/etc/dr/dr.conf") in node
    assert ("key_info", "client.cinder", "/etc/dr/dr.conf") in node
    assert ("state.apply", "ceph_openstack", True) in node
    view = found["clusters"]["ceph"]
    assert view["health"] == "HEALTH_WARN" and view["mon"] == "mon1"
    assert view["keys"]["client.cinder"]["type"] == "aes"
    assert [i["what"] for i in view["items"]] == ["AUTH_INSECURE_CLIENT_KEY_TYPE",
                                                 "POOL_APP_NOT_ENABLED"]
    # the report does not fail its job because a state would fail
    assert "retcode" not in report.__context__


def test_drift_on_a_controller_runs_verify_and_no_ceph_command(node):
    report.__grains__ = {"id": "ctl1", "role": ["controller"]}
    report.__context__["retcode"] = 0
    found = report.drift(verify=True)
    assert found["clusters"] == {}
    assert not [call for call in node if call[0] in ("ceph", "key_info")]
    assert [i["kind"] for i in found["items"]] == ["keyring", "options", "keyring"]
    assert report.__context__["retcode"] == 0


def test_drift_keys_never_in_the_answer(node):
    report.__salt__["state.apply"] = lambda mods, test=None: run_of(state(
        "cephauth", "k", "/etc/ceph/k", "keyring_present", None, {"key": AES},
        f"wrote {AES256K}"))
    text = json.dumps(report.drift())
    assert AES not in text and AES256K not in text


# -- the runner -----------------------------------------------------------------------------


def test_targets_as_the_orchestration_builds_them():
    assert runner._targets({}) == {
        "mon": ["G@role:mon"], "controller": "G@role:controller",
        "compute": "G@role:compute",
        "tgt": "( G@role:mon ) or ( G@role:controller ) or ( G@role:compute )"}
    pillar = {"ceph_openstack": {
        "targets": {"controller": "L@ctl1,ctl2"},
        "clusters": {"dr": {"targets": {"mon": "G@role:mon and G@ceph_cluster:dr"}},
                     "same": {"pools": {}}}}}
    found = runner._targets(pillar)
    assert found["mon"] == ["G@role:mon", "G@role:mon and G@ceph_cluster:dr"]
    assert found["tgt"] == ("( G@role:mon ) or ( G@role:mon and G@ceph_cluster:dr ) or "
                            "( L@ctl1,ctl2 ) or ( G@role:compute )")


NODE_OK = {"node": "cmp1", "roles": ["compute"], "items": [], "clusters": {}, "seconds": 1.2}


def test_assemble_ok_drift_missing_failed():
    ctl = {"node": "ctl1", "roles": ["controller"], "seconds": 1.4,
           "items": report._reduce_states("ctl1", CTL_RUN)[0], "clusters": {}}
    mon = {"node": "mon1", "roles": ["mon"], "items": [], "seconds": 2.0, "clusters": {
        "ceph": {"mon": "mon1", "health": "HEALTH_OK", "items": [], "keys": {},
                 "other_checks": []}}}
    mon2 = dict(mon, node="mon2", clusters={"ceph": dict(mon["clusters"]["ceph"],
                                                         mon="mon2")})
    returns = {
        "mon1": {"ret": mon, "retcode": 0}, "mon2": {"ret": mon2, "retcode": 0},
        "ctl1": {"ret": ctl, "retcode": 0}, "cmp1": {"ret": NODE_OK, "retcode": 0},
        "cmp2": {"ret": "'ceph_openstack_report.drift' is not available.", "retcode": 254},
        # how LocalClient.cmd(full_return=True) marks the ones that did not answer
        "cmp4": {"failed": True},
        "cmp5": {"ret": "Minion did not return. [Not connected]", "retcode": 1},
        "cmp6": False,  # Salt 3006's LocalClient.cmd
    }
    expected = ["mon1", "mon2", "ctl1", "cmp1", "cmp2", "cmp3", "cmp4", "cmp5", "cmp6"]
    doc = runner._assemble(expected, returns, 60, 3.14)
    assert doc["retcode"] == 1 and doc["drift"] is True
    assert doc["summary"] == {"ok": ["cmp1", "mon1", "mon2"], "drift": ["ctl1"],
                              "missing": ["cmp3", "cmp4", "cmp5", "cmp6"],
                              "failed": ["cmp2"], "items": 8}
    assert doc["nodes"]["cmp3"]["items"][0]["kind"] == "missing node"
    assert "salt cmp3 state.apply ceph_openstack" in doc["nodes"]["cmp3"]["items"][0]["fix"]
    assert doc["nodes"]["cmp2"]["items"][0]["fix"] == "salt cmp2 saltutil.sync_all"
    assert doc["clusters"]["ceph"]["mon"] == "mon1"
    assert doc["seconds"] == 3.14
    json.dumps(doc)


def test_assemble_clean_is_retcode_0():
    doc = runner._assemble(["cmp1"], {"cmp1": {"ret": NODE_OK, "retcode": 0}}, 60)
    assert (doc["retcode"], doc["drift"], doc["summary"]["ok"]) == (0, False, ["cmp1"])


def test_no_node_at_all_is_a_problem_not_a_clean_report():
    doc = runner._assemble([], {}, 60, target_info={"tgt": "L@nobody"})
    assert doc["retcode"] == 1
    (problem,) = doc["problems"]
    assert (problem["kind"], problem["detail"]) == ("targets", ["L@nobody"])
    assert "no minion matches the targets" in outputter.output(doc)


def test_a_pillar_that_does_not_compile_on_the_master_is_a_problem(master):
    runner.salt.pillar.Pillar.return_value.compile_pillar.return_value = {
        "_errors": ["Rendering SLS 'x' failed"]}
    doc = runner.report()["data"]
    assert doc["retcode"] == 1
    assert doc["problems"][0]["kind"] == "pillar"
    assert doc["problems"][0]["fix"] == "salt-run pillar.show_pillar m_master"
    assert doc["targets"]["tgt"] == (
        "( G@role:mon ) or ( G@role:controller ) or ( G@role:compute )")


def test_assemble_scrubs_a_failed_nodes_text():
    doc = runner._assemble(["c"], {"c": {"ret": f"Traceback\nValueError: {AES}",
                                        "retcode": 1}}, 60)
    assert AES not in json.dumps(doc)
    assert doc["summary"]["failed"] == ["c"]


@pytest.fixture
def master(tmp_path):
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("ceph_openstack:\n  targets:\n    mon: 'G@role:mon'\n"
                        "    controller: 'G@role:controller'\n    compute: 'G@role:compute'\n")
    fileserver = mock.Mock()
    fileserver.find_file.return_value = {"path": str(defaults), "rel": "x"}
    fileserver.file_list.side_effect = lambda load: [
        f"{load['prefix']}/a.py", f"{load['prefix']}/README", f"{load['prefix']}x/b.py"]
    fileserver.file_hash.return_value = {"hsum": "h", "hash_type": "sha256"}
    client = mock.Mock()
    client.cmd.return_value = {"cmp1": {"ret": NODE_OK, "retcode": 0}}
    ckminions = mock.Mock()
    ckminions.check_minions.return_value = {"minions": ["cmp1", "cmp9"], "missing": []}
    pillar = mock.Mock()
    pillar.compile_pillar.return_value = {"ceph_openstack": {"targets": {"compute": "L@cmp1"}}}
    runner.__opts__ = {"id": "m_master", "grains": {"id": "m"}, "__role": "master"}
    runner.__context__ = {}
    with mock.patch.object(runner.salt.fileserver, "Fileserver", return_value=fileserver), \
            mock.patch.object(runner.salt.client, "get_local_client", return_value=client), \
            mock.patch.object(runner.salt.utils.minions, "CkMinions", return_value=ckminions), \
            mock.patch.object(runner.salt.pillar, "Pillar", return_value=pillar):
        yield client


def test_report_is_one_job_over_every_target(master):
    ret = runner.report(timeout=5, gather_job_timeout=30)
    assert master.cmd.call_count == 1
    (tgt, fun), kwargs = master.cmd.call_args
    assert fun == "ceph_openstack_report.drift"
    assert tgt == "( G@role:mon ) or ( G@role:controller ) or ( L@cmp1 )"
    assert kwargs["tgt_type"] == "compound" and kwargs["timeout"] == 5
    assert kwargs["gather_job_timeout"] == 30
    assert kwargs["kwarg"]["files"] == {"_modules/a.py": "h", "_states/a.py": "h",
                                        "_utils/a.py": "h"}
    # no --out: the table outputter; the document carries salt-run's exit status
    assert ret["outputter"] == "ceph_openstack_report"
    assert ret["data"]["retcode"] == 1 and ret["data"]["summary"]["missing"] == ["cmp9"]
    assert runner.__context__["retcode"] == 1


def test_report_with_out_json_is_the_document(master):
    runner.__opts__["output"] = "json"
    ckminions_clean = {"cmp1": {"ret": NODE_OK, "retcode": 0}}
    master.cmd.return_value = ckminions_clean
    with mock.patch.object(runner.salt.utils.minions, "CkMinions") as ck:
        ck.return_value.check_minions.return_value = {"minions": ["cmp1"]}
        doc = runner.report(tgt="L@cmp1")
    assert doc["retcode"] == 0 and doc["targets"]["tgt"] == "L@cmp1"
    assert "retcode" not in runner.__context__


# -- the table --------------------------------------------------------------------------------


def test_table_names_node_item_difference_and_fix():
    ctl = {"node": "ctl1", "roles": ["controller"], "seconds": 1.4,
           "items": report._reduce_states("ctl1", CTL_RUN)[0], "clusters": {}}
    mon = {"node": "mon1", "roles": ["mon"], "items": [], "seconds": 2.0, "clusters": {
        "ceph": {"mon": "mon1", "health": "HEALTH_WARN", "other_checks": ["MON_DISK_LOW"],
                 "items": report._health_items("mon1", HEALTH, "ceph", "ceph", ["volumes"],
                                              ["cinder"])[0],
                 "keys": {"client.cinder": report._key_summary(
                     {"key": {"type": "aes", "created": time.time() - 86400}}, None)}}}}
    doc = runner._assemble(["ctl1", "mon1", "cmp1"], {"ctl1": {"ret": ctl},
                                                     "mon1": {"ret": mon}}, 60, 2.5)
    text = outputter.output(doc)
    assert text.splitlines()[0].startswith("ceph_openstack drift report: DRIFT: 6 item(s)")
    row = next(line for line in text.splitlines() if "cinder.conf" in line)
    assert row.split()[:2] == ["ctl1", "options"]
    assert "ceph/rbd_pool: handmade -> volumes" in row
    assert row.endswith("salt ctl1 state.apply ceph_openstack")
    assert any(line.startswith("cmp1") and "missing node" in line for line in text.splitlines())
    assert "AUTH_INSECURE_CLIENT_KEY_TYPE" in text and "orch.ceph_openstack_rotate" in text
    assert "cluster ceph (seen from mon1): health HEALTH_WARN" in text
    key_row = next(line for line in text.splitlines() if line.startswith("client.cinder"))
    assert key_row.split()[1:2] == ["aes"] and "1.0" in key_row
    assert all(len(line) < 400 for line in text.splitlines())


def test_table_keeps_a_long_paths_end():
    rows = [["n", "keyring", "/" + "x" * 80 + "/ceph.client.cinder.keyring", "d", "-", "f"]]
    line = outputter._table(["NODE", "KIND", "ITEM", "WHAT DIFFERS", "PILLAR", "FIX"], rows)[1]
    assert "...x" in line and "ceph.client.cinder.keyring" in line


def test_table_of_something_else_is_its_text():
    assert outputter.output("nothing") == "nothing"
