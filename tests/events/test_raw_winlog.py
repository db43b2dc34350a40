"""Raw Winlogbeat / Elastic Agent documents (the winlog input before any ingest pipeline) are
recognised by shape and mapped by the same pipelines as EVTX records.

Inputs are Elastic's own pipeline fixtures (``../shared/conformance/elastic-pipelines``,
read in place), written as NDJSON the way Winlogbeat's file output writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.conftest import shared_dir
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.events.ecs import host_id

PIPELINES = "conformance/elastic-pipelines/packages"
SYSMON = f"{PIPELINES}/windows/data_stream/sysmon_operational/_dev/test/pipeline/" \
    "test-image-loaded-failed-signature.json"
POWERSHELL = f"{PIPELINES}/windows/data_stream/powershell_operational/_dev/test/pipeline/" \
    "test-events.json"
SECURITY = f"{PIPELINES}/system/data_stream/security/_dev/test/pipeline/test-4663.json"


def _fixture(relative: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = orjson.loads((shared_dir() / relative).read_bytes())["events"]
    return events


def _read(tmp_path: Path, docs: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    path = tmp_path / "winlogbeat.ndjson"
    path.write_bytes(b"".join(orjson.dumps(doc) + b"\n" for doc in docs))
    stats = ReadStats()
    events = list(read_events([path], stats, ReadOptions(**options)))
    assert stats.bad_total == 0, [str(bad) for bad in stats.bad_records]
    return events


def test_sysmon_document_is_mapped(tmp_path: Path) -> None:
    [event] = _read(tmp_path, _fixture(SYSMON))
    assert event["_index"] == "logs-windows.sysmon_operational-default"
    assert event["event"]["category"] == ["process", "library"]
    assert event["event"]["action"] == ["Image loaded", "load"]
    assert event["process"]["executable"] == "C:\\Windows\\System32\\dllhost.exe"
    assert event["dll"]["name"] == "IDStore.dll"
    assert event["@timestamp"] == "2020-10-28T02:39:26.374Z"  # Sysmon's UtcTime
    # No host.id in the document: vigil's stable one for the computer.
    assert event["host"]["id"] == host_id("vagrant")
    assert event["host"]["os"]["type"] == "windows"


def test_powershell_documents_are_mapped(tmp_path: Path) -> None:
    events = _read(tmp_path, _fixture(POWERSHELL))
    assert {e["_index"] for e in events} == {"logs-windows.powershell_operational-default"}
    assert [e["event"]["type"] for e in events] == [["start"], ["info"], ["end"], ["info"]]
    assert any("script_block_text" in e.get("powershell", {}).get("file", {}) for e in events)


def test_security_document_gets_the_security_pipeline(tmp_path: Path) -> None:
    [event] = _read(tmp_path, _fixture(SECURITY))
    assert event["_index"] == "logs-system.security-default"
    assert event["winlog"]["logon"]["id"] == "0x4367b"
    assert event["winlog"]["record_id"] == "273866"
    # The document's own host.id would be kept; it has none, so vigil derives one.
    assert event["host"]["id"] == host_id("DC01.contoso.local")


def test_logon_id_fix_applies_to_raw_documents(tmp_path: Path) -> None:
    raw = {"@timestamp": "2024-05-01T10:00:00.000Z",
           "event": {"code": "4624", "kind": "event",
                     "provider": "Microsoft-Windows-Security-Auditing"},
           "winlog": {"channel": "Security", "event_id": "4624", "computer_name": "DC01",
                      "provider_name": "Microsoft-Windows-Security-Auditing",
                      "time_created": "2024-05-01T10:00:00.000Z", "record_id": 7,
                      "event_data": {"LogonType": "3", "SubjectLogonId": "0x0",
                                     "TargetLogonId": "0xabc", "TargetUserName": "bob"}}}
    [intended] = _read(tmp_path, [raw])
    assert intended["winlog"]["logon"] == {"id": "0xabc", "type": "Network"}
    assert intended["event"]["category"] == ["authentication"]
    [elastic] = _read(tmp_path, [raw], logon_id="elastic")
    assert elastic["winlog"]["logon"]["id"] == "0x0"


def test_ingested_documents_are_left_alone(tmp_path: Path) -> None:
    """A document an ingest pipeline already mapped (event.ingested, event.category) is ECS:
    it is not mapped again."""
    doc = {"@timestamp": "2024-05-01T10:00:00.000Z",
           "event": {"code": "1", "category": ["process"], "ingested": "2024-05-01T10:00:01Z"},
           "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": "1",
                      "event_data": {"Image": "C:\\x.exe"}}}
    [event] = _read(tmp_path, [doc])
    assert event["winlog"]["event_data"] == {"Image": "C:\\x.exe"}
    assert "process" not in event
