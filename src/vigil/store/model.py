"""What the alert store holds and the interface every store implements.

The store is the memory of continuous detection (issue 6): per rule, where the schedule stands;
per execution, its window and outcome in Elastic's words (ELASTIC_ENGINE.md §2, §5.3); the alert
documents with their workflow status (§3, §5.4); and the webhook outbox.

Times are stored as UTC ISO-8601 text with nine fractional digits ("2024-05-01T10:00:00.
123000000Z"): fixed width, so SQL compares them as text in time order, and nanoseconds from
the logs survive. The API takes and returns aware ``datetime`` values for schedule times (naive
ones are read as UTC) and normalised strings for alert event times, which may carry nanoseconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, get_args

from vigil.errors import VigilError

if TYPE_CHECKING:
    from vigil.rules.model import Rule


class StoreError(VigilError):
    """The store cannot do what was asked: unreadable file, newer schema, unknown id..."""


ExecutionStatus = Literal["running", "succeeded", "partial failure", "failed"]
EXECUTION_STATUSES: tuple[str, ...] = ("running", "succeeded", "partial failure", "failed")
FINAL_STATUSES: tuple[str, ...] = ("succeeded", "partial failure", "failed")

WorkflowStatus = Literal["open", "acknowledged", "closed"]
WORKFLOW_STATUSES: tuple[str, ...] = ("open", "acknowledged", "closed")

# Elastic's message for a successful run (§5.3).
SUCCEEDED_MESSAGE = "Rule execution completed successfully"


_WORKFLOW: dict[str, WorkflowStatus] = {
    "open": "open", "acknowledged": "acknowledged", "closed": "closed",
    # Kibana's legacy name for acknowledged (ELASTIC_ENGINE.md §5.4), and CLI verbs.
    "in-progress": "acknowledged", "ack": "acknowledged", "acknowledge": "acknowledged",
    "close": "closed", "reopen": "open"}
_EXECUTION: dict[str, ExecutionStatus] = {
    "running": "running", "succeeded": "succeeded", "partial failure": "partial failure",
    "failed": "failed"}


# Kibana's closing reasons, stored in ``kibana.alert.workflow_reason`` when an alert is closed
# and removed by any other status change (Kibana's set_alerts_status route and its
# "Close alert" menu: Duplicate, False positive, True positive, Benign positive, Other).
CloseReason = Literal["duplicate", "false_positive", "true_positive", "benign_positive",
                      "other"]
CLOSE_REASONS: tuple[str, ...] = get_args(CloseReason)
# A note is the analyst's text; bounded so a pasted log cannot bloat the store.
MAX_NOTE_CHARS = 10_000


def close_reason(value: str) -> CloseReason:
    """A closing reason from user input (``false-positive`` and ``False positive`` too)."""
    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    if key in CLOSE_REASONS:
        return cast("CloseReason", key)
    raise StoreError(f"unknown closing reason {value!r}: expected one of "
                     f"{', '.join(CLOSE_REASONS)}")


@dataclass(frozen=True, slots=True)
class AlertNote:
    """An analyst's note on an alert, with the status change it came with."""

    at: str
    by: str
    status: WorkflowStatus
    text: str


def workflow_status(value: str) -> WorkflowStatus:
    """A workflow status from user input (aliases accepted), or StoreError."""
    found = _WORKFLOW.get(value.strip().lower())
    if found is None:
        raise StoreError(f"unknown workflow status {value!r}: expected one of "
                         f"{', '.join(WORKFLOW_STATUSES)}")
    return found


def execution_status(value: str) -> ExecutionStatus:
    found = _EXECUTION.get(value)
    if found is None:
        raise StoreError(f"unknown execution status {value!r}: expected one of "
                         f"{', '.join(EXECUTION_STATUSES)}")
    return found


# ---------------------------------------------------------------- time

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9})\d*)?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _format(moment: datetime, nanos: int) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def normalize_time(value: object) -> str | None:
    """``value`` (ISO-8601 text, epoch milliseconds, or datetime) as the store's sortable UTC
    text; ``None`` when it is not a time."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
        return _format(moment.replace(microsecond=0), moment.microsecond * 1000)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        try:
            millis = float(value)
            moment = _EPOCH + timedelta(milliseconds=millis)
        except (OverflowError, ValueError):
            return None
        return normalize_time(moment)
    if not isinstance(value, str):
        return None
    found = _ISO.match(value.strip())
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                          int(second or 0), tzinfo=UTC)
    except ValueError:
        return None
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        moment -= sign * offset
    nanos = int((fraction or "").ljust(9, "0"))
    return _format(moment, nanos)


def to_datetime(text: str | None) -> datetime | None:
    """The store's time text back as an aware datetime (microsecond precision)."""
    if text is None:
        return None
    normalized = normalize_time(text)
    if normalized is None:
        raise StoreError(f"stored time {text!r} is not ISO-8601")
    return datetime.fromisoformat(normalized[:26] + "+00:00")


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- documents


