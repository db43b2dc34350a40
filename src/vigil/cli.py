"""The ``vigil`` command line: thin wrappers over the library."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from vigil import __version__
from vigil.report.safe import display_time, terminal_text
from vigil.store.model import CloseReason

app = typer.Typer(
    name="vigil",
    help="Run Elastic Security EQL detection rules on Windows event logs, without Elasticsearch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vigil {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """vigil: Elastic's EQL detection rules on your logs."""


@app.command("query")
def query_command(
    query: Annotated[str, typer.Argument(help="The EQL query (KQL with --kql).")],
    paths: Annotated[list[Path], typer.Argument(help="NDJSON/JSON files or folders.")],
    output_format: Annotated[
        Literal["table", "ndjson"], typer.Option(
            "--format", help="table, or ndjson (the matched events).")
    ] = "table",
    size: Annotated[int | None, typer.Option("--size", help="At most this many results.")] = None,
    engine: EngineOption = "auto",
    kql: Annotated[bool, typer.Option(
        "--kql", help="The query is KQL (Kibana's query language, as query rules use).")
    ] = False,
) -> None:
    """Hunt: print the events or sequences an EQL (or KQL) query matches.

    Example: vigil query 'process where process.name : "psexesvc.exe"' logs/
    Example: vigil query --kql 'event.code: 1102 and host.os.type: windows' logs/
    """
    from vigil.commands.query import run_query

    _require_inputs(paths, "query")
    code = run_query(query, paths, output_format, size, engine,
                     "kuery" if kql else "eql")
    raise typer.Exit(code)


def _store_guarded(command: str, run: Any) -> int:
    """A store that cannot be used (held by another watcher, corrupt, newer, read-only, a
    full disk) ends the command with one line, exit 1; the store itself stays consistent
    (every write is one transaction)."""
    import sqlite3

    from vigil.store import StoreError

    try:
        code: int = run()
    except StoreError as exc:
        typer.echo(f"vigil {command}: {terminal_text(str(exc))}", err=True)
        return 1
    except sqlite3.Error as exc:
        typer.echo(f"vigil {command}: the store failed: {terminal_text(str(exc))} (nothing "
                   "half-written: the last execution was rolled back)", err=True)
        return 1
    return code


