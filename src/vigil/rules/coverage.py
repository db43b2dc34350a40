"""Rule coverage: which rules can fire on the data at hand, and why the others cannot.

``DataProfile`` keeps, per index and event category, how many events were seen and which
dotted field paths some of them carry with a non-null value: never the events, so memory
grows with the variety of the data, not its size (and is capped for hostile input).

``assess`` decides per rule. A rule *can fire* when some index of the data is one its index
patterns read and, for every positive stage (the stages a match needs: not ``until``, not a
missing ``![...]`` stage), some group of a read index has the stage's category and could
satisfy its condition and carry its join keys. The condition is evaluated in three-valued
logic: a leaf (a comparison, a function call) reading a field the group carries is unknown;
a leaf whose fields the group never carries is evaluated by vigil's own compiled predicate on
an empty document, so ``x != "a"`` (which matches events without ``x``, as Elasticsearch's
``must_not`` does) is not a requirement; ``and``/``or``/``not`` combine as Kleene logic.
This over-approximates: "can fire" means "not ruled out by the fields present".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.detect.indices import IndexSelector, index_of
from vigil.detect.run import ecs_schema
from vigil.eql import ast
from vigil.eql.compiler import FilterCompiler
from vigil.eql.engine import Compiled, SchemaResolver
from vigil.eql.schema import raw_getter
from vigil.rules.model import Rule

UNKNOWN_INDEX = "(unknown index)"  # events whose index cannot be told: every rule reads them
NO_CATEGORY = "(none)"
MAX_GROUPS = 4096  # (index, category) groups profiled; events of further groups are counted
MAX_FIELDS = 20_000  # field paths per group; past that the group counts as carrying every field
MAX_ALTERNATIVES = 8  # alternative field sets kept per sub-condition when looking for the cheapest
ENDPOINT_PREFIX = "logs-endpoint."

_get_category = raw_getter("event.category")


@dataclass(slots=True)
class Group:
    """The events of one index and one category: how many, and the fields they carry."""

    events: int = 0
    fields: set[str] = field(default_factory=set)
    saturated: bool = False  # more than MAX_FIELDS paths: treated as carrying every field

    def has(self, name: str) -> bool:
        return self.saturated or name in self.fields


@dataclass(slots=True)
class DataProfile:
    indices: dict[str | None, dict[str | None, Group]] = field(default_factory=dict)
    events: dict[str | None, int] = field(default_factory=dict)
    groups: int = 0
    unprofiled: int = 0  # events of groups past MAX_GROUPS

    def add(self, event: Mapping[str, Any]) -> None:
        index = index_of(event)
        self.events[index] = self.events.get(index, 0) + 1
        by_category = self.indices.setdefault(index, {})
        paths: set[str] | None = None
        for category in _categories(event):
            group = by_category.get(category)
            if group is None:
                if self.groups >= MAX_GROUPS:
                    self.unprofiled += 1
                    continue
                group = by_category[category] = Group()
                self.groups += 1
            group.events += 1
            if group.saturated:
                continue
            if paths is None:
                paths = set()
                _paths(event, "", paths)
            group.fields |= paths
            if len(group.fields) > MAX_FIELDS:
                group.saturated, group.fields = True, set()

    def add_all(self, events: Iterable[Mapping[str, Any]]) -> DataProfile:
        for event in events:
            self.add(event)
        return self

    def summary(self) -> dict[str, Any]:
        """JSON-ready: per index, its events and its events per category."""
        return {index or UNKNOWN_INDEX: {
                    "events": self.events.get(index, 0),
                    "categories": {c or NO_CATEGORY: g.events for c, g in sorted(
                        groups.items(), key=lambda item: str(item[0]))}}
                for index, groups in sorted(self.indices.items(), key=lambda i: str(i[0]))}


def _categories(event: Mapping[str, Any]) -> list[str | None]:
    value = _get_category(event)
    values = value if isinstance(value, list) else [value]
    found: list[str | None] = list(dict.fromkeys(v for v in values if isinstance(v, str) and v))
    return found or [None]


def _paths(obj: Mapping[str, Any], prefix: str, out: set[str]) -> None:
    """Into ``out``: the dotted paths with a non-null value (nested or dotted keys; a list
    of objects contributes their keys; an empty list or a list of nulls is no value)."""
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _paths(value, f"{name}.", out)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _paths(item, f"{name}.", out)
                elif item is not None:
                    out.add(name)
        elif value is not None:
            out.add(name)


# ---------------------------------------------------------------- per rule

Needs = list[frozenset[str]]  # alternative sets of fields, minimal; [] impossible, [{}] met


@dataclass(frozen=True, slots=True)
class Coverage:
    rule: Rule
    can_fire: bool
    reasons: tuple[str, ...]
    indices: tuple[str, ...]  # the indices of the data its index patterns read

    @property
    def verdict(self) -> str:
        return "can fire" if self.can_fire else "cannot fire"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.rule.rule_id, "name": self.rule.name, "verdict": self.verdict,
                "reasons": list(self.reasons), "indices": list(self.indices)}


class _Leaves:
    """Each leaf's fields and its value on a document without them (compiled once)."""

    def __init__(self, compiler: FilterCompiler) -> None:
        self.compiler = compiler
        self.cache: dict[int, tuple[frozenset[str], bool | None]] = {}

    def leaf(self, node: ast.Expr) -> tuple[frozenset[str], bool | None]:
        found = self.cache.get(id(node))
        if found is None:
            names = frozenset(n.name for n in ast.walk(node) if isinstance(n, ast.Field))
            try:
                absent: bool | None = bool(self.compiler.predicate(node)({}))
            except Exception:  # whatever the reference would make of it: unknown here
                absent = None
            found = self.cache[id(node)] = (names, absent)
        return found

    def needs(self, node: ast.Expr, group: Group, positive: bool = True) -> Needs:
        """The minimal sets of absent fields whose presence would make ``node`` not
        definitely false (``positive``) or not definitely true (under a ``not``)."""
        match node:
            case ast.Not(operand=operand):
                return self.needs(operand, group, not positive)
            case ast.And(operands=operands) | ast.Or(operands=operands):
                parts = [self.needs(o, group, positive) for o in operands]
                if isinstance(node, ast.And) == positive:  # every operand must be met
                    return _product(parts)
                return _minimal(alt for part in parts for alt in part)
        names, absent = self.leaf(node)
        if absent is None or any(group.has(n) for n in names) or absent is positive:
            return [frozenset()]
        return [frozenset((n,)) for n in sorted(names)]


