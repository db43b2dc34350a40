"""The rule model: one Elastic Security rule, as Kibana holds it after defaults are applied.

Built from a plain mapping (a detection-rules ``[rule]`` table or a Kibana rule object) by
``Rule.from_dict``. Problems are raised as ``RuleError`` naming the field; the loaders add the
file and line. The EQL query is parsed once, here, so every later user shares the same ``Query``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from vigil.eql import Query, parse
from vigil.eql.ast import EventQuery, Field
from vigil.eql.ast import Sequence as SequenceBody
from vigil.errors import RuleError
from vigil.kql.lower import kql_query
from vigil.rules.filters import FilterError, filters_expr, with_filter
from vigil.rules.overrides import SeverityMapping
from vigil.times import DateMath

# Kibana's defaults for a rule created without these params (detection engine constants).
DEFAULT_INTERVAL = "5m"
DEFAULT_FROM = "now-6m"
DEFAULT_TO = "now"
DEFAULT_MAX_SIGNALS = 100
DEFAULT_VERSION = 1

SEVERITIES = ("low", "medium", "high", "critical")
SourceFormat = Literal["toml", "kibana", "dict"]

_INTERVAL_RE = re.compile(r"^(\d{1,12})([smhd])$")
MAX_INTERVAL = timedelta(days=366)  # a schedule beyond a year is a typo, not a rule
MAX_SIGNALS_LIMIT = 2**31 - 1  # Elasticsearch reads max_signals as a Java int
_INTERVAL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class FieldError(RuleError):
    """A rule field with a missing or wrong value; ``key`` lets loaders point at its line."""

    def __init__(self, reason: str, key: str | None = None) -> None:
        super().__init__(reason)
        self.key = key


def parse_interval(text: str) -> timedelta:
    """A rule interval (``5m``, ``1h``): digits then one of s m h d, as detection-rules checks."""
    found = _INTERVAL_RE.match(text.strip())
    if found is None or int(found.group(1)) == 0:
        raise ValueError(f"interval {text!r} is not a positive <n><unit>, unit one of s m h d")
    seconds = int(found.group(1)) * _INTERVAL_UNITS[found.group(2)]
    if seconds > MAX_INTERVAL.total_seconds():
        raise ValueError(f"interval {text!r} is longer than {MAX_INTERVAL.days} days")
    return timedelta(seconds=seconds)


# ---------------------------------------------------------------- MITRE ATT&CK


@dataclass(frozen=True, slots=True)
class AttackRef:
    """One MITRE ATT&CK tactic, technique or sub-technique."""

    id: str
    name: str
    reference: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str) -> AttackRef:
        if not isinstance(data, Mapping):
            raise FieldError(f"threat {what} must be a table with id, name and reference",
                             "threat")
        ident, name = data.get("id"), data.get("name")
        if not isinstance(ident, str) or not isinstance(name, str):
            raise FieldError(f"threat {what} needs a string id and name", "threat")
        reference = data.get("reference", "")
        return cls(id=ident, name=name, reference=reference if isinstance(reference, str) else "")

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "reference": self.reference}


@dataclass(frozen=True, slots=True)
class Technique:
    id: str
    name: str
    reference: str = ""
    subtechniques: tuple[AttackRef, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Technique:
        base = AttackRef.from_dict(data, "technique")
        subs = data.get("subtechnique") or ()
        if not isinstance(subs, Sequence) or isinstance(subs, str):
            raise FieldError("threat subtechnique must be a list", "threat")
        return cls(base.id, base.name, base.reference,
                   tuple(AttackRef.from_dict(s, "subtechnique") for s in subs))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "reference": self.reference}
        if self.subtechniques:
            out["subtechnique"] = [s.to_dict() for s in self.subtechniques]
        return out


@dataclass(frozen=True, slots=True)
class Threat:
    """One ``[[rule.threat]]`` entry: a framework, a tactic and its techniques."""

    framework: str
    tactic: AttackRef
    techniques: tuple[Technique, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Threat:
        if not isinstance(data, Mapping):
            raise FieldError("each threat must be a table", "threat")
        framework = data.get("framework", "MITRE ATT&CK")
        techniques = data.get("technique") or ()
        if not isinstance(techniques, Sequence) or isinstance(techniques, str):
            raise FieldError("threat technique must be a list", "threat")
        return cls(
            framework=str(framework),
            tactic=AttackRef.from_dict(data.get("tactic") or {}, "tactic"),
            techniques=tuple(Technique.from_dict(t) for t in techniques),
        )

    def to_dict(self) -> dict[str, Any]:
        """Kibana's shape (as in ``kibana.alert.rule.threat``)."""
        out: dict[str, Any] = {"framework": self.framework, "tactic": self.tactic.to_dict()}
        if self.techniques:
            out["technique"] = [t.to_dict() for t in self.techniques]
        return out


