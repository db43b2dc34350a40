"""The SQLite alert store: one file, WAL, no server.

Choices, and why:

* **WAL**: readers (``vigil alerts list``, the webhook worker) never block the scheduler's
  writes, and a reader always sees a whole committed transaction, never a half-written one.
* **synchronous=FULL by default**: with WAL, NORMAL is already safe against a killed process
  (kill -9 loses nothing committed), but a power cut can drop the last commits — including an
  analyst's "close" or a webhook marked delivered, which would then be sent again. FULL costs
  one fsync per commit: executions commit once per rule run, so this is cheap. ``replay`` may
  choose ``synchronous="normal"``: everything it writes can be recomputed from the logs, and
  the deterministic ids make a re-run idempotent.
* **Explicit ``BEGIN IMMEDIATE``** for every write: the write lock is taken up front, so two
  processes wait for each other (busy timeout) instead of failing when a read transaction
  tries to upgrade to a write (SQLITE_BUSY without waiting).
* **Create-if-absent** for alerts (``ON CONFLICT DO NOTHING``), as Kibana's bulk create that
  ignores 409: an alert once stored is never overwritten, so a closed alert stays closed when
  an overlapping window finds the same sequence again.
* An execution's alerts, its final status, the rule's schedule position and the webhook outbox
  rows commit together (``complete_execution`` or one ``transaction()``): after a crash either
  all of it is there or none, and the next run searches the window again.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from vigil.store.model import (
    ALL_ALERTS,
    FINAL_STATUSES,
    MAX_NOTE_CHARS,
    SUCCEEDED_MESSAGE,
    AlertFilter,
    AlertNote,
    CloseReason,
    DeadLetter,
    Delivery,
    Execution,
    ExecutionStatus,
    FileBlock,
    Gap,
    RuleState,
    StatusChange,
    StoredAlert,
    StoreError,
    WorkflowStatus,
    alert_summary,
    close_reason,
    execution_status,
    field_text,
    normalize_time,
    to_datetime,
    utc_now,
    workflow_status,
)
from vigil.store.schema import migrate

Synchronous = Literal["full", "normal"]

_ALERT_COLUMNS = ("id, rule_id, rule_name, group_id, is_building_block, original_time, "
                  "severity, risk_score, host, user, source_ip, workflow_status, "
                  "status_changed_by, status_changed_at, created_at, execution_id, document")
_OUTBOX_COLUMNS = ("id, alert_id, state, attempts, enqueued_at, next_attempt_at, last_error, "
                   "last_status, delivered_at")
_EXPORT_BATCH = 500
_INTERRUPTED = ("vigil stopped before this execution finished; none of its alerts were stored "
                "and the next run searches its window again")


def open_store(path: str | Path, *, synchronous: Synchronous = "full",
               busy_timeout: float = 10.0) -> SqliteStore:
    """Open (creating and migrating as needed) the store at ``path``; ``":memory:"`` gives a
    private in-memory store (for tests; it cannot be reopened by another thread)."""
    memory = str(path) == ":memory:"
    file = None if memory else Path(path)
    if file is not None and not file.parent.is_dir():
        raise StoreError(f"{file}: folder {file.parent} does not exist")
    try:
        conn = sqlite3.connect(":memory:" if file is None else file, timeout=busy_timeout,
                               isolation_level=None)
    except sqlite3.Error as error:
        raise StoreError(f"{path}: cannot open the store: {error}") from error
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if file is not None:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{file}: SQLite refused WAL mode (journal mode {mode}); "
                                 "is the file on a network share?")
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn)
    except StoreError:
        conn.close()
        raise
    except sqlite3.DatabaseError as error:
        conn.close()
        raise StoreError(f"{path}: not a vigil store ({error})") from error
    except BaseException:
        conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return SqliteStore(conn, file, synchronous=synchronous, busy_timeout=busy_timeout)


def _summary_value(summary: Mapping[str, Any], label: str) -> str | None:
    return field_text(summary.get(label))


def _alert_row(document: Mapping[str, Any], execution_id: int | None,
               created_at: str) -> dict[str, Any]:
    alert_id = document.get("kibana.alert.uuid")
    if not isinstance(alert_id, str) or not alert_id:
        raise StoreError("an alert document without kibana.alert.uuid cannot be stored")
    rule_id = document.get("kibana.alert.rule.rule_id")
    if not isinstance(rule_id, str) or not rule_id:
        raise StoreError(f"alert {alert_id}: no kibana.alert.rule.rule_id")
    group_id = field_text(document.get("kibana.alert.group.id"))
    summary = alert_summary(document)
    group_index = document.get("kibana.alert.group.index")
    risk = document.get("kibana.alert.risk_score")
    status = document.get("kibana.alert.workflow_status")
    try:
        body = orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as error:
        raise StoreError(f"alert {alert_id}: not JSON: {error}") from error
    return {
        "id": alert_id,
        "rule_id": rule_id,
        "rule_name": field_text(document.get("kibana.alert.rule.name")) or "",
        "group_id": group_id,
        "group_index": group_index if isinstance(group_index, int) else None,
        "is_building_block": 1 if document.get("kibana.alert.building_block_type") else 0,
        "original_time": normalize_time(document.get("kibana.alert.original_time")),
        "severity": field_text(document.get("kibana.alert.severity")) or "",
        "risk_score": float(risk) if isinstance(risk, int | float) else None,
        "host": _summary_value(summary, "host"),
        "user": _summary_value(summary, "user"),
        "source_ip": _summary_value(summary, "source_ip"),
        "workflow_status": status if status in ("open", "acknowledged", "closed") else "open",
        "created_at": created_at,
        "execution_id": execution_id,
        "document": body.decode("utf-8"),
    }


def _kibana_time(moment: datetime) -> str:
    """Kibana's own timestamp shape: milliseconds, Z."""
    text = normalize_time(moment) or ""
    return text[:23] + "Z"


