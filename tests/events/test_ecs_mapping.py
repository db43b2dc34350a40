"""ECS documents of real 4624, 4697 and 7045 records checked against ECS_MAPPING.md.

Expected values are derived from the raw record (the evtx crate's own JSON of the same record,
or the OTRF line) by the rules of ECS_MAPPING.md, never typed in by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import evtx
import orjson
import pytest

from tests.conftest import shared_dir
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.events.pipelines.security import SERVICE_TYPES

LOGON_4624 = "evtx/sbousseaden_EVTX-ATTACK-SAMPLES/LM_WMI_4624_4688_TargetHost.evtx"
SERVICE_4697 = "evtx/mdecrevoisier_EVTX-to-MITRE-Attack/ID4697-New service for Mimikatz.evtx"
SERVICE_7045 = "evtx/sbousseaden_EVTX-ATTACK-SAMPLES/LM_Remote_Service02_7045.evtx"
OTRF_PSEXEC = "json/OTRF_Security-Datasets/empire_psexec_dcerpc_tcp_svcctl.zip"
MOVED = ("ProcessId", "ProcessName", "IpAddress", "IpPort", "WorkstationName")


def _sample(relative: str) -> Path:
    path = shared_dir() / "samples" / relative
    assert path.is_file(), f"sample missing: {path}"
    return path


def _raw_records(path: Path) -> dict[str, dict[str, Any]]:
    """The crate's JSON of every record, by System/EventRecordID (as a string)."""
    out = {}
    for record in evtx.PyEvtxParser(str(path)).records_json():
        assert record is not None
        event = orjson.loads(record["data"])["Event"]
        out[str(event["System"]["EventRecordID"])] = event
    return out


def _mapped(path: Path, mode: str = "intended") -> list[dict[str, Any]]:
    stats = ReadStats()
    events = list(read_events([path], stats, ReadOptions(logon_id=mode)))  # type: ignore[arg-type]
    assert stats.bad_total == 0, [str(b) for b in stats.bad_records]
    return events


def _event_id(raw: dict[str, Any]) -> int:
    value = raw["System"]["EventID"]
    return int(value["#text"] if isinstance(value, dict) else value)


def _outcome(keywords: str) -> str | None:
    mask = int(keywords, 16)
    if mask & 0x10000000000000:
        return "failure"
    if mask & 0x20000000000000:
        return "success"
    return None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _event_data(raw: dict[str, Any]) -> dict[str, str]:
    """EventData by the mapping's rule: values as strings, empty values dropped."""
    return {k: _as_text(v) for k, v in raw["EventData"].items() if v not in (None, "")}


def _check_common(doc: dict[str, Any], raw: dict[str, Any]) -> None:
    """Section 1: fields every event gets."""
    system = raw["System"]
    provider = system["Provider"]["#attributes"]
    assert doc["@timestamp"] == system["TimeCreated"]["#attributes"]["SystemTime"]
    assert doc["event"]["code"] == str(_event_id(raw))
    assert doc["event"]["kind"] == "event"
    assert doc["event"]["provider"] == provider["Name"]
    assert doc["event"].get("outcome") == _outcome(system["Keywords"])
    assert doc["host"]["name"] == system["Computer"]
    assert doc["host"]["os"]["type"] == "windows"
    winlog = doc["winlog"]
    assert winlog["channel"] == system["Channel"]
    assert winlog["computer_name"] == system["Computer"]
    assert winlog["provider_name"] == provider["Name"]
    guid = provider["Guid"]
    assert winlog["provider_guid"] == (guid if guid.startswith("{") else "{" + guid + "}")
    assert winlog["record_id"] == str(system["EventRecordID"])
    assert winlog["event_id"] == str(_event_id(raw))
    execution = system["Execution"]["#attributes"]
    assert winlog["process"]["pid"] == int(execution["ProcessID"])
    assert winlog["process"]["thread"]["id"] == int(execution["ThreadID"])
    assert all(isinstance(v, str) for v in winlog.get("event_data", {}).values()
               if not isinstance(v, list))
    assert isinstance(doc["_id"], str) and len(doc["_id"]) == 20


