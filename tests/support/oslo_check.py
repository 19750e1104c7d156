"""
Check an OpenStack ini file against current option definitions, without OpenStack.

The option definitions are the snapshots in tests/data/oslo_schema/ that
scripts/gen_oslo_schema.py builds from nova's, cinder's and glance's own
``oslo-config-generator`` output; values are checked with oslo.config's own type
converters (``oslo_config.types``), so only oslo.config is needed.

A problem is reported for:

* a section that maps to no option group;
* an option unknown in its group (e.g. removed, like nova ``live_migration_flag``);
* an old name of a renamed option, and an option deprecated for removal;
* a value its type rejects (boolean, integer bounds, string choices, ...);
* a single-valued option set more than once (oslo reads only the last one).

Sections the operator names are mapped to the groups that define their options:
cinder backends listed in ``[DEFAULT] enabled_backends`` to ``backend_defaults``
(+ ``backend``), glance stores listed in ``[DEFAULT] enabled_backends =
name:type`` to ``store:<type>`` (the driver's options, see the script), glance's
reserved ``os_glance_*_store`` sections to ``store:file``; ``section_groups``
adds or overrides mappings.

The file is read with the editor's own parser (salt/_utils/openstack_ini.py), so
the check sees the file exactly as the editor does.
"""

import functools
import importlib.util
import json
import os
import re

from oslo_config import types

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_DIR = os.path.join(REPO, "tests", "data", "oslo_schema")
SERVICES = ("nova", "cinder", "glance-api")
GLANCE_RESERVED_STORES = ("os_glance_staging_store", "os_glance_tasks_store")

# oslo.config expands $name and ${group.name} (``$$`` is a literal ``$``) before
# converting a value to its type.
REFERENCE = re.compile(r"\$(?:\{([^}]*)\}|([_a-z][._a-z0-9]*))", re.IGNORECASE)


def _load_ini_utils():
    path = os.path.join(REPO, "salt", "_utils", "openstack_ini.py")
    spec = importlib.util.spec_from_file_location("oslo_check_openstack_ini", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ini = _load_ini_utils()


@functools.lru_cache(maxsize=None)
def load_schema(service):
    """The snapshot of one service: {"groups": {group: {option: {...}}}, "renamed": {...}}."""
    if service not in SERVICES:
        raise ValueError("no schema for {!r}; one of {}".format(service, ", ".join(SERVICES)))
    with open(os.path.join(SCHEMA_DIR, "{}.json".format(service))) as handle:
        return json.load(handle)


def converter(option):
    """An ``oslo_config.types`` instance for a snapshot option, or None if unchecked."""
    kind = option["type"]
    choices = [choice for choice in option.get("choices", []) if choice is not None] or None
    bounds = {"min": option.get("min"), "max": option.get("max")}
    makers = {
        "boolean value": lambda: types.Boolean(),
        "integer value": lambda: types.Integer(choices=choices, **bounds),
        "port value": lambda: types.Port(choices=choices, **bounds),
        "floating point value": lambda: types.Float(**bounds),
        "string value": lambda: types.String(choices=choices),
        "multi valued": lambda: types.String(choices=choices),
        "list value": lambda: types.List(),
        "dict value": lambda: types.Dict(),
        "uri value": lambda: types.URI(),
        "host address value": lambda: types.HostAddress(),
        "hostname value": lambda: types.Hostname(),
        "IP address value": lambda: types.IPAddress(),
        "host domain value": lambda: types.HostDomain(),
    }
    make = makers.get(kind)
    return make() if make else None


def _named_sections(service, data):
    """{section: [groups]} for sections named by the file's own enabled_backends."""
    backends = (data.get("DEFAULT", {}).get("enabled_backends")) or ""
    if isinstance(backends, list):
        backends = backends[-1]  # oslo reads the last of repeated lines
    if service == "cinder":
        names = [name.strip() for name in backends.split(",") if name.strip()]
        return {name: ["backend_defaults", "backend"] for name in names}
    if service == "glance-api":
        mapping = {name: ["store:file"] for name in GLANCE_RESERVED_STORES}
        try:
            stores = types.Dict()(backends)
        except ValueError:
            stores = {}  # reported as an invalid [DEFAULT] enabled_backends value
        for name, kind in stores.items():
            mapping[name] = ["store:{}".format(kind.strip())]
        return mapping
    return {}


def _groups_of(schema, service, data, section_groups):
    """{section: [groups]} for every section of the file that maps to a group."""
    mapping = {section: [section] for section in data if section in schema["groups"]}
    mapping.update(_named_sections(service, data))
    for section, groups in (section_groups or {}).items():
        mapping[section] = [groups] if isinstance(groups, str) else list(groups)
    return mapping


def substitute(value, data):
    """Expand oslo references from the file's own values; None if one is not set here."""
    missing = []

    def replace(match):
        group, _, key = (match.group(1) or match.group(2)).rpartition(".")
        found = data.get(group or "DEFAULT", {}).get(key)
        if isinstance(found, list):
            found = found[-1]
        if found is None:
            missing.append(key)
            return ""
        return found

    expanded = REFERENCE.sub(replace, value.replace("$$", "\0")).replace("\0", "$")
    return None if missing else expanded


def _check_option(schema, groups, key, values, data):
    """Problems of one option in a section mapped to ``groups``."""
    for group in groups:
        option = schema["groups"].get(group, {}).get(key)
        if option is not None:
            break
    else:
        for group in groups:
            new = schema["renamed"].get("{}/{}".format(group, key))
            if new:
                return ["deprecated name, now [{}] {}".format(*new.split("/", 1))]
        return ["unknown option"]
    problems = []
    if option.get("deprecated_for_removal"):
        problems.append("deprecated for removal")
    if option["type"] != "multi valued" and len(values) > 1:
        problems.append("set {} times; oslo reads only the last".format(len(values)))
    convert = converter(option)
    for value in values if convert else ():
        value = substitute(value, data)
        if value is None:
            continue  # refers to an option set elsewhere (a default): cannot check here
        try:
            convert(value)
        except ValueError as exc:
            problems.append("invalid {}: {}".format(option["type"], exc))
    return problems


def check_text(text, service, section_groups=None, source="<text>"):
    """Return the problems of ini ``text`` for ``service`` (nova, cinder, glance-api)."""
    schema = load_schema(service)
    try:
        doc = ini.parse(text)
    except ValueError as exc:
        return ["{}: not an ini file: {}".format(source, exc)]
    data = ini.to_dict(doc)
    groups_of = _groups_of(schema, service, data, section_groups)
    problems = []
    for section, options in data.items():
        if section not in groups_of:
            problems.append("{}: [{}]: unknown section".format(source, section))
            continue
        for key, value in options.items():
            values = value if isinstance(value, list) else [value]
            for problem in _check_option(schema, groups_of[section], key, values, data):
                problems.append("{}: [{}] {}: {}".format(source, section, key, problem))
    return problems


def check_file(path, service, section_groups=None):
    """
    Return the problems of the ini file at ``path`` for ``service``; [] when it is valid.

    ``section_groups`` maps a section to the option group(s) that define its
    options, e.g. ``{"ceph": "backend_defaults"}``, on top of the automatic
    mappings described in the module docstring.
    """
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    return check_text(text, service, section_groups, source=os.path.basename(path))
