"""The lab's parts answer from the outside, before any project module is involved."""

import os
import subprocess
import uuid

import pytest


def test_ceph_pool_create_and_list(ceph_lab):
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    ceph_lab.ceph("osd", "pool", "create", name, "8")
    assert name in ceph_lab.ceph("osd", "pool", "ls")
    status = ceph_lab.ceph("status")
    assert status["osdmap"]["num_up_osds"] == 1


def test_libvirt_secret_round_trip(libvirt_lab, tmp_path):
    secret_uuid = str(uuid.uuid4())
    xml = tmp_path / "secret.xml"
    xml.write_text(
        f"<secret ephemeral='no' private='no'><uuid>{secret_uuid}</uuid>"
        f"<usage type='ceph'><name>smoke {secret_uuid} secret</name></usage></secret>"
    )
    libvirt_lab.virsh("secret-define", str(xml))
    value = "AQBhAAAAAAAAABAAvHOq2W2wbY4Wcf7yCmXw3Q=="
    libvirt_lab.virsh("secret-set-value", secret_uuid, "--file", "/dev/stdin", stdin=value)
    assert libvirt_lab.virsh("secret-get-value", secret_uuid).strip() == value
    libvirt_lab.virsh("secret-undefine", secret_uuid)


def test_loaders_see_synced_utils(loaders):
    assert "ceph_cli.run" in loaders.utils


def test_release_tools_run_the_roots_own_binary_whatever_comes_first_on_path(
        ceph_lab, tmp_path):
    """A release's wrapper (another Ceph from its root) runs that root's ``ceph`` even when
    PATH starts with a directory under /tmp holding a ``ceph`` of its own, as the bench's
    counting wrappers do: /tmp is visible inside the root, so a PATH lookup there finds it."""
    if ceph_lab.bindir is None:
        pytest.skip("the host's own Ceph release: no root, no wrapper")
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "ceph").write_text("#!/bin/sh\necho shadowed; exit 3\n")
    (shadow / "ceph").chmod(0o755)
    env = dict(os.environ, PATH=f"{shadow}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run([ceph_lab.tool("ceph"), "--version"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("ceph version "), out
