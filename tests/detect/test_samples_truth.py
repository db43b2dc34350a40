"""The bundled rule on every real sample file, against a truth derived from the raw events.

The oracle below reads the raw records itself (the ``evtx`` package for EVTX, the zipped
NXLog JSON for OTRF) and applies the seed rule's meaning directly to Windows fields, with
none of vigil's mapping or EQL code: a type-3 successful 4624 from a remote address, then a
4697 by a non-SYSTEM session whose ServiceFileName is not in the rule's exclusion list, on the
same computer and the same logon session, within one minute; per session, the latest logon
pairs with the first install after it (Elasticsearch's sequence rule). "intended" keys the
logon by TargetLogonId; "elastic" by SubjectLogonId, as Elastic's current pipelines do.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import evtx
import pytest

from tests.conftest import shared_dir
from vigil.detect.run import run_detection
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.rules import bundled_rules

SEED_ID = "d33ea3bf-9a11-463e-bd46-f648f2a0f4b1"


def _exclusions() -> list[str]:
    seed = shared_dir() / "seed" / "lateral_movement_remote_service_installed_winlog.v108.toml"
    query = tomllib.loads(seed.read_text(encoding="utf-8"))["rule"]["query"]
    block = query.split("ServiceFileName :", 1)[1]
    return [p.replace("\\\\", "\\").lower() for p in json.loads(
        "[" + block.strip().lstrip("(").rsplit(")", 1)[0] + "]")]


def _raw_records(path: Path) -> Iterator[dict[str, Any]]:
    """(computer, event id, record id, time, data) of the raw records of a sample file."""
    if path.suffix == ".evtx":
        parser = evtx.PyEvtxParser(str(path))
        records = iter(parser.records_json())
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except Exception:  # a damaged record: the oracle only needs intact ones
                continue
            event = json.loads(record["data"])["Event"]
            system = event["System"]
            if not system.get("TimeCreated"):  # an unfinished record: no time, no order
                continue
            event_id = system["EventID"]
            if isinstance(event_id, dict):
                event_id = event_id["#text"]
            yield {"computer": system["Computer"], "id": int(event_id),
                   "record": str(system["EventRecordID"]),
                   "time": system["TimeCreated"]["#attributes"]["SystemTime"],
                   "keywords": system.get("Keywords"), "data": event.get("EventData") or {}}
    else:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                with archive.open(name) as handle:
                    for line in handle:
                        doc = json.loads(line)
                        yield {"computer": doc.get("Hostname"), "id": int(doc["EventID"]),
                               "record": str(doc.get("RecordNumber")),
                               "time": doc.get("TimeCreated") or doc.get("EventTime"),
                               "keywords": doc.get("EventType") or doc.get("Keywords"),
                               "data": doc}


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T")).timestamp()


def truth(path: Path, mode: str) -> set[tuple[str, str, str]]:
    exclusions = _exclusions()
    records = sorted(_raw_records(path), key=lambda r: _seconds(r["time"]))
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    found: set[tuple[str, str, str]] = set()
    for record in records:
        data = record["data"]
        if record["id"] == 4624:
            success = record["keywords"] in ("0x8020000000000000", "AUDIT_SUCCESS")
            ip = str(data.get("IpAddress") or "-").removeprefix("::ffff:")
            if str(data.get("LogonType")) != "3" or not success or ip in ("-", "127.0.0.1",
                                                                          "::1"):
                continue
            session = data.get("TargetLogonId" if mode == "intended" else "SubjectLogonId")
            latest[(str(session).lower(), record["computer"])] = record
        elif record["id"] == 4697:
            session = str(data.get("SubjectLogonId")).lower()
            path_value = str(data.get("ServiceFileName") or "").lower()
            if session == "0x3e7" or any(fnmatch.fnmatchcase(path_value, p) for p in exclusions):
                continue
            logon = latest.pop((session, record["computer"]), None)
            if logon and _seconds(record["time"]) - _seconds(logon["time"]) <= 60:
                found.add((record["computer"], logon["record"], record["record"]))
    return found


def vigil_pairs(path: Path, mode: str) -> set[tuple[str, str, str]]:
    rules = [r for r in bundled_rules() if r.rule_id == SEED_ID]
    options = ReadOptions(logon_id="intended" if mode == "intended" else "elastic")
    events = list(read_events([path], ReadStats(), options))
    pairs = set()
    for alert in run_detection(rules, events).alerts:
        logon, install = alert.building_blocks
        pairs.add((install["winlog"]["computer_name"], str(logon["winlog"]["record_id"]),
                   str(install["winlog"]["record_id"])))
    return pairs


def _sample_files() -> list[Any]:
    try:
        root = shared_dir() / "samples"
    except BaseException:
        return [pytest.param(None, id="shared-missing")]
    files = sorted([*root.rglob("*.evtx"), *root.rglob("*.zip")])
    return [pytest.param(f, id=f.name) for f in files]


@pytest.mark.parametrize("mode", ["intended", "elastic"])
@pytest.mark.parametrize("path", _sample_files())
def test_seed_rule_fires_exactly_where_the_raw_events_say(path: Path | None, mode: str) -> None:
    shared_dir()
    assert path is not None
    assert vigil_pairs(path, mode) == truth(path, mode)


def test_the_fix_finds_attacks_elastic_misses() -> None:
    files = [p.values[0] for p in _sample_files()]
    intended = sum(len(truth(f, "intended")) for f in files)
    elastic = sum(len(truth(f, "elastic")) for f in files)
    assert intended >= 3 and elastic == 0
