"""Exported Windows events in the OTRF / Security-Datasets layout -> ECS events.

Those exports are NXLog ``im_msvistalog`` records, one flat JSON object per line: the System
fields under NXLog's names (``EventID``, ``Channel``, ``Hostname``, ``SourceName``,
``Keywords``, ``RecordNumber``, ...), the EventData fields at top level beside them, sometimes
Logstash's own fields (``@timestamp``, ``host``, ``port``, ``tags``). Two shapes occur:

* the classic one: ``EventTime`` in the collector's local time without a zone, Logstash's
  ``@timestamp`` (UTC, the moment Logstash received it, a second or so later), ``Keywords``
  as a signed 64-bit integer, ``Category``/``Opcode`` as rendered names;
* a newer one: ``TimeCreated`` in UTC, no keywords, no record number.

Event time: ``TimeCreated`` when present; else ``EventTime`` shifted by the collector's
offset from UTC, which is ``@timestamp - EventTime`` rounded to 15 minutes (so the event keeps
its own second, not Logstash's); else ``EventTime`` taken as UTC. Files come as ``.zip``
(members read in name order) or as plain JSON lines, where ``is_nxlog_event`` recognises them
per document.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from vigil.events.ecs import to_ecs
from vigil.events.records import ReadOptions, ReadStats
from vigil.events.winlog import WinEvent, data_text

# NXLog / Logstash fields that are not EventData.
NXLOG_FIELDS = frozenset({
    "EventTime", "EventReceivedTime", "TimeCreated", "Hostname", "Keywords", "EventType",
    "SeverityValue", "Severity", "EventID", "SourceName", "ProviderGuid", "Version", "Task",
    "OpcodeValue", "Opcode", "RecordNumber", "ActivityID", "RelatedActivityID",
    "ExecutionProcessID", "ThreadID", "Channel", "Category", "Message", "SourceModuleName",
    "SourceModuleType", "ERROR_EVT_UNRESOLVED", "EventTypeOrignal", "EventIdx",
    "@timestamp", "@version", "host", "port", "tags", "type",
})
# NXLog's resolution of System/Security/@UserID; only metadata when UserID is there too
# (otherwise these names are EventData, e.g. AccountName of 7045).
NXLOG_USER_FIELDS = ("UserID", "AccountName", "Domain", "AccountType")
QUARTER_HOUR = 15 * 60
MAX_ZIP_MEMBER = 4 << 30  # refuse absurd (zip-bomb) members rather than exhaust memory


def is_nxlog_event(doc: dict[str, Any]) -> bool:
    """A flat NXLog-style Windows event (not an ECS document)."""
    return "EventID" in doc and "Channel" in doc and "winlog" not in doc


def _parse_local(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None
    return moment.replace(tzinfo=None)


def _iso(moment: datetime) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def event_time(doc: dict[str, Any]) -> str | None:
    """The event's UTC time as ISO-8601, or ``None`` when it has none that parses."""
    created = doc.get("TimeCreated")
    if isinstance(created, str):
        moment = _parse_local(created)
        return _iso(moment) if moment else None
    local_text = doc.get("EventTime")
    if not isinstance(local_text, str):
        return None
    local = _parse_local(local_text)
    if local is None:
        return None
    received = doc.get("@timestamp")
    if isinstance(received, str):
        try:
            utc = datetime.fromisoformat(received.replace("Z", "+00:00"))
        except ValueError:
            utc = None
        if utc is not None:
            naive_utc = utc.astimezone(UTC).replace(tzinfo=None)
            offset = round((naive_utc - local).total_seconds() / QUARTER_HOUR) * QUARTER_HOUR
            local += timedelta(seconds=offset)
    return _iso(local)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value:
        try:
            return int(value, 16) if value[:2].lower() == "0x" else int(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def winevent_of_nxlog(doc: dict[str, Any]) -> WinEvent | str:
    """The ``WinEvent`` of one NXLog record, or why it is unusable."""
    event_id = _int(doc.get("EventID"))
    if event_id is None:
        return f"EventID {doc.get('EventID')!r} is not a number"
    time_created = event_time(doc)
    if time_created is None:
        shown = doc.get("TimeCreated", doc.get("EventTime"))
        return f"event time {shown!r} is not a date" if shown is not None else \
            "event has no EventTime or TimeCreated"
    has_user = "UserID" in doc
    metadata = NXLOG_FIELDS.union(NXLOG_USER_FIELDS) if has_user else NXLOG_FIELDS
    event_data: dict[str, str] = {}
    for key, value in doc.items():
        if key not in metadata:
            text = data_text(value)
            if text is not None:
                event_data[key] = text
    if isinstance(doc.get("EventTypeOrignal"), str):
        # NXLog renamed the event's own EventType field (Sysmon registry events) to make room.
        event_data["EventType"] = doc["EventTypeOrignal"]
    keywords = _int(doc.get("Keywords"))
    if keywords is not None:
        keywords &= 0xFFFFFFFFFFFFFFFF  # NXLog prints the 64-bit mask signed
    event_type = doc.get("EventType")
    hint = {"AUDIT_SUCCESS": "success", "AUDIT_FAILURE": "failure"}.get(event_type) \
        if isinstance(event_type, str) else None
    return WinEvent(
        time_created=time_created,
        event_id=event_id,
        provider_name=str(doc.get("SourceName") or ""),
        channel=str(doc.get("Channel") or ""),
        computer=str(doc.get("Hostname") or ""),
        record_id=_int(doc.get("RecordNumber")),
        provider_guid=_text(doc.get("ProviderGuid")),
        version=_int(doc.get("Version")),
        task=_int(doc.get("Task")),
        opcode=_int(doc.get("OpcodeValue")),
        keywords=keywords,
        activity_id=_text(doc.get("ActivityID")),
        related_activity_id=_text(doc.get("RelatedActivityID")),
        process_id=_int(doc.get("ExecutionProcessID")),
        thread_id=_int(doc.get("ThreadID")),
        user_sid=_text(doc.get("UserID")),
        event_data=event_data or None,
        task_name=_text(doc.get("Category")),
        opcode_name=_text(doc.get("Opcode")),
        outcome_hint=hint,
        user_name=_text(doc.get("AccountName")) if has_user else None,
        user_domain=_text(doc.get("Domain")) if has_user else None,
        user_type=_text(doc.get("AccountType")) if has_user else None,
        message=_text(doc.get("Message")),
    )


def nxlog_to_ecs(doc: dict[str, Any], options: ReadOptions) -> dict[str, Any] | str:
    """The ECS event of an NXLog record, or the reason it was skipped."""
    parsed = winevent_of_nxlog(doc)
    if isinstance(parsed, str):
        return parsed
    return to_ecs(parsed, options.logon_id)


def read_zip_file(path: Path, stats: ReadStats, options: ReadOptions) -> Iterator[dict[str, Any]]:
    """Events of every JSON member of a zip (OTRF datasets ship one JSON-lines file each)."""
    from vigil.events.jsonl import read_json_stream

    name = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        stats.bad(name, "", f"not a readable zip archive ({exc})", kind="bad zip")
        stats.files_failed += 1
        return
    with archive:
        members = sorted((info for info in archive.infolist()
                          if not info.is_dir() and info.filename.lower().endswith(
                              (".json", ".jsonl", ".ndjson"))), key=lambda info: info.filename)
        if not members:
            stats.bad(name, "", "zip archive holds no .json file", kind="bad zip")
            stats.files_failed += 1
            return
        for info in members:
            where = f"{name}!{info.filename}"
            if info.file_size > MAX_ZIP_MEMBER:
                stats.bad(where, "", f"member too large ({info.file_size:,} bytes)",
                          kind="bad zip")
                continue
            if info.flag_bits & 0x1:
                stats.bad(where, "", "member is encrypted (a password is needed): skipped",
                          kind="bad zip")
                continue
            try:
                with archive.open(info) as member:
                    # ZipExtFile is buffered (it has peek), as read_json_stream needs.
                    stream = cast(io.BufferedIOBase, member)
                    yield from read_json_stream(stream, where, stats, options)
            except NotImplementedError as exc:  # Deflate64, AES, ...: zipfile cannot read it
                stats.bad(where, "", f"member is compressed in a way that cannot be read "
                          f"({exc}): skipped", kind="bad zip")
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
                stats.bad(where, "", f"stopped reading: damaged zip member ({exc})",
                          kind="bad zip")
