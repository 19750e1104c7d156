"""
Parse and edit oslo.config (OpenStack) and Ceph ini files without losing a byte.

Pure Python, standard library only: it runs inside onedir Salt on a minion. The
execution module ``openstack_ini`` does the file I/O and calls these functions
through ``__utils__["openstack_ini.<func>"]``; unit tests import this file by path.

Model
=====
A file is a list of lines; every line keeps its exact text (line ending included),
so rendering an unedited document gives back the input byte for byte. Lines are
classified the way oslo.config's own parser (``oslo_config.iniparser``) reads them:

* blank lines, and comments (first non-blank character ``#`` or ``;``);
* section headers ``[name]``; a section may appear more than once (oslo merges them);
* ``key = value`` or ``key: value`` (whichever separator comes first); surrounding
  whitespace is ignored and one pair of matching quotes around the value is removed;
* continuation lines: a line indented deeper than the key line right above it (or
  above its previous continuation) continues that value (joined with a newline).
  A line indented like its neighbours is a key of its own: Ceph's ``ceph.conf``
  indents every key with a tab.

Anything else (a key before the first section, an unterminated ``[header``, a line
with no separator, NUL bytes) raises :class:`IniError`: it is not an ini file and we
refuse to edit it.

Values
======
:func:`render_value` turns Python values into oslo syntax:

* ``True``/``False`` -> ``true``/``false``; numbers -> ``str()``; strings as-is (a
  string is always written on one line, so ``"a,b"`` is a comma list written verbatim);
* a list or tuple -> comma-joined (``ListOpt`` syntax: ``enabled_backends = a,b``),
  **except** for oslo multi-valued options (``MultiStrOpt``, listed in
  :data:`MULTI_VALUED`, e.g. ``[pci] device_spec``), where each element is written on
  its own ``key = element`` line, in order;
* a dict -> ``k1:v1,k2:v2`` (``DictOpt`` syntax, e.g. glance ``enabled_backends``);
* ``None`` is refused (use ``options_absent`` to remove a key, ``""`` for empty).

A value that would lose whitespace or quotes when read back is written in double
quotes, so reading a written value always returns what was asked for.

Errors raised for bad input are :class:`IniError`, a ``ValueError``. Their messages
name sections and keys, never values (values may be secrets).
"""

import re

MASK = "********"

# Substrings of key names whose values are never shown in changes (case-insensitive).
SECRET_MARKERS = ("password", "secret", "key", "token")

# oslo MultiStrOpt options (a key repeated once per value) of nova 34, cinder 29,
# glance 33 and glance_store 5.7, as "section/key"; "*/key" means any section, for
# backend options that live in sections the operator names (cinder ``[ceph]``, glance
# multi-store ``[<name>]``). tests/unit/test_openstack_ini_schema.py keeps this list
# in step with tests/data/oslo_schema/.
MULTI_VALUED = frozenset(
    {
        "DEFAULT/virt_mkfs",
        "DEFAULT/osapi_volume_extension",
        "cache/backend_argument",
        "filter_scheduler/available_filters",
        "oslo_messaging_notifications/driver",
        "oslo_policy/policy_dirs",
        "pci/alias",
        "pci/device_spec",
        "pci/passthrough_whitelist",  # deprecated name of device_spec
        "glance_store/filesystem_store_datadirs",
        "glance_store/vmware_datastores",
        "*/filesystem_store_datadirs",
        "*/vmware_datastores",
        "*/vmware_cluster_name",
        "*/vmware_storage_profile",
    }
)

BLANK, COMMENT, SECTION, KEY, CONTINUATION = (
    "blank",
    "comment",
    "section",
    "key",
    "continuation",
)


class IniError(ValueError):
    """Bad input: a file that is not ini, or a section/key/value we cannot write."""


