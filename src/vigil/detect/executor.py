"""Rule executions as Elastic runs them: a scheduled start, its windows, the search per window,
max_signals per window, a status and Elastic's messages.

The events are held in time order (``Timeline``); an execution picks the events of each window
with a binary search, so a replayed month and a live week run the same code. An event is
visible to a run only once it has *arrived*: its ``event.ingested`` when it has one (else its
``@timestamp``). Events that arrive after every window covering their ``@timestamp`` has run
are *late*: Elastic never sees them (its windows are on ``@timestamp``, and detection-rules
forbids ``timestamp_override: event.ingested`` on sequences because the other events of the
sequence would fall out of the window). vigil counts them and, with
``window_on="event.ingested"``, each run also searches again the ``@timestamp`` range of the
events that arrived since the previous run, so a late event meets the events it belongs with.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from vigil.detect.aggregations import (
    FirstSeen,
    ThresholdHistory,
    new_terms_run,
    threshold_run,
    time_of,
)
from vigil.detect.alerts import Alert
from vigil.detect.ids import rule_uuid
from vigil.detect.indices import IndexSelector, index_of
from vigil.detect.run import MAX_SIGNALS_WARNING, alert_for_match, ecs_schema, rule_matches
from vigil.detect.schedule import GapMode, RunPlan, Window, plan_run
from vigil.detect.suppression import suppress
from vigil.eql.engine import Entry, SchemaResolver, order_events
from vigil.eql.schema import raw_getter, to_date_ns
from vigil.rules.model import Rule
from vigil.times import DateMath

Event = Mapping[str, Any]
WindowOn = Literal["@timestamp", "event.ingested"]
Status = Literal["succeeded", "partial failure", "failed"]

_get_ingested = raw_getter("event.ingested")


def to_ns(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


@dataclass(slots=True)
class Timeline:
    """Events in @timestamp order with their arrival times, searchable by time."""

    entries: list[Entry] = field(default_factory=list)
    times: list[int] = field(default_factory=list)  # @timestamp ns, parallel to entries
    arrivals: list[int] = field(default_factory=list)  # arrival ns, parallel to entries
    indexes: list[str | None] = field(default_factory=list)
    _by_arrival: list[int] = field(default_factory=list)
    _arrival_keys: list[int] = field(default_factory=list)
    # per (override field, fallback): positions in override-time order and their times
    _by_override: dict[tuple[str, bool], tuple[list[int], list[int]]] = field(
        default_factory=dict)

    @classmethod
    def of(cls, events: Iterable[Event]) -> Timeline:
        resolver = SchemaResolver(None, "@timestamp", default=ecs_schema())
        entries = [e for e in order_events(list(events), resolver, None) if e.ts is not None]
        timeline = cls()
        timeline.extend(entries)
        return timeline

    def extend(self, entries: Sequence[Entry], arrived_at: int | None = None) -> None:
        """Append entries (in time order, after the existing ones). ``arrived_at`` is when a
        live reader saw them; an ``event.ingested`` in the event wins over it."""
        for entry in entries:
            assert entry.ts is not None
            ingested = _get_ingested(entry.event)
            arrival = to_date_ns(ingested) if isinstance(ingested, str) else arrived_at
            self.entries.append(entry)
            self.times.append(entry.ts)
            self.arrivals.append(max(arrival or entry.ts, entry.ts))
            self.indexes.append(index_of(entry.event))
        self._by_override.clear()

    def add(self, events: Iterable[Event], arrived_at: int | None = None) -> int:
        """Merge new events in (they may be older than some held ones); returns how many."""
        resolver = SchemaResolver(None, "@timestamp", default=ecs_schema())
        fresh = [e for e in order_events(list(events), resolver, None) if e.ts is not None]
        if not fresh:
            return 0
        if not self.times or fresh[0].ts >= self.times[-1]:  # type: ignore[operator]
            self.extend(fresh, arrived_at)
            return len(fresh)
        old = list(zip(self.entries, self.arrivals, strict=True))
        merged = sorted([*((e, a) for e, a in old), *((e, None) for e in fresh)],
                        key=lambda pair: pair[0].ts or 0)  # stable: held events first
        self.entries, self.times, self.arrivals, self.indexes = [], [], [], []
        self._by_arrival, self._arrival_keys = [], []
        self._by_override.clear()
        for entry, arrival in merged:
            self.extend([entry], arrival if arrival is not None else arrived_at)
        return len(fresh)

    def forget_before(self, ns: int) -> int:
        """Drop events older than ``ns`` (no window will need them); returns how many."""
        cut = bisect.bisect_left(self.times, ns)
        if cut:
            del self.entries[:cut], self.times[:cut], self.arrivals[:cut], self.indexes[:cut]
            self._by_arrival, self._arrival_keys = [], []
            self._by_override.clear()
        return cut

    def arrived_between(self, start_ns: int, end_ns: int) -> list[int]:
        """Positions of events that arrived in [start, end] (an index built on first use)."""
        if len(self._by_arrival) != len(self.entries):
            self._by_arrival = sorted(range(len(self.entries)), key=self.arrivals.__getitem__)
            self._arrival_keys = [self.arrivals[i] for i in self._by_arrival]
        low = bisect.bisect_left(self._arrival_keys, start_ns)
        high = bisect.bisect_right(self._arrival_keys, end_ns)
        return self._by_arrival[low:high]

    def overridden_between(self, override: str, fallback: bool, start_ns: int,
                           end_ns: int) -> list[int]:
        """Positions (in @timestamp order) of events whose ``override`` time is in
        [start, end], or, when ``fallback``, that lack it and have @timestamp there: the
        range Kibana searches for a rule with ``timestamp_override`` (build_events_query.ts
        ``buildTimeRangeFilter``: one bool/should, the same from..to for both)."""
        key = (override, fallback)
        if key not in self._by_override:
            get = raw_getter(override)
            timed: list[tuple[int, int]] = []
            for position, entry in enumerate(self.entries):
                value = get(entry.event)
                moment = to_date_ns(value) if value is not None else None
                if moment is None and value is None and fallback:
                    moment = self.times[position]
                if moment is not None:
                    timed.append((moment, position))
            timed.sort()
            self._by_override[key] = ([p for _t, p in timed], [t for t, _p in timed])
        positions, keys = self._by_override[key]
        low = bisect.bisect_left(keys, start_ns)
        high = bisect.bisect_right(keys, end_ns)
        return sorted(positions[low:high])

    def next_time_after(self, ns: int, rule: Rule | None = None) -> int | None:
        """The first time after ``ns`` a window of ``rule`` would see an event (None when
        there is none): its @timestamp, or for a rule with a timestamp override the time
        its window reads (the override, or the @timestamp fallback)."""
        override = rule.timestamp_override if rule is not None else None
        if rule is not None and override not in (None, "@timestamp"):
            assert override is not None
            fallback = not rule.timestamp_override_fallback_disabled
            self.overridden_between(override, fallback, ns, ns)  # builds the index
            _positions, keys = self._by_override[(override, fallback)]
            at = bisect.bisect_right(keys, ns)
            return keys[at] if at < len(keys) else None
        at = bisect.bisect_right(self.times, ns)
        return self.times[at] if at < len(self.times) else None

    def between(self, start_ns: int, end_ns: int) -> range:
        """Positions of events with start <= @timestamp <= end."""
        return range(bisect.bisect_left(self.times, start_ns),
                     bisect.bisect_right(self.times, end_ns))


@dataclass(slots=True)
class Execution:
    """One run of one rule."""

    rule: Rule
    started_at: datetime
    plan: RunPlan
    alerts: list[Alert] = field(default_factory=list)
    events_read: int = 0
    status: Status = "succeeded"
    messages: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return ", ".join(self.messages) if self.messages else \
            "Rule execution completed successfully"


def execute(rule: Rule, timeline: Timeline, started_at: datetime,
            previous_started_at: datetime | None, *, gap_mode: GapMode = "complete",
            window_on: WindowOn = "@timestamp", index_all: bool = False,
            excludes: Callable[[Event], bool] | None = None,
            now: str | None = None,
            threshold_history: ThresholdHistory | None = None,
            suppression_history: dict[str, int] | None = None) -> Execution:
    """Run ``rule`` as scheduled at ``started_at``: every window of its plan, max_signals
    applied per window (the most recent matches win), deduplicated within the run."""
    maxspan = rule.tree.body.maxspan_ms if hasattr(rule.tree.body, "maxspan_ms") else None
    plan = plan_run(
        started_at, previous_started_at, look_back=rule.look_back,
        interval=rule.interval_delta, to_offset=-rule.to_math.offset,
        maxspan=timedelta(milliseconds=maxspan) if maxspan else None, mode=gap_mode,
    )
    overridden = rule.timestamp_override not in (None, "@timestamp")
    if window_on == "event.ingested" and previous_started_at is not None and not overridden:
        plan = _with_late_window(plan, timeline, to_ns(previous_started_at), to_ns(started_at),
                                 rule.look_back)
    execution = Execution(rule, started_at, plan)
    created = now or started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    selector = IndexSelector(rule.index, accept_all=index_all)
    run_ns = to_ns(started_at)
    uuid = rule_uuid(rule.rule_id, rule.uuid)
    seen: set[str] = set()
    override = rule.timestamp_override if rule.timestamp_override not in (None, "@timestamp") \
        else None
    for window in plan.windows:
        entries = _window_entries(timeline, window, run_ns, selector, excludes, override,
                                  not rule.timestamp_override_fallback_disabled)
        execution.events_read += len(entries)
        if rule.threshold is not None or rule.new_terms is not None:
            found = _aggregated(rule, uuid, entries, timeline, window, run_ns, selector,
                                excludes, override, started_at, created, threshold_history)
            for alert in found[0]:
                if alert.id not in seen:
                    seen.add(alert.id)
                    execution.alerts.append(alert)
            execution.messages.extend(m for m in found[1] if m not in execution.messages)
            continue
        matches = rule_matches(rule, entries, ecs_schema())
        if len(matches) >= rule.max_signals:
            if len(matches) > rule.max_signals:
                matches = matches[-rule.max_signals:]
            if MAX_SIGNALS_WARNING not in execution.messages:
                execution.messages.append(MAX_SIGNALS_WARNING)
        for match in matches:
            alert = alert_for_match(rule, uuid, match, created)
            if alert.id not in seen:
                seen.add(alert.id)
                execution.alerts.append(alert)
    # Suppression within the execution (detect.suppression); across executions the
    # commands that store alerts fold them into the stored ones (commands.schedule).
    execution.alerts = suppress(rule, uuid, execution.alerts, suppression_history)
    if execution.messages:
        execution.status = "partial failure"
    gap = plan.gap_message
    if gap:
        execution.messages.append(gap)
        execution.status = "failed"
    return execution


def _aggregated(rule: Rule, uuid: str, entries: list[Entry], timeline: Timeline,
                window: Window, run_ns: int, selector: IndexSelector,
                excludes: Callable[[Event], bool] | None, override: str | None,
                started_at: datetime, created: str,
                threshold_history: ThresholdHistory | None) -> tuple[list[Alert], list[str]]:
    """One window of a threshold or new terms rule (``detect.aggregations``); ``entries``
    are the window's events, already selected by the caller."""

    def matching(selected: list[Entry]) -> list[Event]:
        return [m.events[0] for m in rule_matches(rule, selected, ecs_schema())
                if m.events[0] is not None]

    if rule.threshold is not None:
        return threshold_run(rule, uuid, matching(entries), to_ns(window.start), started_at,
                             threshold_history if threshold_history is not None
                             else ThresholdHistory(), created, rule.max_signals)
    assert rule.new_terms is not None
    # One search over the history (which holds the window): the window's events are those
    # of its matches whose time (as the rule reads time) is in the window.
    history_start = window.end + DateMath.parse(rule.new_terms.history_window_start).offset
    history = matching(_window_entries(timeline, Window(history_start, window.end), run_ns,
                                       selector, excludes, override,
                                       not rule.timestamp_override_fallback_disabled))
    when = time_of(rule)
    low, high = to_ns(window.start), to_ns(window.end)
    in_window = [e for e in history if (t := when(e)) is not None and low <= t <= high]
    return new_terms_run(rule, uuid, in_window, FirstSeen.of(rule, history), low,
                         to_ns(history_start), created, rule.max_signals)


