"""``vigil query``: hunt with one EQL query over files."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from vigil.eql import Match, search
from vigil.eql.ast import Query
from vigil.eql.schema import open_schema
from vigil.errors import EqlError
from vigil.events import ReadOptions, ReadStats, read_events
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


def run_query(query: str, paths: list[Path], output_format: str, size: int | None,
              engine: str = "auto") -> int:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if output_format not in ("table", "ndjson"):
        err.print(f"vigil query: --format must be table or ndjson, not {output_format!r}")
        return 2
    if engine not in ("auto", "fast", "reference"):
        err.print(f"vigil query: --engine must be auto, fast or reference, not {engine!r}",
                  markup=False)
        return 2
    stats = ReadStats()
    try:
        from vigil.eql import parse

        parsed = parse(query)
    except EqlError as exc:
        err.print(f"vigil query: {terminal_text(str(exc), keep_newlines=True)}", markup=False)
        return 2
    skipped = 0  # lines the fast engine judged unmatchable without parsing them
    if engine == "reference":
        events: Iterable[dict[str, Any]] = read_events(paths, stats)
    else:
        events, skipped = _candidates(parsed, paths, stats)
    matches = search(parsed, events, size=size)
    if output_format == "ndjson":
        _write_ndjson(matches)
    else:
        _write_table(matches)
    err.print(f"read {stats.files} file(s), {stats.events:,} events; {len(matches):,} match(es)"
              + (f"; skipped {stats.bad_total:,} bad record(s)" if stats.bad_total else ""),
              markup=False)
    for bad in stats.bad_records[:5]:
        err.print(f"  {terminal_text(str(bad))}", markup=False)
    if skipped:
        err.print(f"{skipped:,} line(s) the query cannot match were skipped unparsed "
                  "(--engine reference reads and checks every line)", markup=False)
    return 0


def _candidates(parsed: Query, paths: list[Path], stats: ReadStats,
                ) -> tuple[list[dict[str, Any]], int]:
    """The events that match a stage of the query, read as the reference reads them and in
    input order (``backends.fast``): ``search`` answers on them as on every event. The
    prefilter is derived on the schema ``search`` uses without a mapping. Also: how many
    NDJSON lines were skipped unparsed."""
    from vigil.backends.fast import kept_events
    from vigil.rules.model import Rule

    hunt = Rule(rule_id="vigil-query", name="query", description="", query=parsed.text,
                eql=parsed)
    _events, per_rule, fast = kept_events(
        [hunt], paths, stats, ReadOptions(),
        schema_for=open_schema)
    return per_rule[0], fast.lines_skipped


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
