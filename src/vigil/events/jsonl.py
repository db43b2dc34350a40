"""ECS documents as NDJSON (one object a line), a JSON array, or an Elasticsearch export.

Plain or gzip-compressed; lines are read as bytes and parsed with orjson. Each
document may be a bare event or an Elasticsearch hit (``{"_index": ..., "_source": {...}}``),
whose ``_index`` is kept on the event. Bad lines (not JSON, not UTF-8, not an object) and a
truncated gzip stream are counted with their line number; the rest of the file is read.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from vigil.events.records import ReadStats


def _open(path: Path) -> io.BufferedIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def _as_event(doc: Any) -> dict[str, Any] | None:
    if not isinstance(doc, dict):
        return None
    source = doc.get("_source")
    if isinstance(source, dict) and "_index" in doc:
        event = dict(source)
        event["_index"] = doc["_index"]
        return event
    return doc


def _describe(doc: Any) -> str:
    kind = {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(doc), type(doc).__name__)
    return f"a JSON {kind.split()[-1]}" if kind != "null" else "null"


def read_json_lines(path: Path, stats: ReadStats) -> Iterator[dict[str, Any]]:
    """Events of an NDJSON file, or of a file holding one JSON array of events."""
    name = str(path)
    line_no = 0
    with _open(path) as handle:
        try:
            head = handle.peek(4096)[:4096]  # type: ignore[attr-defined]
            if head.lstrip()[:1] == b"[":
                yield from _read_array(path, handle.read(), stats)
                return
            for raw in handle:
                line_no += 1
                stats.bytes += len(raw)
                event = _parse_line(raw, name, line_no, stats)
                if event is not None:
                    yield event
        except (OSError, EOFError, zlib.error) as exc:
            where = str(line_no + 1) if line_no else ""
            stats.bad(name, where, f"stopped reading: {_reason(exc)}", kind="truncated file")
            if not line_no:
                stats.files_failed += 1


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "compressed stream is truncated"
    text = str(exc) or type(exc).__name__
    return text


def _parse_line(raw: bytes, name: str, line_no: int, stats: ReadStats) -> dict[str, Any] | None:
    stripped = raw.strip()
    if not stripped:
        return None
    try:
        doc = orjson.loads(stripped)
    except orjson.JSONDecodeError as exc:
        try:
            stripped.decode("utf-8")
        except UnicodeDecodeError:
            stats.bad(name, str(line_no), "not UTF-8 text", kind="not UTF-8")
            return None
        stats.bad(name, str(line_no), f"not JSON ({exc.msg})", kind="not JSON")
        return None
    event = _as_event(doc)
    if event is None:
        stats.bad(name, str(line_no), f"not an event object but {_describe(doc)}",
                  kind="not an object")
    return event


def _read_array(path: Path, data: bytes, stats: ReadStats) -> Iterator[dict[str, Any]]:
    name = str(path)
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
        yield event
