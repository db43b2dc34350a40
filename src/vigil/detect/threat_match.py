"""Indicator match rules: events that carry a threat indicator's value.

Kibana (security_solution ``rule_types/indicator_match/``) searches the indicators (the
``threat_index`` documents matching ``threat_query`` and ``threat_filters``), turns the
``threat_mapping`` into queries on the events (the groups OR'ed, the entries of a group
AND'ed: the event's ``field`` holds the indicator's ``value`` field's value, as a term query;
a ``negate`` entry must not), and writes one alert per matching event, enriched with
``threat.enrichments``: per matched indicator, the indicator object (``threat_indicator_path``,
default ``threat.indicator``), ``matched: {atomic, field, id, index, type:
"indicator_match_rule"}`` and the feed's name when the indicator has one.

vigil takes the indicators from files (``detect --indicators``): the same documents the
threat index holds, read as any input (NDJSON, JSON, Parquet...).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from vigil.detect.alerts import Alert, single_event_alert
from vigil.detect.ids import event_id, js_string
from vigil.detect.indices import IndexSelector, index_of
from vigil.eql.schema import raw_getter
from vigil.eql.search import search
from vigil.rules.model import Rule

Event = Mapping[str, Any]


def _texts(event: Event, name: str) -> list[str]:
    value = raw_getter(name)(event)
    if value is None:
        return []
    return [js_string(v) for v in (value if isinstance(value, list) else [value])]


def indicators_for(rule: Rule, indicators: Sequence[Event]) -> list[Event]:
    """The indicators the rule's threat query selects (its threat index, query, filters)."""
    spec = rule.threat_match
    assert spec is not None
    selector = IndexSelector(spec.index)
    candidates = [i for i in indicators if selector.accepts(index_of(i))]
    return [m.events[0] for m in search(spec.query, candidates) if m.events[0] is not None]


def threat_alerts(rule: Rule, uuid: str, events: Sequence[Event], indicators: Sequence[Event],
                  now: str) -> list[Alert]:
    """One alert per event matching an indicator, with its enrichments."""
    spec = rule.threat_match
    assert spec is not None
    chosen = indicators_for(rule, indicators)
    # Per group, the indicators by the value of the group's first non-negated entry.
    lookups: list[dict[str, list[int]]] = []
    for group in spec.mapping:
        first = next((e for e in group if not e[2]), None)
        table: dict[str, list[int]] = {}
        if first is not None:
            for number, indicator in enumerate(chosen):
                for value in _texts(indicator, first[1]):
                    table.setdefault(value, []).append(number)
        lookups.append(table)
    alerts = []
    for event in events:
        enrichments: list[dict[str, Any]] = []
        seen: set[tuple[int, str]] = set()
        for group, table in zip(spec.mapping, lookups, strict=True):
            first = next((e for e in group if not e[2]), None)
            if first is None:
                continue
            candidates = dict.fromkeys(n for v in _texts(event, first[0])
                                       for n in table.get(v, ()))
            for number in candidates:
                indicator = chosen[number]
                if not all(bool(set(_texts(event, f)) & set(_texts(indicator, v))) != negate
                           for f, v, negate in group):
                    continue
                for field_name, value_field, negate in group:
                    if negate or (number, field_name) in seen:
                        continue
                    seen.add((number, field_name))
                    enrichments.append(_enrichment(indicator, spec.indicator_path,
                                                   field_name, value_field))
        if enrichments:
            alerts.append(_enriched(single_event_alert(event, rule, uuid, now), enrichments))
    return alerts


def _enrichment(indicator: Event, path: str, field_name: str,
                value_field: str) -> dict[str, Any]:
    found = raw_getter(path)(indicator)
    if found is None:
        # raw_getter gives values, not objects: walk the path for the indicator object.
        found = indicator
        for part in path.split("."):
            found = found.get(part) if isinstance(found, Mapping) else None
    values = _texts(indicator, value_field)
    enrichment: dict[str, Any] = {
        "indicator": copy.deepcopy(found) if isinstance(found, Mapping) else {},
        "matched": {"atomic": values[0] if values else None, "field": field_name,
                    "id": event_id(indicator), "index": index_of(indicator) or "",
                    "type": "indicator_match_rule"},
    }
    feed = raw_getter("threat.feed.name")(indicator)
    if isinstance(feed, str):
        enrichment["feed"] = {"name": feed}
    return enrichment


def _enriched(alert: Alert, enrichments: list[dict[str, Any]]) -> Alert:
    document = dict(alert.document)
    threat = dict(document.get("threat") or {}) if isinstance(document.get("threat"),
                                                              Mapping) else {}
    existing = threat.get("enrichments")
    threat["enrichments"] = [*(existing if isinstance(existing, list) else []), *enrichments]
    document["threat"] = threat
    return Alert(alert.rule, document, alert.building_blocks, alert.events)
