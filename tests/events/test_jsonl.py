"""NDJSON input: bad lines counted with file:line, nothing else lost; the logon-id fix on ECS
documents Elastic already ingested; OTRF lines recognised inside plain JSON files."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import shared_dir, unsourced
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.events.logon import apply_intended_logon_id

LOGON_4624 = "evtx/sbousseaden_EVTX-ATTACK-SAMPLES/LM_WMI_4624_4688_TargetHost.evtx"
OTRF = "json/OTRF_Security-Datasets/cmd_psexec_lsa_secrets_dump.zip"


def _good(n: int) -> bytes:
    return orjson.dumps({"@timestamp": f"2024-01-01T00:00:{n:02d}.123456789Z",
                         "event": {"code": str(n)}})


def test_bad_lines_are_counted_with_their_place(tmp_path: Path) -> None:
    lines = [
        _good(1),
        b'{"@timestamp": "2024-01-01T00:00:02Z", "event": ',  # cut JSON
        _good(3),
        b'{"@timestamp": "2024-01-01T00:00:04Z", "user": "\xff\xfe"}',  # not UTF-8
        b"[1, 2, 3]",
        b"42",
        b'{"event": {"code": "7"}}',  # no timestamp
        b'{"@timestamp": "yesterday"}',
        b'{"@timestamp": true}',
        b"",
        _good(11),
        orjson.dumps({"@timestamp": 1704067200000}),  # epoch millis
        orjson.dumps({"_index": "logs-x", "_id": "abc", "_source": _doc(13)}),
    ]
    path = tmp_path / "export.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    stats = ReadStats()
    events = list(read_events([path], stats))
    assert [e.get("event", {}).get("code") for e in events] == ["1", "3", "11", None, "13"]
    assert events[-1]["_index"] == "logs-x" and events[-1]["_id"] == "abc"
    got = [(b.position, b.reason) for b in stats.bad_records]
    assert [position for position, _ in got] == ["2", "4", "5", "6", "7", "8", "9"]
    reasons = dict(got)
    assert reasons["2"].startswith("not JSON")
    assert reasons["4"] == "not UTF-8 text"
    assert reasons["5"] == "not an event object but a JSON array"
    assert reasons["6"] == "not an event object but a JSON number"
    assert reasons["7"] == "no @timestamp"
    assert reasons["8"] == '@timestamp "yesterday" is not a date'
    assert reasons["9"] == "@timestamp true is not a date"
    assert str(stats.bad_records[0]) == f"{path}:2: {reasons['2']}"


def _doc(n: int) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(_good(n))
    return doc


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    body = b"\n".join(_good(i % 60) for i in range(5000)) + b"\n"
    packed = gzip.compress(body)
    path = tmp_path / "cut.ndjson.gz"
    path.write_bytes(packed[: len(packed) // 2])
    stats = ReadStats()
    events = list(read_events([path], stats))
    assert 0 < len(events) < 5000
    assert stats.bad_total == 1
    bad = stats.bad_records[0]
    assert bad.path == str(path)
    assert bad.position == str(len(events) + 1)
    assert "truncated" in bad.reason or "stopped reading" in bad.reason


def test_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_bytes(orjson.dumps([_doc(1), 5, _doc(2), {"@timestamp": "nope"}]))
    stats = ReadStats()
    events = list(read_events([path], stats))
    assert len(events) == 2
    assert [b.position for b in stats.bad_records] == ["[1]", "[3]"]


def _elastic_4624s() -> list[dict[str, Any]]:
    """ECS documents of real network 4624s as Elastic's pipelines produce them."""
    path = shared_dir() / "samples" / LOGON_4624
    stats = ReadStats()
    docs = [d for d in read_events([path], stats, ReadOptions(logon_id="elastic"))
            if d["event"]["code"] == "4624" and d["winlog"]["logon"]["type"] == "Network"]
    assert docs
    for doc in docs:
        assert doc["winlog"]["logon"]["id"] == doc["winlog"]["event_data"]["SubjectLogonId"]
    return docs