def _require_inputs(paths: list[Path], command: str) -> None:
    """A path that does not exist is a usage error (exit 2), found before any work."""
    missing = [path for path in paths if not path.exists()]
    for path in missing:
        typer.echo(f"vigil {command}: no such file or folder: {terminal_text(str(path))}",
                   err=True)
    if missing:
        raise typer.Exit(2)


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    from vigil.eql.schema import parse_iso_ns

    ns = parse_iso_ns(value)
    if ns is None:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 time", param_hint=option)
    try:
        return datetime.fromtimestamp(ns / 1e9, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise typer.BadParameter(f"{value!r} is outside the years 1 to 9999",
                                 param_hint=option) from None


def _in_order(first: datetime | None, last: datetime | None) -> None:
    if first is not None and last is not None and first > last:
        raise typer.BadParameter(f"--from ({first.isoformat()}) is later than --to "
                                 f"({last.isoformat()}): nothing would be searched",
                                 param_hint="--from/--to")


def _writable(path: Path | None, option: str) -> None:
    """An output that cannot be written is a usage error before any work, not a traceback
    after the whole run."""
    if path is None or str(path) == "-":
        return
    import os

    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a folder", param_hint=option)
    if not folder.is_dir():
        raise typer.BadParameter(f"no folder {folder} to write {path.name} in",
                                 param_hint=option)
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(folder, os.W_OK):
        raise typer.BadParameter(f"{path} cannot be written (permission denied)",
                                 param_hint=option)


RulesOption = Annotated[list[str] | None, typer.Option(
    "--rule", "-r", help="Rule file, folder, or bundled rule id (repeatable). "
    "Default: the bundled rules.")]
ExceptionsOption = Annotated[Path | None, typer.Option(
    "--exceptions", help="Exception list: Kibana export (.ndjson) or vigil TOML.")]
EngineOption = Annotated[Literal["auto", "fast", "reference"], typer.Option(
    "--engine", help="fast reads only what the rules or query can match (the same answer); "
    "reference parses and checks every event; auto is fast.")]
LogonIdOption = Annotated[Literal["intended", "elastic"], typer.Option(
    "--logon-id", help="intended: 4624's winlog.logon.id from TargetLogonId (default); "
    "elastic: as Elastic's current pipelines (SubjectLogonId).")]
IndexAllOption = Annotated[bool, typer.Option(
    "--index-all", help="Every rule reads every event, whatever its index.")]


@app.command("detect")
def detect_command(
    paths: Annotated[list[Path], typer.Argument(
        help="Files or folders: .evtx, .ndjson/.jsonl/.json, .gz, .zip (OTRF).")],
    rule: RulesOption = None,
    exceptions: ExceptionsOption = None,
    output_format: Annotated[Literal["table", "ndjson", "csv", "html"], typer.Option(
        "--format", "-f", help="table, ndjson (Elastic alert documents), csv (timeline) or "
        "html (a report to hand on).")
    ] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    logon_id: LogonIdOption = "intended",
    max_signals: Annotated[int | None, typer.Option(
        "--max-signals", min=1, max=2**31 - 1,
        help="Apply Elastic's per-run cap: keep the N most recent matches per rule.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Only events at or after.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Only events at or before.")] = None,
    index_all: IndexAllOption = False,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Say which indices the input holds and which rules read them.")
    ] = False,
    engine: EngineOption = "auto",
    min_severity: Annotated[Literal["low", "medium", "high", "critical"] | None, typer.Option(
        "--min-severity", help="Only alerts of this severity or above.")] = None,
    fail_on_alert: Annotated[bool, typer.Option(
        "--fail-on-alert", help="Exit 1 when an alert is raised (for scripts and CI).")
    ] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress bar (shown on a terminal for runs over 2 s; the "
                              "summary still prints: it reports what was lost).")
    ] = False,
    indicators: Annotated[list[Path] | None, typer.Option(
        "--indicators", help="Threat indicator documents (the threat index of indicator "
                             "match rules): NDJSON/JSON/Parquet files or folders.")] = None,
) -> None:
    """Run detection rules over logs and print the alerts Elastic Security would raise.

    Exit codes: 0 done (whether or not there are alerts), 1 alerts raised with
    --fail-on-alert, 2 usage or rule errors.

    Example: vigil detect evidence/ --format ndjson --output alerts.ndjson
    """
    from vigil.commands.detect import DetectRequest, run_detect

    _require_inputs(paths, "detect")
    _writable(output, "--output")
    _in_order(_parse_time(start, "--from"), _parse_time(end, "--to"))
    request = DetectRequest(
        paths=paths, rules=rule or (), exceptions=exceptions, output_format=output_format,
        output=output, logon_id=logon_id,
        max_signals=max_signals, start=_parse_time(start, "--from"),
        end=_parse_time(end, "--to"), index_all=index_all, explain=explain, engine=engine,
        min_severity=min_severity, fail_on_alert=fail_on_alert, quiet=quiet,
        indicators=tuple(indicators or ()),
    )
    if indicators:
        _require_inputs(list(indicators), "detect")
    raise typer.Exit(run_detect(request))


@app.command("convert")
def convert_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders of Windows events.")],
    to: Annotated[Literal["ndjson", "bulk"], typer.Option(
        "--to", help="ndjson (ECS documents) or bulk (Elasticsearch _bulk body).")] = "ndjson",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    logon_id: LogonIdOption = "intended",
) -> None:
    """Convert EVTX / OTRF JSON to Winlogbeat-compatible ECS documents.

    Example: vigil convert Security.evtx --to bulk -o bulk.ndjson
    """
    from vigil.commands.convert import run_convert

    _require_inputs(paths, "convert")
    _writable(output, "--output")
    raise typer.Exit(run_convert(paths, to, output, logon_id))


