"""
Manage the libvirt secrets that hold Ceph keys on compute nodes, without exposing the key.

Nova and Cinder name the secret by UUID (``rbd_secret_uuid``); libvirt hands its
value (a cephx key) to QEMU when a guest opens an RBD disk. Every compute node
must hold the same UUID, and the value must follow key rotation.

Two backends sit behind one small internal interface:

``api``
    libvirt-python, used when ``import libvirt`` works. Each operation opens its
    own connection in a worker thread with a deadline, because opening a
    connection to a daemon that is stopped (but whose socket still exists)
    blocks forever, and libvirt has no connect timeout.
``virsh``
    The ``virsh`` client through ``cmd.run_all`` (argv list, no shell, output
    never logged, ``timeout``). The XML goes on stdin, and so does the value
    (``virsh secret-set-value --file /dev/stdin``): it is never in argv.

Options, each a keyword of every function, else read with ``config.get``
(minion config, grains or pillar), else the default:

``uri`` (``ceph_openstack:libvirt:uri``, default ``qemu:///system``)
    The libvirt connection URI.
``backend`` (``ceph_openstack:libvirt:backend``, default ``auto``)
    ``auto`` (libvirt-python when importable, else ``virsh``), ``api`` or ``virsh``.
``timeout`` (``ceph_openstack:libvirt:timeout``, default ``10``)
    Seconds one operation may take before it fails with a clear error.

Secrets: a value is a cephx key (the base64 that ``ceph auth get-key`` prints).
No function returns, logs or puts into an error message a value;
``value_matches`` compares in process, in constant time.
"""

import importlib.util
import os
import sys
import base64
import binascii
import hmac
import logging
import re
import threading
import time
import xml.etree.ElementTree as ET

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


cephx = _helper("cephx")

try:
    import libvirt

    HAS_LIBVIRT = True
except ImportError:
    HAS_LIBVIRT = False

log = logging.getLogger(__name__)

__virtualname__ = "virtsecret"
__func_alias__ = {"list_": "list"}

BACKENDS = ("auto", "api", "virsh")
DEFAULT_URI = "qemu:///system"
DEFAULT_TIMEOUT = 10

# Matched with fullmatch: "$" would let a trailing newline through.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# Control characters (newline included) cannot be in a usage name: they are not
# valid in XML 1.0 and would break the one-line-per-secret `virsh secret-list`.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters XML 1.0 cannot carry at all (description may span lines).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def __virtual__():
    if HAS_LIBVIRT or salt.utils.path.which("virsh"):
        return __virtualname__
    return (False, "virtsecret: neither libvirt-python nor the virsh client is available")


# --- Errors the backends tell apart -------------------------------------------------


class _NotFound(CommandExecutionError):
    """No secret with that UUID."""


class _NoValue(CommandExecutionError):
    """The secret exists but holds no value."""


class _Private(CommandExecutionError):
    """The secret is private: libvirt never reveals its value."""


class _NoDomain(CommandExecutionError):
    """The domain went away (undefined since the listing)."""


# --- Input checks (before any call) -------------------------------------------------


def _check_uuid(uuid):
    if not isinstance(uuid, str) or not _UUID.fullmatch(uuid):
        raise CommandExecutionError(
            f"uuid must be a UUID in canonical 8-4-4-4-12 hex form, not {uuid!r}"
        )
    # libvirt reports UUIDs in lower case; compare them that way.
    return uuid.lower()


def _check_usage(usage):
    if not isinstance(usage, str) or not usage.strip():
        raise CommandExecutionError("usage must be a non-empty string")
    if _CONTROL.search(usage) or usage != usage.strip():
        raise CommandExecutionError(
            "usage must be one line without control characters or leading/trailing spaces"
        )
    return usage


def _check_flag(value, name):
    if not isinstance(value, bool):
        raise CommandExecutionError(f"{name} must be true or false, not {value!r}")
    return value


def _check_value(value):
    # key_problem names the argument and never includes the value itself.
    problem = cephx.key_problem(value, "value")
    if problem:
        raise CommandExecutionError(problem)
    return value


# --- XML -----------------------------------------------------------------------------


def _secret_xml(uuid, usage, private, ephemeral, description=None):
    """The secret's XML, built with ElementTree so any usage text is escaped."""
    root = ET.Element(
        "secret",
        ephemeral="yes" if ephemeral else "no",
        private="yes" if private else "no",
    )
    ET.SubElement(root, "uuid").text = uuid
    if description:
        ET.SubElement(root, "description").text = description
    usage_el = ET.SubElement(root, "usage", type="ceph")
    ET.SubElement(usage_el, "name").text = usage
    return ET.tostring(root, encoding="unicode")


