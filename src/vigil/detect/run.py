"""One detection run: rules over events, to alerts.

The events are put in time order once; each rule then sees the events its index patterns
select (ELASTIC_ENGINE.md §2.5: a rule searches only its indices), minus the events its
exceptions exclude (§4.2: exceptions filter single events before sequence matching), and the
EQL engine finds its matches with Elasticsearch's semantics. Matches become Elastic alert
documents with deterministic ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vigil.detect.alerts import Alert, sequence_alert, single_event_alert
from vigil.detect.ids import rule_uuid
from vigil.detect.indices import IndexSelector, index_of
from vigil.detect.suppression import suppress
from vigil.eql import ast
from vigil.eql.engine import (
    Compiled,
    Entry,
    Match,
    SchemaResolver,
    apply_pipes,
    order_events,
    run_event_query,
    run_sample,
    run_sequence,
)
from vigil.eql.schema import FieldDef, Schema
from vigil.rules.model import Rule

Event = Mapping[str, Any]
EventFilter = Callable[[Event], bool]

# Elastic's words when a run reaches max_signals (Kibana eql.ts).
MAX_SIGNALS_WARNING = ("This rule reached the maximum alert limit for the rule execution. "
                       "Some alerts were not created.")

# ECS fields of type ip: compared as addresses (so "::1" equals "0:0:0:0:0:0:0:1").
ECS_IP_FIELDS = ("source.ip", "destination.ip", "client.ip", "server.ip", "host.ip",
                 "related.ip", "source.nat.ip", "destination.nat.ip")


def ecs_schema(timestamp_field: str = "@timestamp") -> Schema:
    """vigil's default field types for ECS data: an open schema (other fields keep their
    JSON types, as Elasticsearch's dynamic mapping would give them)."""
    fields = {name: FieldDef("ip") for name in ECS_IP_FIELDS}
    return Schema(fields, timestamp_field, closed=False)


@dataclass(frozen=True, slots=True)
class DetectOptions:
    index_all: bool = False  # every rule reads every event, whatever its index
    max_signals: int | None = None  # apply Elastic's per-run cap (None: report all matches)
    start: datetime | None = None  # only events at or after
    end: datetime | None = None  # only events at or before
    now: str = ""  # alert creation time (ISO); default: the run's start
    indicators: tuple[Mapping[str, Any], ...] = ()  # threat indicators for indicator match


@dataclass(slots=True)
class RuleOutcome:
    rule: Rule
    alerts: list[Alert] = field(default_factory=list)
    events_searched: int = 0
    events_excepted: int = 0
    matches: int = 0
    dropped_by_cap: int = 0
    duplicates: int = 0  # matches whose alert id another match already had (same events)
    warnings: list[str] = field(default_factory=list)

    @property
    def elastic_cap_exceeded(self) -> bool:
        return self.matches > self.rule.max_signals


@dataclass(slots=True)
class DetectResult:
    outcomes: list[RuleOutcome]
    events: int  # every event searched
    # Of those, inside --from/--to, and without a usable @timestamp. The fast path
    # (backends.fast) counts these two over the events some rule got, not every event:
    # it never parses the others (so a line's unusable timestamp goes unreported there).
    events_in_window: int
    events_without_time: int

    @property
    def alerts(self) -> list[Alert]:
        return [alert for outcome in self.outcomes for alert in outcome.alerts]


