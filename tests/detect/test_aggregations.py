"""Threshold and new terms rules, as Kibana's detection engine raises their alerts
(security_solution ``rule_types/threshold/`` and ``new_terms/``; the unit tests and the
FTR tests ``execution_logic/threshold.ts`` / ``new_terms.ts`` named below)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import shared_dir
from vigil.detect.aggregations import (
    FirstSeen,
    ThresholdHistory,
    new_terms_run,
    scheduled_alerts,
    threshold_run,
)
from vigil.detect.executor import Timeline, execute
from vigil.detect.ids import object_hash, rule_uuid, threshold_bucket_id
from vigil.detect.run import DetectOptions, run_detection
from vigil.errors import RuleError
from vigil.rules import Rule, load_rules

NOW = "2024-06-01T00:00:00.000Z"
BASE = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_threshold_bucket_ids_are_kibanas() -> None:
    # threshold/utils.test.ts "should generate a uuid without key" / "... with key"
    assert threshold_bucket_id("abcd", "2020-12-17T16:27:00.000Z", ["agent.name"], []) == \
        "a4832768-a379-583a-b1a2-e2ce2ad9e6e9"
    assert threshold_bucket_id("abcd", "2019-11-18T13:32:00.000Z", ["host.ip"],
                               ["1.2.3.4"]) == "ee8870dc-45ff-5e6c-a2f9-80886651ce03"


def test_new_terms_alert_ids_are_kibanas() -> None:
    # wrap_new_terms_alerts.test.ts: objectHash([_index, _id, version, space:rule, terms])
    doc = ["myFakeSignalIndex", "d5e8eb51-a6a0-456d-8a15-4b79bfec3d71", "1"]
    rule = "04128c15-0d1b-4716-a4c5-46997ac7f3bd"
    assert object_hash([*doc, f"default:{rule}", ["127.0.0.1"]]) == \
        "a36d9fe6fe4b2f65058fb1a487733275f811af58"
    assert object_hash([*doc, f"other-space:{rule}", ["127.0.0.2"]]) == \
        "9eab1f07709065fa65dd687c2df7a30f4c5f6c9d"
    assert object_hash([*doc, f"other-space:{rule}", ["127.0.0.1", "127.0.0.2"]]) == \
        "7d3dfa1c3f6d5dbf5e7a1b069a9707adbdb48948"


def _rule(rule_type: str, query: str = "event.code: 4625", **extra: Any) -> Rule:
    return Rule.from_dict({
        "rule_id": f"00000000-0000-4000-8000-00000000{len(rule_type):04d}", "name": rule_type,
        "description": "d", "type": rule_type, "language": "kuery", "query": query,
        "severity": "medium", "risk_score": 47, "index": ["logs-*"], **extra})


def _event(n: int, at: datetime, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"@timestamp": at.isoformat().replace("+00:00", "Z"),
                           "_id": f"e{n}", "event": {"code": "4625"}}
    doc.update(fields)
    return doc


def _failures(source: str, count: int, start: datetime, first: int = 0,
              users: tuple[str, ...] = ("bob",)) -> list[dict[str, Any]]:
    return [_event(first + i, start + timedelta(seconds=10 * i), source={"ip": source},
                   user={"name": users[i % len(users)]}) for i in range(count)]


# ------------------------------------------------------------------ threshold


def test_threshold_alert_is_the_bucket() -> None:
    # FTR "generates 1 alert from Threshold rules when threshold is met"
    rule = _rule("threshold", threshold={"field": ["source.ip"], "value": 5})
    events = _failures("10.0.0.9", 6, BASE) + _failures("10.0.0.7", 4, BASE, first=100)
    result = run_detection([rule], events, options=DetectOptions(now=NOW))
    (alert,) = result.alerts
    doc = alert.document
    assert doc["kibana.alert.threshold_result"] == {
        "terms": [{"field": "source.ip", "value": "10.0.0.9"}], "count": 6,
        "from": "2024-05-01T10:00:00.000Z"}
    assert doc["kibana.alert.original_time"] == "2024-05-01T10:00:50.000Z"  # the latest
    assert doc["source.ip"] == "10.0.0.9" and "user" not in doc  # only the group-by values
    assert (doc["kibana.alert.rule.type"], doc["kibana.alert.rule.rule_type_id"]) == \
        ("threshold", "siem.thresholdRule")
    ancestor = doc["kibana.alert.ancestors"][0]
    assert (ancestor["type"], ancestor["index"], ancestor["depth"]) == ("event", "logs-*", 0)
    recipe = f"logs-*{ancestor['id']}undefineddefault:{rule_uuid(rule.rule_id)}"
    assert doc["kibana.alert.uuid"] == hashlib.sha256(recipe.encode()).hexdigest()
    assert doc["kibana.alert.reason"] == "event with source 10.0.0.9, created medium alert " \
        "threshold."
    assert len(alert.events) == 6  # vigil keeps the bucket's events for its reports


def test_threshold_cardinality_and_missing_fields() -> None:
    # FTR "generates no alerts ... when threshold is met and cardinality is not met" and
    # "generates alerts ... when threshold and cardinality are both met"
    events = (_failures("10.0.0.9", 6, BASE, users=("a", "b")) +
              _failures("10.0.0.7", 6, BASE, first=100, users=("a", "b", "c")) +
              [_event(200 + i, BASE, user={"name": "x"}) for i in range(9)])  # no source.ip
    rule = _rule("threshold", threshold={"field": "source.ip", "value": 5,
                                         "cardinality": [{"field": "user.name", "value": 3}]})
    (alert,) = run_detection([rule], events, options=DetectOptions(now=NOW)).alerts
    result = alert.document["kibana.alert.threshold_result"]
    assert result["terms"] == [{"field": "source.ip", "value": "10.0.0.7"}]
    assert result["cardinality"] == [{"field": "user.name", "value": 3}]
    # without group-by fields every event is one bucket (the plain count)
    total = _rule("threshold", threshold={"field": [], "value": 21})
    (alert,) = run_detection([total], events, options=DetectOptions(now=NOW)).alerts
    assert alert.document["kibana.alert.threshold_result"]["count"] == 21


def test_threshold_multiple_fields_and_arrays() -> None:
    # FTR "generates alerts from Threshold rules when bucketing by multiple fields"; an array
    # puts its event in a bucket per value
    events = [_event(i, BASE + timedelta(seconds=i), source={"ip": "10.0.0.1"},
                     user={"name": ["a", "b"] if i % 2 else "a"}) for i in range(6)]
    rule = _rule("threshold", threshold={"field": ["source.ip", "user.name"], "value": 3})
    alerts = run_detection([rule], events, options=DetectOptions(now=NOW)).alerts
    assert [(a.document["user.name"], a.document["kibana.alert.threshold_result"]["count"])
            for a in alerts] == [("a", 6), ("b", 3)]


def test_threshold_history_counts_an_event_once_across_overlapping_runs() -> None:
    # get_threshold_bucket_filters.ts: later runs leave out a bucket's events at or before
    # its last alert; the 9-minute windows of runs 5 minutes apart overlap
    rule = _rule("threshold", threshold={"field": "source.ip", "value": 5}, **{"from": "now-9m"})
    burst = _failures("10.0.0.9", 5, BASE + timedelta(minutes=1))
    later = _failures("10.0.0.9", 5, BASE + timedelta(minutes=7), first=50)
    timeline = Timeline.of(burst + later)
    history = ThresholdHistory()
    counts = []
    previous = None
    for minutes in (5, 10, 15):
        started = BASE + timedelta(minutes=minutes)
        run = execute(rule, timeline, started, previous, threshold_history=history)
        counts.append([a.document["kibana.alert.threshold_result"]["count"]
                       for a in run.alerts])
        previous = started
    # 10:05 sees the burst; 10:10 sees it again (window 10:01..10:10) but it was alerted:
    # only the 5 later events count; 10:15 sees nothing new
    assert counts == [[5], [5], []]
    # without the state, the overlap would count the burst twice
    fresh = execute(rule, timeline, BASE + timedelta(minutes=10), BASE + timedelta(minutes=5))
    assert [a.document["kibana.alert.threshold_result"]["count"] for a in fresh.alerts] == [10]


def test_threshold_max_signals_keeps_the_first_buckets_in_key_order() -> None:
    # FTR "generates max alerts warning when circuit breaker is exceeded"
    events = [e for n, ip in enumerate(["10.0.0.3", "10.0.0.1", "10.0.0.2"])
              for e in _failures(ip, 2, BASE, first=10 * n)]
    rule = _rule("threshold", threshold={"field": "source.ip", "value": 2}, max_signals=2)
    alerts, warnings = threshold_run(rule, "u", events, 0, BASE, ThresholdHistory(), NOW, 2)
    assert [a.document["source.ip"] for a in alerts] == ["10.0.0.1", "10.0.0.2"]
    assert warnings and "maximum alert limit" in warnings[0]


# ------------------------------------------------------------------ new terms


def _logon(n: int, at: datetime, user: Any, host: str = "H1") -> dict[str, Any]:
    return _event(n, at, user={"name": user}, host={"name": host})


def test_a_term_is_new_when_the_history_window_lacks_it() -> None:
    rule = _rule("new_terms", new_terms_fields=["user.name"], history_window_start="now-7d")
    day = timedelta(days=1)
    events = [_logon(1, BASE, "alice"), _logon(2, BASE + 3 * day, "alice"),
              _logon(3, BASE + 3 * day, "bob"), _logon(4, BASE + 3 * day + timedelta(
                  minutes=1), "bob"),
              _logon(5, BASE + 11 * day, "alice")]  # 8 days after alice's last: new again
    alerts = run_detection([rule], events, options=DetectOptions(now=NOW)).alerts
    got = [(a.document["kibana.alert.new_terms"], a.events[0]["_id"]) for a in alerts]
    # the first run makes everything in its window new (nothing before it), as a rule
    # enabled when the logs begin; bob's alert is his earliest event in the window
    assert got == [(["alice"], "e1"), (["bob"], "e3"), (["alice"], "e5")]
    doc = alerts[1].document
    assert (doc["kibana.alert.rule.type"], doc["kibana.alert.rule.category"]) == \
        ("new_terms", "New Terms Rule")
    expected = object_hash([doc["kibana.alert.ancestors"][0]["index"], "e3", "1",
                            f"default:{rule_uuid(rule.rule_id)}", ["bob"]])
    assert doc["kibana.alert.uuid"] == expected


def test_new_terms_arrays_combinations_and_missing_fields() -> None:
    at = BASE + timedelta(days=1)
    # FTR "should generate 3 alerts when 1 document has 3 new values"
    rule = _rule("new_terms", new_terms_fields=["host.ip"], history_window_start="now-7d")
    seen = FirstSeen.of(rule, [_event(1, at, host={"ip": ["1.1.1.1", "2.2.2.2", "3.3.3.3"]})])
    window = [_event(1, at, host={"ip": ["1.1.1.1", "2.2.2.2", "3.3.3.3"]})]
    from_ns = int((at - timedelta(minutes=1)).timestamp() * 1e9)
    alerts, _ = new_terms_run(rule, "u", window, seen, from_ns, 0, NOW, None)
    assert [a.document["kibana.alert.new_terms"] for a in alerts] == \
        [["1.1.1.1"], ["2.2.2.2"], ["3.3.3.3"]]
    assert len({a.id for a in alerts}) == 3
    # FTR "should generate 5 alerts, 1 for each new unique combination in 2 fields"
    pair = _rule("new_terms", new_terms_fields=["source.ip", "tags"],
                 history_window_start="now-7d")
    old = at - timedelta(hours=1)
    history = [_event(1, old, source={"ip": "192.168.1.1"}, tags=["tag-1", "tag-2"]),
               _event(2, old, source={"ip": "192.168.1.1"}, tags=["tag-1"])]
    new = _event(3, at, source={"ip": ["192.168.1.1", "192.168.1.2"]},
                 tags=["tag-new-1", "tag-2", "tag-new-3"])
    seen = FirstSeen.of(pair, [*history, new])
    alerts, _ = new_terms_run(pair, "u", [new], seen, from_ns, 0, NOW, None)
    assert len(alerts) == 5
    assert ["192.168.1.1", "tag-2"] not in [a.document["kibana.alert.new_terms"]
                                            for a in alerts]
    # FTR "should not generate alerts with null values for single field"
    missing = [_event(4, at, host={"name": "x"})]
    alerts, _ = new_terms_run(rule, "u", missing, FirstSeen.of(rule, missing), from_ns, 0,
                              NOW, None)
    assert alerts == []


def test_new_terms_history_must_begin_before_the_window() -> None:
    with pytest.raises(RuleError, match="must be earlier than 'from'"):
        _rule("new_terms", new_terms_fields=["user.name"], history_window_start="now-5m")


def test_scheduled_runs_raise_an_alert_once() -> None:
    rule = _rule("new_terms", new_terms_fields=["user.name"], history_window_start="now-7d")
    events = [_logon(i, BASE + timedelta(minutes=i), "carol") for i in range(30)]
    alerts, _ = scheduled_alerts(rule, "u", events, NOW, None)
    assert [a.events[0]["_id"] for a in alerts] == ["e0"]  # overlapping runs: one id


def test_the_prebuilt_threshold_and_new_terms_rules_load() -> None:
    result = load_rules([shared_dir() / "rules" / "elastic-prebuilt-other"])
    kinds = [r.type for r in result.rules]
    assert kinds.count("threshold") == 28 and kinds.count("new_terms") == 241
    assert all(r.new_terms is not None and 1 <= len(r.new_terms.fields) <= 3
               for r in result.rules if r.type == "new_terms")


def test_a_windows_new_terms_rule_on_the_samples_needs_its_field() -> None:
    # The samples' 4799 "group membership enumerated" events match the query of Elastic's
    # "Enumeration of Privileged Local Groups Membership" but carry no CallerProcessName
    # (CallerProcessId 0x0): no term, so no alert, as Kibana's composite drops them.
    from vigil.api import read

    root = shared_dir() / "rules" / "elastic-prebuilt-other" / "rules" / "windows"
    rule = next(r for r in load_rules([root]).rules
                if r.name == "Enumeration of Privileged Local Groups Membership")
    events = list(read([shared_dir() / "samples"]))
    (outcome,) = run_detection([rule], events, options=DetectOptions(now=NOW)).outcomes
    assert outcome.matches == 11 and outcome.alerts == []
    with_caller = [dict(e, winlog={**e["winlog"], "event_data": {
        **e["winlog"]["event_data"], "CallerProcessName": "C:\\Tools\\enum.exe"}})
        for e in events if e.get("winlog", {}).get("event_data", {}).get(
            "CallerProcessId") == "0x0" and e.get("event", {}).get("code") == "4799"]
    (outcome,) = run_detection([rule], with_caller, options=DetectOptions(now=NOW)).outcomes
    assert len(outcome.alerts) == 1


def test_detect_from_makes_what_comes_before_history_only() -> None:
    rule = _rule("new_terms", new_terms_fields=["user.name"], history_window_start="now-7d")
    day = timedelta(days=1)
    events = [_logon(1, BASE, "alice"), _logon(2, BASE + 2 * day, "alice"),
              _logon(3, BASE + 2 * day, "bob")]
    everything = run_detection([rule], events, options=DetectOptions(now=NOW)).alerts
    assert [a.document["kibana.alert.new_terms"] for a in everything] == [["alice"], ["bob"]]
    later = run_detection([rule], events, options=DetectOptions(now=NOW, start=BASE + day))
    assert [a.document["kibana.alert.new_terms"] for a in later.alerts] == [["bob"]]


def test_a_restarted_watcher_rebuilds_the_threshold_state_from_its_store(
        tmp_path: Any) -> None:
    # get_threshold_signal_history.ts: Kibana rebuilds the state from the alerts it wrote
    from vigil.commands.schedule import _threshold_history
    from vigil.store import open_store

    rule = _rule("threshold", threshold={"field": "source.ip", "value": 5})
    (alert,) = run_detection([rule], _failures("10.0.0.9", 5, BASE),
                             options=DetectOptions(now=NOW)).alerts
    with open_store(tmp_path / "s.db") as store:
        store.insert_alerts(alert.documents())
        history = _threshold_history(store, rule)
    last = int(datetime(2024, 5, 1, 10, 0, 40, tzinfo=UTC).timestamp()) * 1_000_000_000
    assert history.last == {(("source.ip", "10.0.0.9"),): last}


def test_terms_are_text_as_keyword_fields_index_them_and_objects_are_none() -> None:
    # Elasticsearch buckets a keyword field's values as text: 1 and "1" are one term,
    # true is "true" (not 1); an object is no term (and no crash)
    rule = _rule("new_terms", new_terms_fields=["user.id"], history_window_start="now-7d")
    events = [_event(1, BASE, user={"id": 1}), _event(2, BASE + timedelta(days=1),
                                                      user={"id": "1"})]
    assert [a.document["kibana.alert.new_terms"] for a in
            run_detection([rule], events, options=DetectOptions(now=NOW)).alerts] == [["1"]]
    counting = _rule("threshold", threshold={"field": "user.id", "value": 2})
    mixed = [_event(i, BASE + timedelta(seconds=i), user={"id": v})
             for i, v in enumerate([1, "1", True, "true", {"a": 1}])]
    alerts = run_detection([counting], mixed, options=DetectOptions(now=NOW)).alerts
    assert sorted(a.document["user.id"] for a in alerts) == ["1", "true"]


def test_detect_reports_a_per_run_cap_without_a_made_up_count(tmp_path: Any) -> None:
    import orjson

    from tests.test_cli import vigil

    rule = tmp_path / "t.toml"
    rule.write_text("""[rule]
author = ["me"]
description = "d"
name = "Many sources"
risk_score = 21
rule_id = "00000000-0000-4000-8000-0000000005d1"
severity = "low"
type = "threshold"
language = "kuery"
query = "event.code: 4625"
max_signals = 1
[rule.threshold]
field = ["source.ip"]
value = 2
""", encoding="utf-8")
    logs = tmp_path / "l.ndjson"
    logs.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in
                              _failures("10.0.0.1", 2, BASE) + _failures("10.0.0.2", 2, BASE, 10)))
    run = vigil("detect", str(logs), "--rule", str(rule), "--max-signals", "1", "-q")
    assert run.returncode == 0, run.stderr
    assert "maximum alert limit" in run.stderr and "(0 dropped)" not in run.stderr
