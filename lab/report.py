"""
What an orchestrated rollout did, in words a Ceph and OpenStack operator knows.

``summarize(orch_ret, roots)`` turns the JSON return of ``salt-run
state.orchestrate orch.ceph_openstack`` into lines: each step with its result,
what the sync step synced, and per node one line per change ("pool volumes
created", "user client.cinder created", "/etc/hosts entry controller1",
"keyring /etc/ceph/ceph.client.cinder.keyring written", "nova.conf [libvirt]
images_type, ..."); and the first failure, if any, as ``(step, minion, cause)``.
Paths under a lab minion's sandbox root are shown as on a real node.
"""

import collections
import textwrap

#: Lines longer than this are wrapped, continuing under the text they belong to.
WIDTH = 100

#: One state's return, with its module and function from the return's key.
State = collections.namedtuple("State", "module fun id name result changes comment")

#: One orchestration step: its id, result, comment, per-minion state returns (a
#: ``salt.state`` step) and per-minion function returns (a ``salt.function`` step).
Step = collections.namedtuple("Step", "id result comment states functions")

_PREFIX = "ceph_openstack-"


def steps(orch_ret):
    """The orchestration's steps, in the order they ran."""
    data = orch_ret.get("data", orch_ret) if isinstance(orch_ret, dict) else {}
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), dict):
        data = next(iter(data.values()))  # {master id: {state key: return}}
    found = []
    for key, step in (data or {}).items():
        if not isinstance(step, dict):
            continue
        parts = key.split("_|-")
        step_id = parts[1] if len(parts) > 1 else key
        per_minion = (step.get("changes") or {}).get("ret") or {}
        states, functions = {}, {}
        for minion, ret in per_minion.items():
            if parts[-1] == "function":
                functions[minion] = ret
            elif isinstance(ret, dict):
                states[minion] = _states(ret)
            else:  # "Minion did not return", a render error, ...
                states[minion] = [State("", "", "return", "", False, {}, _one_line(ret))]
        found.append((step.get("__run_num__", 0),
                      Step(step_id.replace(_PREFIX, ""), step.get("result"),
                           step.get("comment") or "", states, functions)))
    return [step for _, step in sorted(found, key=lambda item: item[0])]


def _states(ret):
    found = []
    for key, state in ret.items():
        if not isinstance(state, dict) or "result" not in state:
            continue
        parts = key.split("_|-")
        module, fun = (parts[0], parts[-1]) if len(parts) == 4 else ("", "")
        found.append((state.get("__run_num__", 0), State(
            module, fun, state.get("__id__", parts[1] if len(parts) > 1 else key),
            str(state.get("name", "")), state.get("result"), state.get("changes") or {},
            str(state.get("comment") or ""))))
    return [state for _, state in sorted(found, key=lambda item: item[0])]


def _on_node(path, root):
    """``path`` as on a real node: without the lab minion's sandbox ``root``."""
    if root and path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")):]
    return path


def _options(changes):
    """``[section] a, b; [other] c`` from ``{"section/option": ...}`` changes."""
    sections = {}
    for key in changes:
        section, _, option = key.partition("/")
        sections.setdefault(section, []).append(option or section)
    return "; ".join(f"[{section}] {', '.join(options)}" for section, options in sections.items())


def _created(changes, key):
    return isinstance(changes.get(key), dict) and changes[key].get("old") is None


