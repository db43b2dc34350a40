"""What ``vigil alerts list|show|ack|close|reopen|export`` print, as library functions.

The CLI parses options and prints what these return. Values in alerts come from logs and are
attacker-controlled: every one goes through ``terminal_text`` and into a ``rich.text.Text``
(never a markup string, so "[bold]" in a user name stays text).
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

import orjson
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from vigil.report.safe import terminal_text
from vigil.store.model import (
    AlertFilter,
    AlertStore,
    Execution,
    StatusChange,
    StoredAlert,
    StoreError,
    WorkflowStatus,
    alert_summary,
    lookup,
    normalize_time,
    utc_now,
    workflow_status,
)

ALERTS_INDEX = ".alerts-security.alerts-default"
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
_STATUS_STYLE = {"open": "bold", "acknowledged": "yellow", "closed": "dim"}
_RELATIVE = re.compile(r"^(?:now-)?(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MIN_PREFIX = 6


def _cell(value: Any, limit: int = 80, style: str = "") -> Text:
    if value is None:
        return Text("")
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    text = terminal_text(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return Text(text, style=style)


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """A ``--since``/``--until`` value: ISO-8601 (a date, or date and time, UTC unless an
    offset is given), ``now``, or a time ago: ``30m``, ``24h``, ``7d``, ``now-2w``."""
    value = text.strip()
    moment = now or utc_now()
    if value == "now":
        return moment
    relative = _RELATIVE.match(value)
    if relative:
        return moment - timedelta(seconds=int(relative.group(1)) * _UNITS[relative.group(2)])
    normalized = normalize_time(value)
    if normalized is None:
        raise StoreError(f"{text!r} is not a time: use ISO-8601 (2024-05-01T10:00:00Z), "
                         "or a time ago (30m, 24h, 7d)")
    return datetime.fromisoformat(normalized[:26] + "+00:00")


def alert_filter(*, rule: str | None = None, host: str | None = None,
                 status: str | None = None, since: str | None = None,
                 until: str | None = None, include_building_blocks: bool = False,
                 limit: int | None = None, now: datetime | None = None) -> AlertFilter:
    """An ``AlertFilter`` from command-line option values (StoreError on a bad value)."""
    return AlertFilter(
        rule=rule, host=host, status=None if status is None else workflow_status(status),
        since=None if since is None else parse_when(since, now),
        until=None if until is None else parse_when(until, now),
        include_building_blocks=include_building_blocks, limit=limit)


# ---------------------------------------------------------------- list / show


def _short_time(value: str | None) -> str:
    # The stored form has nine fractional digits; milliseconds are enough on screen.
    return "" if value is None else value[:23].replace("T", " ") + "Z"


def alerts_table(alerts: Sequence[StoredAlert], *, total: int | None = None) -> RenderableType:
    """``vigil alerts list``: one row per alert, newest first."""
    if not alerts:
        return Text("no alerts match")
    shown = f"{len(alerts)} alert(s)" if total is None or total == len(alerts) else \
        f"{len(alerts)} of {total} alert(s)"
    table = Table(title=shown, title_justify="left")
    for column in ("id", "time", "rule", "severity", "status", "host", "user", "source.ip"):
        table.add_column(column, overflow="fold")
    for alert in alerts:
        table.add_row(
            _cell(alert.id[:12]),
            _cell(_short_time(alert.original_time)),
            _cell(alert.rule_name, 50),
            _cell(alert.severity, style=_SEVERITY_STYLE.get(alert.severity, "")),
            _cell(alert.workflow_status, style=_STATUS_STYLE.get(alert.workflow_status, "")),
            _cell(alert.host),
            _cell(alert.user),
            _cell(alert.source_ip),
        )
    return table


def _fields_table(rows: Sequence[tuple[str, Any]]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        if value not in (None, "", [], {}):
            table.add_row(Text(name), _cell(value, 200))
    return table


def alert_view(alert: StoredAlert) -> RenderableType:
    """``vigil alerts show``: the alert, its summary, reason, status history and, for a
    sequence, its building blocks (the events) in stage order."""
    doc = alert.document
    rows: list[tuple[str, Any]] = [
        ("id", alert.id),
        ("rule", f"{alert.rule_name} ({alert.rule_id})"),
        ("severity", f"{alert.severity} (risk score {doc.get('kibana.alert.risk_score')})"),
        ("original time", alert.original_time),
        ("created", alert.created_at),
        ("status", alert.workflow_status),
        ("status changed", f"{alert.status_changed_at} by {alert.status_changed_by}"
         if alert.status_changed_at else None),
        ("reason", doc.get("kibana.alert.reason")),
    ]
    rows += [(label.replace("_", " "), value) for label, value in alert_summary(doc).items()]
    parts: list[RenderableType] = [_fields_table(rows)]
    if alert.building_blocks:
        events = Table(title=f"{len(alert.building_blocks)} event(s) of the sequence",
                       title_justify="left")
        for column in ("#", "time", "event.action", "event.code", "host", "building block id"):
            events.add_column(column, overflow="fold")
        for position, block in enumerate(alert.building_blocks):
            events.add_row(
                Text(str(position)),
                _cell(_short_time(block.original_time)),
                _cell(lookup(block.document, "event.action")),
                _cell(lookup(block.document, "event.code")),
                _cell(block.host),
                _cell(block.id[:12]),
            )
        parts.append(events)
    return Group(*parts)


def alert_json(alert: StoredAlert) -> str:
    """The alert's documents (building blocks first) as one JSON array, pretty, safe for a
    terminal (one document a program can parse, not documents one after another)."""
    text = orjson.dumps(list(alert.documents()), option=orjson.OPT_INDENT_2,
                        default=str).decode("utf-8")
    return terminal_text(text, keep_newlines=True)


def executions_table(executions: Sequence[Execution]) -> RenderableType:
    """Rule runs (newest first): window, outcome, Elastic's message, uncovered range."""
    if not executions:
        return Text("no executions")
    table = Table(title=f"{len(executions)} execution(s)", title_justify="left")
    for column in ("id", "rule", "window", "status", "events", "alerts", "ms", "message"):
        table.add_column(column, overflow="fold")
    for run in executions:
        message = run.message
        if run.gap is not None:
            message += f" [gap {run.gap.start.isoformat()} – {run.gap.end.isoformat()}]"
        table.add_row(
            Text(str(run.id)), _cell(run.rule_id, 40),
            _cell(f"{run.window_from.isoformat()} – {run.window_to.isoformat()}"),
            _cell(run.status, style="red" if run.status == "failed" else
                  "yellow" if run.status == "partial failure" else ""),
            Text(str(run.events_read)), Text(str(run.alerts_created)),
            Text("" if run.duration_ms is None else str(run.duration_ms)),
            _cell(message, 300))
    return table


