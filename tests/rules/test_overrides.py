"""Severity, risk score and rule name taken from the event, as Kibana's mappings do (the
cases of security_solution ``rule_types/utils/mappings/*.test.ts``, named below)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from vigil.detect.run import DetectOptions, run_detection
from vigil.rules import Rule
from vigil.rules.overrides import SeverityMapping, js_number, risk_score_for, severity_for

M = SeverityMapping


def test_severity_base_case_and_event_severity() -> None:
    # "returns the provided default severity" (no mapping)
    assert severity_for((), "low", {"event": {"severity": 23}}) == ("low", None)
    mapping = (M("event.severity", "23", "critical"),)
    # "severity is overridden if there's a match to a number"
    assert severity_for(mapping, "low", {"event": {"severity": 23}}) == ("critical",
                                                                         "event.severity")
    # "returns the default severity if there's a match to a string (ignores strings)"
    assert severity_for(mapping, "low", {"event": {"severity": "23"}}) == ("low", None)
    # the mapping value is Math.floor(Number(value))
    assert severity_for((M("event.severity", "23.9", "high"),), "low",
                        {"event.severity": 23}) == ("high", "event.severity")


def test_severity_on_other_fields_compares_text() -> None:
    # "...to any other field containing a single value": 23 matches "23"; strings match
    mapping = (M("my.field", "23", "medium"), M("my.name", "hackerman", "high"))
    assert severity_for(mapping, "low", {"my": {"field": 23}})[0] == "medium"
    assert severity_for(mapping, "low", {"my": {"field": 23.0}})[0] == "medium"  # one number
    assert severity_for(mapping, "low", {"my": {"field": 23.5}})[0] == "low"  # floats ignored
    assert severity_for(mapping, "low", {"my": {"name": "hackerman"}})[0] == "high"
    assert severity_for(mapping, "low", {"my": {"name": "Hackerman"}})[0] == "low"


def test_severity_arrays_take_the_highest_match() -> None:
    # "severity is overridden to highest matched mapping (works for any custom field)",
    # whatever the order of the mappings
    mapping = (M("f", "43", "critical"), M("f", "23", "low"), M("f", "33", "high"),
               M("f", "some string", "medium"))
    assert severity_for(mapping, "low", {"f": [23, "some string", 43, 33]}) == ("critical",
                                                                                "f")
    assert severity_for(mapping, "low", {"f": ["some string", 23]})[0] == "medium"


@pytest.mark.parametrize(("value", "expected"), [
    (42, 42), (3.14, 3.14), (-1e-13, 21), (100.0000000000001, 21),  # numbers
    ("42", 42), ("3.14", 3.14), ("-1", 21), ("101", 21),  # strings through Number()
    ([42, -42, 17, 87, 87.5, "86.5", 110, 66], 87.5),  # the max of the valid ones
    ([math.inf, "101", 100, 99], 100),
    (None, 21), ("string", 21), ([], 21), ({}, 21), (True, 21), ("Infinity", 21),
])
def test_risk_score_mapping(value: Any, expected: float) -> None:
    # build_risk_score_from_mapping.test: the cases of 'returns that number if...',
    # 'returns default score if...', arrays and 'edge cases ... junk values'
    assert risk_score_for("event.risk_score", 21, {"event": {"risk_score": value}}) == expected


def test_javascript_number_parsing() -> None:
    assert js_number(" 42 ") == 42 and js_number("") == 0 and js_number("0x10") == 16
    assert math.isnan(js_number("1_0")) and math.isnan(js_number("inf"))


def _rule(**extra: Any) -> Rule:
    return Rule.from_dict({
        "rule_id": "00000000-0000-4000-8000-0000000000d1", "name": "Rule Name",
        "description": "d", "type": "query", "language": "kuery", "query": "event.code: 1",
        "severity": "low", "risk_score": 21, **extra})


EVENT = {"@timestamp": "2024-05-01T10:00:00.000Z", "_id": "x1",
         "event": {"code": "1", "risk_score": "77"}, "user": {"name": "eve"},
         "rule": {"name": "From The Event"}, "host": {"name": "H1"}}


def _document(rule: Rule, event: dict[str, Any] = EVENT) -> dict[str, Any]:
    (alert,) = run_detection([rule], [event], options=DetectOptions(now="2024-06-01T00:00:00Z")
                             ).alerts
    return alert.document


def test_an_alert_carries_the_overrides_and_the_rule_keeps_its_values() -> None:
    rule = _rule(severity_mapping=[{"field": "user.name", "operator": "equals",
                                    "value": "eve", "severity": "critical"}],
                 risk_score_mapping=[{"field": "event.risk_score", "operator": "equals",
                                      "value": ""}],
                 rule_name_override="rule.name")
    doc = _document(rule)
    assert (doc["kibana.alert.severity"], doc["kibana.alert.risk_score"]) == ("critical", 77)
    assert doc["kibana.alert.rule.name"] == "From The Event"
    # build_alert.ts: the rule's own values stay beside the overrides
    assert (doc["kibana.alert.rule.severity"], doc["kibana.alert.rule.risk_score"]) == \
        ("low", 21)
    assert doc["kibana.alert.reason"].endswith("created critical alert From The Event.")
    # a name that is not a string leaves the rule's (build_rule_name_from_mapping.ts)
    listed = {**EVENT, "rule": {"name": ["From The Event"]}}
    assert _document(rule, listed)["kibana.alert.rule.name"] == "Rule Name"


def test_sequences_get_no_overrides() -> None:
    rule = Rule.from_dict({
        "rule_id": "00000000-0000-4000-8000-0000000000d2", "name": "Seq", "description": "d",
        "type": "eql", "language": "eql", "severity": "low", "risk_score": 21,
        "query": "sequence by host.name [any where event.code == \"1\"] "
                 "[any where event.code == \"1\"]",
        "severity_mapping": [{"field": "user.name", "operator": "equals", "value": "eve",
                              "severity": "critical"}]})
    second = {**EVENT, "_id": "x2", "@timestamp": "2024-05-01T10:00:01.000Z"}
    (alert,) = run_detection([rule], [EVENT, second],
                             options=DetectOptions(now="2024-06-01T00:00:00Z")).alerts
    for doc in (alert.document, *alert.building_blocks):
        assert doc["kibana.alert.severity"] == "low"