def describe(state, root=None):
    """One line saying what ``state`` changed, in a user's words."""
    changes, name = state.changes, _on_node(state.name, root)
    kind = (state.module, state.fun)
    if kind == ("host", "present"):
        added = changes.get("added") or {}
        ips = ", ".join(added) or "changed"
        return f"/etc/hosts entry {name} ({ips})"
    if kind == ("cephpool", "present"):
        if _created(changes, "pool"):
            return f"pool {name} created (pg_num {changes.get('pg_num', {}).get('new', '?')})"
        return f"pool {name}: " + ", ".join(sorted(changes))
    if kind in (("ceph_openstack", "client_present"), ("cephauth", "present")):
        if _created(changes, "entity"):
            return f"user {name} created"
        return f"user {name}: " + ", ".join(sorted(changes))
    if kind == ("ceph_openstack", "published"):
        published = [item.replace("ceph_openstack_key_", "key of client.")
                     .replace("ceph_openstack_cluster", "cluster facts (fsid, mons)")
                     for item in changes.get("published", [])]
        withdrawn = changes.get("withdrawn") or []
        text = "published in the Salt mine: " + ", ".join(published) if published else ""
        if withdrawn:
            text += ("; " if text else "") + "withdrawn: " + ", ".join(withdrawn)
        return text or "mine entries: " + ", ".join(sorted(changes))
    if kind in (("ceph_openstack", "keyring"), ("cephauth", "keyring_present")):
        return f"keyring {name} " + ("written" if _created(changes, "file") else
                                     "changed: " + ", ".join(sorted(changes)))
    if kind == ("ceph_openstack", "keyring_absent"):
        return f"keyring {name} removed"
    if kind in (("ceph_openstack", "libvirt_secret_absent"), ("virtsecret", "absent")):
        return f"libvirt secret {name} undefined"
    if kind == ("cephauth", "absent"):
        return f"user {name} deleted"
    if kind == ("ceph_openstack", "ceph_conf"):
        return f"{name} {_options(changes)}"
    if kind == ("file", "directory"):
        what = {"guest-socket-dir": "guest socket dir", "guest-log-dir": "guest log dir"}.get(
            state.id.replace(_PREFIX, ""), "directory")
        return f"{what} {name} " + ("created" if any(
            (value or {}).get("directory") == "new" for value in changes.values()
            if isinstance(value, dict)) else "changed")
    if kind in (("ceph_openstack", "libvirt_secret"), ("virtsecret", "present")):
        return f"libvirt secret {name}: " + ", ".join(
            f"{key} {'set' if key == 'value' else (value or {}).get('new', 'changed')}"
            if key != "defined" else "defined"
            for key, value in changes.items())
    if state.module == "openstack_ini" and state.fun in ("options_present", "options_absent"):
        base = name.rsplit("/", 1)[-1]
        removed = {key: value for key, value in changes.items()
                   if isinstance(value, dict) and value.get("new") is None}
        kept = {key: value for key, value in changes.items() if key not in removed}
        text = f"{base} {_options(kept)}" if kept else base
        if removed:
            text += (" removed " if not kept else "; removed ") + _options(removed)
        return text
    if kind == ("glanceimage", "present"):
        image = (changes.get("image") or {}).get("new") or {}
        converted = changes.get("converted") or {}
        text = f"Glance image {name}"
        if image.get("id") and _created(changes, "image"):
            text += f" uploaded as {image['id']}"
        else:
            text += ": " + ", ".join(sorted(changes))
        if converted:
            text += f" (converted from {converted.get('old')} to {converted.get('new')})"
        return text
    if kind in (("service", "running"), ("ceph_openstack", "service_running")):
        return f"service {name} restarted"
    if kind == ("pkg", "installed"):
        return "packages installed: " + ", ".join(sorted(changes))
    return f"{state.id.replace(_PREFIX, '')}: " + ", ".join(sorted(map(str, changes)))


def describe_sync(functions):
    """Lines saying what ``saltutil.sync_all`` synced, minions with the same result
    together."""
    groups = collections.defaultdict(list)
    for minion, ret in sorted(functions.items()):
        if isinstance(ret, dict):
            synced = tuple((kind, tuple(sorted(item.split(".", 1)[-1] for item in items)))
                           for kind, items in sorted(ret.items()) if items)
        else:
            synced = (("error", (str(ret),)),)
        groups[synced].append(minion)
    lines = []
    for synced, minions in groups.items():
        what = "; ".join(f"{kind} {', '.join(items)}" for kind, items in synced)
        lines.append(f"{', '.join(minions)}: " + (f"synced {what}" if what else
                                                  "nothing new to sync"))
    return lines


def summarize(orch_ret, roots=None):
    """
    ``(lines, failure)``: the lines describing each step, and the first failure as
    ``(step, minion or None, cause)`` (None when every step succeeded).

    ``roots`` maps a minion id to its sandbox root, shown as ``/``.
    """
    roots = roots or {}
    lines, failure = [], None
    found = steps(orch_ret)
    if not found:
        failure = ("orchestration", None, _one_line(orch_ret) or "no return")
    for step in found:
        mark = {True: "ok", False: "FAILED", None: "would change"}.get(step.result, "?")
        changed = sum(1 for states in step.states.values() for s in states if s.changes)
        quiet = step.result is True and not (step.functions or changed)
        lines.append(f"  {step.id:12} {mark}" + (", no changes" if quiet else ""))
        if step.functions:
            lines.extend(_wrap(line, 4) for line in describe_sync(step.functions))
        for minion, states in sorted(step.states.items()):
            changes = [s for s in states if s.changes]
            if changes:
                lines.append(f"    {minion}: {len(changes)} of {len(states)} states changed")
                lines.extend(_wrap(describe(s, roots.get(minion)), 6) for s in changes)
            for state in states:
                if state.result is False:
                    lines.append(_wrap(f"{minion}: FAILED {state.id}: {state.comment}", 4))
                    if failure is None:
                        failure = (step.id, minion, f"{minion}: {state.id}: {state.comment}")
        failed_states = any(s.result is False for states in step.states.values() for s in states)
        if step.result is False and not failed_states:
            lines.append(_wrap(step.comment or "failed", 4))
            failure = failure or (step.id, None, step.comment)
    return lines, failure


def changed(orch_ret, roots=None):
    """The changes a rollout made, one ``minion: what`` per state that changed."""
    return [f"{minion}: {describe(state, roots and roots.get(minion))}"
            for step in steps(orch_ret) for minion, states in sorted(step.states.items())
            for state in states if state.changes]


def _wrap(text, indent):
    return textwrap.fill(text, WIDTH, initial_indent=" " * indent,
                         subsequent_indent=" " * (indent + 4), break_on_hyphens=False,
                         break_long_words=False)


def _one_line(value, limit=300):
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + " ..."