def _rules_for_schedule(rule: list[str] | None) -> list[Any]:
    from vigil.commands.detect import resolve_rules

    rules, notes, errors = resolve_rules(rule or ())
    for error in errors:
        typer.echo(terminal_text(str(error), keep_newlines=True), err=True)
    indicator = [r for r in rules if r.type == "threat_match"]
    if indicator:
        notes.append(f"skipped {len(indicator):,} threat_match rule(s): indicator match runs in "
                     "vigil detect with --indicators FILE")
        rules = [r for r in rules if r.type != "threat_match"]
    for note in notes:
        typer.echo(terminal_text(note), err=True)
    if errors or not rules:
        raise typer.Exit(2)
    return rules


GapOption = Annotated[Literal["complete", "elastic"], typer.Option(
    "--gap-mode", help="complete: fill every missed window (default); elastic: at most 4 "
    "catch-up windows, the rest reported as a gap, as Kibana does.")]
WindowOption = Annotated[Literal["@timestamp", "event.ingested"], typer.Option(
    "--window-on", help="@timestamp (Elastic); event.ingested: each run also searches again "
    "the time range of events that arrived late.")]


def _schedule_request(paths: list[Path], store: Path, rule: list[str] | None,
                      exceptions: Path | None,
                      gap_mode: Literal["complete", "elastic"],
                      window_on: Literal["@timestamp", "event.ingested"],
                      logon_id: Literal["intended", "elastic"],
                      index_all: bool, interval: str | None, webhook: str | None) -> Any:
    from vigil.commands.schedule import ScheduleRequest, parse_duration

    try:
        every = parse_duration(interval) if interval else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--interval") from exc
    return ScheduleRequest(
        paths=paths, store=store, rules=_rules_for_schedule(rule), exceptions=exceptions,
        gap_mode=gap_mode, window_on=window_on, logon_id=logon_id, index_all=index_all,
        interval=every, webhook=webhook)


@app.command("replay")
def replay_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders of logs.")],
    store: Annotated[Path, typer.Option("--store", help="SQLite alert store (created).")],
    start: Annotated[str, typer.Option("--from", help="First scheduled run (ISO time).")],
    end: Annotated[str, typer.Option("--to", help="Last scheduled run (ISO time).")],
    rule: RulesOption = None,
    exceptions: ExceptionsOption = None,
    down: Annotated[list[str] | None, typer.Option(
        "--down", help="FROM..TO: simulate the scheduler being down (repeatable).")] = None,
    gap_mode: GapOption = "complete",
    window_on: WindowOption = "@timestamp",
    logon_id: LogonIdOption = "intended",
    index_all: IndexAllOption = False,
    interval: Annotated[str | None, typer.Option(
        "--interval", help="Override every rule's interval (e.g. 1m).")] = None,
) -> None:
    """Simulate Elastic's schedule over historical logs: what would it have alerted, run by run.

    Example: vigil replay logs/ --store alerts.db --from 2024-05-01T00:00Z --to 2024-05-08T00:00Z
    """
    from vigil.commands.schedule import run_replay

    _require_inputs(paths, "replay")
    request = _schedule_request(paths, store, rule, exceptions, gap_mode, window_on, logon_id,
                                index_all, interval, None)
    first, last = _parse_time(start, "--from"), _parse_time(end, "--to")
    assert first is not None and last is not None
    _in_order(first, last)
    outages = []
    for item in down or []:
        lo, sep, hi = item.partition("..")
        a, b = _parse_time(lo, "--down"), _parse_time(hi, "--down")
        if not sep or a is None or b is None:
            raise typer.BadParameter("use FROM..TO with ISO times", param_hint="--down")
        outages.append((a, b))
    raise typer.Exit(_store_guarded("replay", lambda: run_replay(request, first, last, outages)))


