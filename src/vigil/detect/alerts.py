"""Elastic alert documents, as Kibana's detection engine writes them (ELASTIC_ENGINE.md §3).

A single-event match gives one alert. A sequence of N events gives N building-block alerts
(the event's fields, ``kibana.alert.original_event.*``, group id and index) and one shell
alert (the fields all events share, plus the rule fields). ``kibana.*`` keys are flat dotted
keys as Kibana writes them; the event's own fields keep their shape.

Beyond Elastic: the shell also carries ``vigil.summary``, the fields an analyst needs at a
glance (host, user, source address, logon id, service...) taken from whichever event holds
them, because Elastic's shell loses everything the events do not share (kibana#221796).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.detect.ids import (
    building_block_ids,
    event_id,
    new_terms_alert_id,
    shell_id,
    single_alert_id,
)
from vigil.eql.schema import raw_getter
from vigil.rules.model import RULE_CATEGORIES, RULE_TYPE_IDS, Rule
from vigil.rules.overrides import name_for, risk_score_for, severity_for

KIBANA_VERSION = "8.18.0"
SPACE_ID = "default"

# What the shell's vigil.summary shows, in order: (label, candidate fields, first found wins).
SUMMARY_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("host", ("host.name", "winlog.computer_name")),
    ("user", ("user.name", "winlog.event_data.TargetUserName", "winlog.event_data.SubjectUserName")),
    ("user_domain", ("user.domain", "winlog.event_data.TargetDomainName")),
    ("source_ip", ("source.ip",)),
    ("source_port", ("source.port",)),
    ("logon_id", ("winlog.logon.id",)),
    ("logon_type", ("winlog.logon.type",)),
    ("service_name", ("service.name", "winlog.event_data.ServiceName")),
    ("service_file_name", ("winlog.event_data.ServiceFileName", "service.executable")),
    ("process", ("process.executable", "process.name")),
    ("command_line", ("process.command_line",)),
    ("file", ("file.path",)),
    ("destination_ip", ("destination.ip",)),
)
_SUMMARY_GETTERS = tuple((label, tuple(raw_getter(f) for f in names))
                         for label, names in SUMMARY_FIELDS)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: the shell (or single-event alert) and its building blocks."""

    rule: Rule
    document: dict[str, Any]
    building_blocks: tuple[dict[str, Any], ...] = ()
    events: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)

    @property
    def id(self) -> str:
        return str(self.document["kibana.alert.uuid"])

    def documents(self) -> list[dict[str, Any]]:
        """All documents to write: building blocks first, then the shell."""
        return [*self.building_blocks, self.document]


def event_index(event: Mapping[str, Any]) -> str:
    index = event.get("_index")
    return index if isinstance(index, str) else ""


