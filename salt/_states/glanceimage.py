"""
A Glance image stored as raw, so RBD can clone it instead of copying it.

.. code-block:: yaml

    cirros-0.6.2:
      glanceimage.present:
        - source: salt://images/cirros-0.6.2-x86_64-disk.img
        - cloud: admin
        - visibility: public
        - min_disk: 1
        - properties:
            hw_scsi_model: virtio-scsi
            hw_disk_bus: scsi
            hw_qemu_guest_agent: 'yes'
            os_require_quiesce: 'yes'

The image is known by its name and by the SHA-256 of its source file, kept
in the image property ``ceph_openstack_source_sha256``. When no image of
that name exists, the source is converted to raw if it is not raw (with
``cephimage.convert``: into ``work_dir``, after a free-space check; the raw
copy is removed afterwards), uploaded and checked against Glance's own hash
of what it stored. When it exists, only ``visibility``, ``min_disk`` and the
given ``properties`` are brought in line (properties not given are left
alone). An image of that name made from another source is never replaced or
deleted: Glance's data is immutable and volumes may be clones of it, so the
state fails and asks for a new name.

Glance's credentials come from ``clouds.yaml`` (see the ``glanceimage``
execution module); nothing secret passes through the state.
"""

import json
import logging
import os

import salt.utils.hashutils
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "glanceimage"

#: The image property that ties an image to its source file.
SOURCE_KEY = "ceph_openstack_source_sha256"
VISIBILITIES = ("public", "private", "shared", "community")


def __virtual__():
    if "glanceimage.find" in __salt__ and "cephimage.convert" in __salt__:
        return __virtualname__
    return (False, "glanceimage state: the glanceimage and cephimage execution modules are needed")


def _input_problem(name, properties, visibility, min_disk, source_hash):
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        return "name must be a non-empty string of at most 255 characters"
    if not isinstance(properties, dict):
        return f"properties must be a mapping, not {properties!r}"
    for key, value in properties.items():
        if key == SOURCE_KEY:
            return f"property {SOURCE_KEY} is set by this state"
        if not isinstance(value, str):
            return (
                f"property {key} must be a string (quote it in YAML: '{value}'), "
                f"not {type(value).__name__}"
            )
    if visibility is not None and visibility not in VISIBILITIES:
        return f"visibility must be one of {', '.join(VISIBILITIES)}, not {visibility!r}"
    if min_disk is not None and (
        isinstance(min_disk, bool) or not isinstance(min_disk, int) or min_disk < 0
    ):
        return f"min_disk must be a whole number of GiB >= 0, not {min_disk!r}"
    if source_hash is not None and (
        not isinstance(source_hash, str)
        or len(source_hash) != 64
        or set(source_hash.lower()) - set("0123456789abcdef")
    ):
        return "source_hash must be the source file's SHA-256 as 64 hex digits"
    return None


def _local_source(source, saltenv):
    """A local path of the source: as given when absolute, else fetched by cp.cache_file."""
    if os.path.isabs(source):
        if not os.path.isfile(source):
            raise CommandExecutionError(f"source {source} is not a file")
        return source
    cached = __salt__["cp.cache_file"](source, saltenv)
    if not cached:
        raise CommandExecutionError(f"source {source} could not be fetched")
    return cached


_HASH_RECORD = os.path.join("ceph_openstack", "image_source_sha256.json")


