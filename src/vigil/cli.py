"""The ``vigil`` command line: thin wrappers over the library."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from vigil import __version__
from vigil.report.safe import terminal_text

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
    query: Annotated[str, typer.Argument(help="The EQL query.")],
    paths: Annotated[list[Path], typer.Argument(help="NDJSON/JSON files or folders.")],
    output_format: Annotated[
        str, typer.Option("--format", help="ndjson (matched events) or table.")
    ] = "table",
    size: Annotated[int | None, typer.Option("--size", help="At most this many results.")] = None,
) -> None:
    """Hunt: print the events or sequences an EQL query matches.

    Example: vigil query 'process where process.name : "psexesvc.exe"' logs/
    """
    from vigil.commands.query import run_query

    code = run_query(query, paths, output_format, size)
    raise typer.Exit(code)


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    from vigil.eql.schema import parse_iso_ns

    ns = parse_iso_ns(value)
    if ns is None:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 time", param_hint=option)
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


@app.command("detect")
def detect_command(
    paths: Annotated[list[Path], typer.Argument(
        help="Files or folders: .evtx, .ndjson/.jsonl/.json, .gz, .zip (OTRF).")],
    rule: Annotated[list[str] | None, typer.Option(
        "--rule", "-r", help="Rule file, folder, or bundled rule id (repeatable). "
        "Default: the bundled rules.")] = None,
    exceptions: Annotated[Path | None, typer.Option(
        "--exceptions", help="Exception list: Kibana export (.ndjson) or vigil TOML.")] = None,
    output_format: Annotated[str, typer.Option(
        "--format", "-f", help="table, ndjson (Elastic alert documents) or csv (timeline).")
    ] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    logon_id: Annotated[str, typer.Option(
        "--logon-id", help="intended: 4624's winlog.logon.id from TargetLogonId (default); "
        "elastic: as Elastic's current pipelines (SubjectLogonId).")] = "intended",
    max_signals: Annotated[int | None, typer.Option(
        "--max-signals", help="Apply Elastic's per-run cap: keep the N most recent matches "
        "per rule.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Only events at or after.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Only events at or before.")] = None,
    index_all: Annotated[bool, typer.Option(
        "--index-all", help="Every rule reads every event, whatever its index.")] = False,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Say which indices the input holds and which rules read them.")
    ] = False,
) -> None:
    """Run detection rules over logs and print the alerts Elastic Security would raise.

    Example: vigil detect evidence/ --format ndjson --output alerts.ndjson
    """
    from vigil.commands.detect import DetectRequest, run_detect

    if logon_id not in ("intended", "elastic"):
        raise typer.BadParameter("use intended or elastic", param_hint="--logon-id")
    request = DetectRequest(
        paths=paths, rules=rule or (), exceptions=exceptions, output_format=output_format,
        output=output, logon_id="elastic" if logon_id == "elastic" else "intended",
        max_signals=max_signals, start=_parse_time(start, "--from"),
        end=_parse_time(end, "--to"), index_all=index_all, explain=explain,
    )
    raise typer.Exit(run_detect(request))


@app.command("convert")
def convert_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders of Windows events.")],
    to: Annotated[str, typer.Option(
        "--to", help="ndjson (ECS documents) or bulk (Elasticsearch _bulk body).")] = "ndjson",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    logon_id: Annotated[str, typer.Option(
        "--logon-id", help="intended (default) or elastic; see vigil detect --help.")
    ] = "intended",
) -> None:
    """Convert EVTX / OTRF JSON to Winlogbeat-compatible ECS documents.

    Example: vigil convert Security.evtx --to bulk -o bulk.ndjson
    """
    from vigil.commands.convert import run_convert

    if logon_id not in ("intended", "elastic"):
        raise typer.BadParameter("use intended or elastic", param_hint="--logon-id")
    raise typer.Exit(run_convert(paths, to, output,
                                 "elastic" if logon_id == "elastic" else "intended"))


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

    from vigil.rules import render_rule_list

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

    from vigil.rules import find_rule, render_rule

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
    for skipped in result.skipped:
        typer.echo(terminal_text(str(skipped)), err=True)
    typer.echo(validation_summary(len(result.rules), list(result.errors)))
    raise typer.Exit(2 if result.errors else 0)


def main() -> None:
    app(prog_name="vigil")


if __name__ == "__main__":
    main()