class SqliteStore:
    """An ``AlertStore`` over one SQLite file. One object per thread (``reopen()`` for
    another); it is a context manager that closes the connection."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None, *,
                 synchronous: Synchronous = "full", busy_timeout: float = 10.0) -> None:
        self._conn = conn
        self.path = path
        self._synchronous: Synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._depth = 0
        self._pending_callbacks: list[Callable[[], None]] = []
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()  # guards the listener list, which other threads edit
        self.damaged: list[str] = []  # ids of alert rows whose document could not be read

    # ------------------------------------------------------------ plumbing

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def reopen(self) -> SqliteStore:
        """A new connection to the same file, for another thread or process."""
        if self.path is None:
            raise StoreError("an in-memory store cannot be reopened")
        return open_store(self.path, synchronous=self._synchronous,
                          busy_timeout=self._busy_timeout)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: every store call inside joins it; nested blocks are savepoints."""
        if self._depth:
            name = f"vigil_{self._depth}"
            self._conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._conn.execute(f"ROLLBACK TO {name}")
                self._conn.execute(f"RELEASE {name}")
                raise
            finally:
                self._depth -= 1
            self._conn.execute(f"RELEASE {name}")
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(f"{self.path}: cannot write ({error})") from error
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._pending_callbacks.clear()
            self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            self._pending_callbacks.clear()
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        callbacks, self._pending_callbacks = self._pending_callbacks, []
        with self._lock:
            listeners = list(self._listeners)
        for callback in (*callbacks, *listeners):
            callback()

    @contextmanager
    def _read(self) -> Iterator[None]:
        """Several SELECTs seeing one snapshot."""
        if self._depth:
            yield
            return
        self._conn.execute("BEGIN")
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            self._conn.execute("COMMIT")

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the current transaction commits (now if there is none).
        It is dropped if the transaction rolls back. Callbacks must not raise."""
        if self._depth:
            self._pending_callbacks.append(callback)
        else:
            callback()

    def add_commit_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every committed write of this connection."""
        with self._lock:
            self._listeners.append(callback)

    def remove_commit_listener(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------ rules

    @staticmethod
    def _rule_state(row: sqlite3.Row) -> RuleState:
        status = row["last_status"]
        return RuleState(
            rule_id=row["rule_id"], name=row["name"], version=row["version"],
            interval=row["interval"], enabled=bool(row["enabled"]),
            last_scheduled_start=to_datetime(row["last_scheduled_start"]),
            last_status=None if status is None else execution_status(status),
            last_message=row["last_message"], last_execution_id=row["last_execution_id"])

    def get_rule_state(self, rule_id: str) -> RuleState | None:
        row = self._conn.execute("SELECT * FROM rules WHERE rule_id = ?", (rule_id,)).fetchone()
        return None if row is None else self._rule_state(row)

    def list_rule_states(self) -> list[RuleState]:
        rows = self._conn.execute("SELECT * FROM rules ORDER BY name, rule_id").fetchall()
        return [self._rule_state(row) for row in rows]

    def set_rule_state(self, state: RuleState) -> None:
        """Insert or replace the rule's row with ``state``."""
        if state.last_status is not None:
            execution_status(state.last_status)
        with self.transaction():
            self._conn.execute(
                """INSERT INTO rules (rule_id, name, version, interval, enabled,
                       last_scheduled_start, last_status, last_message, last_execution_id,
                       updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (rule_id) DO UPDATE SET name = excluded.name,
                       version = excluded.version, interval = excluded.interval,
                       enabled = excluded.enabled,
                       last_scheduled_start = excluded.last_scheduled_start,
                       last_status = excluded.last_status, last_message = excluded.last_message,
                       last_execution_id = excluded.last_execution_id,
                       updated_at = excluded.updated_at""",
                (state.rule_id, state.name, state.version, state.interval, int(state.enabled),
                 normalize_time(state.last_scheduled_start), state.last_status,
                 state.last_message, state.last_execution_id, normalize_time(utc_now())))

    # ------------------------------------------------------------ executions

    @staticmethod
    def _execution(row: sqlite3.Row) -> Execution:
        gap = None
        if row["gap_from"] is not None:
            start, end = to_datetime(row["gap_from"]), to_datetime(row["gap_to"])
            assert start is not None and end is not None  # written together
            gap = Gap(start, end)
        scheduled = to_datetime(row["scheduled_start"])
        window_from = to_datetime(row["window_from"])
        window_to = to_datetime(row["window_to"])
        started = to_datetime(row["started_at"])
        assert scheduled and window_from and window_to and started  # NOT NULL columns
        return Execution(
            id=row["id"], rule_id=row["rule_id"], scheduled_start=scheduled,
            window_from=window_from, window_to=window_to, started_at=started,
            status=execution_status(row["status"]), message=row["message"],
            finished_at=to_datetime(row["finished_at"]), duration_ms=row["duration_ms"],
            events_read=row["events_read"], alerts_created=row["alerts_created"], gap=gap)

    def record_execution_start(self, rule_id: str, scheduled_start: datetime,
                               window_from: datetime, window_to: datetime, *,
                               started_at: datetime | None = None) -> int:
        """A new execution in status ``running``; returns its id."""
        with self.transaction():
            cursor = self._conn.execute(
                """INSERT INTO executions (rule_id, scheduled_start, window_from, window_to,
                       started_at, status) VALUES (?, ?, ?, ?, ?, 'running')""",
                (rule_id, normalize_time(scheduled_start), normalize_time(window_from),
                 normalize_time(window_to), normalize_time(started_at or utc_now())))
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def get_execution(self, execution_id: int) -> Execution | None:
        row = self._conn.execute("SELECT * FROM executions WHERE id = ?",
                                 (execution_id,)).fetchone()
        return None if row is None else self._execution(row)

    def finish_execution(self, execution_id: int, status: ExecutionStatus, message: str = "",
                         *, events_read: int = 0, alerts_created: int | None = None,
                         gap: Gap | None = None,
                         finished_at: datetime | None = None) -> Execution:
        """Close a running execution with its final status and Elastic's message.

        ``alerts_created`` defaults to the documents stored with this execution id (building
        blocks included, as Kibana's bulk-create count). The rule's row, if any, takes the
        status and message, and its last scheduled start moves to this execution's (never
        backwards), so the scheduler's next window follows from it.
        """
        if status not in FINAL_STATUSES:
            raise StoreError(f"an execution finishes as one of {', '.join(FINAL_STATUSES)}, "
                             f"not {status!r}")
        with self.transaction():
            row = self._conn.execute("SELECT * FROM executions WHERE id = ?",
                                     (execution_id,)).fetchone()
            if row is None:
                raise StoreError(f"no execution {execution_id}")
            if row["status"] != "running":
                raise StoreError(f"execution {execution_id} already finished ({row['status']})")
            if alerts_created is None:
                alerts_created = int(self._conn.execute(
                    "SELECT count(*) FROM alerts WHERE execution_id = ?",
                    (execution_id,)).fetchone()[0])
            if not message and status == "succeeded":
                message = SUCCEEDED_MESSAGE
            finished = finished_at or utc_now()
            started = to_datetime(row["started_at"])
            assert started is not None
            duration = max(0, round((finished - started).total_seconds() * 1000))
            self._conn.execute(
                """UPDATE executions SET status = ?, message = ?, finished_at = ?,
                       duration_ms = ?, events_read = ?, alerts_created = ?, gap_from = ?,
                       gap_to = ? WHERE id = ?""",
                (status, message, normalize_time(finished), duration, events_read,
                 alerts_created, normalize_time(gap.start) if gap else None,
                 normalize_time(gap.end) if gap else None, execution_id))
            self._conn.execute(
                """UPDATE rules SET last_status = ?, last_message = ?, last_execution_id = ?,
                       last_scheduled_start = CASE
                           WHEN last_scheduled_start IS NULL OR last_scheduled_start < ?
                           THEN ? ELSE last_scheduled_start END,
                       updated_at = ?
                   WHERE rule_id = ?""",
                (status, message, execution_id, row["scheduled_start"],
                 row["scheduled_start"], normalize_time(utc_now()), row["rule_id"]))
            done = self.get_execution(execution_id)
        assert done is not None
        return done

    def complete_execution(self, execution_id: int, status: ExecutionStatus,
                           message: str = "", *, documents: Iterable[Mapping[str, Any]] = (),
                           events_read: int = 0, gap: Gap | None = None, notify: bool = False,
                           rule_state: RuleState | None = None) -> list[str]:
        """The end of a run in one transaction: store the alerts (create-if-absent), queue
        webhook notifications for the new shells if ``notify``, finish the execution, and
        replace the rule's state if given. Returns the ids actually inserted."""
        with self.transaction():
            inserted = self.insert_alerts(documents, execution_id, notify=notify)
            self.finish_execution(execution_id, status, message, events_read=events_read,
                                  gap=gap)
            if rule_state is not None:
                self.set_rule_state(rule_state)
        return inserted

    def list_executions(self, rule: str | None = None, status: str | None = None,
                        limit: int | None = None) -> list[Execution]:
        """Newest first; ``rule`` is a rule_id or a rule name (any case)."""
        sql = "SELECT * FROM executions"
        clauses: list[str] = []
        params: list[Any] = []
        if rule is not None:
            clauses.append("(rule_id = ? OR rule_id IN "
                           "(SELECT rule_id FROM rules WHERE name = ? COLLATE NOCASE))")
            params += [rule, rule]
        if status is not None:
            clauses.append("status = ?")
            params.append(execution_status(status))
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [self._execution(row) for row in self._conn.execute(sql, params)]

    def mark_interrupted_executions(self, message: str | None = None) -> list[int]:
        """Mark executions left ``running`` by a process that died as ``failed``. Call it
        when a scheduler starts, while no other scheduler uses this store."""
        with self.transaction():
            ids = [int(r[0]) for r in self._conn.execute(
                "SELECT id FROM executions WHERE status = 'running' ORDER BY id")]
            self._conn.execute(
                """UPDATE executions SET status = 'failed', message = ?, finished_at = ?
                   WHERE status = 'running'""",
                (message or _INTERRUPTED, normalize_time(utc_now())))
        return ids

    # ------------------------------------------------------------ alerts

    def insert_alerts(self, documents: Iterable[Mapping[str, Any]],
                      execution_id: int | None = None, *, notify: bool = False) -> list[str]:
        """Store alert documents, create-if-absent by ``kibana.alert.uuid``; returns the ids
        inserted now (in input order). With ``notify``, the new shells and single alerts
        are queued for the webhook in the same transaction."""
        created_at = normalize_time(utc_now())
        assert created_at is not None
        rows = [_alert_row(doc, execution_id, created_at) for doc in documents]
        inserted: list[str] = []
        with self.transaction():
            for row in rows:
                cursor = self._conn.execute(
                    """INSERT INTO alerts (id, rule_id, rule_name, group_id, group_index,
                           is_building_block, original_time, severity, risk_score, host, user,
                           source_ip, workflow_status, created_at, execution_id, document)
                       VALUES (:id, :rule_id, :rule_name, :group_id, :group_index,
                           :is_building_block, :original_time, :severity, :risk_score, :host,
                           :user, :source_ip, :workflow_status, :created_at, :execution_id,
                           :document)
                       ON CONFLICT (id) DO NOTHING""", row)
                if cursor.rowcount == 1:
                    inserted.append(row["id"])
            if notify and inserted:
                self.enqueue_notifications(inserted)
        return inserted

    def suppressing_alerts(self, rule_id: str, since: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """Per suppression instance id, the newest stored alert of the rule that still
        suppresses: created at or after ``since`` (its ``kibana.alert.start``) and not
        closed (Kibana's default on alert closure)."""
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        with self._read():
            rows = self._conn.execute(
                "SELECT id, document FROM alerts WHERE rule_id = ? AND workflow_status != "
                "'closed' AND is_building_block = 0 ORDER BY created_at", (rule_id,))
            for row in rows:
                document = self._document(row)
                if document is None:
                    continue
                instance = document.get("kibana.alert.instance.id")
                start = normalize_time(document.get("kibana.alert.start"))
                floor = normalize_time(since)
                if isinstance(instance, str) and start is not None and floor is not None \
                        and start >= floor:
                    found[instance] = (row["id"], document)
        return found

    def update_suppression(self, alert_id: str, end: str, docs_count: int,
                           last_detected: str) -> None:
        """Fold later alerts into a suppressing one: its suppression end and count, and
        when it was last detected (Kibana updates the existing alert in place)."""
        with self.transaction():
            row = self._conn.execute("SELECT id, document FROM alerts WHERE id = ?",
                                     (alert_id,)).fetchone()
            document = self._document(row) if row is not None else None
            if document is None:
                return
            document["kibana.alert.suppression.end"] = end
            document["kibana.alert.suppression.docs_count"] = docs_count
            document["kibana.alert.last_detected"] = last_detected
            self._conn.execute("UPDATE alerts SET document = ? WHERE id = ?",
                               (orjson.dumps(document, default=str,
                                             option=orjson.OPT_NON_STR_KEYS), alert_id))

    def _document(self, row: sqlite3.Row) -> dict[str, Any] | None:
        """The alert document of a row, or None (the row's id kept in ``damaged``) when the
        stored text is not a JSON object: one damaged row costs that alert, not the listing."""
        try:
            document = orjson.loads(row["document"])
        except (orjson.JSONDecodeError, TypeError):
            document = None
        if not isinstance(document, dict):
            if row["id"] not in self.damaged:
                self.damaged.append(row["id"])
            return None
        return document

    def _alert(self, row: sqlite3.Row, blocks: tuple[StoredAlert, ...] = ()) -> StoredAlert:
        document = self._document(row)
        if document is None:
            document = {"kibana.alert.uuid": row["id"],
                        "kibana.alert.rule.name": row["rule_name"],
                        "vigil.damaged": "the stored alert document is not valid JSON"}
        return StoredAlert(
            id=row["id"], rule_id=row["rule_id"], rule_name=row["rule_name"],
            group_id=row["group_id"], is_building_block=bool(row["is_building_block"]),
            original_time=row["original_time"], severity=row["severity"],
            risk_score=row["risk_score"], host=row["host"], user=row["user"],
            source_ip=row["source_ip"], workflow_status=workflow_status(row["workflow_status"]),
            status_changed_by=row["status_changed_by"],
            status_changed_at=row["status_changed_at"], created_at=row["created_at"],
            execution_id=row["execution_id"], document=document, building_blocks=blocks)

    def _members(self, group_ids: Sequence[str]) -> dict[str, list[StoredAlert]]:
        """The building blocks of these shells, in stage order."""
        found: dict[str, list[StoredAlert]] = {}
        for start in range(0, len(group_ids), _EXPORT_BATCH):
            chunk = list(group_ids[start:start + _EXPORT_BATCH])
            marks = ", ".join("?" * len(chunk))
            rows = self._conn.execute(
                f"""SELECT {_ALERT_COLUMNS} FROM alerts
                    WHERE group_id IN ({marks}) AND id != group_id
                    ORDER BY group_id, group_index, original_time, id""", chunk)
            for row in rows:
                found.setdefault(row["group_id"], []).append(self._alert(row))
        return found

    def get_alert(self, alert_id: str) -> StoredAlert | None:
        """The alert and, for a sequence shell, its building blocks."""
        with self._read():
            row = self._conn.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?",
                                     (alert_id,)).fetchone()
            if row is None:
                return None
            blocks: tuple[StoredAlert, ...] = ()
            if row["group_id"] == row["id"]:
                blocks = tuple(self._members([alert_id]).get(alert_id, []))
            notes = tuple(
                AlertNote(at=n["at"], by=n["by"], status=workflow_status(n["status"]),
                          text=n["text"])
                for n in self._conn.execute(
                    "SELECT at, by, status, text FROM alert_notes WHERE alert_id = ? "
                    "ORDER BY id", (alert_id,)))
        return dataclasses.replace(self._alert(row, blocks), notes=notes)

    def resolve_alert_ids(self, refs: Sequence[str]) -> dict[str, list[str]]:
        """For each reference, the ids it names: itself if stored, else the ids starting with
        it (a prefix, as users copy the first characters of a sha256)."""
        out: dict[str, list[str]] = {}
        for ref in refs:
            key = ref.strip().lower()
            if not key:
                out[ref] = []
                continue
            if self._conn.execute("SELECT 1 FROM alerts WHERE id = ?", (key,)).fetchone():
                out[ref] = [key]
                continue
            # A range on the primary key: LIKE would not use the index (it ignores case).
            rows = self._conn.execute(
                "SELECT id FROM alerts WHERE id >= ? AND id < ? ORDER BY id LIMIT 10",
                (key, key + "\U0010ffff")).fetchall()
            out[ref] = [str(r[0]) for r in rows]
        return out

    def _where(self, filters: AlertFilter, *, top_level: bool) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if top_level:
            clauses.append("(group_id IS NULL OR group_id = id)")
        if filters.rule is not None:
            # The forms --rule takes everywhere (rules.find_rule): a rule_id, a rule_id
            # prefix of at least 4 characters, or the rule's name in any case.
            wanted = filters.rule.strip()
            prefix = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("(rule_id = ? OR rule_name = ? COLLATE NOCASE"
                           " OR (? AND rule_id LIKE ? ESCAPE '\\'))")
            params += [wanted, wanted, len(wanted) >= 4, prefix + "%"]
        if filters.host is not None:
            clauses.append("host = ?")
            params.append(filters.host)
        if filters.status is not None:
            clauses.append("workflow_status = ?")
            params.append(workflow_status(filters.status))
        for bound, op in ((filters.since, ">="), (filters.until, "<=")):
            if bound is None:
                continue
            text = normalize_time(bound)
            if text is None:
                raise StoreError(f"{bound!r} is not a time (ISO-8601 expected)")
            clauses.append(f"original_time {op} ?")
            params.append(text)
        if not filters.include_building_blocks:
            clauses.append("is_building_block = 0")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def list_alerts(self, filters: AlertFilter = ALL_ALERTS) -> list[StoredAlert]:
        """Matching alerts, newest event first. Building blocks (of sequences, or of
        building-block rules) only with ``include_building_blocks``, as in Kibana's table."""
        where, params = self._where(filters, top_level=False)
        sql = (f"SELECT {_ALERT_COLUMNS} FROM alerts{where} "
               "ORDER BY original_time DESC, id")
        if filters.limit is not None:
            sql += " LIMIT ?"
            params.append(filters.limit)
        return [self._alert(row) for row in self._conn.execute(sql, params)]

    def count_alerts(self, filters: AlertFilter = ALL_ALERTS) -> int:
        where, params = self._where(filters, top_level=False)
        return int(self._conn.execute(f"SELECT count(*) FROM alerts{where}",
                                      params).fetchone()[0])

    def export_alerts(self, filters: AlertFilter = ALL_ALERTS) -> Iterator[dict[str, Any]]:
        """The documents of matching shells and single alerts, oldest event first, each
        sequence's building blocks just before its shell (they always follow their shell,
        whatever the filter). Reads in batches: no transaction stays open between yields."""
        where, params = self._where(filters, top_level=True)
        after: tuple[str, str] | None = None
        remaining = filters.limit
        while remaining is None or remaining > 0:
            page_where, page_params = where, list(params)
            if after is not None:
                page_where += (" AND " if page_where else " WHERE ") + \
                    "(coalesce(original_time, ''), id) > (?, ?)"
                page_params += list(after)
            size = _EXPORT_BATCH if remaining is None else min(_EXPORT_BATCH, remaining)
            with self._read():
                rows = self._conn.execute(
                    f"""SELECT {_ALERT_COLUMNS} FROM alerts{page_where}
                        ORDER BY coalesce(original_time, ''), id LIMIT ?""",
                    [*page_params, size]).fetchall()
                shells = [r["id"] for r in rows if r["group_id"] == r["id"]]
                members = self._members(shells)
            if not rows:
                return
            for row in rows:
                for block in members.get(row["id"], []):
                    if "vigil.damaged" not in block.document:
                        yield block.document
                document = self._document(row)
                if document is not None:
                    yield document
            last = rows[-1]
            after = (last["original_time"] or "", last["id"])
            if remaining is not None:
                remaining -= len(rows)

    def set_workflow_status(self, ids: Sequence[str], status: WorkflowStatus, who: str, *,
                            at: datetime | None = None, reason: CloseReason | None = None,
                            note: str | None = None) -> StatusChange:
        """Acknowledge, close or reopen alerts; a shell's building blocks follow it. The
        stored document changes too, as Kibana's update does: workflow_status,
        workflow_user, workflow_status_updated_at, and workflow_reason set when closing
        with a reason and removed otherwise. Like Kibana's update, an alert already in the
        target status is left as it is. ``note`` is recorded on each named alert (changed or
        not: a note on a closed alert is still worth keeping)."""
        target = workflow_status(status)
        if reason is not None:
            reason = close_reason(reason)
            if target != "closed":
                raise StoreError("a closing reason goes with closing alerts only")
        if note is not None:
            note = note.strip()
            if len(note) > MAX_NOTE_CHARS:
                raise StoreError(f"the note has {len(note)} characters; at most "
                                 f"{MAX_NOTE_CHARS} are kept")
        moment = at or utc_now()
        stamp = normalize_time(moment)
        changed: list[str] = []
        unchanged: list[str] = []
        missing: list[str] = []
        with self.transaction():
            for alert_id in dict.fromkeys(ids):
                row = self._conn.execute("SELECT id, group_id FROM alerts WHERE id = ?",
                                         (alert_id,)).fetchone()
                if row is None:
                    missing.append(alert_id)
                    continue
                if note:
                    self._conn.execute(
                        "INSERT INTO alert_notes (alert_id, at, by, status, text) "
                        "VALUES (?, ?, ?, ?, ?)", (alert_id, stamp, who, target, note))
                targets = [alert_id]
                if row["group_id"] == alert_id:
                    targets += [str(r[0]) for r in self._conn.execute(
                        "SELECT id FROM alerts WHERE group_id = ? AND id != group_id",
                        (alert_id,))]
                for member in targets:
                    current = self._conn.execute(
                        "SELECT workflow_status, document FROM alerts WHERE id = ?",
                        (member,)).fetchone()
                    if current["workflow_status"] == target:
                        if member == alert_id:
                            unchanged.append(member)
                        continue
                    document = orjson.loads(current["document"])
                    if not isinstance(document, dict):
                        raise StoreError(f"alert {member}: its stored document is damaged")
                    document["kibana.alert.workflow_status"] = target
                    document["kibana.alert.workflow_user"] = who
                    document["kibana.alert.workflow_status_updated_at"] = _kibana_time(moment)
                    if reason is not None:
                        document["kibana.alert.workflow_reason"] = reason
                    else:
                        document.pop("kibana.alert.workflow_reason", None)
                    self._conn.execute(
                        """UPDATE alerts SET workflow_status = ?, status_changed_by = ?,
                               status_changed_at = ?, document = ? WHERE id = ?""",
                        (target, who, stamp,
                         orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS).decode(),
                         member))
                    changed.append(member)
        return StatusChange(tuple(changed), tuple(unchanged), tuple(missing))

    # ------------------------------------------------------------ webhook outbox

    def enqueue_notifications(self, alert_ids: Iterable[str]) -> int:
        """Queue a webhook notification for each stored shell or single alert among
        ``alert_ids`` (building blocks are skipped, as Elastic only notifies shells), at
        most once per alert ever; returns how many were queued now."""
        now_text = normalize_time(utc_now())
        now = time.time()
        count = 0
        with self.transaction():
            for alert_id in alert_ids:
                cursor = self._conn.execute(
                    """INSERT INTO webhook_outbox (alert_id, enqueued_at, next_attempt_at)
                       SELECT id, ?, ? FROM alerts
                       WHERE id = ? AND (group_id IS NULL OR group_id = id)
                         AND id NOT IN (SELECT alert_id FROM webhook_dead_letters)
                       ON CONFLICT (alert_id) DO NOTHING""",
                    (now_text, now, alert_id))
                count += max(cursor.rowcount, 0)
        return count

    @staticmethod
    def _delivery(row: sqlite3.Row) -> Delivery:
        return Delivery(id=row["id"], alert_id=row["alert_id"], state=row["state"],
                        attempts=row["attempts"], enqueued_at=row["enqueued_at"],
                        next_attempt_at=row["next_attempt_at"], last_error=row["last_error"],
                        last_status=row["last_status"], delivered_at=row["delivered_at"])

    def claim_notifications(self, limit: int, lease_seconds: float,
                            now: float | None = None) -> list[Delivery]:
        """Take up to ``limit`` due notifications for ``lease_seconds``: another worker on
        the same store skips them until the lease ends (or the worker reports back)."""
        moment = time.time() if now is None else now
        with self.transaction():
            rows = self._conn.execute(
                f"""UPDATE webhook_outbox SET lease_until = ? WHERE id IN (
                        SELECT id FROM webhook_outbox
                        WHERE state = 'pending' AND next_attempt_at <= ?
                          AND (lease_until IS NULL OR lease_until <= ?)
                        ORDER BY next_attempt_at, id LIMIT ?)
                    RETURNING {_OUTBOX_COLUMNS}""",
                (moment + lease_seconds, moment, moment, limit)).fetchall()
        return sorted((self._delivery(r) for r in rows), key=lambda d: (d.next_attempt_at, d.id))

    def record_delivery(self, delivery_id: int, status: int | None) -> None:
        with self.transaction():
            self._conn.execute(
                """UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1,
                       delivered_at = ?, lease_until = NULL, last_status = ?, last_error = NULL
                   WHERE id = ?""", (normalize_time(utc_now()), status, delivery_id))

    def record_failure(self, delivery_id: int, error: str, status: int | None, *,
                       retry_at: float | None) -> None:
        """A failed attempt: retry at ``retry_at`` (epoch seconds), or, if None, move the
        notification to the dead letters."""
        with self.transaction():
            if retry_at is not None:
                self._conn.execute(
                    """UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?,
                           lease_until = NULL, last_error = ?, last_status = ? WHERE id = ?""",
                    (retry_at, error, status, delivery_id))
                return
            self._conn.execute(
                """INSERT INTO webhook_dead_letters (id, alert_id, attempts, enqueued_at,
                       dead_at, last_error, last_status)
                   SELECT id, alert_id, attempts + 1, enqueued_at, ?, ?, ?
                   FROM webhook_outbox WHERE id = ?""",
                (normalize_time(utc_now()), error, status, delivery_id))
            self._conn.execute("DELETE FROM webhook_outbox WHERE id = ?", (delivery_id,))

    def pending_notifications(self) -> int:
        return int(self._conn.execute(
            "SELECT count(*) FROM webhook_outbox WHERE state = 'pending'").fetchone()[0])

    def next_notification_due(self) -> float | None:
        """When the earliest pending notification is due (epoch seconds), if any."""
        row = self._conn.execute(
            """SELECT min(max(next_attempt_at, coalesce(lease_until, 0)))
               FROM webhook_outbox WHERE state = 'pending'""").fetchone()
        return None if row[0] is None else float(row[0])

    def list_deliveries(self, state: str | None = None) -> list[Delivery]:
        sql = f"SELECT {_OUTBOX_COLUMNS} FROM webhook_outbox"
        params: tuple[str, ...] = ()
        if state is not None:
            sql += " WHERE state = ?"
            params = (state,)
        return [self._delivery(r) for r in self._conn.execute(sql + " ORDER BY id", params)]

    def list_dead_letters(self) -> list[DeadLetter]:
        rows = self._conn.execute("SELECT * FROM webhook_dead_letters ORDER BY id")
        return [DeadLetter(id=r["id"], alert_id=r["alert_id"], attempts=r["attempts"],
                           enqueued_at=r["enqueued_at"], dead_at=r["dead_at"],
                           last_error=r["last_error"], last_status=r["last_status"])
                for r in rows]

    def requeue_dead_letters(self, ids: Sequence[int] | None = None) -> int:
        """Give dead letters (all, or these ids) a fresh set of attempts."""
        with self.transaction():
            wanted = None if ids is None else set(ids)
            chosen = [int(r[0]) for r in self._conn.execute(
                "SELECT id FROM webhook_dead_letters ORDER BY id")
                if wanted is None or int(r[0]) in wanted]
            for dead_id in chosen:
                self._conn.execute(
                    """INSERT INTO webhook_outbox (id, alert_id, enqueued_at, next_attempt_at)
                       SELECT id, alert_id, enqueued_at, ? FROM webhook_dead_letters
                       WHERE id = ?""", (time.time(), dead_id))
                self._conn.execute("DELETE FROM webhook_dead_letters WHERE id = ?", (dead_id,))
        return len(chosen)

    # ------------------------------------------------------------ event-time index

    def record_file_block(self, block: FileBlock) -> None:
        """Remember a block of a watched file; a rotated file (new inode) drops the old
        blocks of that path."""
        with self.transaction():
            self._conn.execute("DELETE FROM file_blocks WHERE path = ? AND inode != ?",
                               (block.path, block.inode))
            self._conn.execute(
                """INSERT OR REPLACE INTO file_blocks (path, inode, start_offset, end_offset,
                       first_line, min_ts, max_ts) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (block.path, block.inode, block.start_offset, block.end_offset,
                 block.first_line, block.min_ts, block.max_ts))

    def file_blocks(self, path: str, inode: int) -> list[FileBlock]:
        rows = self._conn.execute(
            "SELECT * FROM file_blocks WHERE path = ? AND inode = ? ORDER BY start_offset",
            (path, inode)).fetchall()
        return [FileBlock(r["path"], r["inode"], r["start_offset"], r["end_offset"],
                          r["first_line"], r["min_ts"], r["max_ts"]) for r in rows]
