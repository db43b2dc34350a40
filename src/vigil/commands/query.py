"""``vigil query``: hunt with one EQL query over files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from vigil.eql import Match, search
from vigil.errors import EqlError
from vigil.events import ReadStats, read_events
from vigil.report.safe import terminal_text

TABLE_FIELDS = ("@timestamp", "event.category", "event.action", "host.name", "user.name",
                "process.name", "message")


def _get(event: dict[str, Any], name: str) -> Any:
    if name in event:
        return event[name]
    current: Any = event
    for part in name.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def run_query(query: str, paths: list[Path], output_format: str, size: int | None) -> int:
    err = Console(stderr=True, highlight=False)
    if output_format not in ("table", "ndjson"):
        err.print(f"vigil query: --format must be table or ndjson, not {output_format!r}")
        return 2
    stats = ReadStats()
    try:
        from vigil.eql import parse

        parsed = parse(query)
    except EqlError as exc:
        err.print(f"vigil query: {terminal_text(str(exc), keep_newlines=True)}", markup=False)
        return 2
    matches = search(parsed, read_events(paths, stats), size=size)
    if output_format == "ndjson":
        _write_ndjson(matches)
    else:
        _write_table(matches)
    err.print(f"read {stats.files} file(s), {stats.events:,} events; {len(matches):,} match(es)"
              + (f"; skipped {stats.bad_total:,} bad record(s)" if stats.bad_total else ""),
              markup=False)
    for bad in stats.bad_records[:5]:
        err.print(f"  {terminal_text(str(bad))}", markup=False)
    return 0


def _write_ndjson(matches: list[Match]) -> None:
    out = sys.stdout.buffer
    for number, match in enumerate(matches, 1):
        for position, event in enumerate(match.events):
            line = {"match": number, "stage": position, "join_keys": list(match.join_keys),
                    "event": event}
            out.write(orjson.dumps(line, default=str) + b"\n")
    out.flush()


def _write_table(matches: list[Match]) -> None:
    table = Table("#", "stage", *TABLE_FIELDS, show_lines=False)
    for number, match in enumerate(matches, 1):
        for position, event in enumerate(match.events):
            if event is None:
                table.add_row(str(number), str(position), "(missing)")
                continue
            cells = []
            for name in TABLE_FIELDS:
                value = _get(dict(event), name)
                cells.append("" if value is None else terminal_text(value)[:120])
            table.add_row(str(number), str(position), *cells)
    Console(highlight=False, markup=False).print(table)
