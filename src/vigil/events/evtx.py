"""Windows ``.evtx`` files -> ECS events, on the ``evtx`` package (Rust parser, PyO3).

A damaged log loses only what is damaged. Before parsing, the file header and the chunk
headers are read (a few bytes per 64 KiB chunk) so that problems can be told in a user's
words, with the records they cost:

* empty file, not an EVTX file, header cut short: one line, the file is skipped;
* the last chunk cut short (a copy that stopped early): one line; the complete chunks are read
  (the parser silently ignores a partial chunk, so this check is the only trace of it);
* a chunk the parser rejects (bad magic, bad checksum): one line ``chunk N: ...`` with the
  record range lost, the parser goes on with the next chunk;
* a record it cannot decode: one line ``record N: ...``; a record without a time: the same.

The parser's own error text is not shown raw: it is turned into a short reason; its numbers
(chunk, record) are extracted with anchored, linear-time patterns.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from vigil.events.ecs import to_ecs
from vigil.events.jsonl import date_problem
from vigil.events.records import ReadOptions, ReadStats, RecordGates, mark_source
from vigil.events.winlog import WinEvent, data_text

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
HEADER_SIZE = 4096
CHUNK_SIZE = 65536
# Consecutive parser errors after which a file is given up (a parser that would never
# advance must not hang the run).
MAX_CONSECUTIVE_ERRORS = 10_000

_BARE_GUID = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}\Z")
_CHUNK_ERROR = re.compile(r"Failed to parse chunk number (\d{1,12})")
_RECORD_ERROR = re.compile(r"Failed to parse record number (\d{1,20})")

# How the evtx crate's JSON of a record begins; the record type is read from the text between
# the provider name and the TimeCreated key.
_HEAD = ('{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/'
         'event"},"System":{"Provider":{"#attributes":{"Name":"')
_HEAD_END = len(_HEAD)
_TIME = ',"TimeCreated":{"#attributes":{"SystemTime":"'
_TIME_LEN = len(_TIME)
_QUALIFIED = '{"#attributes":{"Qualifiers":'
_SOURCE_NAME = '","EventSourceName":"'
_TASK = ',"Task":'
# The task of a record type read from the text when the text does not show it: gates then
# decide for every task (None is a record without one).
ANY_TASK = -1
# orjson refuses nesting 1024 deep: that takes 1024 opening and as many closing brackets, so
# a shorter record cannot, nor a record with fewer opening brackets.
_DEPTH_LIMIT = 1000
_SHALLOW = 2 * _DEPTH_LIMIT


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """What a chunk header says: ``None`` ids when the header itself is unreadable."""

    index: int
    first_record: int | None
    last_record: int | None


@dataclass(frozen=True, slots=True)
class EvtxLayout:
    chunks: tuple[ChunkInfo, ...]
    partial_chunk: int | None  # index of a chunk cut short at the end of the file
    partial_bytes: int
    header_chunks: int = 0  # chunks in use, as the file header counts them
    next_record: int | None = None  # the file header's next record id


def inspect_evtx(path: Path) -> EvtxLayout | str:
    """The chunk layout of ``path``, or why it is not a readable EVTX file."""
    with path.open("rb") as handle:
        header = handle.read(HEADER_SIZE)
        size = handle.seek(0, 2)
        if size == 0:
            return "empty file (0 bytes), not an EVTX log"
        if header[:8] != FILE_MAGIC:
            return f"not an EVTX file (it starts with {_shown(header[:16])}, not 'ElfFile')"
        if size < HEADER_SIZE:
            return (f"truncated EVTX file: only {size:,} bytes, the file header alone needs "
                    f"{HEADER_SIZE:,}")
        full, rest = divmod(size - HEADER_SIZE, CHUNK_SIZE)
        chunks = []
        for index in range(full + (1 if rest >= 40 else 0)):
            handle.seek(HEADER_SIZE + index * CHUNK_SIZE)
            head = handle.read(40)
            if head[:8] == CHUNK_MAGIC and len(head) == 40:
                _, _, first_id, last_id = struct.unpack_from("<QQQQ", head, 8)
                chunks.append(ChunkInfo(index, first_id, last_id))
            else:
                chunks.append(ChunkInfo(index, None, None))
    # File header: last chunk number at 0x10, next record id at 0x18, chunk count at 0x2A.
    next_record = struct.unpack_from("<Q", header, 0x18)[0] if len(header) >= 0x20 else None
    in_use = struct.unpack_from("<H", header, 0x2A)[0] if len(header) >= 0x2C else 0
    return EvtxLayout(tuple(chunks), full if rest else None, rest, in_use, next_record)


def _shown(data: bytes) -> str:
    text = data.decode("latin-1")
    return repr("".join(c if c.isprintable() else "." for c in text))


def _lost_range(layout: EvtxLayout, index: int, stats: ReadStats | None = None) -> str:
    """'records 5,248-5,311 lost' for chunk ``index`` (counted in ``stats.records_lost``).

    A damaged header does not say which records the chunk held; its neighbours do. Logs are
    circular, so the neighbours are searched around the end of the file too.
    """
    chunks = layout.chunks
    if index < len(chunks) and chunks[index].first_record is not None:
        first, last = chunks[index].first_record, chunks[index].last_record
    else:
        count = len(chunks)
        before = next((chunks[(index - step) % count] for step in range(1, count)
                       if chunks[(index - step) % count].last_record is not None), None)
        after = next((chunks[(index + step) % count] for step in range(1, count)
                      if chunks[(index + step) % count].first_record is not None), None)
        first = before.last_record + 1 if before and before.last_record is not None else None
        last = after.first_record - 1 if after and after.first_record is not None else None
    if first is not None and last is not None and last >= first:
        if stats is not None:
            stats.records_lost += last - first + 1
        return f"records {first:,}-{last:,} lost"
    if first is not None:
        return f"records from {first:,} on lost"
    return "its records lost"


def _chunk_of_record(layout: EvtxLayout, record: int) -> int | None:
    for chunk in layout.chunks:
        if chunk.first_record is not None and chunk.last_record is not None and \
                chunk.first_record <= record <= chunk.last_record:
            return chunk.index
    return None


def _reason(message: str) -> str:
    """The parser's message in a user's words."""
    lowered = message.lower()
    if "chunk header magic" in lowered:
        return "bad chunk magic"
    if "checksum" in lowered:
        return "chunk checksum mismatch"
    if "record header magic" in lowered:
        return "bad record header"
    if "binxml" in lowered or "token" in lowered:
        return "undecodable record data"
    if "utf-16" in lowered or "utf16" in lowered or "string" in lowered:
        return "undecodable text in record"
    tail = message.rsplit(": ", 1)[-1].strip()
    return tail[:120] or "unreadable data"


def _int(value: Any) -> int | None:
    if type(value) is int:  # the common case first
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0) if value[:2].lower() == "0x" else int(value)
        except ValueError:
            return None
    if isinstance(value, dict):
        return _int(value.get("#text"))
    return None


def _attrs(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        attrs = value.get("#attributes")
        if isinstance(attrs, dict):
            return attrs
    return {}


def _unnamed(value: Any) -> list[Any]:
    if isinstance(value, dict):
        value = value.get("#text")
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _named(value: Any) -> str | None:
    """A named EventData value as ``event_data_of`` keeps it (None: dropped)."""
    if type(value) is str:  # data_text's common case, inline
        text = (value.replace("\r\n", "\n") if "\r" in value else value) if value else None
    else:
        text = data_text(value)
    if text is not None and len(text) == 36 and _BARE_GUID.match(text):
        text = "{" + text + "}"  # typed GUIDs: Windows renders them in braces
    return text


def event_data_of(section: Any) -> dict[str, str]:
    """EventData as Winlogbeat keeps it: named values as strings, unnamed ones as paramN,
    empty values dropped, the first of duplicate names kept."""
    if isinstance(section, str):
        text = data_text(section)
        return {"param1": text} if text else {}
    if not isinstance(section, dict):
        return {}
    out: dict[str, str] = {}
    params: list[Any] = []
    for key, value in section.items():
        if key == "#attributes":
            continue
        if key in ("Data", "#text"):
            params.extend(_unnamed(value))
            continue
        if key not in out and (text := _named(value)) is not None:
            out[key] = text
    for position, value in enumerate(params, 1):
        text = data_text(value)
        if text is not None:
            out.setdefault(f"param{position}", text)
    return out


def named_data(section: Any, names: Iterable[str]) -> dict[str, str]:
    """``{name: event_data_of(section)[name]}`` for those of ``names`` it holds, without the
    rest of the section; ``names`` must not hold "#attributes", "Data", "#text" or a paramN
    name (a parsed object has no duplicate keys, so a named key's value is its own)."""
    if type(section) is not dict:
        return {}
    out: dict[str, str] = {}
    for name in names:
        if name in section and (text := _named(section[name])) is not None:
            out[name] = text
    return out


def user_data_of(section: Any) -> dict[str, Any] | None:
    """The first child element of UserData, flattened, with its name in ``xml_name``."""
    if not isinstance(section, dict):
        return None
    for name, body in section.items():
        if name.startswith("#"):
            continue
        out: dict[str, Any] = {"xml_name": name}
        if isinstance(body, dict):
            for key, value in body.items():
                if key.startswith("#"):
                    continue
                text = data_text(value)
                if text is not None:
                    out[key] = text
        return out
    return None


def _checked(record: Any) -> tuple[dict[str, Any], dict[str, Any], str, int] | str:
    """(Event, System, time, event id) of a parsed record, or why it is unusable: the only
    ways ``winevent_of`` can refuse a record."""
    event = record.get("Event") if isinstance(record, dict) else None
    if not isinstance(event, dict) or not isinstance(event.get("System"), dict):
        return "record has no System section"
    system = event["System"]
    time_created = _attrs(system.get("TimeCreated")).get("SystemTime")
    if not isinstance(time_created, str) or not time_created:
        return "record has no time (empty or unfinished record)"
    event_id = _int(system.get("EventID"))
    if event_id is None:
        return "record has no event id"
    return event, system, time_created, event_id


def provider_of(system: dict[str, Any]) -> str:
    provider = _attrs(system.get("Provider"))
    return str(provider.get("Name") or provider.get("EventSourceName") or "")


def winevent_of(record: dict[str, Any]) -> WinEvent | str:
    """The ``WinEvent`` of one parsed record (the evtx crate's JSON), or why it is unusable."""
    checked = _checked(record)
    if isinstance(checked, str):
        return checked
    event, system, time_created, event_id = checked
    provider = _attrs(system.get("Provider"))
    correlation = _attrs(system.get("Correlation"))
    execution = _attrs(system.get("Execution"))
    security = _attrs(system.get("Security"))
    keywords = system.get("Keywords")
    return WinEvent(
        time_created=time_created,
        event_id=event_id,
        provider_name=provider_of(system),
        channel=str(system.get("Channel") or ""),
        computer=str(system.get("Computer") or ""),
        record_id=_int(system.get("EventRecordID")),
        provider_guid=provider.get("Guid"),
        version=_int(system.get("Version")),
        level=_int(system.get("Level")),
        task=_int(system.get("Task")),
        opcode=_int(system.get("Opcode")),
        keywords=_int(keywords) if keywords is not None else None,
        activity_id=correlation.get("ActivityID"),
        related_activity_id=correlation.get("RelatedActivityID"),
        process_id=_int(execution.get("ProcessID")),
        thread_id=_int(execution.get("ThreadID")),
        user_sid=security.get("UserID"),
        event_data=event_data_of(event.get("EventData")) or None,
        user_data=user_data_of(event.get("UserData")),
    )


def read_evtx_file(path: Path, stats: ReadStats, options: ReadOptions,
                   gates: RecordGates | None = None) -> Iterator[dict[str, Any]]:
    """ECS events of one EVTX file; damage is counted in ``stats``, never raised.

    ``gates``: records they reject are skipped and counted in ``stats.events`` here (they
    are read, but not yielded). Only records that would map without error are ever skipped,
    so bad records are reported exactly as without gates. ``gates.record`` decides on the
    record type, read from the text (``record_type``): rejected ones are never parsed;
    ``gates.event`` on the parsed record (channel, type, EventData), before mapping.
    """
    yield from _read(path, stats, options, threads=0 if gates is None else 1, gates=gates)


def record_type(head: str) -> tuple[str, int, int] | None:
    """(provider name, event id, task) of a record whose JSON is ``_HEAD + head + _TIME +
    ...``, exactly as ``winevent_of`` would take them, or None unless the text is in the one
    plain layout checked here (the caller then parses the record). The task is ANY_TASK
    when the head does not show it as a number.

    The crate writes valid JSON without duplicate keys, so: the text after ``_HEAD`` is the
    Name attribute of System/Provider (a string without escapes, non-empty, so it is the
    provider name); Provider holds at most a Guid and an EventSourceName besides; EventID is
    System's next key, a number, a string of digits, or
    ``{"#attributes":{"Qualifiers":N},"#text":N}``; between its value and ``_TIME`` there is
    no brace at all, so no object opens or closes and that TimeCreated key is System's own,
    and a ``,"Task":`` there is System's Task key (its quote follows a comma, so it opens a
    string)."""
    quote = head.find('"')
    if quote <= 0 or "\\" in head[:quote]:
        return None
    provider = head[:quote]
    rest = head[quote:]
    if rest.startswith('","Guid":"'):
        end = rest.find('"', 10)
        if end < 0 or "\\" in rest[10:end]:
            return None
        rest = rest[end:]
    if rest.startswith(_SOURCE_NAME):  # classic providers: the Name is still the one used
        end = rest.find('"', len(_SOURCE_NAME))
        if end < 0 or "\\" in rest[len(_SOURCE_NAME):end]:
            return None
        rest = rest[end:]
    if not rest.startswith('"}},"EventID":'):
        return None
    value = rest[14:]
    if value.startswith(_QUALIFIED):
        qualifiers_end = value.find("},", len(_QUALIFIED))
        if qualifiers_end < 0 or not _digits(value[len(_QUALIFIED):qualifiers_end]) or \
                not value.startswith(',"#text":', qualifiers_end + 1):
            return None
        start = qualifiers_end + 10
        end = value.find("}", start)
        token = value[start:end] if end > 0 else ""
        tail = value[end + 1:]
    elif value.startswith('"'):
        end = value.find('"', 1)
        token = value[1:end] if end > 0 else ""
        tail = value[end + 1:]
    else:
        end = value.find(",")
        token = value if end < 0 else value[:end]
        tail = "" if end < 0 else value[end:]
    if not _digits(token) or (tail and not tail.startswith(",")) or "{" in tail or "}" in tail:
        return None
    task = ANY_TASK
    at = tail.find(_TASK)
    if at >= 0:
        end = tail.find(",", at + len(_TASK))
        number = tail[at + len(_TASK):end if end >= 0 else len(tail)]
        if _digits(number):
            task = int(number)
    return provider, int(token), task


def _digits(text: str) -> bool:
    return 0 < len(text) < 10 and text.isascii() and text.isdigit()


def _read(path: Path, stats: ReadStats, options: ReadOptions,
          threads: int, gates: RecordGates | None = None) -> Iterator[dict[str, Any]]:
    import evtx  # deferred: only EVTX input needs the native parser

    name = str(path)
    layout = inspect_evtx(path)
    if isinstance(layout, str):
        stats.bad(name, "", layout, kind="not a readable EVTX file")
        stats.files_failed += 1
        return
    stats.bytes += path.stat().st_size
    try:
        records = evtx.PyEvtxParser(name, number_of_threads=threads).records_json()
    except Exception as exc:  # the native parser raises RuntimeError/OSError/ValueError
        stats.bad(name, "", f"cannot read EVTX file: {_reason(str(exc))}",
                  kind="not a readable EVTX file")
        stats.files_failed += 1
        return
    # The last record read: its number places errors (read when one comes: the crate's
    # numbers are ints, so this is the last good number the per-record check used to keep).
    last: dict[str, Any] | None = None
    last_good: int | None = None
    errors_in_a_row = 0
    skipped = 0  # records the gates skipped, added to stats.events before each yield
    verdicts: dict[str, bool] = {}  # text between _HEAD and _TIME -> may be skipped
    # The last head looked up, where its _TIME starts, and its verdict (at first none: the
    # text at 0 is _HEAD, never _TIME).
    last_head, last_end, last_skip = "", 0, False
    gate = gates.record if gates is not None else None
    event_gate = gates.event if gates is not None else None
    reported: set[int] = set()  # chunks whose loss a line already reports
    try:
        while True:
            try:
                item = next(records)
            except StopIteration:
                break
            except Exception as exc:  # one bad chunk or record; the iterator goes on after it
                errors_in_a_row += 1
                number = last.get("event_record_id") if last is not None else None
                if isinstance(number, int):
                    last_good = number
                _report(name, str(exc), layout, last_good, stats, reported)
                if errors_in_a_row >= MAX_CONSECUTIVE_ERRORS:
                    stats.bad(name, "", "gave up: the parser does not advance past damaged data",
                              kind="unreadable file")
                    break
                continue
            errors_in_a_row = 0
            if type(item) is not dict:
                continue
            last = item
            if gate is not None:
                data = item.get("data")
                # A skipped record must be one that maps without error: an object with a
                # System whose EventID is a number and whose TimeCreated/SystemTime is a
                # non-empty string, and JSON that orjson accepts (the crate writes valid JSON;
                # orjson's only extra limit is nesting depth). The per-record hot path: kept
                # to the few string operations the decision needs.
                if type(data) is str and data.startswith(_HEAD):
                    # Records come in runs of one type: the last head is tried first. When
                    # the text after _HEAD is that head and then _TIME, that is _TIME's first
                    # occurrence (the head came from a record whose first one ended it).
                    if data.startswith(last_head, _HEAD_END) and data.startswith(_TIME,
                                                                                 last_end):
                        at, skip = last_end, last_skip
                    else:
                        at = data.find(_TIME, _HEAD_END)
                        if at > 0:
                            head = data[_HEAD_END:at]
                            known = verdicts.get(head)
                            if known is None:
                                kind = record_type(head)
                                known = verdicts[head] = kind is not None and not gate(*kind)
                            skip = known
                            last_head, last_end, last_skip = head, at, skip
                        else:
                            skip = False
                    at += _TIME_LEN
                    # A record is skipped only if it maps without error: its time non-empty
                    # and of a year the engine's nanoseconds hold (others are bad records).
                    if skip and at < len(data) and data[at] != '"' and (
                            "1678" <= data[at:at + 4] <= "2261") and (
                            len(data) < _SHALLOW
                            or data.count("{") + data.count("[") < _DEPTH_LIMIT):
                        skipped += 1
                        continue
            number = item.get("event_record_id")
            try:
                record = orjson.loads(item["data"])
                if event_gate is not None:
                    # Skipped only when winevent_of would accept the record (its refusals are
                    # _checked's), with the same channel, provider, id and EventData.
                    checked = _checked(record)
                    if not isinstance(checked, str):
                        event, system, time_created, event_id = checked
                        if ("1678" <= time_created[:4] <= "2261"
                                or date_problem("TimeCreated", time_created) is None) and \
                                not event_gate(str(system.get("Channel") or ""),
                                               provider_of(system), event_id,
                                               event.get("EventData"),
                                               _int(system.get("Task"))):
                            skipped += 1
                            continue
                parsed = winevent_of(record)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                parsed = f"undecodable record ({type(exc).__name__})"
            if not isinstance(parsed, str) and not "1678" <= parsed.time_created[:4] <= "2261":
                # The crate writes the FILETIME as ISO text (a real day and time): only the
                # year can be outside the engine's range, checked cheaply first.
                problem = date_problem("TimeCreated", parsed.time_created)
                if problem is not None:
                    parsed = problem
            if isinstance(parsed, str):
                stats.bad(name, f"record {number}", parsed, kind="bad EVTX record")
                continue
            stats.events += skipped
            skipped = 0
            doc = to_ecs(parsed, options.logon_id)
            mark_source(doc, name, f"record {parsed.record_id}" if parsed.record_id is not None
                        else f"record {number}")
            yield doc
    finally:
        stats.events += skipped
    if layout.partial_chunk is not None:
        index = layout.partial_chunk
        reported.add(index)
        stats.bad(name, f"chunk {index}",
                  f"file is truncated: the last chunk is cut at {layout.partial_bytes:,} of "
                  f"{CHUNK_SIZE:,} bytes ({_lost_range(layout, index, stats)})",
                  kind="truncated file")
    _report_silent_damage(name, layout, reported, stats)


def _report_silent_damage(name: str, layout: EvtxLayout, reported: set[int],
                          stats: ReadStats) -> None:
    """What the parser passes over without a word: a chunk of those the file header counts
    whose header is gone (zeroed or overwritten: the parser reads it as unused), and chunks
    the header counts that the file no longer holds (a copy cut at a chunk boundary)."""
    in_use = min(layout.header_chunks, len(layout.chunks))
    runs: list[list[int]] = []  # consecutive chunks without a header share their neighbours
    for chunk in layout.chunks[:in_use]:
        if chunk.first_record is None:
            if runs and runs[-1][-1] == chunk.index - 1:
                runs[-1].append(chunk.index)
            else:
                runs.append([chunk.index])
    for run in runs:
        if reported.intersection(run):
            continue  # the parser's line for one of them gives the run's records
        where = f"chunk {run[0]}" if len(run) == 1 else f"chunks {run[0]}-{run[-1]}"
        stats.bad(name, where, "no chunk header (zeroed or overwritten) "
                  f"({_lost_range(layout, run[0], stats)})", kind="EVTX damaged chunk")
    present = len(layout.chunks) - (1 if layout.partial_chunk is not None else 0)
    if layout.header_chunks > present and layout.partial_chunk is None:
        last = next((c.last_record for c in reversed(layout.chunks)
                     if c.last_record is not None), None)
        lost = ""
        if last is not None and layout.next_record is not None and layout.next_record > last + 1:
            stats.records_lost += layout.next_record - 1 - last
            lost = f" (records {last + 1:,}-{layout.next_record - 1:,} lost)"
        stats.bad(name, f"chunk {present}",
                  f"file is truncated: the header counts {layout.header_chunks} chunks, the "
                  f"file holds {present}{lost}", kind="truncated file")


def _report(name: str, message: str, layout: EvtxLayout, last_good: int | None,
            stats: ReadStats, reported: set[int]) -> None:
    message = message[:500]
    reason = _reason(message)
    chunk_match = _CHUNK_ERROR.search(message)
    if chunk_match:
        index = int(chunk_match.group(1))
        reported.add(index)
        stats.bad(name, f"chunk {index}", f"{reason} ({_lost_range(layout, index, stats)})",
                  kind=f"EVTX {reason}")
        return
    record_match = _RECORD_ERROR.search(message)
    if record_match:
        number = int(record_match.group(1))
        chunk = _chunk_of_record(layout, number)
        where = f" in chunk {chunk}" if chunk is not None else ""
        stats.bad(name, f"record {number}", f"{reason}{where}", kind=f"EVTX {reason}")
        return
    # No number in the message: the parser dropped the rest of the chunk holding the record
    # after the last good one.
    next_record = last_good + 1 if last_good is not None else None
    chunk = _chunk_of_record(layout, next_record) if next_record is not None else None
    if chunk is not None and next_record is not None:
        last = layout.chunks[chunk].last_record
        reported.add(chunk)
        if last is not None and last >= next_record:
            stats.records_lost += last - next_record + 1
        stats.bad(name, f"chunk {chunk}",
                  f"{reason} after record {last_good:,} (records {next_record:,}-{last:,} lost)",
                  kind=f"EVTX {reason}")
    else:
        stats.bad(name, "", reason, kind=f"EVTX {reason}")
