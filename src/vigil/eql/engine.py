"""Running a query over events: event queries, sequences (with missing stages) and samples.

Semantics follow Elasticsearch's EQL execution (x-pack/plugin/eql ``execution``):

* Events are ordered by *ordinal*: timestamp, then the tiebreaker (missing last), then input
  order (Elasticsearch's implicit ``_shard_doc``).
* Sequences (``SequenceMatcher``/``OrdinalGroup``): per join key, per stage, the in-flight
  partial sequences. An event is tried against the stages it matches from the last to the
  first, so it can complete one sequence and start another but never chain with itself. A
  stage-N event advances the *most recent* partial of stage N-1 and discards the older ones
  (``trimBefore``), so only the latest partial per key and stage is ever kept: memory grows
  with open keys, not with input. ``maxspan`` is inclusive and measured from the first event.
  An ``until`` event kills every partial of its key. Completed sequences are ordered by their
  last event, then by key.
* Missing stages (``TumblingWindow.checkMissingEvents``): candidates found by the positive
  stages are checked afterwards. A matching event strictly between the neighbouring positive
  events (millisecond resolution) discards the candidate; leading and trailing missing events
  discard it only if the whole pattern including them fits in ``maxspan``.
* Samples (``SampleIterator``): keys present in every stage, in composite-aggregation order
  (nulls first); per key the first combinations of pairwise-distinct events, in index order.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from vigil.eql import ast
from vigil.eql.compiler import FilterCompiler, Predicate
from vigil.eql.schema import Schema, format_date_ns

Event = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Match:
    """One result: the matched events in stage order (None at a missing stage) and the keys."""

    events: tuple[Event | None, ...]
    join_keys: tuple[Any, ...] = ()


# ------------------------------------------------------------------ per-index compiled filters


@dataclass(slots=True)
class StagePlan:
    """A stage compiled for one schema: does an event match, and under which keys."""

    matches: Predicate
    key_getters: tuple[tuple[Callable[[Event], Any], bool, str | None], ...]

    def keys(self, event: Event) -> list[tuple[Any, ...]]:
        """The join keys of ``event`` (a cartesian product over multi-valued key fields)."""
        if not self.key_getters:
            return [()]
        choices: list[list[Any]] = []
        for get, optional, _type in self.key_getters:
            value = get(event)
            if isinstance(value, list):
                # Objects and arrays are no key values (Elasticsearch refuses such a value
                # in a keyword field): the scalars of the list are the keys.
                value = [v for v in value if not isinstance(v, dict | list)] or None
            elif isinstance(value, dict):
                value = None
            if value is None:
                if not optional:
                    return []
                choices.append([None])
            elif isinstance(value, list):
                choices.append(list(dict.fromkeys(value)))
            else:
                choices.append([value])
        if len(choices) == 1:
            return [(v,) for v in choices[0]]
        return list(dict.fromkeys(itertools.product(*choices)))


class Compiled:
    """A query compiled lazily per schema (per index when mappings differ by index)."""

    def __init__(self, query: ast.Query, schemas: SchemaResolver,
                 event_category_field: str) -> None:
        self.query = query
        self.schemas = schemas
        self.category_field = event_category_field
        self._plans: dict[int, list[StagePlan]] = {}
        body = query.body
        self.stage_nodes: list[tuple[ast.EventQuery, tuple[ast.Field, ...]]] = []
        if isinstance(body, ast.EventQuery):
            self.stage_nodes.append((body, ()))
        else:
            for stage in body.stages:
                self.stage_nodes.append((stage.query, body.keys_of(stage)))
            if isinstance(body, ast.Sequence) and body.until is not None:
                self.stage_nodes.append((body.until.query, body.keys_of(body.until)))

    def plans(self, event: Event) -> list[StagePlan]:
        schema = self.schemas.for_event(event)
        plans = self._plans.get(id(schema))
        if plans is None:
            plans = [self._compile(schema, q, keys) for q, keys in self.stage_nodes]
            self._plans[id(schema)] = plans
        return plans

    def _compile(self, schema: Schema, query: ast.EventQuery,
                 keys: tuple[ast.Field, ...]) -> StagePlan:
        compiler = FilterCompiler(schema, self.query.text)
        condition = compiler.predicate(query.condition)
        key_getters = tuple(
            (compiler.getter(k), k.optional, schema.field_type(k.name)) for k in keys
        )
        # Elasticsearch adds IsNotNull(key) for mandatory keys; StagePlan.keys drops them.
        if query.category is None:
            return StagePlan(condition, key_getters)
        category = query.category
        get_category = schema.getter(self.category_field)

        def matches(event: Event) -> bool:
            value = get_category(event)
            if value != category and not (isinstance(value, list) and category in value):
                return False
            return condition(event)

        return StagePlan(matches, key_getters)


class SchemaResolver:
    """Chooses the schema of an event: by its ``_index`` when mappings are given per index."""

    def __init__(self, mapping: Mapping[str, Any] | None, timestamp_field: str,
                 default: Schema | None = None) -> None:
        self.timestamp_field = timestamp_field
        self.default = default or Schema.from_mapping(None, timestamp_field)
        self.per_index: dict[str, Schema] = {}
        if mapping and ("properties" in mapping or "mappings" in mapping):
            self.default = Schema.from_mapping(mapping, timestamp_field)
        elif mapping:
            for index, index_mapping in mapping.items():
                self.per_index[index] = Schema.from_mapping(index_mapping, timestamp_field)
            # Fields mapped in any index are known: an optional field unmapped everywhere is null.
            merged: dict[str, Any] = {}
            for schema in self.per_index.values():
                merged.update(schema.fields)
            self.default = Schema(merged, timestamp_field, closed=True)

    def learn(self, events: list[Event]) -> None:
        """With a mapping, fields it lacks are mapped dynamically from the data (as
        indexing the events into Elasticsearch would do)."""
        if not self.per_index:
            if self.default.closed:
                self.default.learn(events)
            return
        for index, schema in self.per_index.items():
            schema.learn(e for e in events if e.get("_index") == index)
        for schema in self.per_index.values():
            for name, field_def in schema.fields.items():
                self.default.fields.setdefault(name, field_def)

    def for_event(self, event: Event) -> Schema:
        if self.per_index:
            index = event.get("_index")
            if isinstance(index, str) and index in self.per_index:
                return self.per_index[index]
        return self.default


# ------------------------------------------------------------------ ordering


@dataclass(slots=True)
class Entry:
    """An event with its place in the stream."""

    event: Event
    ordinal: int  # position in (timestamp, tiebreaker, input order)
    ts: int | None  # nanoseconds since the epoch
    position: int = 0  # position in the input (Elasticsearch's index order)

    @property
    def ts_ms(self) -> int:
        assert self.ts is not None
        return self.ts // 1_000_000


def _value_rank(value: Any) -> tuple[int, Any]:
    """A total order over scalar values: numbers, then strings (by UTF-8 bytes), booleans."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value.encode("utf-8", "surrogatepass"))
    return (4, repr(value))