# ---------------------------------------------------------------- the rule


@dataclass(frozen=True, slots=True)
class RuleSource:
    """Where a rule came from, so errors found later can still name a file position.

    ``query_positions`` maps each character of the query to its (line, column) in the file
    (1-based); empty when the file position of the query is not known.
    """

    path: str = ""
    format: SourceFormat = "dict"
    line: int | None = None  # the rule's first line (NDJSON record, TOML [rule] header)
    query_line: int | None = None
    query_column: int | None = None
    query_positions: Sequence[tuple[int, int]] = field(default=(), repr=False, compare=False)
    bundled: bool = False

    def file_position(self, query_line: int, query_column: int,
                      query_text: str) -> tuple[int | None, int | None]:
        """The file (line, column) of a (line, column) inside the query text."""
        if self.query_positions:
            lines = query_text.split("\n")
            if 1 <= query_line <= len(lines):
                offset = sum(len(x) + 1 for x in lines[: query_line - 1]) + query_column - 1
                offset = max(0, min(offset, len(self.query_positions) - 1))
                return self.query_positions[offset]
        if self.query_line is not None:
            return self.query_line, None
        return self.line, None


# Rule types vigil runs, with the query language each takes (Kibana's rule type ids).
RULE_TYPES: dict[str, tuple[str, ...]] = {
    "eql": ("eql",),
    "query": ("kuery",),
    "threshold": ("kuery",),
    "new_terms": ("kuery",),
    "threat_match": ("kuery",),
}
RULE_TYPE_IDS = {"eql": "siem.eqlRule", "query": "siem.queryRule",
                 "threshold": "siem.thresholdRule", "new_terms": "siem.newTermsRule",
                 "threat_match": "siem.indicatorRule"}
RULE_CATEGORIES = {"eql": "Event Correlation Rule", "query": "Custom Query Rule",
                   "threshold": "Threshold Rule", "new_terms": "New Terms Rule",
                   "threat_match": "Indicator Match Rule"}


@dataclass(frozen=True, slots=True)
class ThreatMatch:
    """An indicator match rule: the indicators (documents of ``index`` matching ``query``,
    KQL with the threat filters) and the mapping: an event matches an indicator when, for
    one of the groups, every entry holds (the event's ``field`` has the indicator's
    ``value`` field's value; a ``negate`` entry: has not)."""

    index: tuple[str, ...]
    query: Query
    indicator_path: str
    mapping: tuple[tuple[tuple[str, str, bool], ...], ...]


# Rule fields vigil applies, and those that do not change which alerts are raised or what
# they hold (metadata, UI, response actions). Any other field gets a warning when the rule
# loads (``Rule.warnings``): a field Kibana would apply is never ignored in silence.
APPLIED_FIELDS = frozenset({
    "rule_id", "name", "description", "type", "language", "query", "index", "data_view_id",
    "interval", "from", "to", "max_signals", "severity", "risk_score", "tags", "threat",
    "note", "setup", "false_positives", "references", "author", "license",
    "timestamp_override", "timestamp_override_fallback_disabled", "tiebreaker_field",
    "timestamp_field", "event_category_override", "building_block_type", "exceptions_list",
    "id", "enabled", "filters", "severity_mapping", "risk_score_mapping",
    "rule_name_override", "threshold", "new_terms", "new_terms_fields",
    "history_window_start", "alert_suppression", "version", "threat_index", "threat_query",
    "threat_language", "threat_filters", "threat_indicator_path", "threat_mapping",
    "concurrent_searches", "items_per_search",
})
NEUTRAL_FIELDS = frozenset({
    "investigation_fields", "timeline_id", "timeline_title", "actions", "throttle", "meta",
    "related_integrations", "required_fields", "revision", "immutable", "rule_source",
    "created_at", "created_by", "updated_at", "updated_by", "execution_summary",
    "output_index", "namespace", "response_actions", "outcome", "alias_purpose",
    "alias_target_id", "notify_when", "saved_id",
})