class Line:
    """One physical line: its exact text and what the parser made of it."""

    __slots__ = ("text", "kind", "section", "key", "value")

    def __init__(self, text, kind, section=None, key=None, value=None):
        self.text = text  # exact text, line ending included (none on a last line)
        self.kind = kind
        self.section = section  # section the line is in (None before the first one)
        self.key = key  # KEY and CONTINUATION lines: the option name
        self.value = value  # KEY lines: the whole value, continuations joined

    def __repr__(self):
        return "Line({!r}, {})".format(self.text, self.kind)


class Document:
    """A parsed ini file: its lines plus the file-wide newline conventions."""

    def __init__(self, lines, newline="\n", final_newline=True):
        self.lines = lines
        self.newline = newline  # used for lines we add
        self.final_newline = final_newline  # keep a missing final newline missing


# --------------------------------------------------------------------------- parsing


def _split_lines(text):
    """Split on "\\n" only, keeping line endings (str.splitlines also splits on \\x0c etc.)."""
    pieces = text.split("\n")
    lines = [piece + "\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def _indent(text):
    """Width of a line's leading spaces and tabs."""
    return len(text) - len(text.lstrip(" \t"))


def parse_value(text):
    """Read a raw value the way oslo.config does: strip, then drop one pair of quotes."""
    value = text.strip()
    if value and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value


def _split_key_value(stripped):
    """Return (key, raw value) of ``key = value`` / ``key: value``, or None."""
    positions = [pos for pos in (stripped.find("="), stripped.find(":")) if pos >= 0]
    if not positions:
        return None
    sep = min(positions)
    return stripped[:sep].strip(), stripped[sep + 1 :]


def parse(text):
    """
    Parse ini text into a :class:`Document`; raise :class:`IniError` if it is not ini.

    ``render(parse(text)) == text`` for every text this accepts.
    """
    if not isinstance(text, str):
        raise IniError("ini content must be text")
    if "\x00" in text:
        raise IniError("contains NUL bytes: a binary file, not an ini file")
    lines = []
    section = None
    owner = None  # the KEY line a deeper-indented line would continue
    for number, raw in enumerate(_split_lines(text), 1):
        stripped = raw.strip()
        if not stripped:
            # A blank line ends a multi-line value, as in oslo.config.
            lines.append(Line(raw, BLANK, section))
            owner = None
        elif owner is not None and _indent(raw) > _indent(owner.text):
            owner.value += "\n" + stripped
            lines.append(Line(raw, CONTINUATION, section, owner.key))
        elif stripped[0] in "#;":
            lines.append(Line(raw, COMMENT, section))
            owner = None
        elif stripped[0] == "[":
            if not stripped.endswith("]") or len(stripped) < 3:
                raise IniError("line {}: malformed section header".format(number))
            section = stripped[1:-1]
            lines.append(Line(raw, SECTION, section))
            owner = None
        else:
            pair = _split_key_value(stripped)
            if pair is None:
                raise IniError(
                    "line {}: neither a comment, a [section] nor key = value".format(number)
                )
            key, raw_value = pair
            if not key:
                raise IniError("line {}: empty key".format(number))
            if section is None:
                raise IniError("line {}: key outside any [section]".format(number))
            owner = Line(raw, KEY, section, key, parse_value(raw_value))
            lines.append(owner)
    newline = "\r\n" if lines and lines[0].text.endswith("\r\n") else "\n"
    final_newline = not lines or lines[-1].text.endswith("\n")
    return Document(lines, newline, final_newline)


def _with_newline(text, newline):
    return text if text.endswith("\n") else text + newline


def _without_newline(text):
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def render(doc):
    """Return the text of a :class:`Document` (the exact input if it was not edited)."""
    if not doc.lines:
        return ""
    texts = [_with_newline(line.text, doc.newline) for line in doc.lines[:-1]]
    last = doc.lines[-1].text
    if doc.final_newline:
        texts.append(_with_newline(last, doc.newline))
    else:
        # Only the line that was last in the file can lack an ending; a line we
        # added at the end keeps the file's "no final newline".
        texts.append(_without_newline(last))
    return "".join(texts)


# --------------------------------------------------------------------------- reading


def is_multi(section, key):
    """True if ``section/key`` is an oslo multi-valued option (see :data:`MULTI_VALUED`)."""
    return "{}/{}".format(section, key) in MULTI_VALUED or "*/{}".format(key) in MULTI_VALUED


def _values(doc, section, key):
    """Values of every occurrence of ``key`` in ``section``, in file order."""
    return [
        line.value
        for line in doc.lines
        if line.kind == KEY and line.section == section and line.key == key
    ]


def _shape(section, key, values):
    """One value as a string; a list when the key repeats or is multi-valued."""
    if is_multi(section, key):
        return list(values) if values else None
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)


