"""``vigil query``: hunt with one EQL (or KQL) query over files."""

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
from vigil.errors import QueryError
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.report.safe import terminal_text

TABLE_FIELDS = ("@timestamp", "event.category", "event.action", "event.code", "host.name",
                "user.name", "process.name")
# What the last column shows when an event has no message (EVTX records carry none: Windows
# renders messages from the provider's DLLs, which are not in the log): the alert summary's
# fields, those not in a column of their own already.
_SHOWN = {"host", "user", "process", "evidence"}


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
              engine: str = "auto", language: str = "eql") -> int:
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
        from vigil.kql.lower import kql_query

        parsed = kql_query(query) if language == "kuery" else parse(query)
    except QueryError as exc:
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
                tree=parsed)
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


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # ["iam", "configuration"] reads as "iam, configuration"
        value = ", ".join(str(v) for v in value)
    return terminal_text(value)[:120]


def _details(event: dict[str, Any]) -> str:
    message = _get(event, "message")
    if message not in (None, ""):
        return _cell_text(message)
    from vigil.detect.alerts import summary

    return _cell_text(" ".join(f"{label}={value}" for label, value in summary([event]).items()
                               if label not in _SHOWN))


def _write_table(matches: list[Match]) -> None:
    from vigil.report.safe import display_time

    table = Table("#", "stage", show_lines=False)
    for name in TABLE_FIELDS:
        if name == "@timestamp":
            table.add_column(name, no_wrap=True, min_width=24)  # a timestamp never wraps
        else:
            table.add_column(name, overflow="fold")
    table.add_column("message or summary", overflow="fold", ratio=2)
    for number, match in enumerate(matches, 1):
        for position, event in enumerate(match.events):
            if event is None:
                table.add_row(str(number), str(position), "(missing)")
                continue
            plain = dict(event)
            cells = [display_time(_get(plain, "@timestamp")),
                     *(_cell_text(_get(plain, name)) for name in TABLE_FIELDS[1:]),
                     _details(plain)]
            table.add_row(str(number), str(position), *cells)
    Console(highlight=False, markup=False).print(table)
