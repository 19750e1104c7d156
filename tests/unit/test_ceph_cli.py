"""The Ceph CLI helper: a cluster that timed out is not asked again in the same run."""

import pytest
from salt.exceptions import CommandExecutionError

from tests.support.modules import load

ceph_cli = load("salt/_utils/ceph_cli.py", "ceph_cli_for_cli_tests")
CONN = {"cluster": "ceph", "conf": "/lab/ceph.conf", "client_id": "admin", "keyring": None,
        "timeout": 3}


def test_after_a_timeout_the_same_run_fails_at_once():
    calls = []

    def run_all(cmd, **kwargs):
        calls.append(cmd)
        return {"retcode": 1, "stdout": "Timed out after 8 seconds", "stderr": ""}

    context = {}
    for _ in range(3):
        with pytest.raises(CommandExecutionError) as exc:
            ceph_cli.run(run_all, CONN, ["osd", "pool", "ls"], context=context)
        assert "no answer from cluster 'ceph'" in exc.value.strerror
    assert len(calls) == 1
    assert "not retried" in exc.value.strerror
    # another connection (here another conf) is still asked
    with pytest.raises(CommandExecutionError):
        ceph_cli.run(run_all, dict(CONN, conf="/other.conf"), ["osd", "pool", "ls"],
                     context=context)
    assert len(calls) == 2


def test_without_a_context_every_call_is_made():
    calls = []

    def run_all(cmd, **kwargs):
        calls.append(cmd)
        return {"retcode": 110, "stdout": "", "stderr": "error: timed out"}

    for _ in range(2):
        with pytest.raises(CommandExecutionError) as exc:
            ceph_cli.run(run_all, CONN, ["auth", "ls"])
        assert exc.value.info == {"retcode": None}
    assert len(calls) == 2
