"""
The drift report of ``salt-run ceph_openstack.report`` as tables: the nodes, every item
(node, kind, what, what differs, pillar key, the command that fixes it), and per Ceph
cluster its health and each formula user's key type and age.

The runner picks this outputter unless ``--out`` is given (``--out json`` prints the
document itself). The master loads it after ``salt-run saltutil.sync_output`` (or
``saltutil.sync_all``); without it, Salt prints the document with ``nested``.

CLI Example:

.. code-block:: bash

    salt-run ceph_openstack.report
    salt-run ceph_openstack.report --out ceph_openstack_report
"""

import time

__virtualname__ = "ceph_openstack_report"

#: Widest a column gets; longer cells are cut with "..." (an ITEM keeps its end: the file
#: name of a path).
MAX_WIDTH = {"ITEM": 56, "WHAT DIFFERS": 64}
KEEP_END = {"ITEM"}


def __virtual__():
    return __virtualname__


def _cut(text, header):
    text, width = str(text), MAX_WIDTH.get(header)
    if width is None or len(text) <= width:
        return text
    return "..." + text[3 - width:] if header in KEEP_END else text[:width - 3] + "..."


def _table(headers, rows):
    """Lines of a plain-text table: a header, then each row; cells are strings, the last
    column is not padded."""
    widths = []
    for col, header in enumerate(headers):
        cells = [len(header)] + [len(_cut(row[col], header)) for row in rows]
        widths.append(max(cells))
    lines = []
    for row in [headers] + rows:
        cells = [_cut(cell, headers[col]) for col, cell in enumerate(row)]
        padded = [cell.ljust(widths[col]) for col, cell in enumerate(cells[:-1])]
        lines.append("  ".join(padded + cells[-1:]).rstrip())
    return lines


def _when(stamp):
    if not stamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(stamp))


def _item_rows(item, node=None):
    detail = [str(line) for line in item.get("detail") or []] or [""]
    first = [node or item.get("node", ""), item.get("kind", ""), item.get("what", ""),
             detail[0], item.get("pillar") or "-", item.get("fix", "")]
    return [first] + [["", "", "", line, "", ""] for line in detail[1:]]


def _render(doc):
    """The report document as text."""
    if not isinstance(doc, dict) or "nodes" not in doc:
        return str(doc)
    summary = doc.get("summary") or {}
    counts = ", ".join(f"{len(summary.get(word) or [])} {word}"
                       for word in ("drift", "missing", "failed", "ok"))
    verdict = "DRIFT" if doc.get("drift") else "no drift"
    took = f", {doc['seconds']} s" if doc.get("seconds") is not None else ""
    lines = [f"ceph_openstack drift report: {verdict}: {summary.get('items', 0)} item(s); "
             f"nodes: {counts}{took}", ""]
    nodes = doc.get("nodes") or {}
    lines += _table(["NODE", "STATUS", "ROLES", "ITEMS", "SECONDS"], [
        [node, entry.get("status", ""), ",".join(entry.get("roles") or []) or "-",
         str(len(entry.get("items") or [])),
         "-" if entry.get("seconds") is None else str(entry["seconds"])]
        for node, entry in sorted(nodes.items())])
    rows = []
    for item in doc.get("problems") or []:
        rows += _item_rows(item)
    for node, entry in sorted(nodes.items()):
        for item in entry.get("items") or []:
            rows += _item_rows(item, node)
    for name, view in sorted((doc.get("clusters") or {}).items()):
        for item in view.get("items") or []:
            rows += _item_rows(item, f"{name} ({view.get('mon')})")
    if rows:
        lines += [""] + _table(["NODE", "KIND", "ITEM", "WHAT DIFFERS", "PILLAR", "FIX"], rows)
    for name, view in sorted((doc.get("clusters") or {}).items()):
        others = ", ".join(view.get("other_checks") or []) or "none"
        lines += ["", f"cluster {name} (seen from {view.get('mon')}): health "
                      f"{view.get('health') or 'unknown'}; checks not about the formula: {others}"]
        keys = view.get("keys") or {}
        if keys:
            lines += _table(["USER", "KEY TYPE", "CREATED (UTC)", "AGE (DAYS)", "LAST ROTATION",
                            "PENDING"], [
                [user, key.get("type") or "-", _when(key.get("created")),
                 "-" if key.get("age_days") is None else str(key["age_days"]),
                 _when(key.get("rotated")) if key.get("rotated") else "never (by the formula)",
                 key.get("pending") or "-"]
                for user, key in sorted(keys.items())])
        for subject, note in sorted((view.get("notes") or {}).items()):
            lines.append(f"  {subject}: {note}")
    for node, entry in sorted(nodes.items()):
        for subject, note in sorted((entry.get("notes") or {}).items()):
            lines.append(f"note: {node}: {subject}: {note}")
    return "\n".join(lines)


def output(data, **kwargs):  # pylint: disable=unused-argument
    """
    Print the drift report as tables.

    CLI Example:

    .. code-block:: bash

        salt-run ceph_openstack.report --out ceph_openstack_report
    """
    return _render(data)