def _source(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as an alert carries it: without metadata, ``kibana*``/``signal*`` keys."""
    return {k: v for k, v in event.items()
            if k not in ("_id", "_index") and not k.startswith(("kibana", "signal"))
            and k != "threshold_result"}


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out)
    else:
        out[prefix] = value


def _original_event_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for root, target in (("event", "kibana.alert.original_event"),
                         ("data_stream", "kibana.alert.original_data_stream")):
        nested = event.get(root)
        if isinstance(nested, Mapping):
            _flatten(target, nested, out)
        for key, value in event.items():  # dotted keys at the top ("event.action")
            if key.startswith(root + "."):
                out[f"{target}{key[len(root):]}"] = value
    return out


def _first(event: Mapping[str, Any], name: str) -> Any:
    value = raw_getter(name)(event)
    if isinstance(value, list):
        value = [v for v in value if v not in (None, "", "-")]
        return ", ".join(str(v) for v in value) if value else None
    return None if value in ("", "-") else value


def reason(event: Mapping[str, Any], rule: Rule, *, severity: str | None = None,
           name: str | None = None) -> str:
    """Kibana's reason string (reason_formatters.ts): what happened, where, by whom; with the
    overridden severity and name when the rule maps them."""
    category = _first(event, "event.category")
    parts: list[str] = []
    process = _first(event, "process.name")
    parent = _first(event, "process.parent.name")
    file_name = _first(event, "file.name")
    source_ip = _first(event, "source.ip")
    source_port = _first(event, "source.port")
    destination_ip = _first(event, "destination.ip")
    destination_port = _first(event, "destination.port")
    if process:
        parts.append(f" process {process},")
    if parent:
        parts.append(f" parent process {parent},")
    if file_name:
        parts.append(f" file {file_name},")
    if source_ip:
        parts.append(f" source {source_ip}" + (f":{source_port}," if source_port else ","))
    if destination_ip:
        parts.append(f" destination {destination_ip}"
                     + (f":{destination_port}," if destination_port else ","))
    user = _first(event, "user.name")
    host = _first(event, "host.name")
    text = f"{category} event" if category else "event"
    if parts:
        text += " with" + "".join(parts)
    if user:
        text += f" by {user}"
    if host:
        text += f" on {host}"
    return f"{text} created {severity or rule.severity} alert {name or rule.name}."


def rule_fields(rule: Rule, rule_uuid: str) -> dict[str, Any]:
    """The ``kibana.alert.rule.*`` fields every alert of the rule carries."""
    fields: dict[str, Any] = {
        "kibana.alert.rule.uuid": rule_uuid,
        "kibana.alert.rule.rule_id": rule.rule_id,
        "kibana.alert.rule.name": rule.name,
        "kibana.alert.rule.description": rule.description,
        "kibana.alert.rule.version": rule.version,
        "kibana.alert.rule.type": rule.type,
        "kibana.alert.rule.rule_type_id": RULE_TYPE_IDS[rule.type],
        "kibana.alert.rule.category": RULE_CATEGORIES[rule.type],
        "kibana.alert.rule.consumer": "siem",
        "kibana.alert.rule.producer": "siem",
        "kibana.alert.rule.from": rule.from_,
        "kibana.alert.rule.to": rule.to,
        "kibana.alert.rule.interval": rule.interval,
        "kibana.alert.rule.max_signals": rule.max_signals,
        "kibana.alert.rule.indices": list(rule.index),
        "kibana.alert.rule.tags": list(rule.tags),
        "kibana.alert.rule.threat": [t.to_dict() for t in rule.threat],
        "kibana.alert.rule.note": rule.note,
        "kibana.alert.rule.author": list(rule.author),
        "kibana.alert.rule.license": rule.license,
        "kibana.alert.rule.references": list(rule.references),
        "kibana.alert.rule.false_positives": list(rule.false_positives),
        "kibana.alert.rule.immutable": rule.source.bundled,
        "kibana.alert.rule.enabled": True,
        "kibana.alert.rule.risk_score": rule.risk_score,
        "kibana.alert.rule.severity": rule.severity,
        "kibana.alert.rule.parameters": {
            "type": rule.type, "query": rule.query, "language": rule.language,
            "index": list(rule.index),
            "risk_score": rule.risk_score, "severity": rule.severity,
            "max_signals": rule.max_signals, "from": rule.from_, "to": rule.to,
        },
    }
    if rule.timestamp_override:
        fields["kibana.alert.rule.timestamp_override"] = rule.timestamp_override
    for key in ("filters", "severity_mapping", "risk_score_mapping", "rule_name_override",
                "building_block_type"):
        if key in rule.params:
            fields["kibana.alert.rule.parameters"][key] = rule.params[key]
    return fields


def _common(rule: Rule, rule_uuid: str, now: str) -> dict[str, Any]:
    return {
        "@timestamp": now,
        "event.kind": "signal",
        "kibana.alert.status": "active",
        "kibana.alert.workflow_status": "open",
        "kibana.alert.workflow_tags": [],
        "kibana.alert.workflow_assignee_ids": [],
        "kibana.alert.severity": rule.severity,
        "kibana.alert.risk_score": rule.risk_score,
        "kibana.alert.start": now,
        "kibana.alert.last_detected": now,
        "kibana.alert.intended_timestamp": now,
        "kibana.alert.rule.execution.type": "scheduled",
        "kibana.alert.rule.execution.timestamp": now,
        "kibana.space_ids": [SPACE_ID],
        "kibana.version": KIBANA_VERSION,
        **rule_fields(rule, rule_uuid),
    }


def _event_alert(event: Mapping[str, Any], rule: Rule, rule_uuid: str, now: str,
                 alert_id: str, *, overrides: bool = True) -> dict[str, Any]:
    doc = _source(event)
    event_part = doc.get("event")
    if isinstance(event_part, Mapping):
        # Kibana removes event.kind from the copy (the alert is event.kind: signal).
        doc["event"] = {k: v for k, v in event_part.items() if k != "kind"}
    doc.pop("event.kind", None)
    doc.update(_original_event_fields(event))
    doc.update(_common(rule, rule_uuid, now))
    doc["kibana.alert.original_time"] = event.get("@timestamp")
    doc["kibana.alert.ancestors"] = [{"id": event_id(event), "type": "event",
                                      "index": event_index(event), "depth": 0}]
    doc["kibana.alert.depth"] = 1
    severity, name = rule.severity, rule.name
    if overrides:
        # Mappings read the event's source (rules.overrides); the rule's own values stay in
        # kibana.alert.rule.severity / .risk_score.
        severity, _field = severity_for(rule.severity_mapping, rule.severity, event)
        name = name_for(rule.rule_name_override, rule.name, event)
        doc["kibana.alert.severity"] = severity
        doc["kibana.alert.risk_score"] = risk_score_for(rule.risk_score_field,
                                                        rule.risk_score, event)
        doc["kibana.alert.rule.name"] = name
    doc["kibana.alert.reason"] = reason(event, rule, severity=severity, name=name)
    doc["kibana.alert.uuid"] = alert_id
    if rule.building_block_type:
        doc["kibana.alert.building_block_type"] = rule.building_block_type
    return doc


def single_event_alert(event: Mapping[str, Any], rule: Rule, rule_uuid: str,
                       now: str) -> Alert:
    alert_id = single_alert_id((event_id(event), event_index(event)), f"{SPACE_ID}:{rule_uuid}")
    return Alert(rule, _event_alert(event, rule, rule_uuid, now, alert_id), (), (event,))


def new_terms_alert(event: Mapping[str, Any], rule: Rule, rule_uuid: str, now: str,
                    new_terms: list[Any]) -> Alert:
    """A new terms alert: the event's alert with ``kibana.alert.new_terms``; its id hashes
    the terms too (wrap_new_terms_alerts.ts), so one event with k new values gives k."""
    alert_id = new_terms_alert_id((event_id(event), event_index(event)),
                                  f"{SPACE_ID}:{rule_uuid}", new_terms)
    doc = _event_alert(event, rule, rule_uuid, now, alert_id)
    doc["kibana.alert.new_terms"] = new_terms
    return Alert(rule, doc, (), (event,))


def threshold_alert(rule: Rule, rule_uuid: str, now: str, hit_id: str, index: str,
                    source: dict[str, Any], result: dict[str, Any],
                    events: Sequence[Mapping[str, Any]] = ()) -> Alert:
    """A threshold alert from its bucket's synthetic hit (bulk_create_threshold_signals.ts):
    the group-by values under their field names, no event of its own; original_time the
    bucket's latest event; overrides see only the group-by fields. ``events`` (the
    bucket's first events) are not in the document: vigil's reports show them."""
    alert_id = single_alert_id((hit_id, index), f"{SPACE_ID}:{rule_uuid}", "undefined")
    hit = {**source, "_id": hit_id, "_index": index}
    doc = _event_alert(hit, rule, rule_uuid, now, alert_id)
    doc["kibana.alert.threshold_result"] = result
    return Alert(rule, doc, (), tuple(events))


def _intersection(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Kibana's shell source: keys present in every document with equal values; nested
    objects recurse; arrays keep their common elements."""
    first, *rest = docs
    out: dict[str, Any] = {}
    for key, value in first.items():
        if not all(key in other for other in rest):
            continue
        others = [other[key] for other in rest]
        if isinstance(value, Mapping) and all(isinstance(o, Mapping) for o in others):
            nested = _intersection([value, *others])
            if nested:
                out[key] = nested
        elif isinstance(value, list) and all(isinstance(o, list) for o in others):
            out[key] = [v for v in value if all(v in o for o in others)]
        elif all(o == value for o in others):
            out[key] = value
    return out


def summary(events: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """``vigil.summary``: for each label, the first value found across the events."""
    out: dict[str, Any] = {}
    present = [e for e in events if e is not None]
    for label, getters in _SUMMARY_GETTERS:
        for get in getters:
            value = next((v for v in (get(e) for e in present) if v not in (None, "", "-")),
                         None)
            if value is not None:
                out[label] = value
                break
    evidence = evidence_of(present)
    if evidence:
        out["evidence"] = evidence
    return out


def evidence_of(events: Sequence[Mapping[str, Any]]) -> str:
    """Where the events were read, for a person: each file's name once, then the places in
    it ("Security.evtx record 4711, record 4712; other.ndjson offset 0")."""
    places: dict[str, list[str]] = {}
    for event in events:
        vigil = event.get("vigil")
        source = vigil.get("source") if isinstance(vigil, Mapping) else None
        if isinstance(source, Mapping) and isinstance(source.get("path"), str):
            name = source["path"].replace("\\", "/").rsplit("/", 1)[-1]
            places.setdefault(name, []).append(str(source.get("position", "")))
    return "; ".join(f"{name} {', '.join(p for p in positions if p)}".strip()
                     for name, positions in places.items())


def sequence_alert(events: Sequence[Mapping[str, Any] | None], rule: Rule, rule_uuid: str,
                   now: str, join_keys: Sequence[Any] = ()) -> Alert:
    """N building blocks (missing stages have none) and the shell."""
    present = [e for e in events if e is not None]
    refs = [(event_id(e), event_index(e)) for e in present]
    block_ids = building_block_ids(refs, rule_uuid)
    group_id = shell_id(refs, block_ids, rule_uuid)
    blocks: list[dict[str, Any]] = []
    for position, (event, block_id) in enumerate(zip(present, block_ids, strict=True)):
        doc = _event_alert(event, rule, rule_uuid, now, block_id, overrides=False)
        doc["kibana.alert.building_block_type"] = "default"
        doc["kibana.alert.group.id"] = group_id
        doc["kibana.alert.group.index"] = position
        blocks.append(doc)
    shell = _intersection([_source(e) for e in present]) if present else {}
    shell.update(_common(rule, rule_uuid, now))
    ancestors: list[dict[str, Any]] = []
    for block in blocks:
        ancestors.extend(block["kibana.alert.ancestors"])
        ancestors.append({"id": block["kibana.alert.uuid"], "type": "signal", "index": "",
                          "depth": 1, "rule": rule_uuid})
    shell["kibana.alert.ancestors"] = ancestors
    shell["kibana.alert.depth"] = 2
    # Elastic's shell takes original_time from a building block's creation time (likely an
    # accident); vigil gives the first event's time, which is what an analyst needs.
    shell["kibana.alert.original_time"] = present[0].get("@timestamp") if present else None
    shell["kibana.alert.reason"] = reason(shell, rule)
    shell["kibana.alert.uuid"] = group_id
    shell["kibana.alert.group.id"] = group_id
    if rule.building_block_type:
        shell["kibana.alert.building_block_type"] = rule.building_block_type
    shell["vigil.summary"] = summary(events)
    if join_keys:
        shell["vigil.join_keys"] = [None if k is None else k for k in join_keys]
    return Alert(rule, shell, tuple(blocks), tuple(present))
