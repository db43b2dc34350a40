"""Alerts out: a terminal table, Elastic alert documents (NDJSON), a CSV timeline.

Field values come from logs and are attacker-controlled: the table strips terminal control
sequences, the CSV neutralises spreadsheet formulas, NDJSON is plain JSON.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import orjson

from vigil.detect.alerts import Alert
from vigil.eql.schema import raw_getter
from vigil.report.safe import csv_cell, display_time, terminal_text
from vigil.times import sort_key

if TYPE_CHECKING:  # rich is imported where a table is drawn: NDJSON and CSV runs skip it
    from rich.console import Console
    from rich.table import Table

_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def _text(value: Any, limit: int = 80) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    text = terminal_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summary_text(summary: Mapping[str, Any], skip: Sequence[str]) -> str:
    return "; ".join(f"{k.replace('_', ' ')}: {_text(v, 60)}" for k, v in summary.items()
                     if k not in skip)


# Shown in their own columns, or too detailed for a one-line summary.
_TABLE_SKIP = ("host", "user", "source_ip", "user_domain", "source_port", "logon_type")


def alerts_table(alerts: Sequence[Alert], width: int = 200) -> Table:
    """The alerts, one row each, event time first. The time never wraps; below 120 columns
    the user and source go into the summary, which is cut with an ellipsis at the line's
    end instead of wrapping (the full documents are in --format ndjson)."""
    from rich.table import Table
    from rich.text import Text

    narrow = width < 120
    summary_width = width - 96  # what time, severity, rule, host and the borders leave
    # Every cell a Text: log values are never read as rich markup ("[/x]" would end a style
    # that was never opened and crash; "[link=...]" would hide a hyperlink in the table).
    table = Table(title=f"{len(alerts)} alert(s)", title_justify="left", show_lines=False)
    table.add_column("time", no_wrap=True, min_width=24)
    table.add_column("severity", no_wrap=True, min_width=8)
    table.add_column("rule", overflow="fold", min_width=18, ratio=2)
    table.add_column("host", overflow="fold", min_width=12, ratio=1)
    if not narrow:
        table.add_column("user", overflow="fold", ratio=1)
        table.add_column("source.ip", overflow="fold", ratio=1)
        table.add_column("summary", overflow="fold", ratio=3)
    elif summary_width >= 12:
        table.add_column("summary", no_wrap=True, overflow="ellipsis",
                         max_width=summary_width)
    skip = _TABLE_SKIP if not narrow else tuple(k for k in _TABLE_SKIP
                                                if k not in ("user", "source_ip"))
    for alert in sorted(alerts, key=lambda a: str(a.document.get("kibana.alert.original_time"))):
        doc = alert.document
        summary = doc.get("vigil.summary") or _event_summary(alert)
        severity = str(doc.get("kibana.alert.severity", ""))
        cells = [Text(display_time(doc.get("kibana.alert.original_time"))),
                 Text(_text(severity), style=_SEVERITY_STYLE.get(severity, "")),
                 Text(_text(alert.rule.name, 50)),
                 Text(_text(summary.get("host")))]
        if not narrow:
            cells += [Text(_text(summary.get("user"))), Text(_text(summary.get("source_ip")))]
        if not narrow or summary_width >= 12:
            cells.append(Text(_summary_text(summary, skip)))
        table.add_row(*cells)
    return table


def _event_summary(alert: Alert) -> dict[str, Any]:
    from vigil.detect.alerts import summary

    return summary(list(alert.events))


def print_table(alerts: Sequence[Alert], console: Console) -> None:
    if not alerts:
        console.print("no alerts", markup=False)
        return
    console.print(alerts_table(alerts, console.width))


def write_ndjson(alerts: Iterable[Alert], out: IO[bytes]) -> int:
    """Every document (building blocks, then the shell), one JSON object per line."""
    count = 0
    for alert in alerts:
        for doc in alert.documents():
            out.write(orjson.dumps(doc, default=str) + b"\n")
            count += 1
    return count


TIMELINE_COLUMNS = (
    "datetime", "timestamp_desc", "message", "rule", "severity", "risk_score", "alert_id",
    "stage", "host", "user", "source_ip", "logon_id", "event_code", "event_action",
    "service_name", "service_file_name", "process", "command_line", "evidence_file",
    "evidence_position",
)
_TIMELINE_FIELDS = {
    "host": ("host.name", "winlog.computer_name"),
    "user": ("user.name", "winlog.event_data.TargetUserName", "winlog.event_data.SubjectUserName"),
    "source_ip": ("source.ip",),
    "logon_id": ("winlog.logon.id",),
    "event_code": ("event.code", "winlog.event_id"),
    "event_action": ("event.action",),
    "service_name": ("service.name", "winlog.event_data.ServiceName"),
    "service_file_name": ("winlog.event_data.ServiceFileName",),
    "process": ("process.executable", "process.name"),
    "command_line": ("process.command_line",),
    "evidence_file": ("vigil.source.path", "log.file.path"),
    "evidence_position": ("vigil.source.position",),
}
_TIMELINE_GETTERS = {k: tuple(raw_getter(f) for f in v) for k, v in _TIMELINE_FIELDS.items()}


def _lookup(event: Mapping[str, Any], column: str) -> Any:
    for get in _TIMELINE_GETTERS[column]:
        value = get(event)
        if value not in (None, ""):
            return ", ".join(map(str, value)) if isinstance(value, list) else value
    return None


def write_csv(alerts: Iterable[Alert], out: IO[str]) -> int:
    """A timeline, one row per event of each alert (Timesketch's columns first), in event
    time order (rows without a time last, in alert order)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TIMELINE_COLUMNS)
    timeline: list[dict[str, Any]] = []
    for alert in alerts:
        doc = alert.document
        for stage, event in enumerate(alert.events):
            row: dict[str, Any] = {
                "datetime": event.get("@timestamp"),
                "timestamp_desc": "Event Time",
                "message": doc.get("kibana.alert.reason"),
                "rule": alert.rule.name,
                "severity": doc.get("kibana.alert.severity"),
                "risk_score": doc.get("kibana.alert.risk_score"),
                "alert_id": alert.id,
                "stage": stage,
            }
            for column in _TIMELINE_FIELDS:
                row[column] = _lookup(event, column)
            timeline.append(row)
    timeline.sort(key=lambda r: sort_key(r["datetime"]))  # stable: a sequence keeps its order
    for row in timeline:
        writer.writerow([csv_cell(row.get(c)) for c in TIMELINE_COLUMNS])
    return len(timeline)


def csv_text(alerts: Iterable[Alert]) -> str:
    buffer = io.StringIO()
    write_csv(alerts, buffer)
    return buffer.getvalue()
