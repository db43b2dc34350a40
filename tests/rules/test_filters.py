"""A rule's ``filters`` change which alerts it raises, as Kibana's bool around the query does
(kbn-es-query ``from_filters.ts``; tests in ``from_filters.test.ts`` named below)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vigil.detect.run import DetectOptions, run_detection
from vigil.errors import RuleError
from vigil.rules import Rule, load_rule_file

NOW = "2024-06-01T00:00:00.000Z"


def _rule(query: str, filters: list[dict[str, Any]], *, language: str = "kuery",
          rule_type: str = "query") -> Rule:
    return Rule.from_dict({
        "rule_id": "00000000-0000-4000-8000-00000000f117", "name": "filtered",
        "description": "d", "type": rule_type, "language": language, "query": query,
        "severity": "low", "risk_score": 21, "filters": filters})


def _process(n: int, executable: str, host: str = "WS1") -> dict[str, Any]:
    return {"@timestamp": f"2024-05-01T10:00:{n:02d}.000Z", "event": {"code": "4688",
            "category": ["process"]}, "host": {"name": host},
            "process": {"executable": executable}, "_id": f"e{n}"}


EVENTS = [_process(1, "C:\\Windows\\System32\\cmd.exe"),
          _process(2, "C:\\ProgramData\\Agent\\run.exe"),
          _process(3, "c:\\programdata\\AGENT\\x.exe"),
          _process(4, "D:\\tools\\x.exe")]


def _alerts(rule: Rule, events: list[dict[str, Any]] = EVENTS) -> list[str]:
    result = run_detection([rule], events, options=DetectOptions(now=NOW))
    return sorted(a.events[0]["_id"] for a in result.alerts)


NEGATED_WILDCARD = {"meta": {"negate": True}, "query": {"wildcard": {"process.executable": {
    "case_insensitive": True, "value": "?:\\\\ProgramData\\\\Agent\\\\*"}}}}


def test_a_negated_filter_removes_what_it_matches() -> None:
    # "should place negated filters in the must_not clause"; the wildcard as the prebuilt
    # rules write it (escaped backslashes, ? for the drive letter, case_insensitive)
    assert _alerts(_rule("event.code: 4688", [])) == ["e1", "e2", "e3", "e4"]
    assert _alerts(_rule("event.code: 4688", [NEGATED_WILDCARD])) == ["e1", "e4"]


def test_disabled_filters_are_dropped_and_plain_ones_narrow() -> None:
    # "should remove disabled filters"
    disabled = {**NEGATED_WILDCARD, "meta": {"negate": True, "disabled": True}}
    assert _alerts(_rule("event.code: 4688", [disabled])) == ["e1", "e2", "e3", "e4"]
    phrase = {"meta": {}, "query": {"match_phrase": {"host.name": "WS1"}}}
    events = [*EVENTS, _process(5, "C:\\x.exe", host="WS2")]
    assert _alerts(_rule("event.code: 4688", [phrase]), events) == ["e1", "e2", "e3", "e4"]
    # the old filter shape (migrate_filter.ts): the DSL beside meta, no "query" key
    exists = {"meta": {"negate": True}, "exists": {"field": "process.executable"}}
    assert _alerts(_rule("event.code: 4688", [exists])) == []


def test_bool_terms_and_ranges() -> None:
    filters = [{"query": {"bool": {"should": [
        {"terms": {"host.name": ["WS9", "WS1"]}},
        {"range": {"@timestamp": {"gte": "2030-01-01T00:00:00Z"}}}],
        "minimum_should_match": 1,
        "must_not": [{"prefix": {"process.executable": "D:"}}]}}}]
    assert _alerts(_rule("event.code: 4688", filters)) == ["e1", "e2", "e3"]


def test_an_escaped_star_is_a_star() -> None:
    star = {"query": {"wildcard": {"process.executable": {"value": "a\\*b*"}}}}
    events = [_process(1, "a*bc"), _process(2, "axbc")]
    assert _alerts(_rule("event.code: 4688", [star]), events) == ["e1"]


def test_filters_narrow_every_stage_of_an_eql_sequence() -> None:
    query = ("sequence by host.name [process where process.executable : \"C:*\"] "
             "[process where process.executable : \"D:*\"]")
    events = [_process(1, "C:\\a.exe"), _process(2, "D:\\b.exe")]
    plain = _rule(query, [], language="eql", rule_type="eql")
    assert len(run_detection([plain], events, options=DetectOptions(now=NOW)).alerts) == 1
    narrowed = _rule(query, [{"meta": {"negate": True}, "query": {"match_phrase": {
        "process.executable": "D:\\b.exe"}}}], language="eql", rule_type="eql")
    assert run_detection([narrowed], events, options=DetectOptions(now=NOW)).alerts == []


def test_a_filter_vigil_cannot_run_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text("""[metadata]
creation_date = "2024/01/01"

[rule]
author = ["me"]
description = "d"
name = "n"
risk_score = 21
rule_id = "00000000-0000-4000-8000-0000000000aa"
severity = "low"
type = "query"
language = "kuery"
query = "event.code: 1"

[[rule.filters]]
[rule.filters.query.query_string]
query = "x AND y"
""", encoding="utf-8")
    result = load_rule_file(path)
    (error,) = result.errors
    assert isinstance(error, RuleError) and error.line == 15
    assert "filters[0]: the query_string query is not supported" in error.reason


def test_range_filters_resolve_date_math() -> None:
    from datetime import UTC, datetime, timedelta

    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    events = [dict(_process(1, "C:\\a.exe"), **{"@timestamp": hour_ago}), _process(2, "x")]
    recent = {"query": {"range": {"@timestamp": {"gte": "now-1d"}}}}
    assert _alerts(_rule("event.code: 4688", [recent]), events) == ["e1"]