def to_dict(doc):
    """Return ``{section: {key: value}}``; a repeated or multi-valued key gives a list."""
    found = {}
    for line in doc.lines:
        if line.kind == SECTION:
            found.setdefault(line.section, {})
        elif line.kind == KEY:
            found[line.section].setdefault(line.key, []).append(line.value)
    return {
        section: {key: _shape(section, key, values) for key, values in options.items()}
        for section, options in found.items()
    }


def is_secret(key, secret_keys=None, section=None):
    """True if a key's value must be masked: a secret-looking name or listed by the caller."""
    listed = set(secret_keys or ())
    if key in listed or "{}/{}".format(section, key) in listed:
        return True
    lowered = key.lower()
    return any(marker in lowered for marker in SECRET_MARKERS)


def mask(value):
    """The masked form of a value: None stays None (absent), anything else is hidden."""
    return None if value is None else MASK


def mask_dict(data, secret_keys=None):
    """Mask secret values in the output of :func:`to_dict` (a copy)."""
    return {
        section: {
            key: mask(value) if is_secret(key, secret_keys, section) else value
            for key, value in options.items()
        }
        for section, options in data.items()
    }


# --------------------------------------------------------------------------- validation


def _check_section(section):
    if not isinstance(section, str) or not section.strip():
        raise IniError("section names must be non-empty strings, got {!r}".format(section))
    if any(char in section for char in "\r\n[]"):
        raise IniError("section name {!r} contains a newline or a bracket".format(section))


def _check_key(section, key):
    if not isinstance(key, str) or not key:
        raise IniError("[{}]: keys must be non-empty strings, got {!r}".format(section, key))
    # A key must read back as itself: no separators, brackets, newlines, comment
    # markers or surrounding whitespace.
    bad = any(char in key for char in "\r\n[]=:") or key != key.strip() or key[0] in "#;"
    if bad:
        raise IniError(
            "[{}]: key {!r} contains a newline, ']', '=', ':' or is not a plain name".format(
                section, key
            )
        )


def _quote_if_needed(text):
    """Quote a value that oslo would otherwise strip or unquote when reading it."""
    if text != text.strip() or (text and text[0] == text[-1] and text[0] in "\"'"):
        return '"{}"'.format(text)
    return text


def _scalar_text(value):
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise TypeError(type(value).__name__)


def _single_text(value):
    """Text of one value: a scalar, a comma-joined list or a k:v dict."""
    if isinstance(value, (list, tuple)):
        return ",".join(_scalar_text(item) for item in value)
    if isinstance(value, dict):
        return ",".join(
            "{}:{}".format(_scalar_text(k), _scalar_text(v)) for k, v in value.items()
        )
    return _scalar_text(value)


def render_value(section, key, value):
    """
    Return the list of value texts to write for ``key`` (one per line).

    A list or tuple for a multi-valued option (:func:`is_multi`) gives one text per
    element; every other value gives exactly one text. Raises :class:`IniError`.
    """
    where = "[{}] {}".format(section, key)
    if value is None:
        raise IniError(
            "{}: value is None; use options_absent to remove a key, '' for empty".format(where)
        )
    items = list(value) if is_multi(section, key) and isinstance(value, (list, tuple)) else [value]
    texts = []
    for item in items:
        try:
            text = _single_text(item)
        except TypeError as exc:
            raise IniError("{}: cannot write a value of type {}".format(where, exc)) from None
        if "\n" in text or "\r" in text:
            raise IniError("{}: value contains a newline".format(where))
        texts.append(_quote_if_needed(text))
    return texts