def order_events(events: Iterable[Event], schemas: SchemaResolver,
                 tiebreaker_field: str | None) -> list[Entry]:
    """Sort events by timestamp, tiebreaker (missing last), then input order."""
    rows: list[tuple[tuple[Any, ...], Event, int | None, int]] = []
    for position, event in enumerate(events):
        schema = schemas.for_event(event)
        ts = schema.getter(schemas.timestamp_field)(event)
        if isinstance(ts, list):
            ts = min(ts)
        if not isinstance(ts, int):
            ts = None
        tiebreak: tuple[Any, ...] = ()
        if tiebreaker_field:
            value = schema.getter(tiebreaker_field)(event)
            if isinstance(value, list):
                value = value[0]
            tiebreak = (value is None, _value_rank(value))
        sort_key = (ts is None, ts or 0, *tiebreak, position)
        rows.append((sort_key, event, ts, position))
    rows.sort(key=lambda row: row[0])
    return [Entry(event, i, ts, position) for i, (_k, event, ts, position) in enumerate(rows)]


# ------------------------------------------------------------------ event queries


def run_event_query(compiled: Compiled, entries: list[Entry]) -> Iterator[Match]:
    for entry in entries:
        if compiled.plans(entry.event)[0].matches(entry.event):
            yield Match((entry.event,))


# ------------------------------------------------------------------ sequences


@dataclass(slots=True)
class Partial:
    """An in-flight sequence: the entries matched so far (positive stages only)."""

    key: tuple[Any, ...]
    entries: list[Entry]
    start_ts: int