def lookup(document: Mapping[str, Any], name: str) -> Any:
    """A field of a document whose keys may be dotted ("host.name"), nested, or both."""
    if name in document:
        return document[name]
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        inner = document.get(".".join(parts[:cut]))
        if isinstance(inner, Mapping):
            found = lookup(inner, ".".join(parts[cut:]))
            if found is not None:
                return found
    return None


def field_text(value: Any) -> str | None:
    """A document value as one line of text: the first element of a list; None if empty."""
    if isinstance(value, list):
        value = next((v for v in value if v not in (None, "")), None)
    if value is None or value == "" or isinstance(value, Mapping):
        return None
    return str(value)


# Where a single-event alert (which has no vigil.summary) keeps what a summary shows.
_SUMMARY_FALLBACK: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("host", ("host.name", "winlog.computer_name")),
    ("user", ("user.name", "winlog.event_data.TargetUserName",
              "winlog.event_data.SubjectUserName")),
    ("source_ip", ("source.ip",)),
    ("logon_id", ("winlog.logon.id",)),
    ("service_name", ("service.name", "winlog.event_data.ServiceName")),
    ("service_file_name", ("winlog.event_data.ServiceFileName",)),
    ("process", ("process.executable", "process.name")),
)


def alert_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """The alert's ``vigil.summary`` (shells have one), else the same labels read from the
    alert's own fields."""
    given = document.get("vigil.summary")
    if isinstance(given, Mapping) and given:
        return dict(given)
    out: dict[str, Any] = {}
    for label, names in _SUMMARY_FALLBACK:
        for name in names:
            value = field_text(lookup(document, name))
            if value is not None:
                out[label] = value
                break
    return out


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where one rule's schedule stands (Kibana keeps this in the rule's task state)."""

    rule_id: str
    name: str
    version: int = 1
    interval: str = "5m"
    enabled: bool = True
    last_scheduled_start: datetime | None = None
    last_status: ExecutionStatus | None = None
    last_message: str = ""
    last_execution_id: int | None = None

    @classmethod
    def from_rule(cls, rule: Rule) -> RuleState:
        return cls(rule_id=rule.rule_id, name=rule.name, version=rule.version,
                   interval=rule.interval, enabled=rule.enabled)


@dataclass(frozen=True, slots=True)
class FileBlock:
    """A byte range of a watched file and the @timestamp range (ns) of its events."""

    path: str
    inode: int
    start_offset: int
    end_offset: int
    first_line: int
    min_ts: int | None
    max_ts: int | None


@dataclass(frozen=True, slots=True)
class Gap:
    """A time range no execution searched (Elastic's ``gapRange``: gte/lte, both inclusive)."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Execution:
    id: int
    rule_id: str
    scheduled_start: datetime
    window_from: datetime
    window_to: datetime
    started_at: datetime
    status: ExecutionStatus
    message: str = ""
    finished_at: datetime | None = None
    duration_ms: int | None = None
    events_read: int = 0
    alerts_created: int = 0
    gap: Gap | None = None


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """One stored alert document and the columns extracted from it for filtering.
    ``building_blocks`` is filled by ``get_alert`` (a shell's events), empty in listings."""

    id: str
    rule_id: str
    rule_name: str
    group_id: str | None
    is_building_block: bool
    original_time: str | None
    severity: str
    risk_score: float | None
    host: str | None
    user: str | None
    source_ip: str | None
    workflow_status: WorkflowStatus
    status_changed_by: str | None
    status_changed_at: str | None
    created_at: str
    execution_id: int | None
    document: dict[str, Any] = field(repr=False)
    building_blocks: tuple[StoredAlert, ...] = ()
    notes: tuple[AlertNote, ...] = ()

    @property
    def is_sequence_member(self) -> bool:
        """A building block of a sequence (its group is another document, the shell)."""
        return self.group_id is not None and self.group_id != self.id

    def documents(self) -> list[dict[str, Any]]:
        """The building blocks, then this document: the order an alerts index receives."""
        return [*(b.document for b in self.building_blocks), self.document]


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts to list or export. ``rule`` matches a rule_id or a rule name (any case);
    ``host`` a host name (any case); ``since``/``until`` bound the original (event) time,
    both inclusive. Building blocks of sequences follow their shell in exports."""

    rule: str | None = None
    host: str | None = None
    status: WorkflowStatus | None = None
    since: datetime | str | None = None
    until: datetime | str | None = None
    include_building_blocks: bool = False
    limit: int | None = None


ALL_ALERTS = AlertFilter()


@dataclass(frozen=True, slots=True)
class StatusChange:
    """Result of a workflow change: ids changed (building blocks included) and ids unknown."""

    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the webhook outbox."""

    id: int
    alert_id: str
    state: Literal["pending", "delivered"]
    attempts: int
    enqueued_at: str
    next_attempt_at: float
    last_error: str | None
    last_status: int | None
    delivered_at: str | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A notification given up after its attempts; kept for an operator to replay."""

    id: int
    alert_id: str
    attempts: int
    enqueued_at: str
    dead_at: str
    last_error: str
    last_status: int | None


# ---------------------------------------------------------------- the interface


class AlertStore(Protocol):
    """What the scheduler, ``vigil alerts`` and the webhook worker need from a store.

    One store object belongs to one thread; ``reopen()`` gives another thread its own.
    Every write method is atomic; inside ``transaction()`` they join one atomic unit.
    """

    def transaction(self) -> AbstractContextManager[None]: ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...

    def add_commit_listener(self, callback: Callable[[], None]) -> None: ...

    def remove_commit_listener(self, callback: Callable[[], None]) -> None: ...

    def reopen(self) -> AlertStore: ...

    def close(self) -> None: ...

    # rules
    def get_rule_state(self, rule_id: str) -> RuleState | None: ...

    def set_rule_state(self, state: RuleState) -> None: ...

    def list_rule_states(self) -> list[RuleState]: ...

    # executions
    def record_execution_start(self, rule_id: str, scheduled_start: datetime,
                               window_from: datetime, window_to: datetime, *,
                               started_at: datetime | None = None) -> int: ...

    def finish_execution(self, execution_id: int, status: ExecutionStatus, message: str = "",
                         *, events_read: int = 0, alerts_created: int | None = None,
                         gap: Gap | None = None,
                         finished_at: datetime | None = None) -> Execution: ...

    def complete_execution(self, execution_id: int, status: ExecutionStatus,
                           message: str = "", *, documents: Iterable[Mapping[str, Any]] = (),
                           events_read: int = 0, gap: Gap | None = None, notify: bool = False,
                           rule_state: RuleState | None = None) -> list[str]: ...

    def get_execution(self, execution_id: int) -> Execution | None: ...

    def list_executions(self, rule: str | None = None, status: str | None = None,
                        limit: int | None = None) -> list[Execution]: ...

    def mark_interrupted_executions(self, message: str | None = None) -> list[int]: ...

    # alerts
    def insert_alerts(self, documents: Iterable[Mapping[str, Any]],
                      execution_id: int | None = None, *, notify: bool = False) -> list[str]: ...

    def get_alert(self, alert_id: str) -> StoredAlert | None: ...

    def resolve_alert_ids(self, refs: Sequence[str]) -> dict[str, list[str]]: ...

    def list_alerts(self, filters: AlertFilter = ALL_ALERTS) -> list[StoredAlert]: ...

    def count_alerts(self, filters: AlertFilter = ALL_ALERTS) -> int: ...

    def export_alerts(self, filters: AlertFilter = ALL_ALERTS) -> Iterator[dict[str, Any]]: ...

    def set_workflow_status(self, ids: Sequence[str], status: WorkflowStatus, who: str, *,
                            at: datetime | None = None, reason: CloseReason | None = None,
                            note: str | None = None) -> StatusChange: ...

    # webhook outbox
    def enqueue_notifications(self, alert_ids: Iterable[str]) -> int: ...

    def claim_notifications(self, limit: int, lease_seconds: float,
                            now: float | None = None) -> list[Delivery]: ...

    def record_delivery(self, delivery_id: int, status: int | None) -> None: ...

    def record_failure(self, delivery_id: int, error: str, status: int | None, *,
                       retry_at: float | None) -> None: ...

    def pending_notifications(self) -> int: ...

    def next_notification_due(self) -> float | None: ...

    def list_deliveries(self, state: str | None = None) -> list[Delivery]: ...

    def list_dead_letters(self) -> list[DeadLetter]: ...

    def requeue_dead_letters(self, ids: Sequence[int] | None = None) -> int: ...

    # the event-time index of watched files
    def record_file_block(self, block: FileBlock) -> None: ...

    def file_blocks(self, path: str, inode: int) -> list[FileBlock]: ...
