"""What several of Elastic's Windows ingest pipelines do alike, written once.

Each helper is one processor shape of the pipelines in elastic/integrations
(``packages/windows`` and ``packages/system``; copies in ``../shared/conformance/
elastic-pipelines``): ``rename``/``convert``/``set copy_from`` of an EventData value into an
ECS field, ``append`` without duplicates into ``related.*``, the Painless scripts that split a
path into ``file.name``/``directory``/``extension`` and a command line into ``args`` the way
Windows does, the ``split`` of ``DOMAIN\\user``. The processors' conditions are kept: a
rename with ``if: value != ""`` skips empty values, a convert with ``ignore_failure`` leaves
nothing behind when the value does not convert.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from vigil.times import es_date

Doc = dict[str, Any]

# Values the pipelines' first script removes from event_data (sysmon, system_security,
# powershell): null, empty, "-" and the null GUID.
EMPTY_VALUES = frozenset({"", "-", "{00000000-0000-0000-0000-000000000000}"})


def sub(doc: Doc, key: str) -> Doc:
    """``doc[key]`` as an object, created (or replacing a non-object) when needed."""
    value = doc.get(key)
    if not isinstance(value, dict):
        value = {}
        doc[key] = value
    return value


def put(doc: Doc, path: str, value: Any) -> None:
    """Set a dotted ``path`` (nested objects created as Elasticsearch's ``set`` does)."""
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = sub(node, part)
    node[last] = value


def get(doc: Doc, path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def append(doc: Doc, path: str, value: Any) -> None:
    """Elasticsearch's ``append`` with ``allow_duplicates: false``: a scalar becomes a list."""
    if value is None:
        return
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = sub(node, part)
    values = node.get(last)
    if values is None:
        node[last] = [value]
        return
    if not isinstance(values, list):
        values = node[last] = [values]
    if value not in values:
        values.append(value)


def add_related(doc: Doc, kind: str, value: Any) -> None:
    append(doc, f"related.{kind}", value)


def java_hash_order(keys: list[str]) -> list[str]:
    """``keys`` in the order a Java HashMap holding them iterates (String.hashCode spread
    as HashMap.hash does, buckets of a table doubled from 16 at a 0.75 load): the order in
    which a pipeline's script walking such a map appends values to a list."""
    size = 16
    while len(keys) > size * 3 // 4:
        size *= 2
    buckets: dict[int, list[str]] = {}
    for key in keys:
        code = 0
        units = key.encode("utf-16-le")
        for i in range(0, len(units), 2):
            code = (31 * code + (units[i] | units[i + 1] << 8)) & 0xFFFFFFFF
        code ^= code >> 16
        buckets.setdefault(code & (size - 1), []).append(key)
    return [key for index in sorted(buckets) for key in buckets[index]]


def decode_long(text: str) -> int | None:
    """The ``convert`` processor's ``long``: Java's Long.decode (decimal, 0x/0X/# hex,
    leading 0 octal, optional sign), in the signed 64-bit range."""
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    body = body[1:] if body[:1] in "+-" else body
    if not body or not body.isascii():
        return None
    try:
        if body[:2].lower() == "0x":
            value = int(body[2:], 16)
        elif body.startswith("#"):
            value = int(body[1:], 16)
        elif len(body) > 1 and body.startswith("0"):
            value = int(body[1:], 8)
        else:
            value = int(body, 10)
    except ValueError:
        return None
    value *= sign
    return value if -(1 << 63) <= value < (1 << 63) else None


def to_long(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return decode_long(value) if isinstance(value, str) else None


def to_boolean(value: Any) -> bool | None:
    """The ``convert`` processor's ``boolean``: "true"/"false" in any case, else failure."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return None


def is_ip(value: Any) -> bool:
    """The ``convert`` processor's ``ip``: the text is kept when it is an IPv4/IPv6 address."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return False
    try:
        ipaddress.ip_address(value.split("%", 1)[0] if ":" in value else value)
    except ValueError:
        return False
    return True


def present(data: Doc, key: str) -> Any:
    """An EventData value the pipelines' ``if: value != null && value != ""`` accepts."""
    value = data.get(key)
    return None if value is None or value == "" else value


def move(data: Doc, key: str, doc: Doc, target: str) -> None:
    """``rename`` of a non-empty EventData value to ``target`` (dotted path)."""
    value = present(data, key)
    if value is not None:
        del data[key]
        put(doc, target, value)


def copy(data: Doc, key: str, doc: Doc, target: str) -> None:
    """``set`` with ``copy_from`` and ``ignore_empty_value``: the value stays in EventData."""
    value = present(data, key)
    if value is not None:
        put(doc, target, value)


def convert_long(data: Doc, key: str, doc: Doc, target: str) -> None:
    """``convert`` to ``long`` into ``target``, nothing when it does not convert."""
    value = present(data, key)
    if value is not None and (number := to_long(value)) is not None:
        put(doc, target, number)


def basename(path: str) -> str:
    """The part after the last backslash ("" when there is none, as the scripts do)."""
    at = path.rfind("\\")
    return path[at + 1:] if at > -1 else ""


def file_parts(path: str) -> Doc:
    """The "Adds file information" script: name, directory and extension of a Windows path
    with a backslash in it (the extension from the last dot of the whole path)."""
    at = path.rfind("\\")
    if at < 0:
        return {}
    out: Doc = {"name": path[at + 1:], "directory": path[:at]}
    dot = path.rfind(".")
    if dot > -1:
        out["extension"] = path[dot + 1:]
    return out


def process_names(doc: Doc) -> None:
    """The "Adds process name information" script: process.name and process.parent.name
    from their executables, when not set."""
    process = doc.get("process")
    if not isinstance(process, dict):
        return
    for node in (process, process.get("parent")):
        if not isinstance(node, dict):
            continue
        executable = node.get("executable")
        if isinstance(executable, str) and len(executable) > 1 and node.get("name") is None:
            name = basename(executable)
            if name:
                node["name"] = name


def windows_argv(command_line: str) -> list[str]:
    """The pipelines' "Windows-like SplitCommandLine" (Go's commandLineToArgv, itself the
    pre-2008 CommandLineToArgvW rules): blanks are space and tab outside quotes; 2n
    backslashes before a quote give n and the quote toggles quoting; 2n+1 give n and a
    literal quote; a doubled quote inside quotes is a literal quote."""
    args: list[str] = []
    text = command_line
    i = 0
    length = len(text)
    while i < length:
        if text[i] in " \t":
            i += 1
            continue
        arg: list[str] = []
        in_quote = False
        slashes = 0
        while i < length:
            char = text[i]
            if char in " \t" and not in_quote:
                i += 1
                break
            if char == '"':
                arg.append("\\" * (slashes // 2))
                if slashes % 2 == 0:
                    if in_quote and i + 1 < length and text[i + 1] == '"':
                        arg.append('"')
                        i += 1
                    in_quote = not in_quote
                else:
                    arg.append('"')
                slashes = 0
                i += 1
                continue
            if char == "\\":
                slashes += 1
                i += 1
                continue
            arg.append("\\" * slashes)
            slashes = 0
            arg.append(char)
            i += 1
        arg.append("\\" * slashes)
        args.append("".join(arg))
    return args


def set_args(node: Doc) -> None:
    """``args`` and ``args_count`` of a process (or parent) node from its command line."""
    command_line = node.get("command_line")
    if isinstance(command_line, str) and command_line:
        node["args"] = windows_argv(command_line)
        node["args_count"] = len(node["args"])


def split_user(doc: Doc, value: Any) -> None:
    """``split`` of ``DOMAIN\\name`` at backslashes: user.domain and user.name only when
    there are exactly two parts, each set when not empty."""
    if not isinstance(value, str):
        return
    parts = value.split("\\")
    if len(parts) != 2:
        return
    domain, name = parts
    if domain:
        sub(doc, "user")["domain"] = domain
    if name:
        sub(doc, "user")["name"] = name


_EMPTY_OR_NONE = EMPTY_VALUES | {None}


def drop_empty_data(winlog: Doc, empty: frozenset[str] = EMPTY_VALUES) -> None:
    """Remove empty values from winlog.event_data (the pipelines' first script)."""
    data = winlog.get("event_data")
    if not isinstance(data, dict):
        return
    try:  # the common case, every value a string and none empty: one set operation
        if (_EMPTY_OR_NONE if empty is EMPTY_VALUES else empty | {None}).isdisjoint(
                data.values()):
            return
    except TypeError:  # an unhashable value (a list, an object): the loop below
        pass
    for key in [k for k, v in data.items() if v is None or (isinstance(v, str) and v in empty)]:
        del data[key]


def finish_event_data(winlog: Doc) -> None:
    """The pipelines' last steps: event_data without empty values, removed when empty."""
    data = winlog.get("event_data")
    if isinstance(data, dict):
        drop_empty_data(winlog, frozenset({"", "-"}))
        if not data:
            del winlog["event_data"]


def time_and_level(doc: Doc, winlog: Doc, *, keep: bool) -> None:
    """The ``date`` of winlog.time_created into @timestamp and log.level from winlog.level
    (a ``rename`` when ``keep`` is false: the pipeline then drops both winlog fields)."""
    created = winlog.get("time_created")
    if isinstance(created, str) and created and doc.get("@timestamp") is not created and (
            moment := es_date(created)) is not None:
        # (``is``: in vigil's own winlog documents, base_document puts the record's time in
        # both fields, one object: its 100 ns precision stays, where Elasticsearch keeps
        # milliseconds; README "Every Windows channel". Documents read from JSON hold two
        # objects and get the date processor's output.)
        doc["@timestamp"] = moment
    level = winlog.get("level")
    if isinstance(level, str) and level:
        sub(doc, "log")["level"] = level
    if not keep:
        winlog.pop("time_created", None)
        winlog.pop("level", None)


def stringify_ids(winlog: Doc) -> None:
    """``convert`` of winlog.record_id and winlog.event_id to strings."""
    for key in ("record_id", "event_id"):
        value = winlog.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            winlog[key] = str(value)
