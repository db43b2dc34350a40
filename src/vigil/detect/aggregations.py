"""Threshold and new terms rules: alerts from groups of events, one rule run at a time.

Both rule types answer per run window, so they are defined here per run (``threshold_run``,
``new_terms_run``) on the events that match the rule's query, filters and exceptions; the
executor calls them for each scheduled run (``replay``, ``watch``), and ``detect`` runs them
as Kibana's schedule would have run over the input (``scheduled_alerts``). Kibana's sources
(security_solution ``detection_engine/rule_types/``):

Threshold (``threshold/``): a composite aggregation with one ``terms`` source per group-by
field (an event lacking one is in no bucket; an array puts it in a bucket per value),
``count >= value`` and, when set, ``cardinality(field) >= value``; buckets in key order, at
most max_signals of them (with Elastic's warning). Each alert is a synthetic hit: the
bucket's values under their field names, ``@timestamp`` the bucket's latest event,
``threshold_result: {terms, cardinality, count, from}``. The rule's state remembers, per
bucket, the time of its last alert; later runs leave out that bucket's events at or before it
(``get_threshold_bucket_filters.ts``), so overlapping windows never count an event twice.

New terms (``new_terms/``): a value of the fields (the cartesian product of their values for
several fields; a missing field gives none) is new when its first occurrence between
``history_window_start`` and the window's end is after the window's start; the alert is the
window's earliest event with it, with ``kibana.alert.new_terms``. Times are the rule's
``timestamp_override`` with the ``@timestamp`` fallback (Kibana's
``kibana.combined_timestamp``), else ``@timestamp``.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vigil.detect.alerts import Alert, new_terms_alert, threshold_alert
from vigil.detect.ids import js_string, threshold_bucket_id
from vigil.eql.schema import format_date_ns, raw_getter, to_date_ns
from vigil.rules.model import Rule
from vigil.times import DateMath

Event = Mapping[str, Any]
Terms = tuple[tuple[str, Any], ...]  # ((field, value), ...) in the rule's field order

EVIDENCE_EVENTS = 100  # events of a threshold bucket kept for reports (not in the alert)
MAX_SIGNALS_WARNING = ("This rule reached the maximum alert limit for the rule execution. "
                       "Some alerts were not created.")


def time_of(rule: Rule) -> Callable[[Event], int | None]:
    """The time an aggregation reads: the override, else (unless the fallback is disabled)
    ``@timestamp``; None when the event has neither."""
    stamp = raw_getter("@timestamp")
    override = rule.timestamp_override
    if override in (None, "@timestamp"):
        return lambda event: _ns(stamp(event))
    get = raw_getter(override)
    fallback = not rule.timestamp_override_fallback_disabled

    def effective(event: Event) -> int | None:
        value = get(event)
        if value is not None:
            return _ns(value)
        return _ns(stamp(event)) if fallback else None

    return effective


def _ns(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return to_date_ns(value) if value is not None else None


def _values(event: Event, getter: Callable[[Event], Any]) -> list[Any]:
    value = getter(event)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _terms(event: Event, getter: Callable[[Event], Any]) -> list[Any]:
    """A field's values as a terms aggregation buckets them: text, as Elasticsearch indexes
    the (keyword) fields rules group by (``1``, ``"1"`` and ``true``/``"true"`` are the same
    terms ``"1"`` and ``"true"``); objects are no terms."""
    return [js_string(v) for v in _values(event, getter) if not isinstance(v, dict | list)]


def combinations(event: Event, getters: Sequence[Callable[[Event], Any]]) -> list[tuple[Any, ...]]:
    """The composite keys an event has: one per combination of its fields' values."""
    per_field = [list(dict.fromkeys(_terms(event, g))) for g in getters]
    if any(not values for values in per_field):
        return []
    return list(itertools.product(*per_field))


