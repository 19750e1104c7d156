#!/usr/bin/env python3
"""
Regenerate the OpenStack option snapshots in tests/data/oslo_schema/.

The snapshots let the unit tests check that the ini files our formula writes are
valid for current OpenStack (tests/support/oslo_check.py) without installing
OpenStack. This script installs nova, cinder, glance and glance_store at their
current releases into a throwaway venv under /tmp (about 60 s and 660 MB), runs
each service's ``oslo-config-generator --format json`` with the namespaces of its
own sample-config generator file, and writes per service a compact JSON holding,
per group, option name -> type (oslo type name), choices, min/max,
deprecated_for_removal and secret, plus the deprecated (renamed) option names.

Two kinds of options are registered only at run time, so the generator cannot
list them; the script adds them from the same venv:

* glance multi-store sections (``[<name>]`` for ``enabled_backends = <name>:rbd``):
  the options each glance_store driver registers there, as groups ``store:<type>``
  (``store:rbd``, ``store:file``, ...);
* keystoneauth plugin options (``username``, ``password``, ...) of groups with an
  ``auth_type`` option whose plugin options the generator does not list (e.g.
  ``[keystone_authtoken]``): those of the ``password`` plugin, the one the
  install guides use (``auth_type = password``).

Usage::

    python3 scripts/gen_oslo_schema.py                 # fresh venv, removed afterwards
    python3 scripts/gen_oslo_schema.py --venv /tmp/v   # reuse (or create and keep) a venv
    python3 scripts/gen_oslo_schema.py --same-releases # the releases of the current snapshots
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "data", "oslo_schema")

# cinder's option list imports its Google Cloud Storage backup driver: needs [gcs].
PACKAGES = ["nova", "cinder[gcs]", "glance", "glance_store"]
VERSIONS_OF = ["nova", "cinder", "glance", "glance_store", "oslo.config"]

# Namespaces of each service's generator config: nova etc/nova/nova-config-generator.conf,
# cinder tools/config/cinder-config-generator.conf, glance
# etc/oslo-config-generator/glance-api.conf.
SERVICES = {
    "nova": [
        "nova.conf",
        "oslo.log",
        "oslo.messaging",
        "oslo.policy",
        "oslo.privsep",
        "oslo.service.periodic_task",
        "oslo.service.service",
        "oslo.middleware",
        "oslo.concurrency",
        "keystonemiddleware.auth_token",
        "osprofiler",
    ],
    "cinder": [
        "castellan.config",
        "cinder",
        "keystonemiddleware.auth_token",
        "osprofiler",
        "oslo.config",
        "oslo.concurrency",
        "oslo.db",
        "oslo.log",
        "oslo.messaging",
        "oslo.middleware",
        "oslo.policy",
        "oslo.privsep",
        "oslo.reports",
        "oslo.service.periodic_task",
        "oslo.service.service",
        "oslo.service.sslutils",
        "oslo.service.wsgi",
        "oslo.versionedobjects",
    ],
    "glance-api": [
        "castellan.config",
        "glance.api",
        "glance.store",
        "glance.multi_store",
        "oslo.concurrency",
        "oslo.messaging",
        "oslo.db",
        "oslo.policy",
        "keystonemiddleware.auth_token",
        "oslo.log",
        "oslo.middleware.cors",
        "oslo.middleware.healthcheck",
        "oslo.middleware.http_proxy_to_wsgi",
        "oslo.reports",
    ],
}

# Run inside the venv: the run-time options described in the docstring, in the
# generator's own JSON entry format.
EXTRAS_SNIPPET = """
import json
from keystoneauth1 import loading
from oslo_config import generator
from stevedore import extension

stores = {}
for ext in extension.ExtensionManager("glance_store.drivers"):
    if "." in ext.name or ext.name == "no_conf":
        continue  # dotted names are old aliases of the same drivers
    store = ext.plugin
    if not isinstance(store, type) or store.OPTIONS is None:
        continue  # swift's entry point is a factory function, not a Store class
    opts = list(store.OPTIONS) + list(store.MULTI_BACKEND_OPTIONS or [])
    group = "store:" + ext.name
    stores[group] = [generator._build_entry(opt, group, "glance_store", None) for opt in opts]
