"""Accounting for what was read: files, events, and every bad record with its place."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

LogonIdMode = Literal["intended", "elastic"]

# Keep the first few bad records verbatim; count the rest.
KEEP_BAD_RECORDS = 200


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record that could not be read: ``path:position: reason``."""

    path: str
    position: str  # "12" (a line), "chunk 41", "record 5248", or "" for the whole file
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.position}" if self.position else self.path
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read.

    ``logon_id``: where ``winlog.logon.id`` of logon events comes from. ``"intended"`` (the
    default) takes TargetLogonId for 4624/4627/4964 as Winlogbeat 7 did and as rules joining on
    the logon session mean; ``"elastic"`` reproduces Elastic's current ingest pipelines, which
    take SubjectLogonId (0x0 on network logons; elastic/integrations#20004).
    ``timestamp_field``: the field NDJSON events must carry as a date.
    ``workers``: processes used to read several files at once (1 = in this process).
    """

    logon_id: LogonIdMode = "intended"
    timestamp_field: str = "@timestamp"
    workers: int = 1


class ReadProgress(Protocol):
    """Told what a run has read as it reads (the terminal's progress bar, issue 14). Calls
    come from the process that reads or collects the workers' results, never a worker."""

    def begin(self, files: int, total_bytes: int, text: str) -> None:
        """A pass over ``files`` holding ``total_bytes`` starts."""

    def read(self, path: str, nbytes: int, events: int) -> None:
        """``nbytes`` more of ``path`` were read, holding ``events`` more events."""

    def phase(self, text: str) -> None:
        """A step after the reading (the rules running) starts."""


@dataclass(slots=True)
class ReadStats:
    files: int = 0
    events: int = 0
    bytes: int = 0
    bad_total: int = 0
    bad_records: list[BadRecord] = field(default_factory=list)
    bad_by_reason: Counter[str] = field(default_factory=Counter)
    files_failed: int = 0
    # Alert documents met in the input (vigil's or Kibana's output): not events, not read.
    alert_documents: int = 0
    # EVTX records lost in damaged or missing chunks (their numbers from chunk headers).
    records_lost: int = 0

    def bad(self, path: str, position: str, reason: str, *, kind: str | None = None) -> None:
        self.bad_total += 1
        self.bad_by_reason[kind or reason] += 1
        if len(self.bad_records) < KEEP_BAD_RECORDS:
            self.bad_records.append(BadRecord(path, position, reason))

    def merge(self, other: ReadStats) -> None:
        self.files += other.files
        self.events += other.events
        self.bytes += other.bytes
        self.files_failed += other.files_failed
        self.alert_documents += other.alert_documents
        self.records_lost += other.records_lost
        self.bad_total += other.bad_total
        self.bad_by_reason.update(other.bad_by_reason)
        room = KEEP_BAD_RECORDS - len(self.bad_records)
        if room > 0:
            self.bad_records.extend(other.bad_records[:room])


# (provider name, event id, task: None for none, events.evtx.ANY_TASK when not known) of an
# EVTX record -> may it matter to the caller?
RecordGate = Callable[[str, int, int | None], bool]
# (channel, provider name, event id, EventData section as parsed, task) -> may it matter?
EventGate = Callable[[str, str, int, Any, int | None], bool]


@dataclass(frozen=True, slots=True)
class RecordGates:
    """What the EVTX reader may skip for a caller (``read_evtx_file`` says how): record
    types by ``record``, and records of the types it keeps by ``event`` (parsed, before
    mapping). Gates, even none, also mean the caller reads files in parallel processes:
    the parser then keeps to one thread."""

    record: RecordGate | None = None
    event: EventGate | None = None


def mark_source(event: dict[str, Any], path: str, position: str) -> None:
    """Where the event came from, in the event itself (and so in its alerts): the input
    file in ``log.file.path`` (when the event has none of its own) and in
    ``vigil.source.path``, the place in it in ``vigil.source.position`` ("offset 1234" of a
    JSON line, "item 3" of a JSON array, "row 5" of Parquet, "record 4711" of EVTX). Event
    ids leave both out (``detect.ids.event_id``): the same event read from two places is
    one event."""
    vigil = event.get("vigil")
    if not isinstance(vigil, dict):
        vigil = event["vigil"] = {}
    vigil["source"] = {"path": path, "position": position}
    log = event.get("log")
    if not isinstance(log, dict):
        log = event["log"] = {}
    file = log.get("file")
    if not isinstance(file, dict):
        file = log["file"] = {}
    file.setdefault("path", path)
