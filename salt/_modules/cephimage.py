"""
Images for copy-on-write on RBD: raw conversion and the clone check.

RBD clones only raw images: a qcow2 cloud image uploaded to Glance as qcow2
makes Cinder and Nova copy it in full for every volume and every instance.
This module

- converts a disk image to raw with ``qemu-img`` (:func:`convert`), and
- reports, for a Glance image stored in RBD, whether ``images/<id>@snap``
  exists and is protected and which volumes in the volumes pool are clones of
  it and which are full copies (:func:`clone_check`; also ``salt-run
  cephimage.clone_check``).

:depends: ``ceph-common`` (the ``rbd`` CLI) for :func:`clone_check`,
    ``qemu-utils`` (``qemu-img``) for :func:`info` and :func:`convert`

The Ceph-facing function takes the connection keywords ``cluster``, ``conf``,
``client_id``, ``keyring`` and ``timeout``; unset ones come from
``config.get('ceph_openstack:<keyword>')`` (see ``ceph_cli.connection``).
The user needs read access to both pools (``client.cinder`` with the
formula's caps has it).
"""

import importlib.util
import json
import logging
import os
import sys
import shutil
import tempfile

import salt.utils.args
import salt.utils.path
from salt.exceptions import CommandExecutionError


def _helper(name):
    """This project's helper module ``name``: ``utils/<name>.py`` beside this file's
    directory, synced or installed alike (``_utils`` in a checkout), loaded once per
    version of that file; see README, "Where the modules find their helpers"."""
    base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(base, "utils", name + ".py")
    if not os.path.exists(path):
        path = os.path.join(base, "_utils", name + ".py")
    key = f"ceph_openstack.helpers:{path}:{os.stat(path).st_mtime_ns}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(f"ceph_openstack_helpers.{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[key] = module
    return sys.modules[key]


ceph_cli = _helper("ceph_cli")

log = logging.getLogger(__name__)

__virtualname__ = "cephimage"

CONNECTION = ("cluster", "conf", "client_id", "keyring", "timeout")

#: Formats ``qemu-img`` may be told the source is (``fmt``). Probing is only
#: used when ``fmt`` is not given.
FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc", "qed", "qcow", "luks", "parallels")

#: Seconds ``qemu-img info`` may take; converting gets ``timeout`` (default 1 h).
_INFO_TIMEOUT = 60

#: Free space kept beyond the image's virtual size when converting.
_SPACE_MARGIN = 16 << 20


def __virtual__():
    if salt.utils.path.which("rbd") or salt.utils.path.which("qemu-img"):
        return __virtualname__
    return (
        False,
        "cephimage: neither the rbd CLI (ceph-common) nor qemu-img (qemu-utils) is installed",
    )


# -- names -----------------------------------------------------------------------


def _check_word(arg, value):
    """An rbd pool/image/snapshot name: non-empty, no '/', '@', whitespace, leading '-'."""
    if (
        not isinstance(value, str)
        or not value
        or value[0] == "-"
        or "/" in value
        or "@" in value
        or any(char.isspace() or not char.isprintable() for char in value)
    ):
        raise CommandExecutionError(
            f"{arg} must be a non-empty name without '/', '@', whitespace or a leading '-', "
            f"not {value!r}"
        )
    return value


def _spec(pool, image, snap=None):
    return f"{pool}/{image}@{snap}" if snap else f"{pool}/{image}"


# -- clone check -----------------------------------------------------------------


def _rbd(conn, args):
    return ceph_cli.run(__salt__["cmd.run_all"], conn, args, binary="rbd",
                                     context=__context__)


def _missing(exc):
    return ceph_cli.is_missing(exc)


def _pillar_pools():
    """``(images pool, [volumes pools])`` of this minion's ceph_openstack pillar: Glance's
    pool and every Cinder backend's (``images`` and ``volumes`` where it names none)."""
    pillar = __pillar__.get("ceph_openstack") or {}
    glance = pillar.get("glance") or {}
    backends = (pillar.get("cinder") or {}).get("backends") or {}
    volumes = []
    for backend in backends.values():
        pool = (backend or {}).get("pool")
        if pool and pool not in volumes:
            volumes.append(pool)
    return glance.get("pool") or "images", volumes or ["volumes"]


def clone_check(image_id, images_pool=None, volumes_pool=None, snap="snap", **kwargs):
    """
    Check the copy-on-write chain of a Glance image stored in RBD.

    Glance's rbd store keeps an image as ``<images_pool>/<image id>`` with a
    protected snapshot ``snap``; Cinder (and Nova) clone that snapshot when the
    image is raw and the Glance API shows ``direct_url``. This reports whether
    the snapshot is there and protected, and sorts every image of the volumes
    pools into

    ``clones``
        clones of exactly ``<images_pool>/<image_id>@<snap>``, each with its
        ``overlap`` (bytes still shared with the parent; 0 means the clone
        has been rewritten completely) and ``size``;
    ``copies``
        images without a parent: full copies (or volumes not made from an
        image at all, or flattened clones);
    ``other_clones``
        clones of some other snapshot, with that ``parent``.

    Returns::

        {"image": "images/<id>", "image_exists": True,
         "snapshot": {"name": "images/<id>@snap", "exists": True, "protected": True},
         "clones": [{"name": "volumes/volume-1", "parent": "images/<id>@snap",
                     "overlap": 8388608, "size": 8388608}],
         "copies": [{"name": "volumes/volume-2", "size": 4194304}],
         "other_clones": [],
         "summary": "images/<id>@snap exists and is protected; volumes: 1 clone of it, 1 full copy"}

    images_pool
        Glance's pool; by default the pillar's ``ceph_openstack:glance:pool``
        (``images`` without one).
    volumes_pool
        A pool, or a list (or comma-separated string) of pools, where Cinder
        keeps volumes; by default the pool of every backend in the pillar's
        ``ceph_openstack:cinder:backends`` (``volumes`` without any).

    A missing image or snapshot is reported, not raised; a missing volumes
    pool (or no access to it) raises.

    Costs ``1 + number of volumes pools + number of clones`` rbd calls: ``snap
    ls`` of the image, ``ls -l`` of each volumes pool and ``info`` of each
    clone (for the overlap).

    CLI Example:

    .. code-block:: bash

        salt ceph-mon1 cephimage.clone_check 9c5a0e56-5cd0-4b4b-9c7d-2f3e4a1b6c7d
        salt ceph-mon1 cephimage.clone_check cirros images_pool=glance volumes_pool=cinder
    """
    kwargs = salt.utils.args.clean_kwargs(**kwargs)
    default_images, default_volumes = _pillar_pools()
    images_pool = default_images if images_pool is None else images_pool
    if volumes_pool is None:
        volumes_pools = default_volumes
    elif isinstance(volumes_pool, (list, tuple)):
        volumes_pools = list(volumes_pool)
    else:
        volumes_pools = str(volumes_pool).split(",")
    _check_word("image_id", image_id)
    _check_word("images_pool", images_pool)
    if not volumes_pools:
        raise CommandExecutionError("volumes_pool: name at least one pool")
    for pool in volumes_pools:
        _check_word("volumes_pool", pool)
    _check_word("snap", snap)
    unknown = sorted(set(kwargs) - set(CONNECTION))
    if unknown:
        raise CommandExecutionError(f"unknown keyword(s): {', '.join(unknown)}")
    conn = ceph_cli.connection(__salt__["config.get"], **kwargs)

    snap_spec = _spec(images_pool, image_id, snap)
    result = {
        "image": _spec(images_pool, image_id),
        "image_exists": False,
        "snapshot": {"name": snap_spec, "exists": False, "protected": False},
        "clones": [],
        "copies": [],
        "other_clones": [],
    }
    try:
        snaps = _rbd(conn, ["snap", "ls", _spec(images_pool, image_id)]) or []
        result["image_exists"] = True
    except CommandExecutionError as exc:
        if not _missing(exc):
            raise
        snaps = []
    entry = next((s for s in snaps if s.get("name") == snap), None)
    if entry is not None:
        result["snapshot"]["exists"] = True
        protected = entry.get("protected")
        if protected is None:  # older rbd without the field: ask the snapshot itself
            protected = (_rbd(conn, ["info", snap_spec]) or {}).get("protected")
        result["snapshot"]["protected"] = str(protected).lower() == "true"

    for volumes_pool in volumes_pools:
        _sort_volumes(conn, result, volumes_pool, images_pool, image_id, snap)
    for key in ("clones", "copies", "other_clones"):
        result[key].sort(key=lambda item: item["name"])
    result["summary"] = _summary(result, ", ".join(volumes_pools))
    return result


def _sort_volumes(conn, result, volumes_pool, images_pool, image_id, snap):
    """Add each image of ``volumes_pool`` to ``result`` as a clone, copy or other clone."""
    try:
        listing = _rbd(conn, ["ls", "-l", volumes_pool]) or []
    except CommandExecutionError as exc:
        if _missing(exc):
            raise CommandExecutionError(
                f"volumes_pool: pool {volumes_pool} does not exist", info=exc.info
            ) from None
        raise
    for image in listing:
        if "snapshot" in image:  # `ls -l` lists each snapshot as an entry of its own
            continue
        name = _spec(volumes_pool, image["image"])
        parent = image.get("parent")
        if not parent:
            result["copies"].append({"name": name, "size": image.get("size")})
            continue
        parent_spec = _parent_spec(parent)
        if (
            parent.get("pool") == images_pool
            and not parent.get("pool_namespace")
            and parent.get("image") == image_id
            and parent.get("snapshot") == snap
        ):
            result["clones"].append(_clone(conn, name, image, parent_spec))
        else:
            result["other_clones"].append(
                {"name": name, "parent": parent_spec, "size": image.get("size")}
            )


def _parent_spec(parent):
    pool = parent.get("pool", "?")
    if parent.get("pool_namespace"):
        pool = f"{pool}/{parent['pool_namespace']}"
    return _spec(pool, parent.get("image", "?"), parent.get("snapshot") or "?")


def _clone(conn, name, listed, parent_spec):
    """A clone's entry; its overlap comes from ``rbd info`` (``ls -l`` lacks it)."""
    entry = {"name": name, "parent": parent_spec, "overlap": None, "size": listed.get("size")}
    try:
        info = _rbd(conn, ["info", name]) or {}
    except CommandExecutionError as exc:
        if not _missing(exc):  # deleted since the listing: report what the listing said
            raise
        return entry
    entry["overlap"] = (info.get("parent") or {}).get("overlap")
    entry["size"] = info.get("size", entry["size"])
    return entry


def _count(number, word, plural=None):
    return f"{number} {word if number == 1 else plural or word + 's'}"


def _summary(result, volumes_pool):
    snapshot = result["snapshot"]
    if not result["image_exists"]:
        head = f"image {result['image']} does not exist"
    elif not snapshot["exists"]:
        head = f"{snapshot['name']} does not exist: volumes cannot be cloned from it"
    elif not snapshot["protected"]:
        head = f"{snapshot['name']} exists but is NOT protected"
    else:
        head = f"{snapshot['name']} exists and is protected"
    body = (
        f"{_count(len(result['clones']), 'clone')} of it, "
        f"{_count(len(result['copies']), 'full copy', 'full copies')}"
    )
    if result["other_clones"]:
        body += f", {_count(len(result['other_clones']), 'clone')} of other images"
    return f"{head}; {volumes_pool}: {body}"


# -- raw conversion --------------------------------------------------------------


def _qemu_img(args, timeout):
    if not salt.utils.path.which("qemu-img"):
        raise CommandExecutionError("qemu-img is not installed (package qemu-utils)")
    ret = __salt__["cmd.run_all"](
        ["qemu-img", *args],
        python_shell=False,
        ignore_retcode=True,
        output_loglevel="quiet",
        timeout=timeout,
        env={"LC_ALL": "C"},
    )
    if ret.get("retcode"):
        lines = [line for line in (ret.get("stderr") or ret.get("stdout") or "").splitlines()
                 if line.strip()]
        reason = lines[-1] if lines else f"exit code {ret.get('retcode')}"
        raise CommandExecutionError(
            f"qemu-img {args[0]} failed: {reason}", info={"retcode": ret.get("retcode")}
        )
    return ret.get("stdout") or ""


def _check_fmt(fmt):
    if fmt is not None and fmt not in FORMATS:
        raise CommandExecutionError(f"fmt must be one of {', '.join(FORMATS)}, not {fmt!r}")


def info(source, fmt=None):
    """
    What ``qemu-img info --output json`` says about a disk image:
    ``{"format": ..., "virtual_size": ..., "actual_size": ..., "backing_file": ...}``.
    Without ``fmt`` qemu-img probes the format.

    CLI Example:

    .. code-block:: bash

        salt '*' cephimage.info /srv/images/cirros-0.6.2-x86_64-disk.img
    """
    _check_fmt(fmt)
    if not os.path.isfile(source):
        raise CommandExecutionError(f"source {source} is not a file")
    args = ["info", "--output", "json"] + (["-f", fmt] if fmt else []) + [source]
    try:
        data = json.loads(_qemu_img(args, _INFO_TIMEOUT))
    except ValueError:
        raise CommandExecutionError(f"qemu-img info {source} returned output that is not JSON")
    return {
        "format": data.get("format"),
        "virtual_size": data.get("virtual-size"),
        "actual_size": data.get("actual-size"),
        "backing_file": data.get("backing-filename"),
    }


def convert(source, dest_dir, fmt=None, timeout=3600):
    """
    Make a raw image out of ``source`` for Glance on RBD and return its path.

    A raw source is returned as it is. Anything else is converted with
    ``qemu-img convert -f <format> -O raw`` into ``dest_dir`` as
    ``<source name without extension>.raw``, replacing a file of that name.
    Before converting, the free space of ``dest_dir`` must hold the image's
    virtual size (the raw file may be sparse, but the check does not count on
    it). The output is written to a temporary file in ``dest_dir`` and renamed
    only when qemu-img succeeded; on any failure the partial output is removed.

    Images with a backing file are refused: they are not self-contained, and
    converting one would read whatever file it names.

    source
        The image file.

    dest_dir
        The work directory for the raw file (created if missing).

    fmt
        The source format; without it ``qemu-img info`` detects it.

    timeout
        Seconds the conversion may take.

    CLI Example:

    .. code-block:: bash

        salt controller1 cephimage.convert /srv/images/cirros.qcow2 /var/tmp/images
    """
    details = info(source, fmt)
    detected = details["format"]
    if detected == "raw":
        return source
    if details["backing_file"]:
        raise CommandExecutionError(
            f"refusing to convert {source}: it has a backing file ({details['backing_file']}); "
            "flatten it first (qemu-img convert without -B)"
        )
    if detected not in FORMATS:
        raise CommandExecutionError(f"{source}: unsupported image format {detected!r}")
    os.makedirs(dest_dir, exist_ok=True)
    base = os.path.splitext(os.path.basename(source))[0] or "image"
    dest = os.path.join(dest_dir, f"{base}.raw")
    if os.path.abspath(dest) == os.path.abspath(source):
        dest = os.path.join(dest_dir, f"{base}.converted.raw")
    needed = int(details["virtual_size"] or 0) + _SPACE_MARGIN
    free = shutil.disk_usage(dest_dir).free
    if free < needed:
        raise CommandExecutionError(
            f"not enough space in {dest_dir} to convert {source}: the raw image needs "
            f"{needed} bytes (virtual size + margin), {free} are free"
        )
    handle, partial = tempfile.mkstemp(prefix=f".{base}.", suffix=".raw.part", dir=dest_dir)
    os.close(handle)
    try:
        _qemu_img(["convert", "-f", detected, "-O", "raw", source, partial], int(timeout))
        os.replace(partial, dest)
    except BaseException:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
        raise
    log.info("cephimage: converted %s (%s) to %s", source, detected, dest)
    return dest
