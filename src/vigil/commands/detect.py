"""``vigil detect``: rules over files, alerts out, a summary on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.detect.indices import IndexSelector, index_of
from vigil.detect.run import DetectOptions, DetectResult, run_detection
from vigil.errors import RuleError
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.events.reader import LogonIdMode
from vigil.events.records import ReadProgress
from vigil.report.safe import terminal_text
from vigil.rules import LoadResult, bundled_rules, find_rule, load_exceptions, load_rules
from vigil.rules.loader import rule_warnings, skipped_summary
from vigil.rules.model import Rule


class _Stderr:
    """Plain stderr lines (rich is imported only for the table: it costs start-up time)."""

    @staticmethod
    def print(text: str, *, markup: bool = False) -> None:
        sys.stderr.write(f"{text}\n")


FORMATS = ("table", "ndjson", "csv", "html")
SEVERITY_ORDER = ("low", "medium", "high", "critical")
# Exit codes of vigil detect (README "Exit codes"): 0 done (alerts or not, unless
# --fail-on-alert), 1 alerts raised with --fail-on-alert, 2 usage or rule errors.
EXIT_OK, EXIT_ALERTS, EXIT_USAGE = 0, 1, 2
ENGINES = ("auto", "fast", "reference")
SHOWN_BAD_RECORDS = 20


@dataclass(frozen=True, slots=True)
class DetectRequest:
    paths: Sequence[Path]
    rules: Sequence[str] = ()
    exceptions: Path | None = None
    output_format: str = "table"
    output: Path | None = None
    logon_id: LogonIdMode = "intended"
    max_signals: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    index_all: bool = False
    explain: bool = False
    engine: str = "auto"  # auto | fast | reference (see vigil.backends.fast)
    min_severity: str | None = None  # only alerts at or above (low < medium < high < critical)
    fail_on_alert: bool = False  # exit 1 when an alert (at or above min_severity) is raised
    quiet: bool = False  # no progress bar (the summary stays: it is where losses are told)
    indicators: tuple[Path, ...] = ()  # threat indicator files for indicator match rules


def resolve_rules(refs: Sequence[str]) -> tuple[list[Rule], list[str], list[RuleError]]:
    """Rules named on the command line: files/folders, or ids/names of bundled rules.
    Returns the rules, notes on skipped ones and load errors."""
    if not refs:
        return list(bundled_rules()), [], []
    rules: list[Rule] = []
    notes: list[str] = []
    errors: list[RuleError] = []
    bundled = bundled_rules()
    for ref in refs:
        path = Path(ref)
        if path.exists():
            result: LoadResult = load_rules([path])
            rules.extend(result.rules)
            notes.extend(skipped_summary(result.skipped))
            notes.extend(rule_warnings(result.rules))
            errors.extend(result.errors)
            continue
        rule = find_rule(bundled, ref)
        if rule is None:
            errors.append(RuleError("no such rule file, folder or bundled rule id or name", ref))
        else:
            rules.append(rule)
    return rules, notes, errors


def exception_filters(request: DetectRequest, rules: Sequence[Rule], err: _Stderr | None = None
                      ) -> Callable[[Rule], Callable[[Mapping[str, Any]], bool] | None] | None:
    """The exceptions of ``--exceptions``, per rule; warnings go to stderr."""
    if request.exceptions is None:
        return None
    err = err or _Stderr()
    exceptions = load_exceptions([request.exceptions])  # raises ExceptionFileError
    for warning in exceptions.warnings:
        err.print(f"exceptions: {terminal_text(warning)}", markup=False)
    now = datetime.now(UTC)
    filters: dict[str, Callable[[Mapping[str, Any]], bool] | None] = {}
    for rule in rules:
        exception_filter = exceptions.filter_for(rule, now, rules=rules)
        message = exception_filter.warning()
        if message:
            err.print(f"{terminal_text(rule.name)}: {terminal_text(message)}", markup=False)
        filters[rule.rule_id] = exception_filter.excludes if exception_filter.items else None
    return lambda rule: filters.get(rule.rule_id)


def _summary_of_nothing(notes: Sequence[str], err: _Stderr) -> None:
    for note in notes:
        err.print(terminal_text(note), markup=False)
    err.print("vigil detect: no rule to run", markup=False)


def run_detect(request: DetectRequest) -> int:
    err = _Stderr()
    if request.output_format not in FORMATS:
        err.print(f"vigil detect: --format must be one of {', '.join(FORMATS)}", markup=False)
        return 2
    if request.engine not in ENGINES:
        err.print(f"vigil detect: --engine must be one of {', '.join(ENGINES)}", markup=False)
        return 2
    rules, notes, rule_errors = resolve_rules(request.rules)
    for error in rule_errors:
        err.print(f"rule error: {terminal_text(str(error), keep_newlines=True)}", markup=False)
    if not rules:
        err.print("vigil detect: no rule to run", markup=False)
        return 2
    try:
        exceptions_for = exception_filters(request, rules, err)
    except RuleError as exc:
        err.print(f"vigil detect: {terminal_text(str(exc), keep_newlines=True)}", markup=False)
        return 2
    indicator_rules = [r for r in rules if r.type == "threat_match"]
    indicators: tuple[dict[str, Any], ...] = ()
    if indicator_rules and not request.indicators:
        notes = [*notes, f"skipped {len(indicator_rules):,} threat_match rule(s): they need "
                 "--indicators FILE (the documents of their threat index)"]
        rules = [r for r in rules if r.type != "threat_match"]
        if not rules:
            _summary_of_nothing(notes, err)
            return 2
    elif request.indicators:
        indicator_stats = ReadStats()
        indicators = tuple(read_events(list(request.indicators), indicator_stats))
        notes = [*notes, f"read {len(indicators):,} threat indicator(s)"
                 + (f"; skipped {indicator_stats.bad_total:,} bad record(s):"
                    if indicator_stats.bad_total else ""),
                 *(f"  {bad}" for bad in indicator_stats.bad_records[:SHOWN_BAD_RECORDS])]
    started = time.perf_counter()
    stats = ReadStats()
    options = DetectOptions(index_all=request.index_all, max_signals=request.max_signals,
                            start=request.start, end=request.end, indicators=indicators)
    read_options = ReadOptions(logon_id=request.logon_id)
    from vigil.report.progress import TerminalProgress

    progress = TerminalProgress() if TerminalProgress.wanted(quiet=request.quiet) else None
    try:
        # --explain counts every event's index, which needs every event parsed.
        if request.engine == "reference" or request.explain:
            events = list(_reading(read_events(request.paths, stats, read_options), stats,
                                   progress, request.paths))
            if request.explain:
                _explain(rules, events, request.index_all, err)
            if progress is not None:
                progress.phase(f"running {len(rules)} rule(s) on {len(events):,} event(s)")
            result = run_detection(rules, events, options=options,
                                   exceptions_for=exceptions_for)
        else:
            from vigil.backends.fast import run_fast

            result, fast = run_fast(rules, request.paths, stats, read_options, options,
                                    exceptions_for=exceptions_for, progress=progress)
            if fast.lines_skipped:
                notes = [*notes, f"{fast.lines_skipped:,} line(s) no rule can match were "
                         "skipped unparsed (--engine reference reads and checks every line)"]
    finally:
        if progress is not None:
            progress.close()  # erased before the table and the summary are written
    if request.min_severity is not None:
        result = _at_least(result, request.min_severity)
    _write(result, request, stats)
    _summary(result, stats, notes, time.perf_counter() - started, err)
    if rule_errors:
        return EXIT_USAGE
    return EXIT_ALERTS if request.fail_on_alert and result.alerts else EXIT_OK


def _reading(events: Iterator[dict[str, Any]], stats: ReadStats,
             progress: ReadProgress | None, paths: Sequence[Path],
             ) -> Iterator[dict[str, Any]]:
    """The reference reader's events, telling ``progress`` every few thousand (its bytes are
    counted as each file ends)."""
    if progress is None:
        yield from events
        return
    from vigil.events.reader import iter_input_files

    files = list(iter_input_files(paths, ReadStats()))
    progress.begin(len(files), sum(f.stat().st_size for f in files if f.exists()), "reading")
    told_bytes = told_events = 0
    where = ""
    for number, event in enumerate(events, 1):
        yield event
        source = event.get("vigil")
        if isinstance(source, dict) and isinstance(source.get("source"), dict):
            where = str(source["source"].get("path") or where)
        if number % 4096 == 0 or stats.bytes != told_bytes:
            progress.read(where, stats.bytes - told_bytes, stats.events - told_events)
            told_bytes, told_events = stats.bytes, stats.events
    progress.read(where, stats.bytes - told_bytes, stats.events - told_events)


def _at_least(result: DetectResult, severity: str) -> DetectResult:
    """The result with only the alerts of ``severity`` or above (their rule's outcome keeps
    its counts)."""
    from dataclasses import replace

    floor = SEVERITY_ORDER.index(severity)
    outcomes = [replace(o, alerts=[a for a in o.alerts if SEVERITY_ORDER.index(
        str(a.document.get("kibana.alert.severity", "low"))) >= floor])
        for o in result.outcomes]
    return replace(result, outcomes=outcomes)


def _write(result: DetectResult, request: DetectRequest, stats: ReadStats) -> None:
    from vigil.report.outputs import print_table, write_csv, write_ndjson

    alerts = result.alerts
    if request.output_format == "table":
        from rich.console import Console

        if request.output is not None:
            with request.output.open("w", encoding="utf-8") as handle:
                print_table(alerts, Console(file=handle, width=200, highlight=False))
        else:
            console = Console(highlight=False)
            if not console.is_terminal:  # a pipe or file: don't fold rows into 80 columns
                console = Console(highlight=False, width=max(console.width, 200))
            print_table(alerts, console)
    elif request.output_format == "ndjson":
        if request.output is not None:
            with request.output.open("wb") as binary:
                write_ndjson(alerts, binary)
        else:
            write_ndjson(alerts, sys.stdout.buffer)
            sys.stdout.flush()
    elif request.output_format == "html":
        from vigil.report.html import ReportAlert, render_report

        page = render_report(
            [ReportAlert(a.document, a.building_blocks) for a in alerts],
            title="vigil detect " + " ".join(str(p) for p in request.paths),
            facts={"inputs": ", ".join(str(p) for p in request.paths),
                   "events searched": f"{result.events:,}",
                   "rules run": ", ".join(o.rule.name for o in result.outcomes[:20])
                   + (" ..." if len(result.outcomes) > 20 else ""),
                   "logon id mapping": request.logon_id,
                   "data lost": _loss(stats) or "none"})
        if request.output is not None:
            request.output.write_text(page, encoding="utf-8")
        else:
            sys.stdout.write(page)
    else:
        if request.output is not None:
            with request.output.open("w", encoding="utf-8", newline="") as text:
                write_csv(alerts, text)
        else:
            write_csv(alerts, sys.stdout)


def _explain(rules: Sequence[Rule], events: Sequence[Mapping[str, Any]], index_all: bool,
             err: _Stderr) -> None:
    counts: dict[str | None, int] = {}
    for event in events:
        index = index_of(event)
        counts[index] = counts.get(index, 0) + 1
    err.print("indices found in the input (events):", markup=False)
    for index, count in sorted(counts.items(), key=lambda item: str(item[0])):
        err.print(f"  {index or '(unknown: read by every rule)'}: {count:,}", markup=False)
    for rule in rules:
        selector = IndexSelector(rule.index, accept_all=index_all)
        read = [str(i or "(unknown)") for i in counts if selector.accepts(i)]
        patterns = ", ".join(rule.index) or "(none: every index)"
        err.print(f"rule {rule.name!r} [{patterns}] reads: {', '.join(read) or 'nothing'}",
                  markup=False)


def _by_host(result: DetectResult) -> list[tuple[str, int]]:
    """(host, alerts) for the alerts' hosts, the most alerted first."""
    from collections import Counter

    from vigil.detect.alerts import summary

    counts: Counter[str] = Counter()
    for alert in result.alerts:
        found = alert.document.get("vigil.summary")
        host = (found if isinstance(found, dict) else summary(list(alert.events))).get("host")
        counts[str(host) if host else "(no host)"] += 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _loss(stats: ReadStats) -> str:
    """What the input lost, in a person's words ("" when nothing): bad records, records of
    damaged EVTX chunks, files that could not be read."""
    parts = []
    if stats.bad_total:
        parts.append(f"{stats.bad_total:,} bad record(s) skipped")
    if stats.records_lost:
        parts.append(f"{stats.records_lost:,} EVTX record(s) in damaged or missing chunks")
    if stats.files_failed:
        parts.append(f"{stats.files_failed:,} file(s) unreadable")
    return "; ".join(parts)