@dataclass(frozen=True, slots=True)
class Threshold:
    """A threshold rule's ``threshold``: group by ``fields`` (none: one group of every event),
    at least ``value`` events, and optionally at least N distinct values of a field (Kibana
    reads only the first cardinality entry)."""

    fields: tuple[str, ...]
    value: int
    cardinality: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class AlertSuppression:
    """``alert_suppression``: group by 1 to 3 fields, for one execution or ``duration``."""

    group_by: tuple[str, ...]
    duration_ns: int | None = None
    missing: str = "suppress"  # or doNotSuppress


@dataclass(frozen=True, slots=True)
class NewTerms:
    """A new terms rule: the fields (1 to 3) whose value, or combination of values, has not
    been seen since ``history_window_start`` before the run's window."""

    fields: tuple[str, ...]
    history_window_start: str


@dataclass(frozen=True, slots=True)
class Rule:
    """A detection rule (EQL or KQL query) with Kibana's defaults applied.

    ``tree`` is the query as vigil runs it: the EQL syntax tree, or the KQL query lowered
    into the same tree (an ``any where`` event query, ``vigil.kql.lower``).
    """

    rule_id: str
    name: str
    description: str
    query: str
    tree: Query = field(repr=False, compare=False)
    version: int = DEFAULT_VERSION
    type: str = "eql"
    language: str = "eql"
    index: tuple[str, ...] = ()
    data_view_id: str | None = None
    interval: str = DEFAULT_INTERVAL
    from_: str = DEFAULT_FROM
    to: str = DEFAULT_TO
    max_signals: int = DEFAULT_MAX_SIGNALS
    severity: str = "low"
    risk_score: int = 21
    tags: tuple[str, ...] = ()
    threat: tuple[Threat, ...] = ()
    note: str = ""
    setup: str = ""
    false_positives: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    author: tuple[str, ...] = ()
    license: str = ""
    timestamp_override: str | None = None
    timestamp_override_fallback_disabled: bool = False
    tiebreaker_field: str | None = None
    timestamp_field: str | None = None
    event_category_override: str | None = None
    building_block_type: str | None = None
    severity_mapping: tuple[SeverityMapping, ...] = ()
    risk_score_field: str | None = None  # risk_score_mapping[0].field: Kibana reads only it
    rule_name_override: str | None = None
    threshold: Threshold | None = None
    new_terms: NewTerms | None = None
    alert_suppression: AlertSuppression | None = None
    threat_match: ThreatMatch | None = None
    warnings: tuple[str, ...] = ()  # fields of the rule vigil does not apply
    # compare=False keeps Rule hashable (these are JSON objects)
    exceptions_list: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)
    uuid: str | None = None  # Kibana's saved-object id, when the rule came from Kibana
    enabled: bool = True
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    params: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    source: RuleSource = field(default_factory=RuleSource, compare=False)

    # -- derived schedule values (validated in from_dict, so these never raise)

    @property
    def interval_delta(self) -> timedelta:
        return parse_interval(self.interval)

    @property
    def from_math(self) -> DateMath:
        return DateMath.parse(self.from_)

    @property
    def to_math(self) -> DateMath:
        return DateMath.parse(self.to)

    @property
    def look_back(self) -> timedelta:
        """Width of one run's window (``to − from``; 9 min for ``now-9m`` .. ``now``)."""
        return self.to_math.offset - self.from_math.offset

    @property
    def additional_look_back(self) -> timedelta:
        """What Kibana's UI calls "Additional look-back time": window minus interval."""
        return max(self.look_back - self.interval_delta, timedelta(0))

    @property
    def kind(self) -> str:
        """What the rule is, for people: ``eql sequence``, ``eql event``, ``kql query``..."""
        if self.language == "eql":
            return f"eql {self.tree.kind}"
        return f"kql {self.type.replace('_', ' ')}"

    @property
    def eql(self) -> Query:
        """The query tree (the name predates KQL rules; ``tree`` is the same object)."""
        return self.tree

    @property
    def is_building_block(self) -> bool:
        return self.building_block_type is not None

    def join_fields(self) -> tuple[str, ...]:
        """The join keys of a sequence or sample (sequence-wide and per-stage), in order."""
        body = self.tree.body
        if isinstance(body, EventQuery):
            return ()
        names: dict[str, None] = {}
        keys: list[Field] = list(body.join_keys)
        for stage in body.stages:
            keys.extend(stage.join_keys)
        if isinstance(body, SequenceBody) and body.until is not None:
            keys.extend(body.until.join_keys)
        for key in keys:
            names.setdefault(key.name, None)
        return tuple(names)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: RuleSource | None = None,
                  metadata: Mapping[str, Any] | None = None) -> Rule:
        """Build a rule from a detection-rules ``[rule]`` table or a Kibana rule object.

        Raises ``FieldError`` for a missing or ill-typed field and ``QueryError`` for a query
        that does not parse; rule types vigil does not run are the caller's to skip first.
        """
        reader = _Reader(data)
        rule_type = reader.text("type", required=True)
        languages = RULE_TYPES.get(rule_type)
        language = reader.text("language") or (languages[0] if languages else "")
        if languages is None or language not in languages:
            raise FieldError(f"vigil does not run {rule_type!r} rules in {language!r}", "type")
        severity = reader.text("severity", required=True).lower()
        if severity not in SEVERITIES:
            raise FieldError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}",
                             "severity")
        risk_score = reader.integer("risk_score", required=True)
        if not 0 <= risk_score <= 100:
            raise FieldError(f"risk_score {risk_score} is not between 0 and 100", "risk_score")
        max_signals = reader.integer("max_signals", default=DEFAULT_MAX_SIGNALS)
        if not 1 <= max_signals <= MAX_SIGNALS_LIMIT:
            raise FieldError(f"max_signals {max_signals} must be between 1 and "
                             f"{MAX_SIGNALS_LIMIT:,}", "max_signals")
        interval = reader.text("interval") or DEFAULT_INTERVAL
        from_ = reader.text("from") or DEFAULT_FROM
        to = reader.text("to") or DEFAULT_TO
        for key, value, check in (("interval", interval, parse_interval),
                                  ("from", from_, DateMath.parse), ("to", to, DateMath.parse)):
            try:
                check(value)
            except ValueError as exc:
                raise FieldError(str(exc), key) from None
        threats = reader.table_list("threat")
        query = reader.text("query", required=rule_type == "eql")
        if rule_type == "eql" and not query.strip():
            raise FieldError("query is empty", "query")
        tree = parse(query) if language == "eql" else kql_query(query)
        filters = data.get("filters")
        if filters is not None:
            if not isinstance(filters, list):
                raise FieldError("filters must be a list of tables", "filters")
            try:
                narrowing = filters_expr(filters)
            except FilterError as exc:
                raise FieldError(str(exc), "filters") from None
            if narrowing is not None:
                tree = with_filter(tree, narrowing)
        return cls(
            rule_id=reader.text("rule_id", required=True),
            name=reader.text("name", required=True),
            description=reader.text("description", required=True),
            query=query,
            tree=tree,
            version=reader.integer("version", default=DEFAULT_VERSION),
            type=rule_type,
            language=language,
            index=reader.strings("index"),
            data_view_id=reader.text("data_view_id") or None,
            interval=interval,
            from_=from_,
            to=to,
            max_signals=max_signals,
            severity=severity,
            risk_score=risk_score,
            tags=reader.strings("tags"),
            threat=tuple(Threat.from_dict(t) for t in threats),
            note=reader.text("note"),
            setup=reader.text("setup"),
            false_positives=reader.strings("false_positives"),
            references=reader.strings("references"),
            author=reader.strings("author"),
            license=reader.text("license"),
            timestamp_override=reader.text("timestamp_override") or None,
            timestamp_override_fallback_disabled=bool(
                data.get("timestamp_override_fallback_disabled", False)),
            tiebreaker_field=reader.text("tiebreaker_field") or None,
            timestamp_field=reader.text("timestamp_field") or None,
            event_category_override=reader.text("event_category_override") or None,
            building_block_type=reader.text("building_block_type") or None,
            severity_mapping=_severity_mapping(reader),
            risk_score_field=_risk_score_field(reader),
            rule_name_override=reader.text("rule_name_override") or None,
            threshold=_threshold(data) if rule_type == "threshold" else None,
            new_terms=_new_terms(reader, from_) if rule_type == "new_terms" else None,
            alert_suppression=_suppression(data, rule_type),
            threat_match=_threat_match(reader) if rule_type == "threat_match" else None,
            warnings=tuple(
                f"the rule's {key} field is not applied by vigil" for key in data
                if key not in APPLIED_FIELDS and key not in NEUTRAL_FIELDS),
            exceptions_list=tuple(reader.table_list("exceptions_list")),
            uuid=reader.text("id") or None,
            enabled=bool(data.get("enabled", True)),
            metadata=dict(metadata or {}),
            params=dict(data),
            source=source or RuleSource(),
        )


