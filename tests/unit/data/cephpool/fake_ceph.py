"""
A stand-in for ``cmd.run_all`` for the cephpool unit tests.

It answers ``ceph``/``rbd``/``rados`` calls with what the lab cluster printed
(the recordings next to this file, made by ``record.py``) and applies our
writes to its copy of the ``osd pool ls detail`` listing the way the lab did,
so a test can run a state twice. Every call is kept in ``calls`` as
``(binary, args)`` without the connection options, and in ``argv`` whole.
"""

import copy
import json
import pathlib

from tests.support.modules import load  # noqa: F401 (test files take it from here)

HERE = pathlib.Path(__file__).resolve().parent
LS_DETAIL = json.loads((HERE / "ls_detail.json").read_text())
RULES = json.loads((HERE / "crush_rule_dump.json").read_text())
ANSWERS = json.loads((HERE / "answers.json").read_text())


#: The execution module's public functions (Python names).
PUBLIC_FUNCTIONS = (
    "list_",
    "exists",
    "get",
    "validate",
    "create",
    "set_",
    "application_enable",
    "application_get",
    "init",
    "initialized",
    "delete",
)


def config_get(values):
    """A ``config.get`` over ``{"ceph_openstack:conf": ...}``."""
    return lambda key, default=None, **_kwargs: values.get(key, default)


_CONNECTION_OPTIONS = ("--cluster", "--id", "--conf", "--keyring", "--connect-timeout")


def split_argv(cmd):
    """``(binary, {connection option: value}, args, json_out)`` of one ceph_cli argv."""
    binary, rest, conn = cmd[0], list(cmd[1:]), {}
    while rest:
        if rest[0] in _CONNECTION_OPTIONS:
            conn[rest[0]] = rest[1]
            rest = rest[2:]
        elif rest[0].startswith(("--client_mount_timeout=", "--rados_")):
            key, value = rest.pop(0).split("=", 1)
            conn[key] = value
        else:
            break
    json_out = rest[-2:] == ["--format", "json"]
    return binary, conn, rest[:-2] if json_out else rest, json_out


def ok(stdout="", stderr=""):
    return {"pid": 4242, "retcode": 0, "stdout": stdout, "stderr": stderr}


class FakeCeph:
    """``cmd.run_all`` over a recorded cluster (``fake.pools`` is its listing)."""

    def __init__(self):
        self.pools = copy.deepcopy(LS_DETAIL)
        self.rules = copy.deepcopy(RULES)
        #: pools whose rbd_info says "overwrite validated" (as recorded)
        self.validated = {"volumes", "backups"}
        #: ``{args prefix tuple: answer}``: answer matching calls with this instead
        self.answers = {}
        self.calls = []
        self.argv = []
        self.options = []

    def __call__(self, cmd, **options):
        binary, _conn, args, _json = split_argv(cmd)
        self.calls.append((binary, tuple(args)))
        self.argv.append(list(cmd))
        self.options.append(options)
        for prefix, answer in self.answers.items():
            if tuple(args[: len(prefix)]) == prefix:
                return dict(answer)
        return self._answer(binary, args)

    # -- helpers for tests ---------------------------------------------------

    def pool(self, name):
        return next((pool for pool in self.pools if pool["pool_name"] == name), None)

    def count(self, binary=None):
        return sum(1 for called, _args in self.calls if binary in (None, called))

    def writes(self):
        """The calls that change something (everything but the reads)."""
        reads = (("osd", "pool", "ls"), ("osd", "crush", "rule"))
        return [
            (binary, args)
            for binary, args in self.calls
            if binary != "rados" and args[:3] not in reads
        ]

    # -- the simulated cluster -------------------------------------------------

    def _answer(self, binary, args):
        if binary == "rados":  # -p NAME get rbd_info -
            name = args[1]
            if name in self.validated:
                return dict(ANSWERS["rbd_info_validated"])
            missing = dict(ANSWERS["rbd_info_missing"])
            missing["stderr"] = missing["stderr"].replace("images/", f"{name}/")
            return missing
        if binary == "rbd":  # pool init NAME
            self.pool(args[2])["application_metadata"].setdefault("rbd", {})
            self.validated.add(args[2])
            return dict(ANSWERS["rbd_pool_init"])
        if args[:4] == ["osd", "pool", "ls", "detail"]:
            return ok(json.dumps(self.pools))
        if args[:4] == ["osd", "crush", "rule", "dump"]:
            return ok(json.dumps(self.rules))
        if args[:3] == ["osd", "pool", "create"]:
            return self._create(args[3], dict(zip(args[4::2], args[5::2])))
        if args[:3] == ["osd", "pool", "set"]:
            return self._set(self.pool(args[3]), args[4], args[5])
        if args[:3] == ["osd", "pool", "set-quota"]:
            self.pool(args[3])[f"quota_{args[4]}"] = int(args[5])
            return ok(stderr=f"set-quota {args[4]} = {args[5]} for pool {args[3]}\n")
        if args[:4] == ["osd", "pool", "application", "enable"]:
            self.pool(args[4])["application_metadata"][args[5]] = {}
            return ok(stderr=f"enabled application '{args[5]}' on pool '{args[4]}'\n")
        if args[:3] == ["osd", "pool", "delete"]:
            self.pools.remove(self.pool(args[3]))
            return ok(stderr=f"pool '{args[3]}' removed\n")
        raise AssertionError(f"unexpected call: {binary} {' '.join(args)}")

    def _rule_id(self, name):
        return next(rule["rule_id"] for rule in self.rules if rule["rule_name"] == name)

    def _create(self, name, options):
        if self.pool(name) is not None:  # as the lab does: exit 0, nothing changed
            return ok(stderr=f"pool '{name}' already exists\n")
        pool = copy.deepcopy(self.pool("images"))
        pg_num = int(options.get("--pg_num", 8))
        pool.update(
            pool_name=name,
            pool_id=max(p["pool_id"] for p in self.pools) + 1,
            application_metadata={},
            pg_num=pg_num,
            pg_num_target=pg_num,
            pg_placement_num=int(options.get("--pgp_num", pg_num)),
            pg_placement_num_target=int(options.get("--pgp_num", pg_num)),
            crush_rule=self._rule_id(options.get("--rule", "replicated_rule")),
        )
        self.pools.append(pool)
        return ok(stderr=f"pool '{name}' created\n")

    def _set(self, pool, prop, value):
        if prop == "pg_num":  # as seen on the lab: both targets move at once
            pool["pg_num_target"] = pool["pg_placement_num_target"] = int(value)
        elif prop == "pgp_num":
            pool["pg_placement_num_target"] = int(value)
        elif prop == "size":  # the lab's osd_pool_default_min_size is 1
            pool["size"], pool["min_size"] = int(value), 1
        elif prop == "min_size":
            pool["min_size"] = int(value)
        elif prop == "crush_rule":
            pool["crush_rule"] = self._rule_id(value)
        elif prop == "target_size_ratio":
            pool["options"].pop("target_size_ratio", None)
            if float(value):
                pool["options"]["target_size_ratio"] = float(value)
        else:
            pool[prop] = value
        return ok(stderr=f"set pool {pool['pool_id']} {prop} to {value}\n")
