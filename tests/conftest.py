"""
Shared pytest fixtures: the real lab (Ceph, libvirtd) and Salt loaders over it.

Unit tests need none of this. Functional tests load the project's modules
through Salt's loader (after a real ``saltutil.sync_all`` from ``salt/``) and
act on the lab cluster and daemon; ``ceph_lab2`` adds a second cluster for the
tests that ask for it. Integration tests (tests/integration) add a Salt master
and minions started with pytest-salt-factories.
"""

import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab import release  # noqa: E402
from lab.ceph import CephLab  # noqa: E402
from lab.libvirt import LibvirtLab  # noqa: E402
from lab.salt import SECOND_CLUSTER  # noqa: E402

#: ``CEPH_OPENSTACK_ROUTE=installed``: the functional tests load the modules from the
#: installed package (saltext.ceph_openstack, through its entry point) with nothing
#: synced, and the SLS from its formula directory (tests/integration/test_saltext.py runs
#: them so, under the package's virtualenv).
INSTALLED = os.environ.get("CEPH_OPENSTACK_ROUTE") == "installed"


def _file_roots():
    if INSTALLED:
        import saltext.ceph_openstack  # pylint: disable=import-outside-toplevel

        return [os.path.join(list(saltext.ceph_openstack.__path__)[0], "formula")]
    return [str(ROOT / "salt" / "states"), str(ROOT / "salt")]


@pytest.fixture(scope="session", autouse=True)
def ceph_release():
    """The Ceph release the lab runs (``./run test --ceph NAME``, else the host's). For a
    release from a Debian root, its ``ceph``, ``rbd``, ``rados`` and ``ceph-authtool``
    come first on PATH for the whole session: for the tests, the modules they load and
    the minions they start."""
    name = release.selected()
    saved = os.environ["PATH"]
    os.environ["PATH"] = release.path_with(name, saved)
    yield name
    os.environ["PATH"] = saved


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """Keep salt-factories' log server on loopback (it binds 0.0.0.0 by default)."""
    log_server = config.pluginmanager.get_plugin("saltfactories-log-server")
    if log_server is not None:
        log_server.log_host = "127.0.0.1"


EXIT_STATUS = pytest.StashKey[int]()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Exit when the session is over even if a library's thread outlives it. Seen in CI:
    after the summary, the interpreter waited for ever for salt-factories' event listener
    thread, which its stop() had left running (idle in its event loop). Such a thread gets
    15 s, then the run exits with the session's status, naming the thread."""
    lingering = [thread for thread in threading.enumerate()
                 if thread is not threading.main_thread() and not thread.daemon]
    deadline = time.monotonic() + 15
    for thread in lingering:
        thread.join(max(0.0, deadline - time.monotonic()))
    lingering = [thread.name for thread in lingering if thread.is_alive()]
    if lingering and EXIT_STATUS in config.stash:
        print(f"tests: thread(s) {', '.join(lingering)} still running after the session; "
              "exiting without waiting for them", flush=True)
        sys.stderr.flush()
        os._exit(config.stash[EXIT_STATUS])


@pytest.fixture(scope="session")
def event_listener():
    """salt-factories' event listener, bound to 127.0.0.1 instead of every address."""
    from saltfactories.plugins.event_listener import EventListener

    listener = EventListener()
    listener.host = "127.0.0.1"
    listener.address = f"tcp://127.0.0.1:{listener.port}"
    with listener:
        yield listener


@pytest.fixture(scope="session")
def lab_dir():
    """One short-pathed directory for all lab state of this test session (unix sockets
    have a 108-byte path limit). Removed at the end unless KEEP_LAB=1."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="coslab-"))
    path.chmod(0o755)  # libvirtd runs as an unprivileged user and must reach its subdirectory
    yield path
    if os.environ.get("KEEP_LAB") != "1":
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def salt_factories_config(lab_dir):
    """salt-factories writes its daemons' trees under the lab directory, not /tmp."""
    return {"root_dir": str(lab_dir / "salt")}