def _with_late_window(plan: RunPlan, timeline: Timeline, previous_ns: int, run_ns: int,
                      look_back: timedelta) -> RunPlan:
    """Add a window over the @timestamp range of events that arrived since the previous run
    but belong before this run's windows."""
    first_start = to_ns(plan.windows[0].start)
    late = [timeline.times[i] for i in timeline.arrived_between(previous_ns + 1, run_ns)
            if timeline.times[i] < first_start]
    if not late:
        return plan
    extra = Window(from_ns(min(late)) - look_back, plan.windows[0].start)
    return RunPlan((extra, *plan.windows), plan.gap, plan.gap_start)


def _window_entries(timeline: Timeline, window: Window, run_ns: int, selector: IndexSelector,
                    excludes: Callable[[Event], bool] | None, override: str | None = None,
                    fallback: bool = True) -> list[Entry]:
    start, end = to_ns(window.start), to_ns(window.end)
    selected = []
    positions: Iterable[int] = (timeline.between(start, end) if override is None else
                                timeline.overridden_between(override, fallback, start, end))
    for i in positions:
        if timeline.arrivals[i] > run_ns:
            continue  # not there yet when this run searched
        if not selector.accepts(timeline.indexes[i]):
            continue
        entry = timeline.entries[i]
        if excludes is not None and excludes(entry.event):
            continue
        selected.append(entry)
    return selected


def late_events(timeline: Timeline, runs: Sequence[tuple[datetime, RunPlan]]) -> list[int]:
    """Positions of events that no run saw: every window covering their @timestamp ran
    before they arrived. One sweep over events and windows in time order (the latest run
    among the windows covering an event decides), so the cost grows with events + windows,
    not their product."""
    windows = sorted((to_ns(w.start), to_ns(w.end), to_ns(started))
                     for started, plan in runs for w in plan.windows)
    late: list[int] = []
    open_runs: list[tuple[int, int]] = []  # heap of (-run, end): the latest run on top
    at = 0
    for i in sorted(range(len(timeline.times)), key=timeline.times.__getitem__):
        ts, arrival = timeline.times[i], timeline.arrivals[i]
        while at < len(windows) and windows[at][0] <= ts:
            heapq.heappush(open_runs, (-windows[at][2], windows[at][1]))
            at += 1
        while open_runs and open_runs[0][1] < ts:
            heapq.heappop(open_runs)  # the latest run's window ended before ts: not covering
        # Windows below the top that ended before ts do not cover it either; the top is the
        # latest run among those that still may: if it covers ts, it is the latest covering.
        if open_runs and -open_runs[0][0] < arrival:
            late.append(i)
    return sorted(late)