def _key_order(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Composite buckets come in ascending key order per source."""
    return tuple((0, v) if isinstance(v, bool) else (1, v) if isinstance(v, int | float)
                 else (2, str(v)) for v in key)


# ------------------------------------------------------------------ threshold


@dataclass(slots=True)
class ThresholdHistory:
    """The threshold rule's state: per bucket, the time of its last alert (ns)."""

    last: dict[Terms, int] = field(default_factory=dict)


def _term_matches(event: Event, getter: Callable[[Event], Any], value: Any) -> bool:
    # The history filter is a term query on the value as text.
    wanted = js_string(value)
    return any(js_string(v) == wanted for v in _values(event, getter))


@dataclass(slots=True)
class _Bucket:
    key: tuple[Any, ...]
    count: int = 0
    first: int = 0
    last: int = 0
    distinct: set[str] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)


def threshold_run(rule: Rule, uuid: str, events: Iterable[Event], from_ns: int,
                  started_at: datetime, history: ThresholdHistory, now: str,
                  cap: int | None) -> tuple[list[Alert], list[str]]:
    """One run of a threshold rule over the window's matching events."""
    spec = rule.threshold
    assert spec is not None
    when = time_of(rule)
    getters = [raw_getter(name) for name in spec.fields]
    by_name = dict(zip(spec.fields, getters, strict=True))
    # Kibana drops history entries older than the window (lastSignalTimestamp <= from).
    history.last = {terms: at for terms, at in history.last.items() if at > from_ns}
    card_get = raw_getter(spec.cardinality[0]) if spec.cardinality else None
    buckets: dict[tuple[Any, ...], _Bucket] = {}
    for event in events:
        moment = when(event)
        if moment is None:
            continue
        # The history filter is a must_not on the whole search: an event a past alert
        # counted (its terms, at or before that alert's time) is in no bucket at all.
        if any(moment <= at and all(_term_matches(event, by_name[f], v) for f, v in seen)
               for seen, at in history.last.items()):
            continue
        keys = combinations(event, getters) if getters else [()]
        for key in keys:
            bucket = buckets.get(key)
            if bucket is None:
                bucket = buckets[key] = _Bucket(key, first=moment, last=moment)
            bucket.count += 1
            if len(bucket.events) < EVIDENCE_EVENTS:
                bucket.events.append(event)
            bucket.first = min(bucket.first, moment)
            bucket.last = max(bucket.last, moment)
            if card_get is not None:
                bucket.distinct.update(js_string(v) for v in _values(event, card_get))
    passing = [b for b in buckets.values() if b.count >= spec.value and (
        spec.cardinality is None or len(b.distinct) >= spec.cardinality[1])]
    passing.sort(key=lambda b: _key_order(b.key))
    warnings = []
    if cap is not None and len(passing) > cap:
        passing = passing[:cap]
        warnings.append(MAX_SIGNALS_WARNING)
    started = format_date_ns(_datetime_ns(started_at))
    index = ",".join(rule.index)
    alerts = []
    for bucket in passing:
        terms = tuple(zip(spec.fields, bucket.key, strict=True))
        hit_id = threshold_bucket_id(rule.rule_id, started, spec.fields, bucket.key)
        result: dict[str, Any] = {
            "terms": [{"field": f, "value": v} for f, v in terms],
            "count": bucket.count,
            "from": format_date_ns(bucket.first),
        }
        if spec.cardinality is not None:
            result["cardinality"] = [{"field": spec.cardinality[0],
                                      "value": len(bucket.distinct)}]
        source = {"@timestamp": format_date_ns(bucket.last), **dict(terms)}
        alerts.append(threshold_alert(rule, uuid, now, hit_id, index, source, result,
                                      bucket.events))
        history.last[terms] = max(history.last.get(terms, bucket.last), bucket.last)
    return alerts, warnings


def _datetime_ns(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


# ------------------------------------------------------------------ new terms


@dataclass(slots=True)
class FirstSeen:
    """When each combination of the rule's fields occurs, over the events given."""

    times: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, rule: Rule, events: Iterable[Event]) -> FirstSeen:
        assert rule.new_terms is not None
        getters = [raw_getter(name) for name in rule.new_terms.fields]
        when = time_of(rule)
        seen = cls()
        for event in events:
            moment = when(event)
            if moment is None:
                continue
            for key in combinations(event, getters):
                seen.times.setdefault(key, []).append(moment)
        for times in seen.times.values():
            times.sort()
        return seen

    def first_since(self, key: tuple[Any, ...], start_ns: int) -> int | None:
        times = self.times.get(key, [])
        at = bisect.bisect_left(times, start_ns)
        return times[at] if at < len(times) else None


