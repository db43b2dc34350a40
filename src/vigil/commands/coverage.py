"""``vigil rules coverage``: which rules can fire on the data at hand, and why the others cannot.

The events are read once and reduced to a ``DataProfile`` (field paths and counts per index and
category, never the events); each rule is then judged against it (``vigil.rules.coverage``).
Field names and index names come from the data: every one printed goes through
``terminal_text`` and into ``rich.text.Text``, never through rich's markup.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from vigil.events import ReadOptions, ReadStats, read_events
from vigil.report.safe import terminal_text
from vigil.rules.coverage import (
    Coverage,
    DataProfile,
    assess,
    summary,
    summary_line,
)

FORMATS = ("table", "json")
SHOWN_BAD_RECORDS = 20


def _err(text: str) -> None:
    sys.stderr.write(f"{text}\n")


def run_coverage(paths: Sequence[Path], rule_refs: Sequence[str], output_format: str = "table",
                 index_all: bool = False) -> int:
    from vigil.commands.detect import resolve_rules

    if output_format not in FORMATS:
        _err(f"vigil rules coverage: --format must be one of {', '.join(FORMATS)}")
        return 2
    missing = [p for p in paths if not p.exists()]
    if missing:
        for path in missing:
            _err(f"vigil rules coverage: no such file or folder: {terminal_text(str(path))}")
        return 2
    rules, notes, rule_errors = resolve_rules(rule_refs)
    for error in rule_errors:
        _err(f"rule error: {terminal_text(str(error), keep_newlines=True)}")
    if not rules:
        _err("vigil rules coverage: no rule to assess")
        return 2
    started = time.perf_counter()
    stats = ReadStats()
    profile = DataProfile().add_all(read_events(paths, stats, ReadOptions()))
    results = sorted(assess(rules, profile, index_all=index_all),
                     key=lambda r: (not r.can_fire, r.rule.name.casefold(), r.rule.rule_id))
    if output_format == "json":
        document = {"rules": [r.to_dict() for r in results], "summary": summary(results),
                    "data": profile.summary()}
        sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    else:
        _print_table(results, profile)
    _read_summary(stats, profile, notes, time.perf_counter() - started)
    return 2 if rule_errors else 0


def _print_table(results: Sequence[Coverage], profile: DataProfile) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe or file: don't fold rows into 80 columns
        console = Console(highlight=False, width=max(console.width, 200))
    data = Table(title="data", title_justify="left", show_lines=False)
    data.add_column("index")
    data.add_column("events", justify="right")
    data.add_column("categories (events)")
    for index, info in profile.summary().items():
        categories = ", ".join(f"{terminal_text(name)} {count:,}"
                               for name, count in info["categories"].items())
        data.add_row(Text(terminal_text(index)), Text(f"{info['events']:,}"), Text(categories))
    if profile.indices:
        console.print(data)
    table = Table(title="rules", title_justify="left")
    table.add_column("rule", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for result in results:
        style = "green" if result.can_fire else "red"
        if result.can_fire:
            reason = "reads " + ", ".join(result.indices)
        else:
            reason = "; ".join(result.reasons)
        table.add_row(Text(terminal_text(result.rule.name)), Text(result.verdict, style=style),
                      Text(terminal_text(reason)))
    console.print(table)
    console.print(Text(summary_line(results)))


def _read_summary(stats: ReadStats, profile: DataProfile, notes: Sequence[str],
                  seconds: float) -> None:
    _err(f"read {stats.files:,} file(s), {stats.events:,} events in {seconds:.1f} s"
         + (f"; skipped {stats.bad_total:,} bad record(s):" if stats.bad_total else ""))
    for bad in stats.bad_records[:SHOWN_BAD_RECORDS]:
        _err(f"  {terminal_text(str(bad))}")
    if stats.bad_total > SHOWN_BAD_RECORDS:
        _err(f"  ... and {stats.bad_total - SHOWN_BAD_RECORDS:,} more")
    if profile.unprofiled:
        _err(f"{profile.unprofiled:,} event(s) of index/category groups past the first "
             f"{profile.groups:,} were counted but not profiled")
    for note in notes:
        _err(terminal_text(note))