def _severity_mapping(reader: _Reader) -> tuple[SeverityMapping, ...]:
    found = []
    for number, item in enumerate(reader.table_list("severity_mapping")):
        field_name, value, severity = item.get("field"), item.get("value"), item.get("severity")
        if not isinstance(field_name, str) or not isinstance(value, str) \
                or severity not in SEVERITIES:
            raise FieldError(f"severity_mapping[{number}] needs a field, a string value and a "
                             f"severity ({', '.join(SEVERITIES)})", "severity_mapping")
        if item.get("operator", "equals") != "equals":
            raise FieldError(f"severity_mapping[{number}]: the only operator is equals",
                             "severity_mapping")
        found.append(SeverityMapping(field_name, value, severity))
    return tuple(found)


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def _suppression(data: Mapping[str, Any], rule_type: str) -> AlertSuppression | None:
    """common_attributes.schema.yaml AlertSuppression: group_by 1..3 fields, duration
    {value >= 1, unit s|m|h}, missing_fields_strategy suppress (default) | doNotSuppress."""
    spec = data.get("alert_suppression")
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise FieldError("alert_suppression must be a table", "alert_suppression")
    if rule_type == "threshold":
        # ThresholdAlertSuppression: a duration only; the groups are the threshold fields.
        threshold = _threshold(data)
        duration = spec.get("duration")
        if not isinstance(duration, Mapping):
            raise FieldError("alert_suppression on a threshold rule needs a duration",
                             "alert_suppression")
        spec = {"group_by": list(threshold.fields), "duration": duration}
    group_by = spec.get("group_by")
    most = 5 if rule_type == "threshold" else 3
    least = 0 if rule_type == "threshold" else 1
    if not isinstance(group_by, list) or not least <= len(group_by) <= most or not all(
            isinstance(f, str) and f for f in group_by):
        raise FieldError("alert_suppression.group_by must name 1 to 3 fields",
                         "alert_suppression")
    duration = spec.get("duration")
    duration_ns = None
    if duration is not None:
        value = duration.get("value") if isinstance(duration, Mapping) else None
        unit = duration.get("unit") if isinstance(duration, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 \
                or unit not in _DURATION_UNITS:
            raise FieldError("alert_suppression.duration needs a value >= 1 and a unit s, m "
                             "or h", "alert_suppression")
        duration_ns = value * _DURATION_UNITS[str(unit)] * 1_000_000_000
    missing = spec.get("missing_fields_strategy", "suppress")
    if missing not in ("suppress", "doNotSuppress"):
        raise FieldError("alert_suppression.missing_fields_strategy is suppress or "
                         "doNotSuppress", "alert_suppression")
    return AlertSuppression(tuple(group_by), duration_ns, str(missing))


def _threat_match(reader: _Reader) -> ThreatMatch:
    language = reader.text("threat_language") or "kuery"
    if language != "kuery":
        raise FieldError(f"threat_language {language!r} is not supported (KQL is)",
                         "threat_language")
    query = kql_query(reader.text("threat_query") or "")
    filters = reader.data.get("threat_filters")
    if filters is not None:
        if not isinstance(filters, list):
            raise FieldError("threat_filters must be a list of tables", "threat_filters")
        try:
            narrowing = filters_expr(filters)
        except FilterError as exc:
            raise FieldError(str(exc).replace("filters[", "threat_filters["),
                             "threat_filters") from None
        if narrowing is not None:
            query = with_filter(query, narrowing)
    groups = []
    for number, group in enumerate(reader.table_list("threat_mapping")):
        entries = group.get("entries")
        if not isinstance(entries, list) or not entries:
            raise FieldError(f"threat_mapping[{number}] needs entries", "threat_mapping")
        parsed = []
        for entry in entries:
            field_name = entry.get("field") if isinstance(entry, Mapping) else None
            value = entry.get("value") if isinstance(entry, Mapping) else None
            if not isinstance(field_name, str) or not isinstance(value, str) \
                    or entry.get("type", "mapping") != "mapping":
                raise FieldError(f"threat_mapping[{number}]: each entry maps a field to an "
                                 "indicator field (type mapping)", "threat_mapping")
            parsed.append((field_name, value, entry.get("negate") is True))
        groups.append(tuple(parsed))
    if not groups:
        raise FieldError("an indicator match rule needs a threat_mapping", "threat_mapping")
    return ThreatMatch(reader.strings("threat_index"), query,
                       reader.text("threat_indicator_path") or "threat.indicator",
                       tuple(groups))


def _threshold(data: Mapping[str, Any]) -> Threshold:
    """threshold_attributes.gen.ts: field a string or up to 5 strings, value an integer >= 1,
    cardinality [{field, value >= 0}]."""
    spec = data.get("threshold")
    if not isinstance(spec, Mapping):
        raise FieldError("a threshold rule needs a threshold table", "threshold")
    raw = spec.get("field")
    fields: list[str]
    if raw in (None, ""):
        fields = []
    elif isinstance(raw, str):
        fields = [raw]
    elif isinstance(raw, list) and all(isinstance(f, str) for f in raw) and len(raw) <= 5:
        fields = [f for f in raw if f]
    else:
        raise FieldError("threshold.field must be a field or a list of up to 5 fields",
                         "threshold")
    value = spec.get("value")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FieldError("threshold.value must be an integer of at least 1", "threshold")
    cardinality = None
    entries = spec.get("cardinality") or []
    if not isinstance(entries, list):
        raise FieldError("threshold.cardinality must be a list", "threshold")
    if entries:
        first = entries[0]
        name = first.get("field") if isinstance(first, Mapping) else None
        count = first.get("value") if isinstance(first, Mapping) else None
        if not isinstance(name, str) or isinstance(count, bool) or not isinstance(count, int) \
                or count < 0:
            raise FieldError("threshold.cardinality needs a field and a value of at least 0",
                             "threshold")
        cardinality = (name, count)
    return Threshold(tuple(fields), value, cardinality)


def _new_terms(reader: _Reader, from_: str) -> NewTerms:
    """Kibana's ``new_terms_fields`` / ``history_window_start``, or detection-rules' TOML
    form: ``[rule.new_terms]`` field/value with ``[[rule.new_terms.history_window_start]]``."""
    data = dict(reader.data)
    nested = data.get("new_terms")
    if isinstance(nested, Mapping):
        if nested.get("field") == "new_terms_fields":
            data.setdefault("new_terms_fields", nested.get("value"))
        windows = nested.get("history_window_start")
        for window in windows if isinstance(windows, list) else [windows]:
            if isinstance(window, Mapping) and window.get("field") == "history_window_start":
                data.setdefault("history_window_start", window.get("value"))
    reader = _Reader(data)
    fields = reader.strings("new_terms_fields")
    if not 1 <= len(fields) <= 3:
        raise FieldError("new_terms_fields must name 1 to 3 fields", "new_terms_fields")
    history = reader.text("history_window_start", required=True)
    try:
        start = DateMath.parse(history)
    except ValueError as exc:
        raise FieldError(str(exc), "history_window_start") from None
    # validateHistoryWindowStart: the history must begin before the run's window does.
    if start.offset >= DateMath.parse(from_).offset:
        raise FieldError("History window size is smaller than rule interval + additional "
                         "lookback, 'historyWindowStart' must be earlier than 'from'",
                         "history_window_start")
    return NewTerms(tuple(fields), history)


def _risk_score_field(reader: _Reader) -> str | None:
    mappings = reader.table_list("risk_score_mapping")
    if not mappings:
        return None
    field_name = mappings[0].get("field")
    if not isinstance(field_name, str) or not field_name:
        raise FieldError("risk_score_mapping[0] needs a field", "risk_score_mapping")
    return field_name


class _Reader:
    """Typed access to a rule mapping; every complaint names the key."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def text(self, key: str, *, required: bool = False) -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                raise FieldError(f"missing required field {key!r}", key)
            return ""
        if not isinstance(value, str):
            raise FieldError(f"{key} must be a string, not {_kind(value)}", key)
        return value

    def integer(self, key: str, *, required: bool = False, default: int = 0) -> int:
        value = self.data.get(key)
        if value is None:
            if required:
                raise FieldError(f"missing required field {key!r}", key)
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(f"{key} must be an integer, not {_kind(value)}", key)
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if isinstance(value, str):  # Kibana accepts a lone index pattern; so do we
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FieldError(f"{key} must be a list of strings", key)
        return tuple(value)

    def table_list(self, key: str) -> list[Mapping[str, Any]]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise FieldError(f"{key} must be a list of tables", key)
        return value


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