def _running_cluster(directory, ceph_release):
    """A one-node Ceph cluster under ``directory``, up until the generator is closed."""
    cluster = CephLab(directory, ceph_release)
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def ceph_lab(lab_dir, ceph_release):
    """A running one-node Ceph cluster; ``ceph_lab.ceph(...)`` asks it directly."""
    yield from _running_cluster(lab_dir / "ceph", ceph_release)


@pytest.fixture(scope="session")
def ceph_lab2(lab_dir, ceph_release):
    """A second running one-node Ceph cluster (its own fsid and mon ports, the same
    release), started when a test first asks for it: the lab pillar's cluster
    ``lab.salt.SECOND_CLUSTER`` ("dr") in the tests that use two."""
    yield from _running_cluster(lab_dir / "ceph2", ceph_release)


@pytest.fixture(scope="session")
def libvirt_lab(lab_dir):
    """A running unprivileged libvirtd; ``libvirt_lab.virsh(...)`` asks it directly."""
    daemon = LibvirtLab(lab_dir / "libvirt")
    try:
        daemon.up()
        yield daemon
    finally:
        daemon.down()


@pytest.fixture(scope="module")
def minion_opts(lab_dir, request):
    """Minion options for a masterless minion whose file root is the project's salt/ tree
    and whose connection defaults point at whichever lab parts the test module uses
    (with ``ceph_lab2``: ``ceph_openstack:clusters:dr:{conf, keyring}`` as well)."""
    import salt.config

    root = lab_dir / "functional" / request.module.__name__
    opts = salt.config.minion_config(None)
    opts.update(
        {
            "id": "functional",
            "root_dir": str(root),
            "cachedir": str(root / "cache"),
            "pki_dir": str(root / "pki"),
            "sock_dir": str(root / "sock"),
            "extension_modules": str(root / "extmods"),
            "file_client": "local",
            "file_roots": {"base": _file_roots()},
            "pillar_roots": {"base": [str(root / "pillar")]},
            "log_file": str(root / "minion.log"),
            "ceph_openstack": {},
        }
    )
    if "ceph_lab" in request.fixturenames:
        cluster = request.getfixturevalue("ceph_lab")
        opts["ceph_openstack"].update({"conf": cluster.conf, "keyring": cluster.admin_keyring})
    if "ceph_lab2" in request.fixturenames:
        second = request.getfixturevalue("ceph_lab2")
        opts["ceph_openstack"]["clusters"] = {
            SECOND_CLUSTER: {"conf": second.conf, "keyring": second.admin_keyring}}
    if "libvirt_lab" in request.fixturenames:
        opts["ceph_openstack"]["libvirt"] = {"uri": request.getfixturevalue("libvirt_lab").uri}
    for sub in ("cache", "pki", "sock", "extmods", "pillar"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return opts


@pytest.fixture(scope="module")
def loaders(minion_opts):
    """Salt's loaders over the synced project modules (``loaders.modules.cephpool.get``,
    ``loaders.states.cephpool.present``)."""
    from saltfactories.utils.functional import Loaders

    loaders = Loaders(minion_opts)
    if INSTALLED:  # the sync Loaders ran found nothing to copy: the package's modules load
        synced = os.path.join(minion_opts["extension_modules"], "modules")
        assert not os.path.isdir(synced) or os.listdir(synced) == [], os.listdir(synced)
    return loaders


@pytest.fixture
def modules(loaders):
    """Execution modules, with ``__context__`` reset after each test."""
    yield loaders.modules
    loaders.reset_state()


@pytest.fixture
def states(loaders):
    """State modules, with ``__context__`` reset after each test."""
    yield loaders.states
    loaders.reset_state()


def pytest_sessionfinish(session, exitstatus):
    """Keep the session's exit status for pytest_unconfigure. Salt's loader buffers log
    records for a console that tests never set up, and writes them at exit to a stream
    pytest has closed by then ("Logging error" noise): drop them, pytest's own log capture
    already has every record."""
    session.config.stash[EXIT_STATUS] = int(exitstatus)
    try:
        from salt._logging import impl
    except ImportError:
        return
    handler = impl.get_temp_handler()
    if handler is not None:
        handler.sync_with_handlers(())