def test_logon_id_fix_on_elastic_ingested_ndjson(tmp_path: Path) -> None:
    docs = _elastic_4624s()
    path = tmp_path / "elastic-export.ndjson"
    # As an Elasticsearch export: hits with _index and _source.
    path.write_bytes(b"\n".join(orjson.dumps({"_index": d.pop("_index"), "_id": d.pop("_id"),
                                              "_source": d}) for d in docs))
    for mode in ("intended", "elastic"):
        stats = ReadStats()
        events = list(read_events([path], stats, ReadOptions(logon_id=mode)))
        assert stats.bad_total == 0 and len(events) == len(docs)
        for event in events:
            data = event["winlog"]["event_data"]
            expected = data["TargetLogonId"] if mode == "intended" else data["SubjectLogonId"]
            assert event["winlog"]["logon"]["id"] == expected
            assert event["_index"] == "logs-system.security-default"


def test_logon_id_fix_leaves_other_events_alone() -> None:
    event: dict[str, Any] = {"winlog": {"event_id": "4697", "logon": {"id": "0x1"},
                        "event_data": {"TargetLogonId": "0x2", "SubjectLogonId": "0x1"}}}
    apply_intended_logon_id(event)
    assert event["winlog"]["logon"]["id"] == "0x1"
    odd: dict[str, Any] = {"winlog": "not a dict"}
    apply_intended_logon_id(odd)
    assert odd == {"winlog": "not a dict"}


def test_otrf_lines_in_a_plain_json_file_are_mapped(tmp_path: Path) -> None:
    with zipfile.ZipFile(shared_dir() / "samples" / OTRF) as archive:
        (member,) = archive.namelist()
        body = archive.read(member)
    path = tmp_path / "otrf.json"
    path.write_bytes(body)
    stats = ReadStats()
    from_json = list(read_events([path], stats))
    from_zip = list(read_events([shared_dir() / "samples" / OTRF], ReadStats()))
    assert stats.bad_total == 0
    assert len(from_json) == len(body.splitlines())
    assert unsourced(from_json) == unsourced(from_zip)
    assert all("winlog" in e and e["host"]["os"]["type"] == "windows" for e in from_json)
    # Each event says where it was read: the file (the zip's member) and the line's offset.
    assert from_zip[0]["vigil"]["source"] == {"path": f"{shared_dir() / 'samples' / OTRF}!"
                                                      f"{member}", "position": "offset 0"}
    second = len(body.split(b"\n", 1)[0]) + 1
    assert from_json[1]["vigil"]["source"]["position"] == f"offset {second}"


def test_nxlog_event_time_is_shifted_to_utc_and_bad_times_are_counted(tmp_path: Path) -> None:
    line = {"EventID": 4624, "Channel": "Security", "Hostname": "HOST.example",
            "SourceName": "Microsoft-Windows-Security-Auditing", "RecordNumber": 7,
            "EventTime": "2020-09-20 12:16:27", "@timestamp": "2020-09-20T16:16:29.568Z",
            "TargetLogonId": "0x2", "SubjectLogonId": "0x0", "LogonType": "3"}
    broken = dict(line, EventTime="soon", RecordNumber=8)
    path = tmp_path / "nxlog.json"
    path.write_bytes(orjson.dumps(line) + b"\n" + orjson.dumps(broken) + b"\n")
    stats = ReadStats()
    (event,) = read_events([path], stats)
    # The collector ran 4 h behind UTC; the event keeps its own second, not Logstash's.
    assert event["@timestamp"] == "2020-09-20T16:16:27Z"
    assert event["winlog"]["logon"]["id"] == "0x2"
    assert [(b.position, b.reason) for b in stats.bad_records] == \
        [("2", "event time 'soon' is not a date")]