def validate_sections(sections):
    """Check ``{section: {key: value}}`` fully; return ``{(section, key): [texts]}``."""
    if not isinstance(sections, dict):
        raise IniError("sections must be a mapping of section -> {key: value}")
    rendered = {}
    for section, options in sections.items():
        _check_section(section)
        if not isinstance(options, dict):
            raise IniError("[{}]: options must be a mapping of key -> value".format(section))
        for key, value in options.items():
            _check_key(section, key)
            rendered[(section, key)] = render_value(section, key, value)
    return rendered


def validate_absent(sections):
    """Check ``{section: [keys]}`` (or a single key string); return [(section, key)]."""
    if not isinstance(sections, dict):
        raise IniError("sections must be a mapping of section -> [keys]")
    pairs = []
    for section, keys in sections.items():
        _check_section(section)
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, (list, tuple)):
            raise IniError("[{}]: keys must be a list of key names".format(section))
        for key in keys:
            _check_key(section, key)
            pairs.append((section, key))
    return pairs


# --------------------------------------------------------------------------- editing


def _blocks(doc, section):
    """(header index, end index) of every block of ``section``, in file order."""
    blocks = []
    for index, line in enumerate(doc.lines):
        if line.kind == SECTION:
            if blocks and blocks[-1][1] is None:
                blocks[-1] = (blocks[-1][0], index)
            if line.section == section:
                blocks.append((index, None))
    if blocks and blocks[-1][1] is None:
        blocks[-1] = (blocks[-1][0], len(doc.lines))
    return blocks


def _commented_default(doc, start, end, key):
    """Index of a ``#key = ...`` line in lines[start:end], or None."""
    pattern = re.compile(r"[#;]\s*{}\s*[=:]".format(re.escape(key)))
    for index in range(start, end):
        line = doc.lines[index]
        if line.kind == COMMENT and pattern.match(line.text.strip()):
            return index
    return None


def _insert_position(doc, section, key):
    """Where a new key goes: after its commented default, else at its section's end."""
    blocks = _blocks(doc, section)
    for start, end in blocks:
        found = _commented_default(doc, start + 1, end, key)
        if found is not None:
            return found + 1
    start, end = blocks[-1]
    while end - 1 > start and doc.lines[end - 1].kind == BLANK:
        end -= 1
    return end


def _key_indent(doc, section):
    """Indentation of the section's first key (Ceph files indent keys with a tab)."""
    for line in doc.lines:
        if line.kind == KEY and line.section == section:
            return line.text[: _indent(line.text)]
    return ""


def _new_key_line(doc, section, key, text, like=None):
    """A KEY line for ``key = text``, spelled like line ``like`` when given."""
    if like is not None and like.value:
        # Keep the original spelling: indentation, key case, separator and spacing.
        stripped = like.text.strip()
        sep = min(pos for pos in (stripped.find("="), stripped.find(":")) if pos >= 0)
        after = stripped[sep + 1 :]
        spacing = after[: len(after) - len(after.lstrip(" \t"))]
        prefix = like.text[: _indent(like.text)] + stripped[: sep + 1] + spacing
    else:
        indent = like.text[: _indent(like.text)] if like is not None else _key_indent(doc, section)
        prefix = "{}{} = ".format(indent, key)
    line_text = (prefix + text).rstrip(" \t") + doc.newline
    return Line(line_text, KEY, section, key, parse_value(text))


def _add_section(doc, section):
    """Append ``[section]`` at the end of the file, after a blank separator line."""
    if doc.lines and doc.lines[-1].kind != BLANK:
        doc.lines.append(Line(doc.newline, BLANK, doc.lines[-1].section))
    doc.lines.append(Line("[{}]".format(section) + doc.newline, SECTION, section))