def _source_sha256(path):
    """
    The SHA-256 of ``path``. Hashing a cloud image takes seconds, so the
    result is kept in the minion's cachedir keyed by path, size and mtime, and
    a re-run with an unchanged source reads nothing but that record.
    """
    stat = os.stat(path)
    stamp = [stat.st_size, stat.st_mtime_ns]
    record_path = os.path.join(__opts__["cachedir"], _HASH_RECORD)
    try:
        with open(record_path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        record = {}
    known = record.get(path)
    if isinstance(known, list) and known[:2] == stamp:
        return known[2]
    digest = salt.utils.hashutils.get_hash(path, "sha256")
    record[path] = stamp + [digest]
    try:
        os.makedirs(os.path.dirname(record_path), exist_ok=True)
        partial = f"{record_path}.{os.getpid()}"
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.replace(partial, record_path)
    except OSError as exc:
        log.debug("glanceimage: cannot record the hash of %s: %s", path, exc)
    return digest


def _differences(image, fields, properties):
    changes = {}
    for key, value in fields.items():
        if image.get(key) != value:
            changes[key] = {"old": image.get(key), "new": value}
    props = {}
    for key, value in properties.items():
        if image["properties"].get(key) != value:
            props[key] = {"old": image["properties"].get(key), "new": value}
    if props:
        changes["properties"] = props
    return changes


def present(
    name,
    source,
    cloud=None,
    config_file=None,
    visibility=None,
    min_disk=None,
    properties=None,
    source_hash=None,
    fmt=None,
    work_dir=None,
    saltenv="base",
    timeout=60,
    upload_timeout=3600,
):
    """
    Ensure Glance has the raw image ``name`` made from ``source``.

    name
        The image name.
    source
        The disk image: an absolute path on the minion, or anything
        ``cp.cache_file`` fetches (``salt://``, ``https://``).
    cloud, config_file
        The ``clouds.yaml`` cloud (and optionally the file) of the Glance API.
    visibility, min_disk
        Managed when given; ``None`` leaves Glance's value.
    properties
        Custom image properties (strings). Others on the image are left alone.
    source_hash
        The source's expected SHA-256 (64 hex digits): the state fails,
        changing nothing, when the fetched file differs.
    fmt
        The source format; without it ``qemu-img info`` probes it.
    work_dir
        Where a non-raw source is converted (default: the minion's cache
        directory, ``ceph_openstack/images``).
    timeout, upload_timeout
        Seconds for each API request and for the upload (and conversion).
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    properties = {} if properties is None else properties
    problem = _input_problem(name, properties, visibility, min_disk, source_hash)
    if problem:
        ret["comment"] = problem
        return ret
    fields = {
        key: value
        for key, value in (("visibility", visibility), ("min_disk", min_disk))
        if value is not None
    }
    api = {"cloud": cloud, "config_file": config_file, "timeout": timeout}
    try:
        path = _local_source(source, saltenv)
        digest = _source_sha256(path)
        if source_hash and digest != source_hash.lower():
            ret["comment"] = (
                f"source {source} has SHA-256 {digest}, not the expected {source_hash.lower()}; "
                "nothing changed"
            )
            return ret
        images = __salt__["glanceimage.find"](name, **api)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret

    ours = [image for image in images if image["properties"].get(SOURCE_KEY) == digest]
    if len(ours) > 1:
        ret["comment"] = (
            f"{len(ours)} images named {name} were made from this source "
            f"({', '.join(image['id'] for image in ours)}); delete all but one"
        )
        return ret
    if images and not ours:
        ret["comment"] = (
            f"image {name} exists ({', '.join(image['id'] for image in images)}) but was not made "
            f"from {source} (its {SOURCE_KEY} differs or is missing); Glance images cannot be "
            "replaced in place: give this source a new image name; nothing changed"
        )
        return ret
    if ours:
        return _converge(ret, ours[0], fields, properties, api)
    return _upload(ret, name, source, path, digest, fields, properties, api,
                   fmt, work_dir, upload_timeout)


def _converge(ret, image, fields, properties, api):
    """Bring an existing image's settings in line."""
    name, image_id = ret["name"], image["id"]
    if image["status"] != "active":
        ret["comment"] = (
            f"image {name} ({image_id}) is {image['status']}, not active; delete it and re-run"
        )
        return ret
    changes = _differences(image, fields, properties)
    if not changes:
        ret["result"] = True
        ret["comment"] = f"image {name} ({image_id}) is in the desired state"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = f"image {name} ({image_id}) would be updated: {', '.join(changes)}"
        return ret
    try:
        __salt__["glanceimage.update"](
            image_id, properties={key: properties[key] for key in changes.get("properties", {})},
            **{key: fields[key] for key in changes if key in fields}, **api,
        )
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret["result"] = True
    ret["changes"] = changes
    ret["comment"] = f"image {name} ({image_id}) updated: {', '.join(changes)}"
    return ret


def _upload(ret, name, source, path, digest, fields, properties, api, fmt, work_dir,
            upload_timeout):
    """Convert (when needed) and upload a new image."""
    try:
        detected = __salt__["cephimage.info"](path, fmt)["format"]
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    changes = {"image": {"old": None, "new": name}}
    if detected != "raw":
        changes["converted"] = {"old": detected, "new": "raw"}
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = f"image {name} would be uploaded from {source}" + (
            f" after conversion from {detected} to raw" if detected != "raw" else ""
        )
        return ret

    work_dir = work_dir or os.path.join(__opts__["cachedir"], "ceph_openstack", "images")
    raw = path
    try:
        if detected != "raw":
            raw = __salt__["cephimage.convert"](path, work_dir, fmt=detected,
                                                timeout=upload_timeout)
        image = __salt__["glanceimage.create"](
            name, raw, disk_format="raw", container_format="bare",
            properties=dict(properties, **{SOURCE_KEY: digest}),
            upload_timeout=upload_timeout, **fields, **api,
        )
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    finally:
        if raw != path and os.path.exists(raw):
            os.unlink(raw)
    changes["image"]["new"] = {"name": name, "id": image["id"], "checksum": image.get("checksum")}
    ret["result"] = True
    ret["changes"] = changes
    ret["comment"] = f"image {name} uploaded from {source} as {image['id']}" + (
        f" (converted from {detected} to raw)" if detected != "raw" else ""
    )
    return ret