# ---------------------------------------------------------------- ids and workflow


@dataclass(frozen=True, slots=True)
class Resolved:
    ids: tuple[str, ...]
    problems: tuple[str, ...]  # one line per reference that names no alert or several


def resolve_ids(store: AlertStore, refs: Sequence[str]) -> Resolved:
    """Full ids or unique prefixes (at least 6 characters) to full ids."""
    ids: list[str] = []
    problems: list[str] = []
    found = store.resolve_alert_ids(refs)
    for ref in refs:
        matches = found.get(ref, [])
        shown = terminal_text(ref)
        if len(matches) == 1 and (matches[0] == ref.strip().lower()
                                  or len(ref.strip()) >= _MIN_PREFIX):
            ids.append(matches[0])
        elif not matches:
            problems.append(f"{shown}: no such alert")
        elif len(matches) == 1:
            problems.append(f"{shown}: give at least {_MIN_PREFIX} characters of the id")
        else:
            problems.append(f"{shown}: matches several alerts "
                            f"({', '.join(m[:12] for m in matches[:3])}...); give more of the id")
    return Resolved(tuple(dict.fromkeys(ids)), tuple(problems))


_VERBS = {"open": "reopened", "acknowledged": "acknowledged", "closed": "closed"}


def current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@dataclass(frozen=True, slots=True)
class StatusResult:
    change: StatusChange
    problems: tuple[str, ...]
    message: str

    @property
    def ok(self) -> bool:
        return not self.problems


def change_status(store: AlertStore, refs: Sequence[str], status: WorkflowStatus | str,
                  who: str | None = None, *, at: datetime | None = None) -> StatusResult:
    """``vigil alerts ack|close|reopen ID...``: change what the references name; the
    message says what changed, and ``problems`` what could not be found."""
    target = workflow_status(status)
    resolved = resolve_ids(store, refs)
    # A building block follows its shell (Kibana changes the alert, not one of its events):
    # a reference to one changes the whole alert it belongs to.
    ids: list[str] = []
    for alert_id in resolved.ids:
        alert = store.get_alert(alert_id)
        group = alert.group_id if alert is not None and alert.is_building_block else None
        ids.append(group or alert_id)
    change = store.set_workflow_status(tuple(dict.fromkeys(ids)), target,
                                       who or current_user(), at=at)
    resolved = Resolved(tuple(dict.fromkeys(ids)), resolved.problems)
    requested = set(resolved.ids)
    main = [i for i in change.changed if i in requested]
    blocks = len(change.changed) - len(main)
    parts = [f"{_VERBS[target]} {len(main)} alert(s)"]
    if blocks:
        parts[0] += f" and {blocks} building block(s)"
    if change.unchanged:
        parts.append(f"{len(change.unchanged)} already {target}")
    problems = (*resolved.problems, *(f"{terminal_text(m)}: no such alert"
                                      for m in change.missing))
    return StatusResult(change, problems, "; ".join(parts))


# ---------------------------------------------------------------- export


def export_ndjson(store: AlertStore, filters: AlertFilter, out: IO[bytes], *,
                  bulk_index: str | None = None, elastic_only: bool = False) -> int:
    """``vigil alerts export --format ndjson``: one alert document per line, building blocks
    before their shell; returns the number of documents.

    ``bulk_index`` writes Elasticsearch ``_bulk`` input instead: a ``create`` action with the
    alert id before each document, so loading it twice creates nothing twice (as Kibana
    ignores 409 on its own writes). ``elastic_only`` drops vigil's own ``vigil.*`` fields.
    """
    count = 0
    for document in store.export_alerts(filters):
        body: Mapping[str, Any] = document
        if elastic_only:
            body = {k: v for k, v in document.items() if not k.startswith("vigil.")}
        if bulk_index is not None:
            action = {"create": {"_index": bulk_index, "_id": document["kibana.alert.uuid"]}}
            out.write(orjson.dumps(action) + b"\n")
        out.write(orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        count += 1
    return count
