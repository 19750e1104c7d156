"""The lab's Salt part, from the outside: minions answer and grain targeting applies SLS."""


def test_ping_all(salt_cli, minions):
    ret = salt_cli.run("test.ping", minion_tgt="*")
    assert ret.returncode == 0
    assert set(ret.data) == set(minions)


def test_grain_targeted_state_apply(salt_cli, sandbox):
    target = sandbox("cmp1") / "tmp" / "smoke"
    ret = salt_cli.run(
        "-G", "state.single", "file.managed", str(target), contents="smoke", makedirs=True,
        minion_tgt="role:compute",
    )
    assert ret.returncode == 0, ret
    assert set(ret.data) == {"cmp1"}
    assert target.read_text().strip() == "smoke"
    assert not (sandbox("ctl1") / "tmp" / "smoke").exists()