def _parse_xml(text):
    """What ``get`` returns, from a secret's XML (which never holds the value)."""
    root = ET.fromstring(text)
    usage_el = root.find("usage")
    usage_type = usage = None
    if usage_el is not None:
        usage_type = usage_el.get("type")
        # The usage id is the single child: <name> (ceph, tls, vtpm), <volume>, <target>.
        for child in usage_el:
            usage = child.text
            break
    return {
        "uuid": root.findtext("uuid"),
        "usage_type": usage_type,
        "usage": usage,
        "ephemeral": root.get("ephemeral") == "yes",
        "private": root.get("private") == "yes",
        "description": root.findtext("description"),
    }


def _uses_secret(domain_xml, uuid):
    """Whether a domain's XML has a ``<secret ... uuid=...>`` for ``uuid`` (lower case):
    disk ``<auth><secret type='ceph' .../>`` and ``<encryption><secret .../>`` alike."""
    return any(
        (element.get("uuid") or "").lower() == uuid
        for element in ET.fromstring(domain_xml).iter("secret")
    )


# --- Backends --------------------------------------------------------------------------
#
# Both offer: uuids(), xml(uuid), find(ceph usage name) -> uuid or None,
# define(xml), set_value(uuid, b64), get_value(uuid) -> bytes, undefine(uuid),
# domains() -> [(name, xml)] of every domain, running or defined.
# xml/get_value/undefine raise _NotFound; get_value also _NoValue and _Private.


def _silence_libvirt(_ctx, _err):
    """libvirt prints every error on stderr by default; ours become exceptions."""


class _Api:
    name = "api"

    def __init__(self, uri, timeout):
        self.uri = uri
        self.timeout = timeout
        libvirt.registerErrorHandler(_silence_libvirt, None)

    def _run(self, what, func):
        """Run ``func(conn)`` on a fresh connection in a thread, with a deadline.

        An abandoned thread (daemon hung) closes its connection if it ever gets
        one; it is a daemon thread so it never holds up the minion's exit.
        """
        box = {}
        done = threading.Event()

        def work():
            conn = None
            try:
                conn = libvirt.open(self.uri)
                box["result"] = func(conn)
            except Exception as exc:  # pylint: disable=broad-except
                box["error"] = exc
            finally:
                if conn is not None:
                    try:
                        conn.close()
                    except libvirt.libvirtError:
                        pass
                done.set()

        threading.Thread(target=work, name=f"virtsecret {what}", daemon=True).start()
        if not done.wait(self.timeout):
            raise CommandExecutionError(
                f"libvirt at {self.uri} did not answer within {self.timeout} s ({what}); "
                "is libvirtd running and responsive?"
            )
        if "error" in box:
            exc = box["error"]
            if isinstance(exc, CommandExecutionError):
                raise exc
            raise CommandExecutionError(f"libvirt at {self.uri}: {what} failed: {exc}")
        return box.get("result")

    @staticmethod
    def _lookup(conn, uuid):
        try:
            return conn.secretLookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
                raise _NotFound(f"secret {uuid} is not defined")
            raise

    def uuids(self):
        return self._run(
            "secret list", lambda conn: [sec.UUIDString() for sec in conn.listAllSecrets()]
        )

    def xml(self, uuid):
        return self._run("secret lookup", lambda conn: self._lookup(conn, uuid).XMLDesc())

    def find(self, usage):
        def func(conn):
            try:
                return conn.secretLookupByUsage(
                    libvirt.VIR_SECRET_USAGE_TYPE_CEPH, usage
                ).UUIDString()
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
                    return None
                raise

        return self._run("usage lookup", func)

    def define(self, xml):
        def func(conn):
            conn.secretDefineXML(xml)

        self._run("secret define", func)

    def set_value(self, uuid, value):
        raw = base64.b64decode(value)

        def func(conn):
            self._lookup(conn, uuid).setValue(raw)

        self._run("set value", func)

    def get_value(self, uuid):
        def func(conn):
            secret = self._lookup(conn, uuid)
            try:
                return secret.value()
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
                    raise _NoValue(f"secret {uuid} has no value")
                if exc.get_error_code() in (
                    libvirt.VIR_ERR_INVALID_SECRET,
                    libvirt.VIR_ERR_OPERATION_DENIED,
                ):
                    raise _Private(f"secret {uuid} is private")
                raise

        return self._run("get value", func)

    def undefine(self, uuid):
        def func(conn):
            self._lookup(conn, uuid).undefine()

        self._run("secret undefine", func)

    def domains(self):
        return self._domain_xmls(0)

    def running(self):
        return self._domain_xmls(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)

    def _domain_xmls(self, flags):
        """``[(name, xml)]`` of the domains ``listAllDomains(flags)`` lists."""
        def func(conn):
            found = []
            for dom in conn.listAllDomains(flags):
                try:
                    found.append((dom.name(), dom.XMLDesc(0)))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise  # else gone since the listing
            return found

        return self._run("domain list", func)