@app.command("watch")
def watch_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders that keep growing.")],
    store: Annotated[Path, typer.Option("--store", help="SQLite alert store (created).")],
    rule: RulesOption = None,
    exceptions: ExceptionsOption = None,
    webhook: Annotated[str | None, typer.Option(
        "--webhook", help="POST new alerts here (retried; never delays detection).")] = None,
    webhook_attempts: Annotated[int, typer.Option(
        "--webhook-attempts", min=1, max=100_000,
        help="Tries before a notification is dead-lettered (backoff doubles from 2 s to 10 "
        "min: the default 120 is about 18 hours).")] = 120,
    gap_mode: GapOption = "complete",
    window_on: WindowOption = "@timestamp",
    logon_id: LogonIdOption = "intended",
    index_all: IndexAllOption = False,
    interval: Annotated[str | None, typer.Option(
        "--interval", help="Override every rule's interval (e.g. 30s).")] = None,
    poll: Annotated[float, typer.Option(
        "--poll", min=0.1, max=86400.0, help="Seconds between file checks (0.1 to 86400).")
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (for cron).")
                    ] = False,
) -> None:
    """Run the rules on their schedule over logs that keep arriving; alerts go to the store.

    Example: vigil watch /var/log/winlogbeat/ --store alerts.db --webhook https://hooks.example/x
    """
    from vigil.commands.schedule import run_watch

    _require_inputs(paths, "watch")
    if poll != poll:  # NaN passes every range check
        raise typer.BadParameter("not a number", param_hint="--poll")
    from dataclasses import replace as dc_replace

    request = dc_replace(_schedule_request(paths, store, rule, exceptions, gap_mode, window_on,
                                           logon_id, index_all, interval, webhook),
                         webhook_attempts=webhook_attempts)
    raise typer.Exit(_store_guarded("watch", lambda: run_watch(request, poll, once)))