def test_4624_network_logon_matches_the_mapping() -> None:
    path = _sample(LOGON_4624)
    raws = _raw_records(path)
    docs = [d for d in _mapped(path) if d["event"]["code"] == "4624"]
    assert docs
    remote = 0
    for doc in docs:
        raw = raws[doc["winlog"]["record_id"]]
        data = _event_data(raw)
        _check_common(doc, raw)
        assert doc["event"]["category"] == ["authentication"]
        assert doc["event"]["type"] == ["start"]
        assert doc["event"]["action"] == "logged-in"
        assert doc["_index"] == "logs-system.security-default"
        winlog = doc["winlog"]
        assert data["LogonType"] == "3"
        assert winlog["logon"]["type"] == "Network"
        assert winlog["logon"]["id"] == data["TargetLogonId"]  # intended mode
        assert winlog["event_data"]["LogonType"] == "3"  # stringified, kept
        for key in ("SubjectLogonId", "TargetLogonId", "SubjectUserSid", "TargetUserName"):
            assert winlog["event_data"][key] == data[key]
        assert doc["user"]["id"] == data["TargetUserSid"]
        assert doc["user"]["name"] == data["TargetUserName"].split("@")[0]
        assert doc["user"]["domain"] == data["TargetDomainName"]
        expected_related = [data["TargetUserName"].split("@")[0]]
        if data["SubjectUserName"] != "-" and data["SubjectUserName"] not in expected_related:
            expected_related.append(data["SubjectUserName"])
        assert doc["related"]["user"] == expected_related
        if data.get("IpAddress", "-") != "-":
            ip = data["IpAddress"].removeprefix("::ffff:")
            assert doc["source"]["ip"] == ip
            assert ip in doc["related"]["ip"]
            assert doc["source"]["port"] == int(data["IpPort"])
            remote += 1
        else:
            assert "ip" not in doc.get("source", {})
        # system_security_default.yml drops "-" values from event_data before mapping.
        if data.get("WorkstationName", "-") != "-":
            assert doc["source"]["domain"] == data["WorkstationName"]
        assert doc["process"]["pid"] == int(data["ProcessId"], 16)
        if data["ProcessName"] != "-":
            assert doc["process"]["executable"] == data["ProcessName"]
            assert doc["process"]["name"] == data["ProcessName"].rsplit("\\", 1)[-1]
        else:
            assert "executable" not in doc["process"]
        for key in MOVED:
            if key != "IpAddress" or data.get(key) != "-":
                assert key not in winlog["event_data"]
    assert remote >= 1


def test_logon_id_intended_vs_elastic_on_a_real_network_logon() -> None:
    path = _sample(LOGON_4624)
    raws = _raw_records(path)
    intended = {d["winlog"]["record_id"]: d for d in _mapped(path, "intended")}
    elastic = {d["winlog"]["record_id"]: d for d in _mapped(path, "elastic")}
    network = [rid for rid, raw in raws.items() if _event_id(raw) == 4624
               and str(raw["EventData"]["LogonType"]) == "3"
               and raw["EventData"].get("IpAddress", "-") not in ("-", "127.0.0.1", "::1")]
    assert network
    for rid in network:
        data = raws[rid]["EventData"]
        assert data["SubjectLogonId"] != data["TargetLogonId"]
        assert intended[rid]["winlog"]["logon"]["id"] == data["TargetLogonId"]
        assert elastic[rid]["winlog"]["logon"]["id"] == data["SubjectLogonId"]
        # Everything else is the same document.
        intended[rid]["winlog"]["logon"].pop("id")
        elastic[rid]["winlog"]["logon"].pop("id")
        assert intended[rid] == elastic[rid]


