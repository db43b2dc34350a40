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

from vigil.report.safe import display_time, terminal_text
from vigil.store.model import (
    AlertFilter,
    AlertStore,
    CloseReason,
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


def alerts_table(alerts: Sequence[StoredAlert], *, total: int | None = None,
                 width: int = 200) -> RenderableType:
    """``vigil alerts list``: one row per alert, newest first, event time first. The time
    never wraps; below 120 columns the user and source columns go, the id is cut to 8
    characters (any 6 name an alert) and the box loses its vertical lines."""
    from rich import box

    if not alerts:
        return Text("no alerts match")
    shown = f"{len(alerts)} alert(s)" if total is None or total == len(alerts) else \
        f"{len(alerts)} of {total} alert(s)"
    narrow = width < 120
    table = Table(title=shown, title_justify="left",
                  box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD)
    table.add_column("time", no_wrap=True, min_width=24)  # a timestamp never wraps
    table.add_column("id", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("status", overflow="fold")
    table.add_column("rule", overflow="fold", ratio=2)
    table.add_column("host", overflow="fold", ratio=1)
    if not narrow:
        table.add_column("user", overflow="fold", ratio=1)
        table.add_column("source.ip", overflow="fold", ratio=1)
    for alert in alerts:
        cells = [
            _cell(display_time(alert.original_time)),
            _cell(alert.id[:8] if narrow else alert.id[:12]),
            _cell(alert.severity, style=_SEVERITY_STYLE.get(alert.severity, "")),
            _cell(alert.workflow_status, style=_STATUS_STYLE.get(alert.workflow_status, "")),
            _cell(alert.rule_name, 50),
            _cell(alert.host),
        ]
        if not narrow:
            cells += [_cell(alert.user), _cell(alert.source_ip)]
        table.add_row(*cells)
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
        ("original time", display_time(alert.original_time)),
        ("created", display_time(alert.created_at)),
        ("status", alert.workflow_status),
        ("status changed", f"{display_time(alert.status_changed_at)} by {alert.status_changed_by}"
         if alert.status_changed_at else None),
        ("closing reason", str(doc["kibana.alert.workflow_reason"]).replace("_", " ")
         if doc.get("kibana.alert.workflow_reason") else None),
        ("reason", doc.get("kibana.alert.reason")),
    ]
    rows += [(label.replace("_", " "), value) for label, value in alert_summary(doc).items()]
    parts: list[RenderableType] = [_fields_table(rows)]
    if alert.building_blocks:
        events = Table(title=f"{len(alert.building_blocks)} event(s) of the sequence",
                       title_justify="left")
        for column in ("#", "time", "event.action", "event.code", "host", "building block id"):
            if column == "time":
                events.add_column(column, no_wrap=True, min_width=24)
            else:
                events.add_column(column, overflow="fold")
        for position, block in enumerate(alert.building_blocks):
            events.add_row(
                Text(str(position)),
                _cell(display_time(block.original_time)),
                _cell(lookup(block.document, "event.action")),
                _cell(lookup(block.document, "event.code")),
                _cell(block.host),
                _cell(block.id[:12]),
            )
        parts.append(events)
    if alert.notes:
        notes = Table(title=f"{len(alert.notes)} note(s)", title_justify="left")
        notes.add_column("time", no_wrap=True, min_width=24)
        for column in ("by", "status", "note"):
            notes.add_column(column, overflow="fold")
        for entry in alert.notes:
            notes.add_row(_cell(display_time(entry.at)), _cell(entry.by), _cell(entry.status),
                          Text(terminal_text(entry.text, keep_newlines=True)))
        parts.append(notes)
    return Group(*parts)


def alert_json(alert: StoredAlert) -> str:
    """The alert's documents (building blocks first) as one JSON array, pretty, safe for a
    terminal (one document a program can parse, not documents one after another)."""
    text = orjson.dumps(list(alert.documents()), option=orjson.OPT_INDENT_2,
                        default=str).decode("utf-8")
    return terminal_text(text, keep_newlines=True)


def executions_table(executions: Sequence[Execution], *, width: int = 200) -> RenderableType:
    """Rule runs (newest first): window, outcome, Elastic's message, uncovered range. The
    window's bounds are two columns that never wrap; below 120 columns the run time goes."""
    if not executions:
        return Text("no executions")
    narrow = width < 120
    table = Table(title=f"{len(executions)} execution(s)", title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("from", no_wrap=True, min_width=24)
    table.add_column("to", no_wrap=True, min_width=24)
    for column in ("rule", "status", "events", "alerts", *(() if narrow else ("ms",)),
                   "message"):
        table.add_column(column, overflow="fold", ratio=2 if column in ("rule", "message")
                         else None)
    for run in executions:
        message = run.message
        if run.gap is not None:
            message += f" [gap {display_time(run.gap.start)} – {display_time(run.gap.end)}]"
        cells = [
            Text(str(run.id)), _cell(display_time(run.window_from)),
            _cell(display_time(run.window_to)), _cell(run.rule_id, 40),
            _cell(run.status, style="red" if run.status == "failed" else
                  "yellow" if run.status == "partial failure" else ""),
            Text(str(run.events_read)), Text(str(run.alerts_created))]
        if not narrow:
            cells.append(Text("" if run.duration_ms is None else str(run.duration_ms)))
        cells.append(_cell(message, 300))
        table.add_row(*cells)
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
                  who: str | None = None, *, at: datetime | None = None,
                  reason: CloseReason | None = None, note: str | None = None) -> StatusResult:
    """``vigil alerts ack|close|reopen ID... [--reason R] [--note TEXT]``: change what the
    references name; the message says what changed, and ``problems`` what could not be
    found."""
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
                                       who or current_user(), at=at, reason=reason, note=note)
    resolved = Resolved(tuple(dict.fromkeys(ids)), resolved.problems)
    requested = set(resolved.ids)
    main = [i for i in change.changed if i in requested]
    blocks = len(change.changed) - len(main)
    parts = [f"{_VERBS[target]} {len(main)} alert(s)"]
    if blocks:
        parts[0] += f" and {blocks} building block(s)"
    if reason is not None and main:
        parts[0] += f" as {reason.replace('_', ' ')}"
    if change.unchanged:
        parts.append(f"{len(change.unchanged)} already {target}")
    if note and resolved.ids:
        parts.append(f"note added to {len(resolved.ids)}")
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
