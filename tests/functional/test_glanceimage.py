"""
Functional tests of the glanceimage execution module through Salt's loader,
against a real glance-api (lab/glance.py) storing into the lab cluster.

The glance-api.conf here is a minimal multi-store one written by the test
(the formula's own is used by tests/integration/test_images.py); the pool
and client.glance user are made with the admin CLI.
"""

import hashlib
import json
import socket
import urllib.request
import uuid

import pytest
from salt.exceptions import CommandExecutionError

from lab.glance import CLOUD, GlanceLab, unsupported

pytestmark = pytest.mark.lab

MIB = 1 << 20


@pytest.fixture(scope="module", autouse=True)
def _cluster(ceph_lab):
    """Requested before ``loaders`` so the minion opts point at the lab cluster."""
    return ceph_lab


@pytest.fixture(scope="module")
def glance(ceph_lab, tmp_path_factory):
    if unsupported(ceph_lab):
        pytest.skip(unsupported(ceph_lab))
    tag = uuid.uuid4().hex[:8]
    pool, user = f"gimg-{tag}", f"glance-{tag}"
    work = tmp_path_factory.mktemp("glance")
    ceph_lab.ceph("osd", "pool", "create", pool, "8", json_out=False)
    ceph_lab.rbd("pool", "init", pool)
    keyring = work / f"ceph.client.{user}.keyring"
    ceph_lab.ceph("auth", "get-or-create", f"client.{user}", "mon", "profile rbd",
                  "osd", f"profile rbd pool={pool}", "mgr", f"profile rbd pool={pool}",
                  "-o", str(keyring), json_out=False)
    conf = work / "glance-api.conf"
    conf.write_text(
        "[DEFAULT]\nenabled_backends = store1:rbd\nshow_image_direct_url = true\n\n"
        "[glance_store]\ndefault_backend = store1\n\n"
        f"[store1]\nrbd_store_pool = {pool}\nrbd_store_user = {user}\n"
        "rbd_store_ceph_conf = /etc/ceph/ceph.conf\n"
    )
    server = GlanceLab(str(work / "server"))
    server.up(str(conf), {"store1": (ceph_lab.conf, str(keyring), user)})
    server.pool = pool
    try:
        yield server
    finally:
        server.down()
        ceph_lab.ceph("auth", "del", f"client.{user}", json_out=False, check=False)
        ceph_lab.ceph("osd", "pool", "delete", pool, pool, "--yes-i-really-really-mean-it",
                      json_out=False, check=False)


@pytest.fixture
def api(glance):
    return {"cloud": CLOUD, "config_file": glance.clouds_yaml}