def _ns(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def run_detection(rules: Sequence[Rule], events: Iterable[Event], *,
                  options: DetectOptions | None = None,
                  exceptions_for: Callable[[Rule], EventFilter | None] | None = None,
                  ) -> DetectResult:
    """Run every rule over the events; returns alerts and per-rule accounting."""
    options = options or DetectOptions()
    now = options.now or datetime.now(UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
    materialized = events if isinstance(events, list) else list(events)
    schema = ecs_schema()
    resolver = SchemaResolver(None, "@timestamp", default=schema)
    entries = order_events(materialized, resolver, None)
    start_ns, end_ns = _ns(options.start), _ns(options.end)
    timed = [e for e in entries if e.ts is not None]
    without_time = len(entries) - len(timed)
    in_window = [e for e in timed
                 if (start_ns is None or e.ts >= start_ns)  # type: ignore[operator]
                 and (end_ns is None or e.ts <= end_ns)]  # type: ignore[operator]
    indexes = [index_of(e.event) for e in in_window]
    # Threshold and new terms rules also read what comes before --from: their history.
    before = [e for e in timed if e.ts < start_ns] if start_ns is not None and any(  # type: ignore[operator]
        r.threshold is not None or r.new_terms is not None for r in rules) else []
    outcomes = []
    for rule in rules:
        selector = IndexSelector(rule.index, accept_all=options.index_all)
        excepts = exceptions_for(rule) if exceptions_for else None
        outcome = RuleOutcome(rule)
        selected: list[Entry] = []
        aggregating = rule.threshold is not None or rule.new_terms is not None
        history: list[Entry] = []
        if aggregating:
            history = [e for e in before if selector.accepts(index_of(e.event))
                       and (excepts is None or not excepts(e.event))]
        for entry, index in zip(in_window, indexes, strict=True):
            if not selector.accepts(index):
                continue
            if excepts is not None and excepts(entry.event):
                outcome.events_excepted += 1
                continue
            selected.append(entry)
        outcome.events_searched = len(selected)
        matches = rule_matches(rule, selected, schema)
        outcome.matches = len(matches)
        cap = options.max_signals
        if rule.threat_match is not None:
            from vigil.detect.threat_match import threat_alerts

            found = threat_alerts(rule, rule_uuid(rule.rule_id, rule.uuid),
                                  [m.events[0] for m in matches if m.events[0]],
                                  options.indicators, now)
            if not options.indicators:
                outcome.warnings.append("no threat indicators given (--indicators FILE): "
                                        "an indicator match rule matches nothing")
            outcome.alerts.extend(suppress(rule, rule_uuid(rule.rule_id, rule.uuid), found))
            outcomes.append(outcome)
            continue
        if rule.threshold is not None or rule.new_terms is not None:
            # Alerts of groups of events: as the rule's runs would have raised them.
            from vigil.detect.aggregations import scheduled_alerts

            past = [m.events[0] for m in rule_matches(rule, history, schema) if m.events[0]]
            found, warnings = scheduled_alerts(rule, rule_uuid(rule.rule_id, rule.uuid),
                                               [m.events[0] for m in matches if m.events[0]],
                                               now, cap, history=past)
            outcome.alerts.extend(suppress(rule, rule_uuid(rule.rule_id, rule.uuid), found))
            outcome.warnings.extend(warnings)
            outcomes.append(outcome)
            continue
        if cap is not None and len(matches) > cap:
            # Elasticsearch returns the tail: the most recent matches win.
            outcome.dropped_by_cap = len(matches) - cap
            matches = matches[-cap:]
            outcome.warnings.append(MAX_SIGNALS_WARNING)
        uuid = rule_uuid(rule.rule_id, rule.uuid)
        # Kibana writes an alert only if its deterministic id is new: the same event read
        # twice (a file given twice, a folder and a file in it) is one alert.
        seen: set[str] = set()
        for match in matches:
            alert = alert_for_match(rule, uuid, match, now)
            if alert.id in seen:
                outcome.duplicates += 1
                continue
            seen.add(alert.id)
            outcome.alerts.append(alert)
        outcome.alerts = suppress(rule, uuid, outcome.alerts)
        outcomes.append(outcome)
    return DetectResult(outcomes, len(entries), len(in_window), without_time)


def rule_matches(rule: Rule, entries: list[Entry], schema: Schema) -> list[Match]:
    query = rule.tree
    timestamp_field = rule.timestamp_field or "@timestamp"
    category_field = rule.event_category_override or "event.category"
    resolver = SchemaResolver(None, timestamp_field,
                              default=schema if timestamp_field == "@timestamp"
                              else ecs_schema(timestamp_field))
    if timestamp_field != "@timestamp" or rule.tiebreaker_field:
        entries = order_events([e.event for e in entries], resolver, rule.tiebreaker_field)
    compiled = Compiled(query, resolver, category_field)
    body = query.body
    results: list[Match]
    if isinstance(body, ast.Sample):
        results = list(run_sample(compiled, body, entries, 1, None))
    elif isinstance(body, ast.Sequence):
        results = list(run_sequence(compiled, body, entries))
    else:
        results = list(run_event_query(compiled, entries))
    return apply_pipes(results, query.pipes)


def alert_for_match(rule: Rule, uuid: str, match: Match, now: str) -> Alert:
    if len(match.events) == 1 and match.events[0] is not None and not isinstance(
        rule.tree.body, ast.Sequence | ast.Sample
    ):
        return single_event_alert(match.events[0], rule, uuid, now)
    return sequence_alert(match.events, rule, uuid, now, match.join_keys)
