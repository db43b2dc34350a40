"""Alert documents and ids as Kibana writes them (../shared/docs/ELASTIC_ENGINE.md §3)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import orjson
import pytest

from vigil.detect.alerts import reason
from vigil.detect.ids import building_block_ids, event_id, rule_uuid, shell_id
from vigil.detect.indices import IndexSelector, index_of
from vigil.detect.run import MAX_SIGNALS_WARNING, DetectOptions, run_detection
from vigil.report.outputs import csv_text, write_ndjson
from vigil.rules.loader import bundled_rules
from vigil.rules.model import Rule


def test_id_recipe_matches_the_worked_example_of_elastic_engine_md() -> None:
    # ELASTIC_ENGINE.md §7.6: computed from Kibana's recipe with made-up inputs.
    rule = "5c1bd3a0-0000-4000-8000-000000000001"
    index = "winlogbeat-8.14.0-2025.01.01-000001"
    refs = [("AbC123", index), ("XyZ789", index)]
    blocks = building_block_ids(refs, rule)
    assert blocks[0].startswith("69a8e243") and blocks[0].endswith("b29709")
    assert blocks[1].startswith("eb91ab4a") and blocks[1].endswith("584781")
    shell = shell_id(refs, blocks, rule)
    assert shell.startswith("93bbcbd4") and shell.endswith("840464")


def test_event_ids_are_content_hashes_unless_exported() -> None:
    event = {"@timestamp": "2024-01-01T00:00:00Z", "a": {"b": 1}}
    same = {"a": {"b": 1}, "@timestamp": "2024-01-01T00:00:00Z"}
    assert event_id(event) == event_id(same) and len(event_id(event)) == 20
    assert event_id({**event, "a": {"b": 2}}) != event_id(event)
    assert event_id({**event, "_id": "given"}) == "given"
    assert rule_uuid("x") == rule_uuid("x") != rule_uuid("y")


def seed_rule() -> Rule:
    rules = [r for r in bundled_rules() if r.rule_id == "d33ea3bf-9a11-463e-bd46-f648f2a0f4b1"]
    assert len(rules) == 1
    return rules[0]


def pair(offset: int = 0, host: str = "WS01", logon_id: str = "0x1a2b") -> list[dict[str, Any]]:
    second = f"{offset:02d}"
    base = {"host": {"name": host}, "data_stream": {"dataset": "system.security",
                                                     "type": "logs", "namespace": "default"}}
    return [
        {**base, "@timestamp": f"2024-05-01T12:00:{second}.000Z",
         "event": {"category": ["authentication"], "action": "logged-in", "outcome": "success",
                   "code": "4624", "kind": "event"},
         "winlog": {"logon": {"id": logon_id, "type": "Network"}, "computer_name": host},
         "source": {"ip": "10.1.2.3"}, "user": {"name": "alice"}},
        {**base, "@timestamp": f"2024-05-01T12:00:{int(second) + 20:02d}.000Z",
         "event": {"category": ["iam", "configuration"], "action": "service-installed",
                   "code": "4697", "kind": "event"},
         "winlog": {"logon": {"id": logon_id}, "computer_name": host,
                    "event_data": {"SubjectLogonId": logon_id, "ServiceName": "evil",
                                   "ServiceFileName": "C:\\Users\\Public\\evil.exe"}},
         "user": {"name": "alice"}, "service": {"name": "evil"}},
    ]


def test_sequence_gives_building_blocks_and_a_shell() -> None:
    result = run_detection([seed_rule()], pair(), options=DetectOptions(now="2024-06-01T00:00:00.000Z"))
    assert len(result.alerts) == 1
    alert = result.alerts[0]
    blocks, shell = alert.building_blocks, alert.document
    assert len(blocks) == 2
    for position, block in enumerate(blocks):
        assert block["kibana.alert.group.id"] == shell["kibana.alert.uuid"]
        assert block["kibana.alert.group.index"] == position
        assert block["kibana.alert.building_block_type"] == "default"
        assert block["kibana.alert.depth"] == 1
        assert "kind" not in block["event"]
        assert block["event.kind"] == "signal"
        assert block["kibana.alert.ancestors"][0]["type"] == "event"
    assert blocks[0]["kibana.alert.original_event.action"] == "logged-in"
    assert blocks[1]["kibana.alert.original_event.code"] == "4697"
    assert blocks[0]["source"] == {"ip": "10.1.2.3"}
    # The shell keeps only what both events share (Kibana's intersection) ...
    assert shell["winlog"] == {"logon": {"id": "0x1a2b"}, "computer_name": "WS01"}
    assert "source" not in shell and "service" not in shell
    assert shell["kibana.alert.depth"] == 2 and "kibana.alert.group.index" not in shell
    assert [a["type"] for a in shell["kibana.alert.ancestors"]] == ["event", "signal"] * 2
    # ... and vigil adds what the analyst needs.
    assert shell["vigil.summary"]["source_ip"] == "10.1.2.3"
    assert shell["vigil.summary"]["service_file_name"] == "C:\\Users\\Public\\evil.exe"
    assert shell["vigil.summary"]["host"] == "WS01"
    assert shell["kibana.alert.rule.rule_id"] == "d33ea3bf-9a11-463e-bd46-f648f2a0f4b1"
    assert shell["kibana.alert.rule.version"] == 108
    assert shell["kibana.alert.severity"] == "medium" and shell["kibana.alert.risk_score"] == 47
    assert shell["kibana.alert.workflow_status"] == "open"
    assert shell["kibana.alert.original_time"] == "2024-05-01T12:00:00.000Z"
    tactics = {t["tactic"]["id"] for t in shell["kibana.alert.rule.threat"]}
    assert tactics == {"TA0008", "TA0003"}


def test_ids_are_stable_across_runs_and_distinct_across_rules() -> None:
    rule = seed_rule()
    first = run_detection([rule], pair(), options=DetectOptions(now="2024-06-01T00:00:00Z"))
    again = run_detection([rule], pair(), options=DetectOptions(now="2025-01-01T00:00:00Z"))
    ids = [d["kibana.alert.uuid"] for d in first.alerts[0].documents()]
    assert ids == [d["kibana.alert.uuid"] for d in again.alerts[0].documents()]
    other = replace(rule, rule_id="00000000-0000-4000-8000-000000000000")
    third = run_detection([other], pair())
    assert set(ids).isdisjoint(d["kibana.alert.uuid"] for d in third.alerts[0].documents())


def test_ndjson_documents_are_json_with_flat_kibana_keys(tmp_path: Any) -> None:
    result = run_detection([seed_rule()], pair())
    path = tmp_path / "alerts.ndjson"
    with path.open("wb") as out:
        assert write_ndjson(result.alerts, out) == 3
    lines = path.read_text(encoding="utf-8").splitlines()
    docs = [json.loads(line) for line in lines]
    for doc in docs:
        assert "kibana" not in doc  # kibana.* are flat dotted keys, never a nested object
        assert all(isinstance(k, str) for k in doc)
        assert doc["kibana.alert.rule.name"] == "Remote Windows Service Installed"
    assert orjson.loads(lines[-1])["kibana.alert.uuid"] == result.alerts[0].id


def test_reason_string_follows_kibana() -> None:
    rule = seed_rule()
    event = pair()[0]
    event["host"] = {"name": "WS01"}
    assert reason(event, rule) == ("authentication event with source 10.1.2.3, by alice on "
                                   "WS01 created medium alert Remote Windows Service Installed.")
    assert reason({}, rule) == "event created medium alert Remote Windows Service Installed."


def test_csv_timeline_neutralises_formulas() -> None:
    events = pair()
    events[1]["winlog"]["event_data"]["ServiceFileName"] = "=cmd|' /C calc'!A0"
    result = run_detection([seed_rule()], events)
    text = csv_text(result.alerts)
    assert "'=cmd|" in text and "\n=cmd" not in text and ",=cmd" not in text


@pytest.mark.parametrize(
    ("event", "index"),
    [
        ({"_index": "winlogbeat-8.1.0-2024"}, "winlogbeat-8.1.0-2024"),
        ({"data_stream": {"dataset": "system.security"}}, "logs-system.security-default"),
        ({"agent": {"type": "winlogbeat", "version": "8.14.0"}}, "winlogbeat-8.14.0"),
        ({"winlog": {"channel": "Microsoft-Windows-Sysmon/Operational"}},
         "logs-windows.sysmon_operational-default"),
        ({"event": {"category": "process"}}, None),
    ],
)
def test_index_of_events(event: dict[str, Any], index: str | None) -> None:
    assert index_of(event) == index


def test_index_patterns_select_events_and_unknown_indices_are_read_by_all() -> None:
    seed = IndexSelector(("winlogbeat-*", "logs-system.*", "logs-windows.*"))
    assert seed.accepts("logs-system.security-default")
    assert seed.accepts("winlogbeat-8.14.0")
    assert not seed.accepts("logs-endpoint.events.process-default")
    assert seed.accepts(None)
    assert IndexSelector(("logs-endpoint.*",), accept_all=True).accepts("winlogbeat-8")


def test_rules_do_not_read_other_indices_unless_index_all() -> None:
    events = pair()
    for event in events:
        event["data_stream"]["dataset"] = "endpoint.events.process"
    assert run_detection([seed_rule()], events).alerts == []
    assert len(run_detection([seed_rule()], events,
                             options=DetectOptions(index_all=True)).alerts) == 1


def test_max_signals_keeps_the_most_recent_and_warns() -> None:
    events = pair(0, host="A") + pair(1, host="B") + pair(2, host="C")
    result = run_detection([seed_rule()], events, options=DetectOptions(max_signals=2))
    outcome = result.outcomes[0]
    assert outcome.matches == 3 and outcome.dropped_by_cap == 1
    assert outcome.warnings == [MAX_SIGNALS_WARNING]
    assert [a.document["vigil.summary"]["host"] for a in result.alerts] == ["B", "C"]