password = [
    generator._build_entry(opt, "", "keystoneauth1", None)
    for opt in loading.get_auth_plugin_conf_options("password")
]
print(json.dumps({"stores": stores, "password_plugin": password}, default=str))
"""


def run(argv, **kwargs):
    """Run a command; on failure show its output and stop."""
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit("failed: {}".format(" ".join(argv[:4])))
    return result.stdout


def snapshot_releases(out):
    """PACKAGES (and oslo.config) pinned to the releases the snapshots in ``out`` record."""
    with open(os.path.join(out, "nova.json")) as handle:
        releases = json.load(handle)["packages"]
    return ["{}=={}".format(package, releases[package.split("[")[0]])
            for package in PACKAGES + ["oslo.config"]]


def make_venv(venv, packages):
    """Create ``venv`` with the OpenStack services installed, unless it already has them."""
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(os.path.join(venv, "bin", "oslo-config-generator")):
        print("installing {} into {} ...".format(" ".join(packages), venv), flush=True)
        run([sys.executable, "-m", "venv", venv])
        run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + packages)
    return python


def versions(python):
    code = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({{n: m.version(n) for n in {!r}}}))".format(VERSIONS_OF)
    )
    return json.loads(run([python, "-c", code]))


def generate(venv, namespaces, workdir):
    """Raw ``oslo-config-generator --format json`` output for these namespaces."""
    out = os.path.join(workdir, "opts.json")
    argv = [os.path.join(venv, "bin", "oslo-config-generator"), "--format", "json"]
    for namespace in namespaces:
        argv += ["--namespace", namespace]
    run(argv + ["--output-file", out], cwd=workdir)
    with open(out) as handle:
        return json.load(handle)["options"]


def add_password_plugin(groups, plugin_entries):
    """Give groups that load a keystoneauth plugin the ``password`` plugin's options."""
    for entries in groups.values():
        names = {entry["dest"] for entry in entries}
        if "auth_type" in names and "password" not in names:
            entries.extend(entry for entry in plugin_entries if entry["dest"] not in names)


def compact_option(entry):
    """The fields the checker needs, leaving out defaults to keep the file small."""
    option = {"type": entry["type"]}
    if entry.get("choices"):
        option["choices"] = [choice[0] for choice in entry["choices"]]
    for bound in ("min", "max"):
        if entry.get(bound) is not None:
            option[bound] = entry[bound]
    if entry.get("deprecated_for_removal"):
        option["deprecated_for_removal"] = True
    if entry.get("secret"):
        option["secret"] = True  # oslo masks its value in logs; so does openstack_ini
    return option


def file_name(name):
    """Options are read from files by dest: ``log-file`` is written ``log_file``."""
    return name.replace("-", "_")


def compact(groups):
    """(groups, renamed) from {group: [generator entries]}."""
    schema, renamed = {}, {}
    for group, entries in groups.items():
        options = schema.setdefault(group, {})
        for entry in entries:
            name = file_name(entry["dest"])
            options[name] = compact_option(entry)
            for old in entry.get("deprecated_opts") or []:
                old_name = "{}/{}".format(old["group"] or group, file_name(old["name"]))
                if old_name != "{}/{}".format(group, name):
                    renamed[old_name] = "{}/{}".format(group, name)
    return schema, renamed


def dump(value, depth=0):
    """JSON with one option per line, so a regeneration gives a readable diff."""
    if isinstance(value, dict) and value and depth < 3:
        pad = " " * (depth + 1)
        items = ",\n".join(
            "{}{}: {}".format(pad, json.dumps(key), dump(item, depth + 1))
            for key, item in sorted(value.items())
        )
        return "{\n" + items + "\n" + " " * depth + "}"
    return json.dumps(value, sort_keys=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", help="venv to use (created if missing, then kept)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--same-releases", action="store_true",
                        help="install the releases the snapshots in --out were made from")
    args = parser.parse_args()
    packages = snapshot_releases(args.out) if args.same_releases else PACKAGES

    started = time.monotonic()
    venv = args.venv or tempfile.mkdtemp(prefix="oslo-schema-venv-", dir="/tmp")
    workdir = tempfile.mkdtemp(prefix="oslo-schema-work-", dir="/tmp")
    try:
        python = make_venv(venv, packages)
        installed = versions(python)
        extras = json.loads(run([python, "-c", EXTRAS_SNIPPET], cwd=workdir))
        os.makedirs(args.out, exist_ok=True)
        for service, namespaces in SERVICES.items():
            generated = generate(venv, namespaces, workdir)
            raw = {group: data["opts"] for group, data in generated.items()}
            add_password_plugin(raw, extras["password_plugin"])
            if service == "glance-api":
                raw.update(extras["stores"])
            groups, renamed = compact(raw)
            snapshot = {
                "service": service,
                "generated_by": "scripts/gen_oslo_schema.py",
                "packages": installed,
                "namespaces": namespaces,
                "groups": groups,
                "renamed": renamed,
            }
            path = os.path.join(args.out, "{}.json".format(service))
            with open(path, "w") as handle:
                handle.write(dump(snapshot) + "\n")
            count = sum(len(options) for options in groups.values())
            print("{}: {} groups, {} options -> {}".format(service, len(groups), count, path))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.venv:
            shutil.rmtree(venv, ignore_errors=True)
    print("done in {:.0f} s ({})".format(time.monotonic() - started, installed))


if __name__ == "__main__":
    main()
