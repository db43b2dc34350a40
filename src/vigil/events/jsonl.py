"""ECS documents as NDJSON (one object a line), a JSON array, or an Elasticsearch export.

Plain or gzip-compressed; lines are read as bytes and parsed with orjson. Each
document may be a bare event or an Elasticsearch hit (``{"_index": ..., "_source": {...}}``),
whose ``_index`` and ``_id`` are kept on the event. A flat NXLog/OTRF Windows event is
recognised per document and mapped to ECS like an EVTX record, and so is a raw Winlogbeat /
Elastic Agent document (``is_raw_winlog``: the winlog input's output before any ingest
pipeline), through the same pipelines. An ECS logon event that still carries
``winlog.event_data.TargetLogonId`` gets the logon-id fix in "intended" mode.

Bad lines (not JSON, not UTF-8, not an object, no usable timestamp) and a truncated gzip stream
are counted with their line number; the rest of the file is read. This is the hot path of
NDJSON input: per line, one orjson parse, a few dict lookups and one anchored regex match.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, cast

import orjson

from vigil.events.logon import apply_intended_logon_id
from vigil.events.records import ReadOptions, ReadStats, mark_source

# ISO-8601 date or date-time (to the nanosecond, optional zone) or epoch milliseconds.
# Anchored, no nested repetition: linear time on any input.
_DATE = re.compile(
    r"(?:\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::(?:[0-5]\d|60)(?:[.,]\d{1,9})?)?)?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)?"
    r"|-?\d{1,19}(?:\.\d{1,9})?)\Z")

_DEFAULT_OPTIONS = ReadOptions()


def _open(path: Path) -> io.BufferedIOBase:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def _as_event(doc: Any) -> dict[str, Any] | None:
    if not isinstance(doc, dict):
        return None
    source = doc.get("_source")
    if isinstance(source, dict) and "_index" in doc:
        event = dict(source)
        event["_index"] = doc["_index"]
        if "_id" in doc:
            event["_id"] = doc["_id"]
        return event
    return doc


def _describe(doc: Any) -> str:
    kind = {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(doc), type(doc).__name__)
    return f"a JSON {kind.split()[-1]}" if kind != "null" else "null"


# The engine orders events by integer nanoseconds (64 bits: 1677-09-21 to 2262-04-11, as
# Elasticsearch's date_nanos); epoch milliseconds whose nanoseconds fit.
_NS_RANGE = (-(1 << 63), (1 << 63) - 1)
_MS_LIMIT = 9_223_372_036_854.0  # |ms| below this converts to nanoseconds in 64 bits


def is_date(value: Any) -> bool:
    """A timestamp the engine can order by: ISO-8601 text, epoch millis (number or text)."""
    return date_problem("@timestamp", value) is None


def date_problem(field: str, value: Any) -> str | None:
    """Why ``value`` cannot order an event (None when it can): not a date, no such day or
    time (Feb 30, a leap second), a number that is not finite, or a moment outside what 64-bit
    nanoseconds hold (the ``9999-12-31`` sentinel)."""
    if isinstance(value, str):
        if _DATE.match(value) is None:
            return _not_a_date(field, value)
        if value[4:5] == "-":
            from vigil.eql.schema import parse_iso_ns

            ns = parse_iso_ns(value)
            if ns is None:
                return f'{field} "{_shown(value)}" is not a date (no such day or time)'
            if not _NS_RANGE[0] <= ns <= _NS_RANGE[1]:
                return f'{field} "{_shown(value)}" is out of range (1677-09-21 to 2262-04-11)'
            return None
        number = float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        return _not_a_date(field, value)
    if number != number or abs(number) >= _MS_LIMIT:  # NaN, infinite, too far
        return f"{field} {_shown(value)} is out of range (epoch milliseconds)"
    return None


def _shown(value: Any) -> str:
    """A value as an error line shows it: text as it is, numbers as written, cut at 60."""
    if isinstance(value, str):
        shown = value
    elif isinstance(value, float):
        shown = repr(value)
    else:
        shown = orjson.dumps(value).decode()
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _getter(field: str) -> Callable[[dict[str, Any]], Any]:
    if "." not in field:
        return lambda event: event.get(field)
    parts = field.split(".")

    def get(event: dict[str, Any]) -> Any:
        if field in event:
            return event[field]
        value: Any = event
        for part in parts:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get


def _not_a_date(field: str, value: Any) -> str:
    if value is None:
        return f"no {field}"
    return f'{field} "{_shown(value)}" is not a date' if isinstance(value, str) else \
        f"{field} {_shown(value)} is not a date"


def is_raw_winlog(event: dict[str, Any], winlog: dict[str, Any]) -> bool:
    """A document of the winlog input before any ingest pipeline (Winlogbeat's file or
    Kafka output, Elastic Agent's events): ``winlog`` with a channel and event id, and none
    of what an ingest pipeline or vigil adds (``event.ingested``, ``event.category``,
    ``_index``)."""
    if "channel" not in winlog or "event_id" not in winlog or "_index" in event:
        return False
    fields = event.get("event")
    if isinstance(fields, dict):
        return "ingested" not in fields and "category" not in fields
    return "event.ingested" not in event and "event.category" not in event


def is_alert_document(doc: dict[str, Any]) -> bool:
    """An alert document (``kibana.alert.*``: vigil's ``--format ndjson`` output or a Kibana
    export), not an event: a run over a folder holding its own output must not alert on its
    alerts."""
    if "kibana.alert.uuid" in doc or "kibana.alert.rule.uuid" in doc:
        return True
    kibana = doc.get("kibana")
    return isinstance(kibana, dict) and isinstance(kibana.get("alert"), dict)


def _object_at(root: dict[str, Any], parts: list[str]) -> dict[str, Any] | None:
    """The object at ``parts`` below ``root`` (created), None where a value is in the way."""
    node = root
    for part in parts:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return None
        node = child
    return node


def expand_dotted(doc: dict[str, Any]) -> dict[str, Any]:
    """A document with flat dotted keys (``"winlog.event_data.TargetLogonId": ...``, as many
    exports and flat Parquet tables have them) as the nested document Elasticsearch reads
    it as, so that every later step (the logon-id fix, the pipelines, index routing, alert
    documents) sees one shape. Objects merge (``{"a.b": 1, "a": {"c": 2}}`` is
    ``{"a": {"b": 1, "c": 2}}``); a dotted key that would nest under a value that is not an
    object stays as it is (the field getters read dotted keys too)."""
    out: dict[str, Any] = {}
    dotted: list[tuple[str, Any]] = []
    for key, value in doc.items():
        if "." in key and not key.startswith(".") and not key.endswith(".") and ".." not in key:
            dotted.append((key, value))
        else:
            out[key] = expand_dotted(value) if isinstance(value, dict) and any(
                "." in k for k in value) else value
    for key, value in dotted:
        *parents, last = key.split(".")
        node = _object_at(out, parents)
        if node is None or (last in node and isinstance(node[last], dict) != isinstance(
                value, dict)):
            out[key] = value
        elif isinstance(value, dict) and isinstance(node.get(last), dict):
            node[last].update(expand_dotted(value))
        else:
            node[last] = expand_dotted(value) if isinstance(value, dict) else value
    return out


class _Finisher:
    """Per-document work after parsing: NXLog mapping, logon-id fix, timestamp check."""

    __slots__ = ("field", "fix_logon", "get_time", "name", "options", "stats")

    def __init__(self, name: str, stats: ReadStats, options: ReadOptions) -> None:
        self.name = name
        self.stats = stats
        self.options = options
        self.field = options.timestamp_field
        self.get_time = _getter(self.field)
        self.fix_logon = options.logon_id == "intended"

    def __call__(self, event: dict[str, Any], where: str,
                 source: str | None = None) -> dict[str, Any] | None:
        """The event ready for the engine, or None (counted as bad at ``where``); with
        ``source`` (its place in the file), marked with where it came from."""
        for key in event:
            if "." in key:
                event = expand_dotted(event)
                break
        if is_alert_document(event):
            self.stats.alert_documents += 1
            return None
        winlog = event.get("winlog")
        if winlog is None and "EventID" in event and "Channel" in event:
            from vigil.events.otrf import nxlog_to_ecs  # only exports of raw Windows events

            mapped = nxlog_to_ecs(event, self.options)
            if isinstance(mapped, str):
                self.stats.bad(self.name, where, mapped, kind="bad Windows event")
                return None
            event = mapped
        elif isinstance(winlog, dict) and is_raw_winlog(event, winlog):
            from vigil.events.ecs import winlog_to_ecs  # raw Winlogbeat / Agent documents

            event = winlog_to_ecs(event, self.options.logon_id)
        elif self.fix_logon and isinstance(winlog, dict):
            data = winlog.get("event_data")
            if isinstance(data, dict) and "TargetLogonId" in data:
                apply_intended_logon_id(event)
        problem = date_problem(self.field, self.get_time(event))
        if problem is not None:
            self.stats.bad(self.name, where, problem, kind="no usable timestamp")
            return None
        if source is not None:
            mark_source(event, self.name, source)
        return event


def ecs_view(events: Iterable[Mapping[str, Any]], options: ReadOptions | None = None,
             stats: ReadStats | None = None) -> list[dict[str, Any]]:
    """Event dicts as vigil's readers would give them, read from a file: dotted keys
    nested, NXLog and raw winlog documents mapped to ECS, the logon-id fix; those without a
    usable timestamp are left out (and counted in ``stats``)."""
    finish = _Finisher("<events>", stats if stats is not None else ReadStats(),
                       options or _DEFAULT_OPTIONS)
    out = []
    for index, event in enumerate(events):
        done = finish(dict(event), f"[{index}]")
        if done is not None:
            out.append(done)
    return out


def read_json_lines(path: Path, stats: ReadStats,
                    options: ReadOptions | None = None) -> Iterator[dict[str, Any]]:
    """Events of an NDJSON file, or of a file holding one JSON array of events."""
    name = str(path)
    with _open(path) as handle:
        yield from read_json_stream(handle, name, stats, options or _DEFAULT_OPTIONS)


def read_json_stream(handle: io.BufferedIOBase, name: str, stats: ReadStats,
                     options: ReadOptions) -> Iterator[dict[str, Any]]:
    """Events of an open binary stream of NDJSON or one JSON array; ``name`` for messages."""
    finish = _Finisher(name, stats, options)
    line_no = 0
    try:
        head = handle.peek(4096)[:4096]  # type: ignore[attr-defined]
        encoding = text_encoding(head)
        lines: Iterable[bytes] = handle
        if encoding == "utf-8-sig":
            handle.read(len(UTF8_BOM))
            head = head[len(UTF8_BOM):]
        elif encoding is not None:  # UTF-16: read as text, each line handed on as UTF-8
            text = io.TextIOWrapper(cast(IO[bytes], handle), encoding=encoding,
                                    errors="replace", newline="")
            start = head[: len(head) & ~1].decode(encoding, errors="ignore")
            if start.lstrip("\ufeff \t\r\n")[:1] == "[":
                yield from _read_array(name, text.read().encode("utf-8"), stats, finish)
                return
            lines = (line.encode("utf-8") for line in text)
        if encoding in (None, "utf-8-sig") and head.lstrip()[:1] == b"[":
            yield from _read_array(name, handle.read(), stats, finish)
            return
        limit = max_line_bytes()
        offset = len(UTF8_BOM) if encoding == "utf-8-sig" else 0
        for raw in (bounded_lines(handle, limit) if lines is handle else lines):
            line_no += 1
            start, offset = offset, offset + _line_size(raw)
            stats.bytes += len(raw)
            event = _parse_line(raw, name, line_no, stats)
            if event is not None:
                event = finish(event, str(line_no), f"offset {start}")
                if event is not None:
                    yield event
    except (OSError, EOFError, zlib.error) as exc:
        where = str(line_no + 1) if line_no else ""
        stats.bad(name, where, f"stopped reading: {_reason(exc)}", kind="truncated file")
        if not line_no:
            stats.files_failed += 1


UTF8_BOM = b"\xef\xbb\xbf"
DEFAULT_MAX_LINE_BYTES = 64 << 20
# What stands for a line longer than the limit (its bytes are not kept): the marker, then
# the line's length. A NUL byte cannot start a JSON text, so no real line reads as one.
TOO_LONG = b"\x00vigil-line-too-long:"


MIN_MAX_LINE_BYTES = 1 << 20  # the fast path's block: a longer line spans blocks


def max_line_bytes() -> int:
    """The longest line read (``VIGIL_MAX_LINE_BYTES``, default 64 MiB, at least 1 MiB):
    memory per line is bounded whatever a compressed file inflates to."""
    text = os.environ.get("VIGIL_MAX_LINE_BYTES", "")
    limit = int(text) if text.isdigit() else DEFAULT_MAX_LINE_BYTES
    return max(limit, MIN_MAX_LINE_BYTES)


def _line_size(raw: bytes) -> int:
    """The bytes a line took in the file (a too-long line's marker stands for more)."""
    return int(raw[len(TOO_LONG):].strip() or 0) if raw.startswith(TOO_LONG) else len(raw)


def too_long_line(length: int) -> bytes:
    return TOO_LONG + str(length).encode("ascii") + b"\n"


def too_long_reason(marker: bytes) -> str:
    length = int(marker[len(TOO_LONG):].strip() or 0)
    return (f"line too long: {length:,} bytes, more than the limit of {max_line_bytes():,} "
            "(VIGIL_MAX_LINE_BYTES); skipped")


def finish_long_line(handle: io.BufferedIOBase, start: bytes, limit: int) -> bytes:
    """A line whose first ``limit`` + 1 bytes are ``start`` and that has no end yet: read
    to its end in bounded pieces, keeping none of it; its marker."""
    length = len(start)
    while True:
        piece = handle.readline(1 << 20)
        length += len(piece)
        if not piece or piece.endswith(b"\n"):
            return too_long_line(length)


def bounded_lines(handle: io.BufferedIOBase, limit: int) -> Iterator[bytes]:
    """The lines of ``handle``, each at most ``limit`` bytes; a longer one as its marker."""
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            yield finish_long_line(handle, line, limit)
        else:
            yield line


def text_encoding(head: bytes) -> str | None:
    """How a JSON file starting with ``head`` is encoded, when it is not plain UTF-8: a
    UTF-8 byte-order mark ("utf-8-sig"), UTF-16 with a mark or, without one, with the NUL
    bytes of ASCII text ("utf-16-le"/"utf-16-be"; Windows PowerShell writes redirected output
    so)."""
    if head.startswith(UTF8_BOM):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if len(head) >= 2 and head[1] == 0 and head[0] != 0:
        return "utf-16-le"
    if len(head) >= 2 and head[0] == 0 and head[1] != 0:
        return "utf-16-be"
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "compressed stream is truncated"
    text = str(exc) or type(exc).__name__
    return text


def _parse_line(raw: bytes, name: str, line_no: int, stats: ReadStats) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(raw)  # JSON allows the surrounding whitespace and newline
    except orjson.JSONDecodeError:
        if raw.startswith(TOO_LONG):
            stats.bad(name, str(line_no), too_long_reason(raw), kind="line too long")
            return None
        stripped = raw.strip()
        if not stripped:
            return None  # blank line
        try:
            stripped.decode("utf-8")
        except UnicodeDecodeError:
            stats.bad(name, str(line_no), "not UTF-8 text", kind="not UTF-8")
            return None
        stats.bad(name, str(line_no), f"not JSON ({_json_error(stripped)})", kind="not JSON")
        return None
    event = _as_event(doc)
    if event is None:
        stats.bad(name, str(line_no), f"not an event object but {_describe(doc)}",
                  kind="not an object")
    return event


def _json_error(text: bytes) -> str:
    """orjson's reason for a bad line, read without its line ending (the reason is then the
    same whoever hands the line over: a truncated line ends its data, wherever it came from)."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return str(exc.msg)
    return "not JSON"  # not reached: the line was refused with its ending, so it is without


def _read_array(name: str, data: bytes, stats: ReadStats,
                finish: _Finisher) -> Iterator[dict[str, Any]]:
    stats.bytes += len(data)
    try:
        docs = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        line = data.count(b"\n", 0, exc.pos) + 1
        stats.bad(name, str(line), f"not JSON ({exc.msg}); the whole array is unreadable",
                  kind="not JSON")
        stats.files_failed += 1
        return
    for index, doc in enumerate(docs):
        event = _as_event(doc)
        if event is None:
            stats.bad(name, f"[{index}]", f"not an event object but {_describe(doc)}",
                      kind="not an object")
            continue
        event = finish(event, f"[{index}]", f"item {index}")
        if event is not None:
            yield event
