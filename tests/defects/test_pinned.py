"""Mutations no test caught before (issue 13, item 24): the inputs of a single-event alert's
id, and the run window's bounds (Kibana searches ``gte from`` and ``lte to``: both ends in)."""

from __future__ import annotations

from datetime import timedelta

from tests.test_cli import EXAMPLES
from vigil.detect.executor import Timeline, execute, from_ns
from vigil.detect.ids import single_alert_id
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.rules import bundled_rules


def test_single_event_alert_id_follows_kibanas_recipe() -> None:
    # Kibana's generateId: sha256 of the event's index, then its id, its version and the
    # rule's saved-object id, concatenated in that order (the worked example of the sequence
    # ids uses the same made-up inputs).
    rule = "5c1bd3a0-0000-4000-8000-000000000001"
    index = "winlogbeat-8.14.0-2025.01.01-000001"
    got = single_alert_id(("AbC123", index), rule)
    assert got.startswith("86dcf358") and got.endswith("384e9e3f"), got
    # Each input is in the hash: swapping the event's id and index changes it.
    assert single_alert_id((index, "AbC123"), rule) != got
    assert single_alert_id(("AbC123", index), rule, version="2") != got


def test_run_window_includes_both_ends() -> None:
    rule = bundled_rules()[0]
    events = list(read_events([EXAMPLES], ReadStats(), ReadOptions()))
    timeline = Timeline.of(events)
    baseline = execute(rule, timeline, from_ns(timeline.times[-1]) + timedelta(minutes=1),
                       None)
    assert len(baseline.alerts) == 3
    # The last alert's install event: a run ending exactly at its time still sees it...
    last_install = max(a.events[-1]["@timestamp"] for a in baseline.alerts)
    end = next(t for t, e in zip(timeline.times, timeline.entries, strict=True)
               if e.event["@timestamp"] == last_install)
    exact = execute(rule, timeline, from_ns(end), None)
    assert last_install in {a.events[-1]["@timestamp"] for a in exact.alerts}
    # ...and one a microsecond earlier (a run's time has microseconds) does not.
    before = execute(rule, timeline, from_ns(end - 1_000), None)
    assert last_install not in {a.events[-1]["@timestamp"] for a in before.alerts}
