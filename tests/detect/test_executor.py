"""Scheduled executions over a timeline: replay equals one-shot detection when no run is
missed; a planted outage shows Elastic's gap and vigil's complete coverage; late events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from vigil.detect.executor import Timeline, execute, from_ns, late_events
from vigil.detect.run import run_detection
from vigil.detect.schedule import schedule
from vigil.events.logon import apply_intended_logon_id
from vigil.rules import bundled_rules
from vigil.synth import Generator

RULE = bundled_rules()[0]
M = timedelta(minutes=1)


def generated(hours: float, seed: int = 3) -> tuple[list[dict[str, Any]], Generator]:
    generator = Generator(seed=seed, events_per_second=0.5)
    events = list(generator.events(int(hours * 3600 * 0.5), planted_every=200))
    for event in events:
        apply_intended_logon_id(event)  # as vigil's reader does by default
    return events, generator


def replay(timeline: Timeline, first: datetime, last: datetime, *, skip: tuple[datetime,
           datetime] | None = None, mode: str = "complete",
           window_on: str = "@timestamp") -> tuple[set[str], list[Any]]:
    alert_ids: set[str] = set()
    executions = []
    previous = None
    for start in schedule(first, last, RULE.interval_delta):
        if skip and skip[0] <= start <= skip[1]:
            continue  # the scheduler was down
        run = execute(RULE, timeline, start, previous, gap_mode=mode,  # type: ignore[arg-type]
                      window_on=window_on)  # type: ignore[arg-type]
        executions.append(run)
        alert_ids |= {a.id for a in run.alerts}
        previous = start
    return alert_ids, executions


def test_replay_without_missed_runs_equals_one_shot_detection() -> None:
    events, generator = generated(hours=6)
    timeline = Timeline.of(events)
    first = from_ns(timeline.times[0]).replace(second=0, microsecond=0)
    last = from_ns(timeline.times[-1]) + 10 * M
    alert_ids, executions = replay(timeline, first, last, mode="elastic")
    one_shot = {a.id for a in run_detection([RULE], events).alerts}
    assert alert_ids == one_shot
    assert len(one_shot) == sum(p.fires for p in generator.planted) > 0
    assert {e.status for e in executions} == {"succeeded"}


def test_planted_outage_elastic_reports_the_gap_vigil_fills_it() -> None:
    events, _ = generated(hours=6, seed=5)
    timeline = Timeline.of(events)
    first = from_ns(timeline.times[0]).replace(second=0, microsecond=0)
    last = from_ns(timeline.times[-1]) + 10 * M
    down = (first + timedelta(hours=2), first + timedelta(hours=4))
    everything = {a.id for a in run_detection([RULE], events).alerts}
    elastic_ids, elastic_runs = replay(timeline, first, last, skip=down, mode="elastic")
    complete_ids, complete_runs = replay(timeline, first, last, skip=down, mode="complete")
    # By hand (ELASTIC_ENGINE.md §2.2): runs at 2:00..4:00 are skipped, so the run at 4:05
    # comes 130m after the one at 1:55: gap = 130m - 9m = 121m, 4 catch-up windows of 5m
    # cover 20m, 101m remain.
    failed = [r for r in elastic_runs if r.status == "failed"]
    assert len(failed) == 1 and len(failed[0].plan.windows) == 5
    assert failed[0].plan.gap == 101 * M
    assert "were not queried between this rule execution and the last execution" in \
        failed[0].message
    # What Elastic's windows could see, computed independently of the executor:
    searched = [(w.start, w.end) for r in elastic_runs for w in r.plan.windows]
    expected = set()
    for start, end in searched:
        in_window = [e for e in events
                     if start <= datetime.fromisoformat(e["@timestamp"]) <= end]
        expected |= {a.id for a in run_detection([RULE], in_window).alerts}
    assert elastic_ids == expected
    assert complete_ids == everything and elastic_ids < everything
    assert all(r.status == "succeeded" for r in complete_runs)


def test_late_events_are_missed_by_timestamp_windows_and_found_on_ingest_time() -> None:
    events, _ = generated(hours=1, seed=11)
    attacks = run_detection([RULE], events).alerts
    assert attacks
    # The service install of the first attack reaches vigil 30 minutes late.
    install = attacks[0].events[1]
    late_copy = dict(install)
    arrived = datetime.fromisoformat(str(install["@timestamp"])) + 30 * M
    late_copy["event"] = {**install["event"], "ingested": arrived.isoformat()}
    events = [late_copy if e is install else e for e in events]
    late_attack = next(a for a in run_detection([RULE], events).alerts
                       if any(e is late_copy for e in a.events))
    timeline = Timeline.of(events)
    first = from_ns(timeline.times[0]).replace(second=0, microsecond=0)
    last = from_ns(timeline.times[-1]) + 40 * M
    on_time, runs = replay(timeline, first, last)
    assert late_attack.id not in on_time
    late = late_events(timeline, [(r.started_at, r.plan) for r in runs])
    assert [timeline.entries[i].event for i in late] == [late_copy]
    rescanned, _ = replay(timeline, first, last, window_on="event.ingested")
    assert late_attack.id in rescanned
    assert rescanned >= on_time


def test_first_run_window_is_from_now_minus_9m() -> None:
    timeline = Timeline.of([])
    start = datetime(2024, 5, 1, 12, tzinfo=UTC)
    run = execute(RULE, timeline, start, None)
    assert [(w.start, w.end) for w in run.plan.windows] == [(start - 9 * M, start)]
    assert run.status == "succeeded" and run.message == "Rule execution completed successfully"


def test_timestamp_override_windows_on_the_override_with_the_timestamp_fallback() -> None:
    # build_events_query.ts buildTimeRangeFilter: override in from..to, or (no override and
    # @timestamp in from..to); timestamp_override_fallback_disabled drops the second half.
    from dataclasses import replace

    from vigil.eql.parser import parse

    text = 'any where event.code == "1102"'
    rule = replace(RULE, query=text, tree=parse(text), timestamp_override="event.ingested")
    base = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)

    def event(n: int, at: datetime, ingested: datetime | None) -> dict[str, Any]:
        doc: dict[str, Any] = {"@timestamp": at.isoformat(), "_id": f"e{n}",
                               "event": {"code": "1102"}}
        if ingested is not None:
            doc["event"]["ingested"] = ingested.isoformat()
        return doc

    events = [event(1, base, base + 30 * M),  # written at 10:00, indexed at 10:30
              event(2, base + 31 * M, None),  # no event.ingested: @timestamp decides
              event(3, base + 31 * M, base + 2 * 60 * M)]  # indexed two hours later
    timeline = Timeline.of(events)
    run_at = base + 35 * M  # searches now-9m..now on event.ingested: 10:26..10:35
    found = execute(rule, timeline, run_at, run_at - 5 * M)
    assert sorted(a.events[0]["_id"] for a in found.alerts) == ["e1", "e2"]
    strict = execute(replace(rule, timestamp_override_fallback_disabled=True), timeline,
                     run_at, run_at - 5 * M)
    assert [a.events[0]["_id"] for a in strict.alerts] == ["e1"]
    on_timestamp = execute(replace(rule, timestamp_override=None), timeline, run_at,
                           run_at - 5 * M)
    assert [a.events[0]["_id"] for a in on_timestamp.alerts] == ["e2"]
