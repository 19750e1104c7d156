"""
Atomic file replacement with owner and mode, shared by the openstack_ini and
cephauth modules (config files and keyrings).

The modules load it as their helper ``atomic_file`` (README, "Where the modules find
their helpers").
"""

import grp
import os
import pwd
import tempfile


def write(path, data, uid, gid, mode):
    """
    Replace ``path`` with ``data`` (str, written as UTF-8, or bytes), owned by
    ``uid:gid`` with ``mode``.

    The temporary file lives in the same directory, is created 0600 and gets
    its owner and mode before any content is written, so no reader ever sees a
    half-written file or a secret with looser permissions; the rename and the
    directory entry are fsynced. Raises ``OSError`` after removing the
    temporary file.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory = os.path.dirname(path)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    try:
        info = os.fstat(handle)
        # Only chown when needed: an unprivileged caller may keep, not give, ownership.
        if (info.st_uid, info.st_gid) != (uid, gid):
            os.fchown(handle, uid, gid)
        os.fchmod(handle, mode)  # after chown, which may clear setgid
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def missing_directory(path):
    """
    The directory ``path`` would be written in, when it does not exist; else None.

    Writers refuse such a path in a real run (they create no directories: the
    package that owns one does, as ceph-common does ``/etc/ceph``); under
    ``test=True`` they predict the file and note the missing directory, since a
    package installed earlier in the same run may create it.
    """
    directory = os.path.dirname(path)
    return None if os.path.isdir(directory) else directory


def user_name(uid):
    """The name of ``uid``, or the number as text when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid):
    """The name of ``gid``, or the number as text when it has none."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
