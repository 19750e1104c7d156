"""
Glance images through the Image API v2, for copy-on-write on RBD.

The connection comes from a ``clouds.yaml`` cloud (openstacksdk's config
loader: ``/etc/openstack/clouds.yaml``, ``~/.config/openstack/clouds.yaml``,
``OS_CLIENT_CONFIG_FILE``, or ``config_file``), so a password never appears
on a command line, in pillar or in a return. The calls are the plain Image
API (list, create, upload, update, delete) over openstacksdk's
authenticated session: every request is one the operator can read in the
Glance API reference.

:depends: openstacksdk

Every function takes ``cloud`` (the ``clouds.yaml`` entry; default
``config.get('ceph_openstack:glance_cloud')``), ``config_file`` (a
``clouds.yaml`` path instead of the search path; default
``config.get('ceph_openstack:glance_clouds_yaml')``) and ``timeout`` (seconds
per API request, 60; uploads get ``upload_timeout``).

Images are returned as dicts with Glance's own field names; everything
Glance does not define is under ``properties``.
"""

import logging
import os
import re

import salt.utils.hashutils
from salt.exceptions import CommandExecutionError

try:
    import openstack
    import openstack.config

    HAS_SDK = True
except ImportError:
    HAS_SDK = False

log = logging.getLogger(__name__)

__virtualname__ = "glanceimage"

#: Fields of a Glance v2 image; anything else is a custom property.
BASE_FIELDS = frozenset(
    (
        "id", "name", "status", "visibility", "protected", "checksum", "os_hash_algo",
        "os_hash_value", "owner", "size", "virtual_size", "min_ram", "min_disk",
        "disk_format", "container_format", "created_at", "updated_at", "tags", "self", "file",
        "schema", "direct_url", "locations", "os_hidden", "stores",
    )
)

#: Fields the functions here may set; the rest are Glance's to manage.
WRITABLE = ("visibility", "min_disk", "min_ram", "protected")

_PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


def __virtual__():
    if HAS_SDK:
        return __virtualname__
    return (False, "glanceimage: openstacksdk is not installed (pip install openstacksdk)")


def _settings(cloud, config_file):
    cloud = cloud or __salt__["config.get"]("ceph_openstack:glance_cloud", None)
    config_file = config_file or __salt__["config.get"]("ceph_openstack:glance_clouds_yaml", None)
    if not cloud:
        raise CommandExecutionError(
            "no cloud given: pass cloud=<clouds.yaml entry> or set ceph_openstack:glance_cloud"
        )
    return cloud, config_file


def _connect(cloud, config_file, timeout):
    """An openstacksdk connection, one per (cloud, file, timeout) in a Salt run."""
    cloud, config_file = _settings(cloud, config_file)
    cache = __context__.setdefault("glanceimage.connections", {})
    key = (cloud, config_file, timeout)
    if key not in cache:
        if config_file and not os.path.isfile(config_file):
            raise CommandExecutionError(f"clouds.yaml {config_file} does not exist")
        try:
            loader = openstack.config.OpenStackConfig(
                config_files=[config_file] if config_file else None
            )
            region = loader.get_one(cloud=cloud, api_timeout=timeout)
            cache[key] = openstack.connection.Connection(config=region)
        except Exception as exc:  # openstacksdk raises several unrelated types here
            raise CommandExecutionError(f"cloud {cloud!r}: {_reason(exc)}") from None
    return cloud, cache[key]


def _reason(exc):
    """One line about a failed call, never the request body."""
    status = getattr(exc, "http_status", None) or getattr(exc, "status_code", None)
    detail = getattr(exc, "details", None) or getattr(exc, "message", None) or str(exc)
    detail = " ".join(str(detail).split())[:300]
    return f"HTTP {status}: {detail}" if status else f"{type(exc).__name__}: {detail}"


def _error_text(response):
    """The message of Glance's error page (HTML with the status as its heading)."""
    text = response.text or ""
    if "</h1>" in text:
        text = text.split("</h1>", 1)[1]
    text = " ".join(re.sub(r"<[^>]*>", " ", text).split())
    return text[:300] or response.reason or "no message"