def test_4697_matches_the_mapping() -> None:
    path = _sample(SERVICE_4697)
    raws = _raw_records(path)
    docs = [d for d in _mapped(path) if d["event"]["code"] == "4697"]
    assert docs
    for doc in docs:
        raw = raws[doc["winlog"]["record_id"]]
        data = _event_data(raw)
        _check_common(doc, raw)
        assert doc["event"]["category"] == ["iam", "configuration"]
        assert doc["event"]["type"] == ["admin", "change"]
        assert doc["event"]["action"] == "service-installed"
        assert doc["event"]["outcome"] == "success"
        assert doc["winlog"]["logon"]["id"] == data["SubjectLogonId"]
        assert doc["user"] == {"id": data["SubjectUserSid"], "name": data["SubjectUserName"],
                               "domain": data["SubjectDomainName"]}
        assert doc["related"]["user"] == [data["SubjectUserName"]]
        assert doc["service"]["name"] == data["ServiceName"]
        assert doc["service"]["type"] == SERVICE_TYPES[data["ServiceType"]]
        for key in ("ServiceFileName", "ServiceName", "ServiceType", "ServiceStartType",
                    "ServiceAccount", "SubjectUserSid", "SubjectUserName", "SubjectDomainName",
                    "SubjectLogonId"):
            assert doc["winlog"]["event_data"][key] == data[key]
        assert doc["winlog"]["task"] == "Security System Extension"
        assert doc["_index"] == "logs-system.security-default"


def test_7045_is_left_as_the_system_pipeline_leaves_it() -> None:
    path = _sample(SERVICE_7045)
    raws = _raw_records(path)
    docs = _mapped(path)
    assert docs and all(d["event"]["code"] == "7045" for d in docs)
    for doc in docs:
        raw = raws[doc["winlog"]["record_id"]]
        _check_common(doc, raw)
        assert raw["System"]["EventID"]["#attributes"]["Qualifiers"]  # dropped from the code
        assert "category" not in doc["event"] and "type" not in doc["event"]
        assert doc["event"]["action"] == "None"  # task 0, not "service-installed"
        assert "outcome" not in doc["event"]  # Classic keyword only
        assert doc["winlog"]["keywords"] == ["Classic"]
        assert "logon" not in doc["winlog"]
        assert "user" not in doc and "service" not in doc
        assert doc["winlog"]["user"]["identifier"] == \
            raw["System"]["Security"]["#attributes"]["UserID"]
        assert doc["winlog"]["event_data"] == _event_data(raw)
        assert doc["_index"] == "logs-system.system-default"


def test_record_ids_are_stable_and_distinct() -> None:
    path = _sample(LOGON_4624)
    first = [d["_id"] for d in _mapped(path)]
    assert first == [d["_id"] for d in _mapped(path)]
    assert len(set(first)) == len(first)


def _otrf_lines(relative: str) -> list[dict[str, Any]]:
    import zipfile

    with zipfile.ZipFile(_sample(relative)) as archive:
        (member,) = archive.namelist()
        return [orjson.loads(line) for line in archive.read(member).splitlines() if line]


@pytest.mark.parametrize("mode", ["intended", "elastic"])
def test_otrf_4624_and_4697_are_mapped_like_evtx(mode: str) -> None:
    lines = {(d["Hostname"], d["Channel"].lower(), str(d["RecordNumber"])): d
             for d in _otrf_lines(OTRF_PSEXEC)}
    docs = _mapped(_sample(OTRF_PSEXEC), mode)
    assert len(docs) == len(lines)
    checked = 0
    for doc in docs:
        code = doc["event"]["code"]
        if code not in ("4624", "4697"):
            continue
        winlog = doc["winlog"]
        raw = lines[(winlog["computer_name"], winlog["channel"].lower(), winlog["record_id"])]
        assert doc["host"]["name"] == raw["Hostname"]
        assert doc["host"]["os"]["type"] == "windows"
        assert winlog["channel"] == "Security"  # "security" in some lines
        assert doc["event"]["outcome"] == "success"
        if code == "4624":
            assert doc["event"]["action"] == "logged-in"
            expected = raw["TargetLogonId"] if mode == "intended" else raw["SubjectLogonId"]
            assert winlog["logon"]["id"] == expected
            if raw["LogonType"] == "3":
                assert winlog["logon"]["type"] == "Network"
            if raw.get("IpAddress", "-") != "-":
                assert doc["source"]["ip"] == raw["IpAddress"]
        else:
            assert doc["event"]["action"] == "service-installed"
            assert winlog["logon"]["id"] == raw["SubjectLogonId"]
            assert winlog["event_data"]["ServiceFileName"] == raw["ServiceFileName"]
        checked += 1
    assert checked >= 5
