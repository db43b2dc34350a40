"""Indicator match rules with indicator files (``detect --indicators``): Elastic's prebuilt
"Threat Intel IP Address Indicator Match" over events and Threat Intel integration documents
(security_solution ``rule_types/indicator_match/``: mapping groups OR'ed, entries AND'ed,
``threat.enrichments`` on the alert)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import shared_dir
from tests.test_cli import vigil
from vigil.detect.run import DetectOptions, run_detection
from vigil.rules import Rule, load_rules

NOW = datetime.now(UTC)


def _rule() -> Rule:
    root = shared_dir() / "rules" / "elastic-prebuilt-other" / "rules" / "threat_intel"
    return next(r for r in load_rules([root]).rules
                if r.name == "Threat Intel IP Address Indicator Match")


def _indicator(ip: str, *, days_ago: float = 1, module: str = "ti_abusech",
               index: str = "logs-ti_abusech.ip-default") -> dict[str, Any]:
    return {"@timestamp": (NOW - timedelta(days=days_ago)).isoformat(), "_id": f"ind-{ip}",
            "_index": index,
            "event": {"kind": "enrichment", "category": "threat", "type": "indicator",
                      "module": module},
            "threat": {"indicator": {"ip": ip, "type": "ipv4-addr"},
                       "feed": {"name": "AbuseCH"}}}


def _connection(n: int, source: str, destination: str) -> dict[str, Any]:
    return {"@timestamp": "2024-05-01T10:00:00.000Z", "_id": f"c{n}",
            "_index": "logs-windows.sysmon_operational-default",
            "event": {"category": ["network"], "code": "3"},
            "source": {"ip": source}, "destination": {"ip": destination}}


EVENTS = [_connection(1, "10.0.0.5", "203.0.113.9"), _connection(2, "198.51.100.7", "10.0.0.5"),
          _connection(3, "10.0.0.5", "10.0.0.6")]


def test_events_with_an_indicators_value_are_alerts_enriched_with_it() -> None:
    rule = _rule()
    indicators = (_indicator("203.0.113.9"), _indicator("198.51.100.7"),
                  _indicator("192.0.2.1", days_ago=45),  # threat_query: only the last 30d
                  _indicator("10.0.0.6", module="other"),  # not a threat intel module
                  _indicator("10.0.0.5", index="winlogbeat-x"))  # not in the threat index
    alerts = run_detection([rule], EVENTS, options=DetectOptions(
        now="2024-06-01T00:00:00Z", indicators=indicators)).alerts
    assert [a.events[0]["_id"] for a in alerts] == ["c1", "c2"]
    (enrichment,) = alerts[0].document["threat"]["enrichments"]
    assert enrichment["matched"] == {"atomic": "203.0.113.9", "field": "destination.ip",
                                     "id": "ind-203.0.113.9",
                                     "index": "logs-ti_abusech.ip-default",
                                     "type": "indicator_match_rule"}
    assert enrichment["indicator"] == {"ip": "203.0.113.9", "type": "ipv4-addr"}
    assert enrichment["feed"] == {"name": "AbuseCH"}
    assert alerts[1].document["threat"]["enrichments"][0]["matched"]["field"] == "source.ip"
    assert alerts[0].document["kibana.alert.rule.rule_type_id"] == "siem.indicatorRule"


def test_every_entry_of_a_group_must_hold() -> None:
    rule = _rule()
    spec = rule.threat_match
    assert spec is not None
    from dataclasses import replace

    both = replace(rule, threat_match=replace(spec, mapping=(
        (("source.ip", "threat.indicator.ip", False),
         ("destination.ip", "threat.indicator.ip", True)),)))
    indicators = (_indicator("10.0.0.5"),)
    alerts = run_detection([both], EVENTS, options=DetectOptions(indicators=indicators)).alerts
    assert [a.events[0]["_id"] for a in alerts] == ["c1", "c3"]  # source, and not destination


def test_detect_without_indicators_skips_the_rule_and_says_so(tmp_path: Path) -> None:
    events = tmp_path / "events.ndjson"
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in EVENTS) + b"\n")
    rules = shared_dir() / "rules" / "elastic-prebuilt-other" / "rules" / "threat_intel"
    bare = vigil("detect", str(events), "--rule", str(rules), "-q")
    assert bare.returncode == 2
    assert "skipped 6 threat_match rule(s): they need --indicators FILE" in bare.stderr
    feed = tmp_path / "ti.ndjson"
    feed.write_bytes(orjson.dumps(_indicator("203.0.113.9")) + b"\n{broken\n")
    found = vigil("detect", str(events), "--rule", str(rules), "--indicators", str(feed),
                  "--format", "ndjson", "-q")
    assert found.returncode == 0, found.stderr
    docs = [orjson.loads(line) for line in found.stdout.splitlines()]
    assert [d["kibana.alert.rule.name"] for d in docs] == \
        ["Threat Intel IP Address Indicator Match"]
    assert "read 1 threat indicator(s); skipped 1 bad record(s):" in found.stderr
    assert f"{feed}:" in found.stderr  # the bad line named with its file and position