def _call(cloud, conn, what, method, url, allow=(), **kwargs):
    """One API request; a failure or an HTTP error (unless its status is in ``allow``)
    raises CommandExecutionError saying what was being done and why it failed."""
    try:
        response = getattr(conn.image, method)(url, raise_exc=False, **kwargs)
    except Exception as exc:  # keystoneauth1 and requests errors alike
        raise CommandExecutionError(
            f"glance (cloud {cloud!r}): {what} failed: {_reason(exc)}"
        ) from None
    if response.status_code >= 400 and response.status_code not in allow:
        raise CommandExecutionError(
            f"glance (cloud {cloud!r}): {what} failed: HTTP {response.status_code}: "
            f"{_error_text(response)}"
        )
    return response


def _image(data):
    image = {key: value for key, value in data.items() if key in BASE_FIELDS}
    image["properties"] = {key: value for key, value in data.items() if key not in BASE_FIELDS}
    return image


def _checked(fields, properties):
    """The writable ``fields`` (Salt's ``__pub_*`` keywords dropped); raises on a field
    we do not set or a property that is not a string."""
    fields = {key: value for key, value in fields.items() if not key.startswith("__")}
    unknown = set(fields) - set(WRITABLE)
    if unknown:
        raise CommandExecutionError(f"unknown image fields: {', '.join(sorted(unknown))}")
    for key, value in (properties or {}).items():
        if not isinstance(key, str) or not key or key in BASE_FIELDS:
            raise CommandExecutionError(f"property name {key!r} is empty or a Glance field")
        if not isinstance(value, str):
            raise CommandExecutionError(f"property {key} must be a string, not {value!r}")
    return fields


def find(name, cloud=None, config_file=None, timeout=60, page_size=100):
    """
    Every image named ``name`` that the cloud's user can see (Glance allows
    several), whatever its visibility (public, private, shared, community)
    and hidden or not, oldest first, read ``page_size`` at a time.

    Glance leaves community images out of a listing unless it is asked for
    ``visibility=all`` and hidden images unless it is asked for
    ``os_hidden=true`` (which then lists only those): this asks for both
    listings.

    CLI Example:

    .. code-block:: bash

        salt ctl1 glanceimage.find cirros-0.6.2 cloud=admin
    """
    cloud, conn = _connect(cloud, config_file, timeout)
    images = []
    for hidden in ("false", "true"):
        url = "/images"
        params = {"name": name, "visibility": "all", "os_hidden": hidden,
                  "sort": "created_at:asc", "limit": int(page_size)}
        while url:
            body = _call(cloud, conn, f"listing images named {name}", "get", url,
                         params=params).json()
            images.extend(_image(item) for item in body.get("images", []))
            # "next" is "/v2/images?marker=...", query included; the session's endpoint
            # already ends in the API version.
            url, params = body.get("next"), None
            if url and url.startswith("/v2/"):
                url = url[len("/v2"):]
    # Stable: images of the same second keep Glance's order.
    return sorted(images, key=lambda image: image.get("created_at") or "")


def get(image_id, cloud=None, config_file=None, timeout=60):
    """
    The image ``image_id``, or None when there is none.

    CLI Example:

    .. code-block:: bash

        salt ctl1 glanceimage.get 5e0d7b6c-0f8e-4c53-9d8b-2f7f1f0a9c11 cloud=admin
    """
    cloud, conn = _connect(cloud, config_file, timeout)
    response = _call(cloud, conn, f"reading image {image_id}", "get", f"/images/{image_id}",
                     allow=(404,))
    return None if response.status_code == 404 else _image(response.json())