def _key_span(doc, index):
    """Indexes of a KEY line and the CONTINUATION lines that follow it."""
    span = [index]
    while index + 1 < len(doc.lines) and doc.lines[index + 1].kind == CONTINUATION:
        index += 1
        span.append(index)
    return span


def _occurrences(doc, section, key):
    return [
        index
        for index, line in enumerate(doc.lines)
        if line.kind == KEY and line.section == section and line.key == key
    ]


def set_option(doc, section, key, texts):
    """
    Make ``key`` in ``section`` hold exactly the values ``texts`` (one line each).

    Existing occurrences are rewritten in place (the first keeps its position and
    spelling; repeats are removed); a new key goes after its commented default or
    at the end of its section; a missing section is appended. Returns
    ``(old values, new values)`` or None when nothing had to change.
    """
    wanted = [parse_value(text) for text in texts]
    found = _occurrences(doc, section, key)
    old = [doc.lines[index].value for index in found]
    if old == wanted:
        return None
    if found:
        anchor = found[0]
        like = doc.lines[anchor]
        new_lines = [_new_key_line(doc, section, key, text, like) for text in texts]
        drop = {i for index in found for i in _key_span(doc, index)}
        kept_before = [line for i, line in enumerate(doc.lines[:anchor]) if i not in drop]
        kept_after = [
            line for i, line in enumerate(doc.lines[anchor:], anchor) if i not in drop
        ]
        doc.lines = kept_before + new_lines + kept_after
    elif texts:
        if not _blocks(doc, section):
            _add_section(doc, section)
        position = _insert_position(doc, section, key)
        new_lines = [_new_key_line(doc, section, key, text) for text in texts]
        doc.lines[position:position] = new_lines
    return old, wanted


def remove_option(doc, section, key):
    """Remove every occurrence of ``key`` in ``section``; return the old values or None."""
    found = _occurrences(doc, section, key)
    if not found:
        return None
    old = [doc.lines[index].value for index in found]
    drop = {i for index in found for i in _key_span(doc, index)}
    doc.lines = [line for i, line in enumerate(doc.lines) if i not in drop]
    return old


def _change(section, key, old, new, secret_keys):
    """A ``{"old": ..., "new": ...}`` entry shaped like :func:`to_dict`, masked if secret."""
    entry = {"old": _shape(section, key, old), "new": _shape(section, key, new)}
    if is_secret(key, secret_keys, section):
        entry = {"old": mask(entry["old"]), "new": mask(entry["new"])}
    return entry


def merge(doc, sections, secret_keys=None):
    """
    Set ``{section: {key: value}}`` in ``doc`` (edited in place).

    Returns changes ``{"section/key": {"old": ..., "new": ...}}`` with secret values
    masked; ``{}`` when the file already holds every value. Everything is validated
    before the first edit; raises :class:`IniError`.
    """
    rendered = validate_sections(sections)
    changes = {}
    for (section, key), texts in rendered.items():
        result = set_option(doc, section, key, texts)
        if result is not None:
            changes["{}/{}".format(section, key)] = _change(section, key, *result, secret_keys)
    if changes:
        _verify(doc, rendered)
    return changes


def remove(doc, sections, secret_keys=None):
    """Remove ``{section: [keys]}`` from ``doc``; return masked changes like :func:`merge`."""
    changes = {}
    for section, key in validate_absent(sections):
        old = remove_option(doc, section, key)
        if old is not None:
            changes["{}/{}".format(section, key)] = _change(section, key, old, [], secret_keys)
    return changes


def _verify(doc, rendered):
    """Re-read the edited text: refuse an edit that would not read back as asked."""
    reread = parse(render(doc))
    for (section, key), texts in rendered.items():
        if _values(reread, section, key) != [parse_value(text) for text in texts]:
            raise IniError(
                "[{}] {}: cannot be written safely in this file's layout".format(section, key)
            )
