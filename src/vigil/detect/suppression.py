"""Alert suppression: one alert per group of ``group_by`` values instead of one per match.

Kibana (security_solution ``rule_types/utils/suppression_utils.ts``,
``bulk_create_suppressed_alerts_in_memory.ts``; ``query/alert_suppression/``) keeps, per group,
the earliest alert and folds the later ones into it: ``kibana.alert.suppression.terms``
(``[{field, value}]`` in ``group_by`` order; an array's values sorted, a missing field
``null``), ``.start`` and ``.end`` (the first and last suppressed event's time),
``.docs_count`` (how many were folded in) and ``kibana.alert.instance.id`` (object-hash of the
terms, the rule's saved-object id and the space). Without ``duration`` a group lives for one
rule execution; with it, for that long after the group's first alert, across executions.
``missing_fields_strategy: doNotSuppress`` leaves an alert lacking a group-by field alone.
For an EQL sequence the shell is suppressed (its values are those all events share) and a
folded sequence's building blocks are not written.

vigil applies it to the alerts of one execution (``detect``'s whole input is one execution, so
without a duration each group gives one alert over the input; with one, groups last that long
in event time); ``replay`` and ``watch`` then fold an execution's alert into the stored one of
its group that the duration still covers (``commands.schedule``). Differences kept on purpose: a query rule's group of an array field is the
sorted array, as the in-memory rule types group (Kibana's query rules make a composite bucket
per value), and the surviving alert keeps its own id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vigil.detect.aggregations import time_of
from vigil.detect.alerts import SPACE_ID, Alert
from vigil.detect.ids import object_hash
from vigil.eql.schema import format_date_ns, raw_getter, to_date_ns
from vigil.rules.model import Rule


@dataclass(slots=True)
class _Group:
    alert: Alert
    start: int
    end: int
    folded: int = 0


def _terms_of(alert: Alert, group_by: Sequence[str]) -> list[dict[str, Any]]:
    # A sequence's shell and a threshold alert hold their group values; a single-event
    # alert reads its event.
    whole = bool(alert.building_blocks) or "kibana.alert.threshold_result" in alert.document
    source: Mapping[str, Any] = alert.document if whole or not alert.events \
        else alert.events[0]
    terms = []
    for name in group_by:
        value = raw_getter(name)(source)
        if isinstance(value, list):
            value = sorted(value, key=lambda v: (str(type(v)), str(v)))
        terms.append({"field": name, "value": value})
    return terms


def _timer(rule: Rule) -> Callable[[Alert], int]:
    """When an alert happened for suppression: its event's time as the rule reads time (the
    timestamp override with its fallback), a sequence's first event for a shell."""
    when = time_of(rule)

    def moment(alert: Alert) -> int:
        if alert.events and not alert.building_blocks:
            found = when(alert.events[0])
            if found is not None:
                return found
        original = to_date_ns(alert.document.get("kibana.alert.original_time"))
        return original if original is not None else 0

    return moment


def suppress(rule: Rule, rule_uuid: str, alerts: Sequence[Alert],
             history: dict[str, int] | None = None) -> list[Alert]:
    """The alerts of one execution, suppressed by the rule's ``alert_suppression``.

    ``history`` (per group, the time up to which earlier executions counted its events) is
    Kibana's suppression group history: an alert of a group at or before that time was
    already counted by an overlapping window and is left out (``buildBucketHistoryFilter``);
    it is updated with this execution's groups."""
    spec = rule.alert_suppression
    if spec is None or not alerts:
        return list(alerts)
    _time_of = _timer(rule)
    ordered = sorted(enumerate(alerts), key=lambda pair: (_time_of(pair[1]), pair[0]))
    groups: dict[str, _Group] = {}
    kept: list[tuple[int, _Group | Alert]] = []
    for position, alert in ordered:
        terms = _terms_of(alert, spec.group_by)
        if spec.missing == "doNotSuppress" and any(t["value"] is None for t in terms):
            kept.append((position, alert))
            continue
        if rule.threshold is not None:
            # wrap_suppressed_threshold_alerts.ts: the bucket's values, sorted, no names
            instance = object_hash([sorted((t["value"] for t in terms), key=str), rule_uuid,
                                    SPACE_ID])
        else:
            instance = object_hash([terms, rule_uuid, SPACE_ID])
        moment = _time_of(alert)
        if history is not None and moment <= history.get(instance, -1):
            continue  # an earlier execution counted this event in its group
        group = groups.get(instance)
        if group is not None and (spec.duration_ns is None
                                  or moment - group.start <= spec.duration_ns):
            group.folded += 1
            group.end = max(group.end, moment)
            continue
        group = groups[instance] = _Group(_with_terms(alert, terms, instance), moment, moment)
        kept.append((position, group))
    if history is not None:
        for instance, group in groups.items():
            history[instance] = max(history.get(instance, group.end), group.end)
    out = []
    for _position, item in sorted(kept, key=lambda pair: pair[0]):
        if isinstance(item, Alert):
            out.append(item)
            continue
        document = dict(item.alert.document)
        document["kibana.alert.suppression.start"] = format_date_ns(item.start)
        document["kibana.alert.suppression.end"] = format_date_ns(item.end)
        document["kibana.alert.suppression.docs_count"] = item.folded
        out.append(dataclasses.replace(item.alert, document=document))
    return out


def _with_terms(alert: Alert, terms: list[dict[str, Any]], instance: str) -> Alert:
    document = dict(alert.document)
    document["kibana.alert.suppression.terms"] = terms
    document["kibana.alert.instance.id"] = instance
    return dataclasses.replace(alert, document=document)