def create(
    name,
    path,
    disk_format="raw",
    container_format="bare",
    properties=None,
    cloud=None,
    config_file=None,
    timeout=60,
    upload_timeout=3600,
    **fields,
):
    """
    Create the image ``name`` and upload the file ``path`` as its data; return
    the active image. ``fields`` may set ``visibility``, ``min_disk``,
    ``min_ram`` and ``protected``; ``properties`` are custom string properties
    (``hw_disk_bus: scsi``).

    When the upload fails, or Glance's checksum of what it stored differs
    from the file's, the new image record is deleted again, so no half
    image is left behind.

    CLI Example:

    .. code-block:: bash

        salt ctl1 glanceimage.create cirros /var/tmp/cirros.raw cloud=admin visibility=public \\
            min_disk=1 properties='{hw_disk_bus: scsi, hw_scsi_model: virtio-scsi}'
    """
    fields = _checked(fields, properties)
    if not os.path.isfile(path):
        raise CommandExecutionError(f"{path} is not a file")
    cloud, conn = _connect(cloud, config_file, timeout)
    body = dict(properties or {}, name=name, disk_format=disk_format,
                container_format=container_format, **fields)
    image = _call(cloud, conn, f"creating image {name}", "post", "/images", json=body).json()
    try:
        with open(path, "rb") as data:
            _call(
                cloud, conn, f"uploading {path} to image {image['id']}", "put",
                f"/images/{image['id']}/file", data=data,
                headers={"Content-Type": "application/octet-stream"}, timeout=upload_timeout,
            )
        stored = get(image["id"], cloud, config_file, timeout)
        if stored is None or stored["status"] != "active":
            raise CommandExecutionError(
                f"image {image['id']} is {stored and stored['status']!r} after the upload, "
                "not active"
            )
        expected = salt.utils.hashutils.get_hash(path, stored.get("os_hash_algo") or "sha512")
        if stored.get("os_hash_value") and stored["os_hash_value"] != expected:
            raise CommandExecutionError(
                f"image {image['id']}: Glance's {stored['os_hash_algo']} differs from {path}'s"
            )
    except BaseException:
        try:
            _call(cloud, conn, f"deleting the failed image {image['id']}", "delete",
                  f"/images/{image['id']}", allow=(404,))
        except CommandExecutionError as exc:  # keep the first error; say the cleanup failed
            log.error("glanceimage: %s", exc)
        raise
    log.info("glanceimage: uploaded %s as image %s (%s)", path, stored["id"], name)
    return stored


def update(image_id, properties=None, remove=None, cloud=None, config_file=None, timeout=60,
           **fields):
    """
    Set ``fields`` (``visibility``, ``min_disk``, ``min_ram``, ``protected``)
    and custom ``properties`` of an image, and remove the custom properties
    named in ``remove``; return the image.

    CLI Example:

    .. code-block:: bash

        salt ctl1 glanceimage.update 5e0d7b6c-0f8e-4c53-9d8b-2f7f1f0a9c11 cloud=admin \\
            min_disk=2 properties='{hw_qemu_guest_agent: "yes"}'
    """
    fields = _checked(fields, properties)
    current = get(image_id, cloud, config_file, timeout)
    if current is None:
        raise CommandExecutionError(f"image {image_id} does not exist")
    patch = [
        {"op": "replace" if key in current else "add", "path": f"/{key}", "value": value}
        for key, value in fields.items()
    ]
    patch += [
        {"op": "replace" if key in current["properties"] else "add", "path": f"/{key}",
         "value": value}
        for key, value in (properties or {}).items()
    ]
    patch += [
        {"op": "remove", "path": f"/{key}"}
        for key in (remove or []) if key in current["properties"]
    ]
    if not patch:
        return current
    cloud, conn = _connect(cloud, config_file, timeout)
    body = _call(
        cloud, conn, f"updating image {image_id}", "patch", f"/images/{image_id}",
        json=patch, headers={"Content-Type": _PATCH_TYPE},
    ).json()
    return _image(body)


def delete(image_id, cloud=None, config_file=None, timeout=60):
    """
    Delete an image. Glance refuses (HTTP 409) while its RBD snapshot has
    clones, so an image that volumes were cloned from stays.

    CLI Example:

    .. code-block:: bash

        salt ctl1 glanceimage.delete 5e0d7b6c-0f8e-4c53-9d8b-2f7f1f0a9c11 cloud=admin
    """
    cloud, conn = _connect(cloud, config_file, timeout)
    response = _call(cloud, conn, f"deleting image {image_id}", "delete", f"/images/{image_id}",
                     allow=(404,))
    return response.status_code != 404