@pytest.fixture
def raw(tmp_path):
    path = tmp_path / "disk.raw"
    path.write_bytes(bytes(range(256)) * (2 * MIB // 256))
    return path


def _names_in_glance(glance):
    with urllib.request.urlopen(f"{glance.url}/v2/images", timeout=30) as response:
        return [image["name"] for image in json.load(response)["images"]]


def test_create_find_update_delete(modules, glance, api, raw, ceph_lab):
    name = f"fn-{uuid.uuid4().hex[:8]}"
    image = modules.glanceimage.create(
        name, str(raw), visibility="public", min_disk=1,
        properties={"hw_disk_bus": "scsi", "os_require_quiesce": "yes"}, **api,
    )
    data = raw.read_bytes()
    assert image["status"] == "active" and image["disk_format"] == "raw"
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["visibility"] == "public" and image["min_disk"] == 1
    assert image["properties"]["hw_disk_bus"] == "scsi"
    assert image["direct_url"] == f"rbd://{ceph_lab.fsid}/{glance.pool}/{image['id']}/snap"
    assert image["id"] in ceph_lab.rbd("ls", glance.pool).split()

    assert [i["id"] for i in modules.glanceimage.find(name, **api)] == [image["id"]]
    assert modules.glanceimage.find(f"{name}-none", **api) == []
    assert modules.glanceimage.get(str(uuid.uuid4()), **api) is None

    updated = modules.glanceimage.update(
        image["id"], min_disk=3, properties={"hw_disk_bus": "virtio", "os_distro": "x"},
        remove=["os_require_quiesce"], **api,
    )
    assert updated["min_disk"] == 3
    assert updated["properties"]["hw_disk_bus"] == "virtio"
    assert updated["properties"]["os_distro"] == "x"
    assert "os_require_quiesce" not in updated["properties"]
    assert modules.glanceimage.get(image["id"], **api)["properties"] == updated["properties"]

    assert modules.glanceimage.delete(image["id"], **api) is True
    assert modules.glanceimage.delete(image["id"], **api) is False
    assert name not in _names_in_glance(glance)
    assert image["id"] not in ceph_lab.rbd("ls", glance.pool).split()


def test_find_reads_every_page_oldest_first(modules, glance, api, raw):
    name = f"paged-{uuid.uuid4().hex[:8]}"
    ids = [modules.glanceimage.create(name, str(raw), **api)["id"] for _ in range(3)]
    try:
        found = [image["id"] for image in modules.glanceimage.find(name, page_size=1, **api)]
        # created_at has whole seconds: images of the same second come in id order
        assert len(found) == 3 and sorted(found) == sorted(ids)
    finally:
        for image_id in ids:
            modules.glanceimage.delete(image_id, **api)


def test_failed_upload_leaves_no_image(modules, glance, api, raw):
    name = f"fail-{uuid.uuid4().hex[:8]}"
    with pytest.raises(CommandExecutionError, match=f"uploading {raw} to image"):
        modules.glanceimage.create(name, str(raw), upload_timeout=1e-6, **api)
    assert name not in _names_in_glance(glance)


def test_delete_of_an_image_with_clones_is_refused(modules, glance, api, raw, ceph_lab):
    image = modules.glanceimage.create(f"cloned-{uuid.uuid4().hex[:8]}", str(raw), **api)
    clone = f"{glance.pool}/clone-{image['id'][:8]}"
    ceph_lab.rbd("clone", f"{glance.pool}/{image['id']}@snap", clone)
    try:
        with pytest.raises(CommandExecutionError, match=r"deleting image .* HTTP 409") as err:
            modules.glanceimage.delete(image["id"], **api)
        assert str(err.value).endswith(  # Glance's HTML error page reduced to its text
            "HTTP 409: Image {0} could not be deleted because it is in use: The image cannot "
            "be deleted because it is in use through the backend store outside of Glance.".format(
                image["id"]))
        assert modules.glanceimage.get(image["id"], **api)["status"] == "active"
    finally:
        ceph_lab.rbd("rm", clone)
        modules.glanceimage.delete(image["id"], **api)


def test_bad_inputs_and_unreachable_clouds_name_the_cause(modules, glance, api, raw, tmp_path):
    with pytest.raises(CommandExecutionError, match="cloud 'nowhere'"):
        modules.glanceimage.find("x", cloud="nowhere", config_file=glance.clouds_yaml)
    with pytest.raises(CommandExecutionError, match="does not exist"):
        modules.glanceimage.find("x", cloud=CLOUD, config_file=str(tmp_path / "none.yaml"))
    with pytest.raises(CommandExecutionError, match="no cloud given"):
        modules.glanceimage.find("x")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    down = tmp_path / "clouds.yaml"
    down.write_text(json.dumps({"clouds": {"down": {
        "auth_type": "none", "auth": {"endpoint": closed}, "image_endpoint_override": closed}}}))
    with pytest.raises(CommandExecutionError, match="glance \\(cloud 'down'\\): listing images"):
        modules.glanceimage.find("x", cloud="down", config_file=str(down), timeout=5)
    with pytest.raises(CommandExecutionError, match="property os_distro must be a string"):
        modules.glanceimage.create("x", str(raw), properties={"os_distro": 7}, **api)
    with pytest.raises(CommandExecutionError, match="unknown image fields: owner"):
        modules.glanceimage.create("x", str(raw), owner="someone", **api)


def _glance_api(glance, path, method="GET", body=None):
    """One plain HTTP request to the lab's glance-api, as an operator would make it."""
    headers = {"Content-Type": "application/openstack-images-v2.1-json-patch"} if body else {}
    request = urllib.request.Request(f"{glance.url}/v2{path}", method=method, headers=headers,
                                     data=json.dumps(body).encode() if body else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _every_image_named(glance, name):
    """Every image of that name, community and hidden ones included."""
    query = f"/images?name={name}&visibility=all"
    return [image["id"] for hidden in ("false", "true")
            for image in _glance_api(glance, f"{query}&os_hidden={hidden}")["images"]]


@pytest.mark.parametrize("visibility", ["public", "private", "shared", "community", "hidden"])
def test_every_visibility_is_found_uploaded_once_and_guarded(
    modules, states, glance, api, raw, tmp_path, visibility
):
    name = f"vis-{visibility}-{uuid.uuid4().hex[:8]}"
    wanted = {"visibility": "public" if visibility == "hidden" else visibility}
    first = states.glanceimage.present(name, source=str(raw), **wanted, **api)
    assert first.result is True, first.comment
    (image_id,) = _every_image_named(glance, name)
    try:
        if visibility == "hidden":
            _glance_api(glance, f"/images/{image_id}", "PATCH",
                        [{"op": "replace", "path": "/os_hidden", "value": True}])
        if visibility in ("community", "hidden"):  # what made a re-run upload again
            assert _glance_api(glance, f"/images?name={name}")["images"] == []

        assert [image["id"] for image in modules.glanceimage.find(name, **api)] == [image_id]
        again = states.glanceimage.present(name, source=str(raw), **wanted, **api)
        assert (again.result, again.changes) == (True, {}), again.comment
        assert _every_image_named(glance, name) == [image_id]

        other = tmp_path / "other.raw"
        other.write_bytes(b"\x07" * MIB)
        refused = states.glanceimage.present(name, source=str(other), **wanted, **api)
        assert refused.result is False and refused.changes == {}
        assert image_id in refused.comment and "new image name" in refused.comment
        assert _every_image_named(glance, name) == [image_id]
    finally:
        modules.glanceimage.delete(image_id, **api)