alerts_app = typer.Typer(help="Alerts in a store: list, show, acknowledge, close, reopen, "
                         "export.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
StoreOption = Annotated[Path, typer.Option("--store", help="SQLite alert store.")]


@contextmanager
def _open_existing(store: Path) -> Iterator[Any]:
    """The store, opened for an ``alerts`` command; afterwards one line names the alert rows
    it could not read (each damaged row costs that alert, never the command)."""
    from vigil.store import StoreError, open_store

    if not store.exists():
        typer.echo(f"vigil alerts: no store at {store}", err=True)
        raise typer.Exit(2)
    try:
        db = open_store(store)
    except StoreError as exc:
        typer.echo(f"vigil alerts: {terminal_text(str(exc))}", err=True)
        raise typer.Exit(2) from exc
    with db:
        yield db
    if db.damaged:
        shown = ", ".join(alert_id[:12] for alert_id in db.damaged[:10])
        typer.echo(f"vigil alerts: {len(db.damaged)} alert row(s) have a damaged stored "
                   f"document and were left out or shown as damaged: {shown}", err=True)


def _filters(rule: str | None, host: str | None, status: str | None, since: str | None,
             until: str | None, building_blocks: bool, limit: int | None) -> Any:
    from vigil.store import StoreError, views

    try:
        return views.alert_filter(rule=rule, host=host, status=status, since=since, until=until,
                                  include_building_blocks=building_blocks, limit=limit)
    except StoreError as exc:
        typer.echo(f"vigil alerts: {exc}", err=True)
        raise typer.Exit(2) from exc


@alerts_app.command("list")
def alerts_list(
    store: StoreOption,
    rule: Annotated[str | None, typer.Option("--rule")] = None,
    host: Annotated[str | None, typer.Option("--host")] = None,
    status: Annotated[str | None, typer.Option("--status", help="open, acknowledged, closed")
                      ] = None,
    since: Annotated[str | None, typer.Option("--since")] = None,
    until: Annotated[str | None, typer.Option("--until")] = None,
    building_blocks: Annotated[bool, typer.Option("--building-blocks")] = False,
    limit: Annotated[int | None, typer.Option("--limit")] = 100,
) -> None:
    """List alerts, newest first. Example: vigil alerts list --store alerts.db --status open"""
    from dataclasses import replace as dc_replace

    from rich.console import Console

    from vigil.store import views

    filters = _filters(rule, host, status, since, until, building_blocks, limit)
    with _open_existing(store) as db:
        total = db.count_alerts(dc_replace(filters, limit=None))
        console = Console(highlight=False)
        console.print(views.alerts_table(db.list_alerts(filters), total=total,
                                         width=console.width))


@alerts_app.command("show")
def alerts_show(
    store: StoreOption,
    alert_id: Annotated[str, typer.Argument(help="Alert id or a unique prefix (6+).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one alert with its building blocks. Example: vigil alerts show --store a.db 93bbcb"""
    from rich.console import Console

    from vigil.store import views

    with _open_existing(store) as db:
        resolved = views.resolve_ids(db, [alert_id])
        if resolved.problems or not resolved.ids:
            for problem in resolved.problems:
                typer.echo(problem, err=True)
            raise typer.Exit(1)
        alert = db.get_alert(resolved.ids[0])
        if as_json:
            typer.echo(views.alert_json(alert))
        else:
            Console(highlight=False).print(views.alert_view(alert))


def _change(store: Path, ids: list[str], status: str, by: str | None, *,
            reason: CloseReason | None = None, note: str | None = None) -> None:
    from vigil.store import StoreError, views

    with _open_existing(store) as db:
        try:
            result = views.change_status(db, ids, status, by, reason=reason,
                                         note=note)
        except StoreError as exc:
            typer.echo(f"vigil alerts: {exc}", err=True)
            raise typer.Exit(2) from exc
    typer.echo(result.message)
    for problem in result.problems:
        typer.echo(problem, err=True)
    raise typer.Exit(0 if result.ok else 1)


ByOption = Annotated[str | None, typer.Option("--by", help="Who (default: the OS user).")]
NoteOption = Annotated[str | None, typer.Option(
    "--note", help="A note kept with the alert, shown by `alerts show` (10,000 characters "
                   "at most).")]


@alerts_app.command("ack")
def alerts_ack(store: StoreOption, ids: Annotated[list[str], typer.Argument()],
               by: ByOption = None, note: NoteOption = None) -> None:
    """Acknowledge alerts. Example: vigil alerts ack --store a.db 93bbcb"""
    _change(store, ids, "acknowledged", by, note=note)


@alerts_app.command("close")
def alerts_close(
    store: StoreOption,
    ids: Annotated[list[str], typer.Argument()],
    by: ByOption = None,
    reason: Annotated[CloseReason | None, typer.Option(
        "--reason", help="Kibana's closing reason, kept in kibana.alert.workflow_reason.")
    ] = None,
    note: NoteOption = None,
) -> None:
    """Close alerts (a closed alert stays closed when detected again). Example: vigil alerts
    close --store a.db 93bbcb --reason false_positive --note "admin's PsExec, ticket 4411"
    """
    _change(store, ids, "closed", by, reason=reason, note=note)


@alerts_app.command("reopen")
def alerts_reopen(store: StoreOption, ids: Annotated[list[str], typer.Argument()],
                  by: ByOption = None, note: NoteOption = None) -> None:
    """Reopen alerts (the closing reason is removed, as in Kibana)."""
    _change(store, ids, "open", by, note=note)


@alerts_app.command("report")
def alerts_report(
    store: StoreOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")],
    rule: Annotated[str | None, typer.Option("--rule")] = None,
    host: Annotated[str | None, typer.Option("--host")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    since: Annotated[str | None, typer.Option("--since")] = None,
    until: Annotated[str | None, typer.Option("--until")] = None,
) -> None:
    """Write a self-contained HTML report of the alerts (anchors #alert-<id>).

    Example: vigil alerts report --store alerts.db --status open -o report.html
    """
    from vigil.report.html import ReportAlert, render_report

    _writable(output, "--output")
    filters = _filters(rule, host, status, since, until, False, None)
    with _open_existing(store) as db:
        alerts = []
        for listed in db.list_alerts(filters):
            full = db.get_alert(listed.id) or listed
            alerts.append(ReportAlert(full.document,
                                      tuple(b.document for b in full.building_blocks)))
    output.write_text(render_report(alerts, title="vigil alerts",
                                    facts={"store": str(store)}), encoding="utf-8")
    typer.echo(f"wrote {output}: {len(alerts)} alert(s)", err=True)


@alerts_app.command("export")
def alerts_export(
    store: StoreOption,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    output_format: Annotated[str, typer.Option("--format", help="ndjson")] = "ndjson",
    bulk: Annotated[bool, typer.Option("--bulk", help="Elasticsearch _bulk body.")] = False,
    rule: Annotated[str | None, typer.Option("--rule")] = None,
    host: Annotated[str | None, typer.Option("--host")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    since: Annotated[str | None, typer.Option("--since")] = None,
    until: Annotated[str | None, typer.Option("--until")] = None,
) -> None:
    """Export alert documents Elastic's alerts index accepts.

    Example: vigil alerts export --store alerts.db --output alerts.ndjson
    """
    import sys

    from vigil.store import views

    if output_format != "ndjson":
        raise typer.BadParameter("only ndjson", param_hint="--format")
    _writable(output, "--output")
    filters = _filters(rule, host, status, since, until, True, None)
    with _open_existing(store) as db:
        if output is None:
            count = views.export_ndjson(db, filters, sys.stdout.buffer,
                                        bulk_index=views.ALERTS_INDEX if bulk else None)
            sys.stdout.flush()
        else:
            with output.open("wb") as handle:
                count = views.export_ndjson(db, filters, handle,
                                            bulk_index=views.ALERTS_INDEX if bulk else None)
    typer.echo(f"exported {count:,} document(s)", err=True)


webhook_app = typer.Typer(help="Webhook notifications given up after their attempts.",
                          no_args_is_help=True)
alerts_app.add_typer(webhook_app, name="webhook")


@webhook_app.command("list")
def webhook_list(store: StoreOption) -> None:
    """List the dead letters: alerts whose notification was given up, with the last error.

    Example: vigil alerts webhook list --store alerts.db
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    with _open_existing(store) as db:
        letters = db.list_dead_letters()
    table = Table(title=f"{len(letters)} dead letter(s)", title_justify="left")
    for column in ("id", "alert", "attempts", "given up", "last error"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(Text(str(letter.id)), Text(letter.alert_id[:12]),
                      Text(str(letter.attempts)), Text(terminal_text(letter.dead_at)),
                      Text(terminal_text(letter.last_error)))
    Console(highlight=False).print(table)


@webhook_app.command("retry")
def webhook_retry(store: StoreOption, ids: Annotated[list[int] | None, typer.Argument(
        help="Dead-letter ids (default: all).")] = None) -> None:
    """Queue dead letters again with a fresh set of attempts; a running (or the next)
    ``vigil watch --webhook`` sends them.

    Example: vigil alerts webhook retry --store alerts.db
    """
    with _open_existing(store) as db:
        count = db.requeue_dead_letters(ids or None)
    typer.echo(f"queued {count} notification(s) again", err=True)


runs_app = typer.Typer(help="The rule executions a store recorded (watch and replay): window, "
                       "status, Elastic's message, events read, alerts.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(
    store: StoreOption,
    rule: Annotated[str | None, typer.Option("--rule", help="A rule id or name.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="succeeded, partial failure, failed or running.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1,
                                              help="The newest N only.")] = 50,
) -> None:
    """List the executions, newest first (runs over quiet stretches are one row each).

    Example: vigil runs list --store alerts.db --status failed
    """
    from rich.console import Console

    from vigil.store import views

    with _open_existing(store) as db:
        executions = db.list_executions(rule=rule, status=status, limit=limit)
    console = Console(highlight=False)
    console.print(views.executions_table(executions, width=console.width))


@runs_app.command("show")
def runs_show(store: StoreOption, execution_id: Annotated[int, typer.Argument(
        help="The execution's id (first column of runs list).")]) -> None:
    """Show one execution: its window, status, message, what it read and the alerts it
    created.

    Example: vigil runs show --store alerts.db 12
    """
    from vigil.store import AlertFilter

    with _open_existing(store) as db:
        execution = db.get_execution(execution_id)
        if execution is None:
            typer.echo(f"vigil runs: no execution {execution_id}", err=True)
            raise typer.Exit(2)
        alerts = [a for a in db.list_alerts(AlertFilter(include_building_blocks=False))
                  if getattr(a, "execution_id", None) == execution_id]
    lines = [f"execution {execution.id}: {execution.rule_id}",
             f"  scheduled   {display_time(execution.scheduled_start)}",
             f"  window      {display_time(execution.window_from)} to "
             f"{display_time(execution.window_to)}",
             f"  status      {execution.status}",
             f"  message     {execution.message}",
             f"  events read {execution.events_read:,}",
             f"  alerts      {len(alerts):,} new ({execution.alerts_created:,} documents "
             "with their building blocks)"]
    if execution.gap is not None:
        lines.append(f"  gap         {display_time(execution.gap.start)} to "
                     f"{display_time(execution.gap.end)}")
    lines.extend(f"    {a.id[:12]} {a.rule_name} {display_time(a.original_time)}" for a in alerts)
    typer.echo(terminal_text("\n".join(lines), keep_newlines=True))


rules_app = typer.Typer(help="List, show and validate detection rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


def _rules_from(paths: list[Path] | None) -> tuple[Any, ...]:
    from vigil.rules import bundled_rules, load_rules

    if not paths:
        return bundled_rules()
    result = load_rules(paths)
    for error in result.errors:
        typer.echo(terminal_text(str(error), keep_newlines=True), err=True)
    return result.rules


@rules_app.command("list")
def rules_list(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Rule files or folders (default: the bundled rules).")] = None,
) -> None:
    """List rules: id, name, severity, risk score, tactics.

    Example: vigil rules list ../shared/rules/elastic-prebuilt/rules/windows
    """
    from rich.console import Console

    from vigil.rules.render import render_rule_list

    Console(highlight=False).print(render_rule_list(_rules_from(paths)))


@rules_app.command("show")
def rules_show(
    rule_id: Annotated[str, typer.Argument(help="Rule id (or a unique prefix) or name.")],
    rules: Annotated[list[Path] | None, typer.Option(
        "--rules", help="Look in these rule files or folders (default: the bundled rules).")
    ] = None,
) -> None:
    """Show one rule: metadata, MITRE ATT&CK, schedule, query and investigation guide.

    Example: vigil rules show d33ea3bf
    """
    from rich.console import Console

    from vigil.rules import find_rule
    from vigil.rules.render import render_rule

    rule = find_rule(_rules_from(rules), rule_id)
    if rule is None:
        typer.echo(f"vigil rules show: no rule {terminal_text(rule_id)!r}", err=True)
        raise typer.Exit(2)
    Console(highlight=False).print(render_rule(rule))


@rules_app.command("validate")
def rules_validate(
    paths: Annotated[list[Path], typer.Argument(help="Rule files or folders.")],
) -> None:
    """Check that rule files load: every error as file:line:column with the line and a caret.

    Example: vigil rules validate my-rules/
    """
    from vigil.rules import load_rules, validation_summary

    result = load_rules(paths)
    for error in result.errors:
        typer.echo(terminal_text(str(error), keep_newlines=True), err=True)
    from vigil.rules.loader import rule_warnings, skipped_summary

    for line in [*skipped_summary(result.skipped), *rule_warnings(result.rules)]:
        typer.echo(terminal_text(line), err=True)
    typer.echo(validation_summary(len(result.rules), list(result.errors)))
    raise typer.Exit(2 if result.errors else 0)


@rules_app.command("coverage")
def rules_coverage(
    paths: Annotated[list[Path], typer.Argument(
        help="Files or folders of logs: .evtx, .ndjson/.jsonl/.json, .gz, .zip (OTRF).")],
    rule: RulesOption = None,
    output_format: Annotated[str, typer.Option(
        "--format", "-f", help="table or json.")] = "table",
    index_all: IndexAllOption = False,
) -> None:
    """Which rules can fire on this data, and why the others cannot.

    A rule cannot fire when no index it reads is in the data, or a stage needs an event
    category or fields that no event of those indices has.

    Example: vigil rules coverage evidence/ --rule ../shared/rules/elastic-prebuilt/rules/windows
    """
    from vigil.commands.coverage import run_coverage

    raise typer.Exit(run_coverage(paths, rule or (), output_format, index_all))


def main() -> None:
    app(prog_name="vigil")


if __name__ == "__main__":
    main()