# `virsh --quiet secret-list`: " <uuid>   <type> <usage id>", one line each, unpadded.
_LIST_LINE = re.compile(r"^\s*([0-9a-fA-F-]{36})\s{2,}(.*)$")


class _Virsh:
    name = "virsh"

    def __init__(self, uri, timeout, run_all):
        self.uri = uri
        self.timeout = timeout
        self.run_all = run_all

    def _run(self, what, args, uuid=None, stdin=None, secret=None):
        """Run virsh; return stdout. stdout is never put into a message or a log
        (for ``secret-get-value`` it is the value)."""
        start = time.monotonic()
        ret = self.run_all(
            ["virsh", "--quiet", "--connect", self.uri, *args],
            python_shell=False,
            output_loglevel="quiet",
            ignore_retcode=True,
            timeout=self.timeout,
            stdin=stdin,
            env={"LC_ALL": "C"},  # the error texts below are matched in English
        )
        if ret["retcode"] == 0:
            return ret["stdout"]
        # cmd.run_all kills the process at the timeout and says so in stdout.
        if time.monotonic() - start >= self.timeout or str(ret["stdout"]).startswith(
            "Timed out after"
        ):
            raise CommandExecutionError(
                f"libvirt at {self.uri} did not answer within {self.timeout} s ({what}); "
                "is libvirtd running and responsive?"
            )
        lines = [line.strip() for line in str(ret["stderr"]).splitlines() if line.strip()]
        err = "; ".join(line[7:] if line.startswith("error: ") else line for line in lines)
        if secret:  # belt and braces: virsh does not echo values, but never pass one on
            err = err.replace(secret, "<redacted>")
        if "secret is private" in err:
            raise _Private(f"secret {uuid} is private")
        if "does not have a value" in err:
            raise _NoValue(f"secret {uuid} has no value")
        if "no secret with matching uuid" in err:
            raise _NotFound(f"secret {uuid} is not defined")
        if "failed to get domain" in err:  # virsh's only words for a missing domain
            raise _NoDomain(err)
        raise CommandExecutionError(
            f"virsh at {self.uri}: {what} failed (exit {ret['retcode']}): {err or 'no message'}"
        )

    def _list(self):
        for line in self._run("secret list", ["secret-list"]).splitlines():
            match = _LIST_LINE.match(line)
            if match:
                yield match.group(1).lower(), match.group(2)

    def uuids(self):
        return [uuid for uuid, _usage in self._list()]

    def xml(self, uuid):
        return self._run("secret lookup", ["secret-dumpxml", uuid], uuid=uuid)

    def find(self, usage):
        # A usage type has no spaces, so matching "ceph <name>" exactly is exact.
        wanted = f"ceph {usage}"
        for uuid, text in self._list():
            if text == wanted:
                return uuid
        return None

    def define(self, xml):
        self._run("secret define", ["secret-define", "--file", "/dev/stdin"], stdin=xml)

    def set_value(self, uuid, value):
        self._run(
            "set value",
            ["secret-set-value", "--file", "/dev/stdin", uuid],
            uuid=uuid,
            stdin=value,
            secret=value,
        )

    def get_value(self, uuid):
        out = self._run("get value", ["secret-get-value", uuid], uuid=uuid)
        try:
            return base64.b64decode(out.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise CommandExecutionError(f"virsh returned no base64 value for secret {uuid}")

    def undefine(self, uuid):
        self._run("secret undefine", ["secret-undefine", uuid], uuid=uuid)

    def domains(self):
        # Every domain, running or not, with its defined (inactive) configuration.
        return self._domain_xmls(["--all"], ["--inactive"])

    def running(self):
        # Running domains, with their live configuration.
        return self._domain_xmls([], [])

    def _domain_xmls(self, list_options, dumpxml_options):
        found = []
        for name in self._run("domain list", ["list", *list_options, "--name"]).splitlines():
            if not name.strip():
                continue
            try:
                # --domain: a name starting with "-" is not taken for an option
                xml = self._run("domain dumpxml",
                                ["dumpxml", *dumpxml_options, "--domain", name])
            except _NoDomain:  # gone since the listing
                continue
            found.append((name, xml))
        return found


def _backend(uri=None, backend=None, timeout=None):
    """The backend for these options (keyword, else config.get, else default)."""
    if uri is None:
        uri = __salt__["config.get"]("ceph_openstack:libvirt:uri", DEFAULT_URI)
    if backend is None:
        backend = __salt__["config.get"]("ceph_openstack:libvirt:backend", "auto")
    if timeout is None:
        timeout = __salt__["config.get"]("ceph_openstack:libvirt:timeout", DEFAULT_TIMEOUT)
    if not isinstance(uri, str) or not uri:
        raise CommandExecutionError("uri must be a libvirt connection URI")
    if backend not in BACKENDS:
        raise CommandExecutionError(
            f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise CommandExecutionError(
            f"timeout must be a positive number of seconds, not {timeout!r}"
        )
    if backend == "auto":
        backend = "api" if HAS_LIBVIRT else "virsh"
    if backend == "api":
        if not HAS_LIBVIRT:
            raise CommandExecutionError(
                "backend 'api' needs libvirt-python, which is not importable"
            )
        return _Api(uri, timeout)
    return _Virsh(uri, timeout, __salt__["cmd.run_all"])


# --- Public functions ----------------------------------------------------------------------


def list_(uri=None, backend=None, timeout=None):
    """
    List the libvirt secrets, as ``get`` describes each (never a value).

    CLI Example:

    .. code-block:: bash

        salt '*' virtsecret.list
    """
    conn = _backend(uri, backend, timeout)
    found = []
    for uuid in conn.uuids():
        try:
            found.append(_parse_xml(conn.xml(uuid)))
        except _NotFound:  # undefined since the listing
            continue
    return sorted(found, key=lambda sec: sec["uuid"])


def get(uuid, uri=None, backend=None, timeout=None):
    """
    Describe one secret: ``uuid``, ``usage_type``, ``usage`` (the usage name),
    ``ephemeral``, ``private`` and ``description``; ``None`` when it is not
    defined. Never the value.

    CLI Example:

    .. code-block:: bash

        salt '*' virtsecret.get 691c3607-7ca3-433a-a0c0-5805cea8afa0
    """
    uuid = _check_uuid(uuid)
    conn = _backend(uri, backend, timeout)
    try:
        return _parse_xml(conn.xml(uuid))
    except _NotFound:
        return None


def find(usage, usage_type="ceph", uri=None, backend=None, timeout=None):
    """
    The UUID of the secret that holds ``usage`` (a ``ceph`` usage name), or ``None``.

    CLI Example:

    .. code-block:: bash

        salt '*' virtsecret.find 'client.cinder secret'
    """
    usage = _check_usage(usage)
    if usage_type != "ceph":
        raise CommandExecutionError("usage_type must be 'ceph' (the only type managed here)")
    return _backend(uri, backend, timeout).find(usage)


def define(
    uuid,
    usage,
    private=False,
    ephemeral=False,
    description=None,
    uri=None,
    backend=None,
    timeout=None,
):
    """
    Define the secret ``uuid`` with ``usage type='ceph'`` and name ``usage``,
    or redefine it (its flags and description) when it exists; libvirt keeps
    its value. libvirt refuses a UUID held with another usage, a usage held by
    another UUID, and switching ``private`` off. Returns ``True``.

    CLI Example:

    .. code-block:: bash

        salt '*' virtsecret.define 691c3607-7ca3-433a-a0c0-5805cea8afa0 'client.cinder secret'
    """
    uuid = _check_uuid(uuid)
    usage = _check_usage(usage)
    _check_flag(private, "private")
    _check_flag(ephemeral, "ephemeral")
    if description is not None and (
        not isinstance(description, str) or _NOT_XML.search(description)
    ):
        raise CommandExecutionError("description must be text without control characters")
    conn = _backend(uri, backend, timeout)
    log.debug("virtsecret: defining secret %s (ceph %r) with %s", uuid, usage, conn.name)
    conn.define(_secret_xml(uuid, usage, private, ephemeral, description))
    return True


def set_value(uuid, value, uri=None, backend=None, timeout=None):
    """
    Set the value of secret ``uuid`` to the cephx key ``value`` (base64, as
    ``ceph auth get-key`` prints it), in place: the UUID stays. The value
    travels through the libvirt API or on virsh's stdin, never in argv.
    Returns ``True``.

    CLI Example:

    .. code-block:: bash

        salt '*' virtsecret.set_value 691c3607-7ca3-433a-a0c0-5805cea8afa0 "$KEY"

    A key typed on the command line is in the argv of ``salt`` and in the
    published job; the ``virtsecret.present`` state with the key from pillar
    keeps it out of both.
    """
    uuid = _check_uuid(uuid)
    value = _check_value(value)
    conn = _backend(uri, backend, timeout)
    log.debug("virtsecret: setting the value of secret %s with %s", uuid, conn.name)
    conn.set_value(uuid, value)
    return True


def value_matches(uuid, value, uri=None, backend=None, timeout=None):
    """
    Whether secret ``uuid`` holds the cephx key ``value``: ``True`` or ``False``
    (also when it holds no value), ``None`` when nobody can know because the
    secret is private. Never returns or logs the value. Fails when the secret
    is not defined.

    CLI Example:

    .. code-block:: bash

        salt '*' virtsecret.value_matches 691c3607-7ca3-433a-a0c0-5805cea8afa0 "$KEY"
    """
    uuid = _check_uuid(uuid)
    value = _check_value(value)
    conn = _backend(uri, backend, timeout)
    try:
        held = conn.get_value(uuid)
    except _NoValue:
        return False
    except _Private:
        return None
    # Compare the decoded bytes: two base64 spellings can encode the same key.
    return hmac.compare_digest(held, base64.b64decode(value))


def users(uuid, uri=None, backend=None, timeout=None):
    """
    The names of the libvirt domains (running or only defined) whose XML uses
    secret ``uuid``, sorted: any ``<secret ... uuid=...>`` element, so RBD disk
    ``<auth>`` and volume ``<encryption>`` alike; UUIDs compare case-insensitively.
    The API backend reads each domain's current XML (live when running); the
    virsh backend its persistent XML (``virsh dumpxml --inactive``).
    ``[]`` when no domain uses it, also when the secret is not defined.

    CLI Example:

    .. code-block:: bash

        salt '*' virtsecret.users 691c3607-7ca3-433a-a0c0-5805cea8afa0
    """
    uuid = _check_uuid(uuid)
    conn = _backend(uri, backend, timeout)
    names = set()
    for name, domain_xml in conn.domains():
        try:
            if _uses_secret(domain_xml, uuid):
                names.add(name)
        except ET.ParseError as exc:
            raise CommandExecutionError(f"domain {name}: unreadable XML from libvirt: {exc}")
    return sorted(names)


def guests(uuid, uri=None, backend=None, timeout=None):
    """
    The running libvirt domains whose live XML uses secret ``uuid``, as
    ``[{"name": ..., "uuid": <domain uuid>, "id": <domain id>}]`` sorted by name. A domain
    id is new each time a domain starts, so it tells a guest that has restarted (and read
    the secret's value again) from one still running since before. ``[]`` when none.

    CLI Example:

    .. code-block:: bash

        salt '*' virtsecret.guests 691c3607-7ca3-433a-a0c0-5805cea8afa0
    """
    uuid = _check_uuid(uuid)
    found = []
    for name, domain_xml in _backend(uri, backend, timeout).running():
        try:
            if _uses_secret(domain_xml, uuid):
                root = ET.fromstring(domain_xml)
                found.append({"name": name, "uuid": root.findtext("uuid"), "id": root.get("id")})
        except ET.ParseError as exc:
            raise CommandExecutionError(f"domain {name}: unreadable XML from libvirt: {exc}")
    return sorted(found, key=lambda guest: guest["name"])


def undefine(uuid, uri=None, backend=None, timeout=None):
    """
    Remove secret ``uuid`` and its value. Guests that use it can no longer
    open their RBD disks (``users`` names them; the ``virtsecret.absent``
    state refuses while there are any). Returns ``True`` when it was removed,
    ``False`` when it was not defined.

    CLI Example:

    .. code-block:: bash

        salt '*' virtsecret.undefine 691c3607-7ca3-433a-a0c0-5805cea8afa0
    """
    uuid = _check_uuid(uuid)
    conn = _backend(uri, backend, timeout)
    log.debug("virtsecret: undefining secret %s with %s", uuid, conn.name)
    try:
        conn.undefine(uuid)
    except _NotFound:
        return False
    return True