@dataclass(slots=True)
class SequenceRun:
    """Streaming sequence matcher; feed entries in ordinal order."""

    sequence: ast.Sequence
    compiled: Compiled
    stages: list[ast.Stage] = field(init=False)  # runs expanded
    stage_plan_index: list[int] = field(init=False)
    positive: list[int] = field(init=False)  # indexes of positive stages
    previous_positive: dict[int, int] = field(init=False)
    groups: dict[tuple[Any, ...], dict[int, Partial]] = field(init=False)
    maxspan_ns: int | None = field(init=False)
    completed: list[tuple[Partial, int]] = field(init=False)

    def __post_init__(self) -> None:
        self.stages = []
        self.stage_plan_index = []
        for plan_index, stage in enumerate(self.sequence.stages):
            for _ in range(stage.runs):
                self.stages.append(stage)
                self.stage_plan_index.append(plan_index)
        self.positive = [i for i, s in enumerate(self.stages) if not s.missing]
        self.previous_positive = {
            later: earlier for earlier, later in itertools.pairwise(self.positive)
        }
        self.groups = {}
        span = self.sequence.maxspan_ms
        self.maxspan_ns = span * 1_000_000 if span is not None else None
        self.completed = []

    def feed(self, entry: Entry) -> None:
        event = entry.event
        plans = self.compiled.plans(event)
        first, last = self.positive[0], self.positive[-1]
        finished: list[tuple[Partial, int]] = []
        for stage_index in reversed(self.positive):
            plan = plans[self.stage_plan_index[stage_index]]
            if not plan.matches(event):
                continue
            for key in plan.keys(event):
                if stage_index == first:
                    partial = Partial(key, [entry], entry.ts or 0)
                    if stage_index == last:
                        finished.append((partial, entry.ordinal))
                    else:
                        self.groups.setdefault(key, {})[stage_index] = partial
                    continue
                by_stage = self.groups.get(key)
                if not by_stage:
                    continue
                previous = by_stage.pop(self.previous_positive[stage_index], None)
                if previous is None:
                    continue
                if self.maxspan_ns is not None and (entry.ts or 0) - previous.start_ts > (
                    self.maxspan_ns
                ):
                    continue
                previous.entries.append(entry)
                if stage_index == last:
                    finished.append((previous, entry.ordinal))
                else:
                    by_stage[stage_index] = previous
        until = self.sequence.until
        if until is not None:
            plan = plans[-1]
            if plan.matches(event):
                for key in plan.keys(event):
                    self.groups.pop(key, None)
        if finished:
            # Same completing event: ordered by key; equal keys collapse into one.
            finished.sort(key=lambda item: tuple(_value_rank(v) for v in item[0].key))
            seen: set[tuple[Any, ...]] = set()
            for partial, ordinal in finished:
                if partial.key in seen:
                    continue
                seen.add(partial.key)
                self.completed.append((partial, ordinal))

    def expire(self, now_ts: int) -> None:
        """Drop partials that can no longer complete within maxspan (bounded memory)."""
        if self.maxspan_ns is None:
            return
        horizon = now_ts - self.maxspan_ns
        for key in list(self.groups):
            by_stage = self.groups[key]
            for stage_index in [s for s, p in by_stage.items() if p.start_ts < horizon]:
                del by_stage[stage_index]
            if not by_stage:
                del self.groups[key]


class MissingIndex:
    """Timestamps (ms) of the events matching one missing stage, per key."""

    def __init__(self, plan_index: int, compiled: Compiled, entries: list[Entry]) -> None:
        self.by_key: dict[tuple[Any, ...], list[int]] = {}
        for entry in entries:
            if entry.ts is None:
                continue
            plan = compiled.plans(entry.event)[plan_index]
            if not plan.matches(entry.event):
                continue
            for key in plan.keys(entry.event):
                self.by_key.setdefault(key, []).append(entry.ts_ms)
        for values in self.by_key.values():
            values.sort()

    def latest_before(self, key: tuple[Any, ...], ts_ms: int) -> int | None:
        values = self.by_key.get(key)
        if not values:
            return None
        i = bisect.bisect_left(values, ts_ms)
        return values[i - 1] if i > 0 else None

    def earliest_after(self, key: tuple[Any, ...], ts_ms: int) -> int | None:
        values = self.by_key.get(key)
        if not values:
            return None
        i = bisect.bisect_right(values, ts_ms)
        return values[i] if i < len(values) else None

    def any_between(self, key: tuple[Any, ...], low_ms: int, high_ms: int) -> bool:
        values = self.by_key.get(key)
        if not values:
            return False
        i = bisect.bisect_right(values, low_ms)
        return i < len(values) and values[i] < high_ms


def run_sequence(compiled: Compiled, sequence: ast.Sequence,
                 entries: list[Entry]) -> Iterator[Match]:
    run = SequenceRun(sequence, compiled)
    sweep_every = 4096
    for count, entry in enumerate(entries, 1):
        if entry.ts is None:
            continue
        run.feed(entry)
        if count % sweep_every == 0:
            run.expire(entry.ts)
    candidates = run.completed
    missing_stages = [i for i, s in enumerate(run.stages) if s.missing]
    indexes: dict[int, MissingIndex] = {}
    for stage_index in missing_stages:
        plan_index = run.stage_plan_index[stage_index]
        if plan_index not in indexes:
            indexes[plan_index] = MissingIndex(plan_index, compiled, entries)
    for partial, _ordinal in candidates:
        if missing_stages and not _passes_missing_checks(run, partial, indexes):
            continue
        events: list[Event | None] = []
        positives = iter(partial.entries)
        for stage in run.stages:
            events.append(None if stage.missing else next(positives).event)
        yield Match(tuple(events), _render_keys(partial.key, compiled, sample=False))