def _minimal(alternatives: Iterable[frozenset[str]]) -> Needs:
    kept: Needs = []
    for alt in sorted(set(alternatives), key=lambda a: (len(a), sorted(a))):
        if not any(k <= alt for k in kept):
            kept.append(alt)
    return kept[:MAX_ALTERNATIVES]


def _product(parts: Sequence[Needs]) -> Needs:
    result: Needs = [frozenset()]
    for part in parts:
        if part == [frozenset()]:
            continue
        result = _minimal(a | b for a in result for b in part)
        if not result:
            return []
    return result


def assess(rules: Sequence[Rule], profile: DataProfile, *,
           index_all: bool = False) -> list[Coverage]:
    return [assess_rule(rule, profile, index_all=index_all) for rule in rules]


def assess_rule(rule: Rule, profile: DataProfile, *, index_all: bool = False) -> Coverage:
    selector = IndexSelector(rule.index, accept_all=index_all)
    read = [i for i in profile.indices if selector.accepts(i)]
    names = tuple(sorted(i or UNKNOWN_INDEX for i in read))
    if not read:
        patterns = [p for p in rule.index if not p.startswith("-")]
        if patterns and all(p.startswith(ENDPOINT_PREFIX) for p in patterns):
            reason = "needs Elastic Defend data (logs-endpoint.*)"
        else:
            reason = f"no data for its indices ({', '.join(rule.index)})"
        return Coverage(rule, False, (reason,), names)
    timestamp_field = rule.timestamp_field or "@timestamp"
    category_field = rule.event_category_override or "event.category"
    compiled = Compiled(rule.tree, SchemaResolver(None, timestamp_field,
                                                 default=ecs_schema(timestamp_field)),
                        category_field)
    leaves = _Leaves(FilterCompiler(compiled.schemas.default, rule.tree.text))
    body = rule.tree.body
    stages = [] if isinstance(body, ast.EventQuery) else list(body.stages)
    reasons: list[tuple[int, str]] = []
    for number, (query, keys) in enumerate(compiled.stage_nodes, start=1):
        if number > max(1, len(stages)) or (stages and stages[number - 1].missing):
            continue  # until, or a missing stage: not needed for a match
        label = f"stage {number} ({query.category or 'any'}): " if stages else ""
        found = _stage(query, keys, read, profile, leaves, category_field, timestamp_field)
        if found is not None:
            reasons.append((found[0], label + found[1]))
    reasons.sort(key=lambda r: r[0])  # no events of a category before missing fields
    return Coverage(rule, not reasons, tuple(r for _kind, r in reasons), names)


def _stage(query: ast.EventQuery, keys: Sequence[ast.Field], read: Sequence[str | None],
           profile: DataProfile, leaves: _Leaves, category_field: str,
           timestamp_field: str) -> tuple[int, str] | None:
    """None when some group may hold a matching event, else (kind, why not)."""
    category = query.category
    by_category = category_field == "event.category" and category is not None
    candidates = [(index, group) for index in read
                  for cat, group in profile.indices[index].items()
                  if not by_category or cat == category]
    shown = category or "any"
    if not candidates:
        return 0, f"no {shown} events in {_names(read)}"
    required = [timestamp_field, *(k.name for k in keys if not k.optional)]
    if category is not None and not by_category:
        required.append(category_field)
    best: dict[frozenset[str], list[str | None]] = {}
    for index, group in candidates:
        extra = frozenset(n for n in required if not group.has(n))
        options = [alt | extra for alt in leaves.needs(query.condition, group)]
        if frozenset() in options:
            return None
        for alt in options:
            best.setdefault(alt, []).append(index)
    where = f"{shown} events" if category is not None else "events"
    if not best:
        return 2, f"its condition can never be true of {where} in {_names(read)}"
    cheapest = min(best, key=lambda a: (len(a), sorted(a)))
    fields = ", ".join(sorted(cheapest))
    return 1, f"field(s) {fields} never present in {where} of {_names(best[cheapest])}"


def _names(indices: Iterable[str | None], limit: int = 4) -> str:
    names = sorted(dict.fromkeys(i or UNKNOWN_INDEX for i in indices))
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def summary(results: Sequence[Coverage]) -> dict[str, Any]:
    can = sum(1 for r in results if r.can_fire)
    defend = sum(1 for r in results if not r.can_fire and r.reasons
                 and r.reasons[0].startswith("needs Elastic Defend"))
    return {"rules": len(results), "can_fire": can, "cannot_fire": len(results) - can,
            "need_elastic_defend": defend}


def summary_line(results: Sequence[Coverage]) -> str:
    counts = summary(results)
    return (f"{counts['can_fire']} of {counts['rules']} rules can fire on this data; "
            f"{counts['cannot_fire']} need data that is absent")