def new_terms_run(rule: Rule, uuid: str, window: Sequence[Event], seen: FirstSeen,
                  from_ns: int, history_start_ns: int, now: str,
                  cap: int | None) -> tuple[list[Alert], list[str]]:
    """One run of a new terms rule: ``window`` the run's matching events, ``seen`` their
    occurrences over the history (at least from ``history_start_ns`` to the window's end)."""
    spec = rule.new_terms
    assert spec is not None
    getters = [raw_getter(name) for name in spec.fields]
    when = time_of(rule)
    earliest: dict[tuple[Any, ...], tuple[int, int, Event]] = {}
    for position, event in enumerate(window):
        moment = when(event)
        if moment is None:
            continue
        for key in combinations(event, getters):
            known = earliest.get(key)
            if known is None or (moment, position) < known[:2]:
                earliest[key] = (moment, position, event)
    fresh = []
    for key, (_moment, _position, event) in earliest.items():
        first = seen.first_since(key, history_start_ns)
        if first is not None and first > from_ns:
            fresh.append((key, event))
    fresh.sort(key=lambda pair: _key_order(pair[0]))
    warnings = []
    if cap is not None and len(fresh) > cap:
        fresh = fresh[:cap]
        warnings.append(MAX_SIGNALS_WARNING)
    return [new_terms_alert(event, rule, uuid, now, list(key)) for key, event in fresh], \
        warnings


# ------------------------------------------------------------------ detect: the schedule


def scheduled_alerts(rule: Rule, uuid: str, events: Sequence[Event], now: str,
                     cap: int | None, *, history: Sequence[Event] = ()
                     ) -> tuple[list[Alert], list[str]]:
    """Alerts of a threshold or new terms rule over a whole input, as the rule's schedule
    would have raised them had it run while the events were written: runs every interval
    from the first event's time, each over its look-back window, the threshold state carried
    from run to run; an alert id raised twice is one alert. ``history`` are matching events
    before the input's window (``detect --from``): new terms rules know them, no run
    covers them."""
    when = time_of(rule)
    timed = sorted(((t, i) for i, e in enumerate(events) if (t := when(e)) is not None))
    if not timed:
        return [], []
    times = [t for t, _i in timed]
    ordered = [events[i] for _t, i in timed]
    interval = _delta_ns(rule.interval_delta)
    from_offset = _delta_ns(rule.from_math.offset)
    to_offset = _delta_ns(rule.to_math.offset)
    state = ThresholdHistory()
    seen = FirstSeen.of(rule, [*history, *ordered]) if rule.new_terms is not None else None
    history_offset = (_delta_ns(DateMath.parse(rule.new_terms.history_window_start).offset)
                      if rule.new_terms is not None else 0)
    alerts: list[Alert] = []
    warnings: list[str] = []
    ids: set[str] = set()
    run = times[0] - to_offset + interval  # the first run whose window ends after the first event
    while run + to_offset - interval <= times[-1]:
        window_from, window_to = run + from_offset, run + to_offset
        low = bisect.bisect_left(times, window_from)
        high = bisect.bisect_right(times, window_to)
        if low < high:
            started = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=run // 1000)
            if rule.threshold is not None:
                found, notes = threshold_run(rule, uuid, ordered[low:high], window_from,
                                             started, state, now, cap)
            else:
                assert seen is not None
                found, notes = new_terms_run(rule, uuid, ordered[low:high], seen,
                                             window_from, window_to + history_offset, now,
                                             cap)
            for alert in found:
                if alert.id not in ids:
                    ids.add(alert.id)
                    alerts.append(alert)
            warnings.extend(n for n in notes if n not in warnings)
            run += interval
        else:
            # Nothing in this window: jump to the first run whose window reaches the next
            # event (runs with no events raise nothing and change no state that matters).
            skip = max(1, (times[low] - window_to + interval - 1) // interval) if low < len(
                times) else 1
            run += skip * interval
    return alerts, warnings


def _delta_ns(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