def _passes_missing_checks(run: SequenceRun, partial: Partial,
                           indexes: dict[int, MissingIndex]) -> bool:
    stages = run.stages
    positive_ms: dict[int, int] = {
        stage_index: entry.ts_ms for stage_index, entry in zip(run.positive, partial.entries,
                                                                strict=True)
    }
    first_positive, last_positive = run.positive[0], run.positive[-1]
    last_leading: int | None = None
    first_trailing: int | None = None
    for stage_index, stage in enumerate(stages):
        if not stage.missing:
            continue
        index = indexes[run.stage_plan_index[stage_index]]
        if stage_index < first_positive:
            found = index.latest_before(partial.key, positive_ms[first_positive])
            if found is not None:
                last_leading = found if last_leading is None else max(last_leading, found)
        elif stage_index > last_positive:
            found = index.earliest_after(partial.key, positive_ms[last_positive])
            if found is not None:
                first_trailing = found if first_trailing is None else min(first_trailing, found)
        else:
            before = max(s for s in run.positive if s < stage_index)
            after = min(s for s in run.positive if s > stage_index)
            if index.any_between(partial.key, positive_ms[before], positive_ms[after]):
                return False
    first_missing = stages[0].missing
    last_missing = stages[-1].missing
    maxspan = run.sequence.maxspan_ms
    if last_leading is None and first_trailing is None:
        return True
    if (first_missing and last_leading is None) or (last_missing and first_trailing is None):
        return True
    if maxspan is None:
        return False
    if first_missing and last_missing:
        assert last_leading is not None and first_trailing is not None
        return first_trailing - last_leading > maxspan
    if first_missing:
        assert last_leading is not None
        return positive_ms[last_positive] - last_leading > maxspan
    assert first_trailing is not None
    return first_trailing - positive_ms[first_positive] > maxspan


def _render_keys(key: tuple[Any, ...], compiled: Compiled, *, sample: bool) -> tuple[Any, ...]:
    """Join-key values as Elasticsearch returns them (dates: ISO in sequences, millis in
    samples)."""
    body = compiled.query.body
    if isinstance(body, ast.EventQuery) or not key:
        return key
    schema = compiled.schemas.default
    fields = body.keys_of(body.stages[0])
    rendered: list[Any] = []
    for value, key_field in zip(key, fields, strict=False):
        field_type = schema.field_type(key_field.name)
        if value is not None and field_type in ("date", "date_nanos") and isinstance(value, int):
            rendered.append(str(value // 1_000_000) if sample else format_date_ns(value))
        else:
            rendered.append(value)
    return tuple(rendered)


# ------------------------------------------------------------------ samples


def run_sample(compiled: Compiled, sample: ast.Sample, entries: list[Entry],
               max_samples_per_key: int, limit: int | None) -> Iterator[Match]:
    stage_count = len(sample.stages)
    per_stage: list[dict[tuple[Any, ...], list[Entry]]] = [{} for _ in range(stage_count)]
    # Index order (input order), not time order: the sample search has no sort.
    for entry in sorted(entries, key=lambda e: e.position):
        plans = compiled.plans(entry.event)
        for stage_index in range(stage_count):
            plan = plans[stage_index]
            if plan.matches(entry.event):
                for key in plan.keys(entry.event):
                    per_stage[stage_index].setdefault(key, []).append(entry)
    keys = set(per_stage[0])
    for table in per_stage[1:]:
        keys &= set(table)
    ordered = sorted(keys, key=lambda k: tuple(_value_rank(v) for v in k))
    fetch = stage_count + max_samples_per_key - 1
    produced = 0
    for key in ordered:
        candidates = [table[key][:fetch] for table in per_stage]
        for combo in _distinct_combinations(candidates, max_samples_per_key):
            if limit is not None and produced >= limit:
                return
            produced += 1
            yield Match(tuple(e.event for e in combo),
                        _render_keys(key, compiled, sample=True))


def _distinct_combinations(candidates: list[list[Entry]], wanted: int) -> list[list[Entry]]:
    """The first ``wanted`` picks of one entry per stage, no entry twice (depth first)."""
    found: list[list[Entry]] = []
    chosen: list[Entry] = []

    def walk(stage: int) -> None:
        if len(found) >= wanted:
            return
        if stage == len(candidates):
            found.append(list(chosen))
            return
        for entry in candidates[stage]:
            if any(entry is c for c in chosen):
                continue
            chosen.append(entry)
            walk(stage + 1)
            chosen.pop()
            if len(found) >= wanted:
                return

    walk(0)
    return found


# ------------------------------------------------------------------ pipes


def apply_pipes(results: list[Match], pipes: tuple[ast.Pipe, ...]) -> list[Match]:
    for pipe in pipes:
        if pipe.kind == "head":
            results = results[: pipe.count]
        else:
            results = results[-pipe.count :] if pipe.count < len(results) else results
    return results