def _summary(result: DetectResult, stats: ReadStats, notes: Sequence[str], seconds: float,
             err: _Stderr) -> None:
    err.print(
        f"read {stats.files:,} file(s), {stats.events:,} events in {seconds:.1f} s"
        + (f"; skipped {stats.bad_total:,} bad record(s):" if stats.bad_total else ""),
        markup=False,
    )
    for bad in stats.bad_records[:SHOWN_BAD_RECORDS]:
        err.print(f"  {terminal_text(str(bad))}", markup=False)
    if stats.bad_total > SHOWN_BAD_RECORDS:
        err.print(f"  ... and {stats.bad_total - SHOWN_BAD_RECORDS:,} more", markup=False)
    loss = _loss(stats)
    if loss:
        err.print(f"data lost: {loss}", markup=False)
    if stats.alert_documents:
        err.print(f"skipped {stats.alert_documents:,} alert document(s) in the input (alerts "
                  "written by vigil or Kibana are not events)", markup=False)
    if result.events_without_time:
        err.print(f"{result.events_without_time:,} event(s) had no usable @timestamp and were "
                  "not searched", markup=False)
    for note in notes:
        err.print(terminal_text(note), markup=False)
    ran = len(result.outcomes)
    alerts = len(result.alerts)
    err.print(f"ran {ran} rule(s): {alerts:,} alert(s)", markup=False)
    for outcome in result.outcomes:
        if not outcome.alerts and not outcome.warnings:
            continue
        line = f"  {outcome.rule.name}: {len(outcome.alerts):,} alert(s)"
        if outcome.events_excepted:
            line += f", {outcome.events_excepted:,} event(s) removed by exceptions"
        err.print(terminal_text(line), markup=False)
        for warning in outcome.warnings:
            dropped = f" ({outcome.dropped_by_cap:,} dropped)" if outcome.dropped_by_cap else ""
            err.print(f"    {terminal_text(warning)}{dropped}", markup=False)
        if not outcome.warnings and outcome.elastic_cap_exceeded:
            err.print(f"    Elastic would have capped at {outcome.rule.max_signals} per run "
                      "(max_signals); use --max-signals to apply it", markup=False)
    hosts = _by_host(result)
    if hosts:
        shown = ", ".join(f"{terminal_text(host)} {count:,}" for host, count in hosts[:10])
        more = f" and {len(hosts) - 10:,} more host(s)" if len(hosts) > 10 else ""
        err.print(f"alerts by host: {shown}{more}", markup=False)
