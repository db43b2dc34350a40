"""Alert suppression as Kibana applies it (security_solution ``suppression_utils.ts``,
``bulk_create_suppressed_alerts_in_memory.ts``; rule_registry's ``suppressAlertsInMemory``
tests: the earliest alert survives, the others are counted in ``docs_count``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from vigil.detect.ids import object_hash, rule_uuid
from vigil.detect.run import DetectOptions, run_detection
from vigil.rules import Rule

NOW = "2024-06-01T00:00:00.000Z"
BASE = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_instance_ids_hash_objects_as_object_hash_does() -> None:
    # Vectors computed with npm object-hash 3.0.0 (Kibana's objectHash): plain objects carry
    # respectType's prototype/__proto__/constructor keys
    terms = [{"field": "host.name", "value": "h1"}, {"field": "user.name", "value": None}]
    assert object_hash([terms, "rule-uuid", "default"]) == \
        "c838515a9aa56e06920d5724a0a71131b14e747a"
    assert object_hash([{"a": 1, "b": [True, "x"]}]) == \
        "60d3736bdfef99ad2a7eba06494f6dde4888253c"


def _rule(suppression: dict[str, Any], query: str = "event.code: 4688",
          language: str = "kuery", rule_type: str = "query") -> Rule:
    return Rule.from_dict({
        "rule_id": "00000000-0000-4000-8000-0000000005a1", "name": "suppressed",
        "description": "d", "type": rule_type, "language": language, "query": query,
        "severity": "low", "risk_score": 21, "alert_suppression": suppression})


def _event(n: int, minutes: float, host: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"@timestamp": (BASE + timedelta(minutes=minutes)).isoformat(),
                           "_id": f"e{n}", "event": {"code": "4688"}}
    if host is not None:
        doc["host"] = {"name": host}
    return doc


def _run(rule: Rule, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a.document for a in
            run_detection([rule], events, options=DetectOptions(now=NOW)).alerts]


def test_one_alert_per_group_the_earliest_survives() -> None:
    events = [_event(1, 3, "WS1"), _event(2, 1, "WS2"), _event(3, 2, "WS1"),
              _event(4, 4, "WS2")]
    plain = Rule.from_dict({**_rule({"group_by": ["host.name"]}).params,
                            "alert_suppression": None})
    assert len(_run(plain, events)) == 4
    docs = _run(_rule({"group_by": ["host.name"]}), events)
    assert len(docs) == 2
    by_host = {d["host"]["name"]: d for d in docs}
    ws1 = by_host["WS1"]
    assert ws1["kibana.alert.ancestors"][0]["id"] == "e3"  # 10:02, before e1 at 10:03
    assert ws1["kibana.alert.suppression.terms"] == [{"field": "host.name", "value": "WS1"}]
    assert ws1["kibana.alert.suppression.docs_count"] == 1
    assert (ws1["kibana.alert.suppression.start"], ws1["kibana.alert.suppression.end"]) == \
        ("2024-05-01T10:02:00.000Z", "2024-05-01T10:03:00.000Z")
    uuid = rule_uuid("00000000-0000-4000-8000-0000000005a1")
    assert ws1["kibana.alert.instance.id"] == object_hash(
        [[{"field": "host.name", "value": "WS1"}], uuid, "default"])


def test_a_duration_starts_a_new_group_after_it() -> None:
    events = [_event(1, 0, "WS1"), _event(2, 30, "WS1"), _event(3, 61, "WS1"),
              _event(4, 90, "WS1")]
    docs = _run(_rule({"group_by": ["host.name"], "duration": {"value": 1, "unit": "h"}}),
                events)
    assert [(d["kibana.alert.ancestors"][0]["id"], d["kibana.alert.suppression.docs_count"])
            for d in docs] == [("e1", 1), ("e3", 1)]


def test_missing_fields_strategies() -> None:
    events = [_event(1, 0, None), _event(2, 1, None), _event(3, 2, "WS1")]
    grouped = _run(_rule({"group_by": ["host.name"]}), events)
    assert sorted(str(d["kibana.alert.suppression.terms"][0]["value"]) for d in grouped) == \
        ["None", "WS1"]  # the missing value is a group of its own (null)
    apart = _run(_rule({"group_by": ["host.name"],
                        "missing_fields_strategy": "doNotSuppress"}), events)
    assert len(apart) == 3
    assert sum("kibana.alert.suppression.terms" in d for d in apart) == 1


def test_eql_sequences_are_suppressed_on_their_shell() -> None:
    query = ('sequence by host.name [any where event.code == "4688" and x == 1] '
             '[any where event.code == "4688" and x == 2]')
    events = []
    for n, (minutes, x) in enumerate([(0, 1), (1, 2), (2, 1), (3, 2)]):
        doc = _event(n, minutes, "WS1")
        doc["x"] = x
        events.append(doc)
    unsuppressed = Rule.from_dict({**_rule({"group_by": ["x"]}, query, "eql", "eql").params,
                                   "alert_suppression": None})
    assert len(run_detection([unsuppressed], events,
                             options=DetectOptions(now=NOW)).alerts) == 2
    suppressed = _rule({"group_by": ["host.name"]}, query, "eql", "eql")
    result = run_detection([suppressed], events, options=DetectOptions(now=NOW))
    (alert,) = result.alerts
    assert alert.document["kibana.alert.suppression.docs_count"] == 1
    assert len(alert.building_blocks) == 2


def test_threshold_suppression_has_a_duration_and_groups_by_the_threshold_fields() -> None:
    # ThresholdAlertSuppression {duration}; the instance id hashes the sorted bucket values
    # without field names (wrap_suppressed_threshold_alerts.ts)
    def rule(suppression: dict[str, Any] | None) -> Rule:
        return Rule.from_dict({
            "rule_id": "00000000-0000-4000-8000-0000000005a2", "name": "t", "description": "d",
            "type": "threshold", "language": "kuery", "query": "event.code: 4688",
            "severity": "low", "risk_score": 21, "from": "now-6m",
            "threshold": {"field": ["host.name"], "value": 2},
            **({"alert_suppression": suppression} if suppression else {})})

    events = [_event(10 * k + i, 10 * k + i / 60, "WS1") for k in range(4) for i in range(2)]
    assert len(_run(rule(None), events)) == 4  # a bucket every 10 minutes
    (doc,) = _run(rule({"duration": {"value": 1, "unit": "h"}}), events)
    assert doc["kibana.alert.suppression.docs_count"] == 3
    assert doc["kibana.alert.instance.id"] == object_hash(
        [["WS1"], rule_uuid("00000000-0000-4000-8000-0000000005a2"), "default"])
