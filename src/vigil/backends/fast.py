"""The fast path of ``vigil detect``: skip, without parsing, the lines no rule can match,
then run the reference (``run_detection``) on the events that remain.

Why the answer is the reference's answer: ``run_detection`` only ever looks at events that
match some stage of some rule (see ``prefilter``'s docstring for the argument per engine
part), so running it on a subset of the input that holds every such event — in input order,
parsed by the same reader code — yields the same matches, in the same order, with the same
alert ids. This module only decides which events to keep, never what they mean:

1. Plain NDJSON files are split into byte ranges at newlines and scanned by worker processes
   (both cores). ``prefilter.LineFilter`` finds the lines that may match a stage; those are
   parsed with the reader's own code (orjson, NXLog mapping, logon-id fix, timestamp check)
   and kept only if some candidate stage's compiled predicate (the reference evaluator)
   matches, for a rule whose index patterns accept the event. Before the predicate, the
   candidate stages are dispatched by their key clause (``fieldcheck.StageIndex``) and the
   stage's field check (``fieldcheck``: a necessary condition on the parsed values, field
   reads shared by all stages) rejects most candidates. Kept lines go back as bytes.
2. Key gate, for every sequence: phase one finds the join keys of every event matching the
   sequence's *pivot* (the positive stage whose literals hit the fewest sampled lines); in
   phase two the other stages (positive, missing, until) only consider lines holding one of
   those key values when they are searchable (``prefilter.gate_clause``) and, after parsing,
   only events with one of those keys: a partial of another key never completes, since a
   completed sequence has an event of its key at every positive stage, and missing stages and
   ``until`` only act on the partials of their own key. A pivot that never matches leaves
   none of the rule's other stages to read.
3. Other inputs (.gz, .evtx, .zip, JSON arrays) are read by the reference readers in the
   worker processes, with the same exact stage filter; with many stages, each event is first
   written as a JSON line (orjson) and ``LineFilter`` finds the stages that line may match,
   exactly as for an NDJSON line (the line holds every value the predicates read: it is the
   event itself). Each kept event comes back with the rules it matches a stage of and, for
   gated sequences, its join keys (worked out in the workers), which feed the key sets of
   step 2.

Memory is bounded by the kept events (stage matches), not by the input: lines are scanned in
fixed-size blocks. Bad records: every line that does not look like ``{"@timestamp":"2...}``
is parsed (so broken, truncated, non-object, non-UTF-8 lines and lines without a leading
timestamp are counted as the reference counts them); what a skipped line cannot be checked
for without parsing is invalid JSON inside a regular-looking line, a malformed date after
``"2``, or a second ``@timestamp`` key (``FastStats.lines_skipped`` says how many lines were
skipped).
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import re2

from vigil.backends.evtx_gate import EvtxGate
from vigil.backends.fieldcheck import (
    FieldCache,
    FieldCnf,
    KeyClause,
    StageCheck,
    StageIndex,
    build_checks,
    key_clause,
    query_field_cnfs,
)
from vigil.backends.prefilter import (
    Atom,
    Clause,
    Cnf,
    LineFilter,
    atom_frequencies,
    byte_options,
    gate_clause,
    line_spans,
    query_cnfs,
)
from vigil.detect.indices import IndexSelector, index_of
from vigil.detect.run import DetectOptions, DetectResult, ecs_schema, run_detection
from vigil.eql import ast
from vigil.eql.engine import Compiled, SchemaResolver
from vigil.eql.schema import STRING_TYPES, Schema
from vigil.events import ReadOptions, ReadStats
from vigil.events.jsonl import (
    TOO_LONG,
    _Finisher,
    _parse_line,
    finish_long_line,
    max_line_bytes,
    text_encoding,
)
from vigil.events.reader import iter_input_files, read_file
from vigil.events.records import ReadProgress, RecordGates
from vigil.rules.model import Rule

Event = Mapping[str, Any]
EventFilter = Callable[[Event], bool]

BLOCK = 1 << 20  # bytes read at a time by a scanning worker (passes over it stay in cache)
RANGE = 64 << 20  # bytes per unit of work
PLAIN_SUFFIXES = (".ndjson", ".jsonl", ".json")


@dataclass(slots=True)
class RulePlan:
    rule: Rule
    compiled: Compiled
    selector: IndexSelector
    cnfs: list[Cnf]
    last_plan: int | None  # plan index of the last positive stage (sequences)
    key_fields: list[tuple[ast.Field, ...]]  # join keys per plan
    field_cnfs: list[FieldCnf] = field(default_factory=list)
    checks: list[StageCheck | None] = field(default_factory=list)  # per plan, or None
    pivot: int | None = None  # the positive stage whose keys gate the others (sequences)
    positive: list[int] = field(default_factory=list)  # plan indexes of positive stages
    keys: list[KeyClause | None] = field(default_factory=list)  # per plan: dispatch clause


@dataclass(slots=True)
class FastStats:
    lines_skipped: int = 0
    lines_parsed: int = 0
    events_kept: int = 0
    gated_rules: int = 0


@dataclass(slots=True)
class _Job:
    """What a worker needs; set before the workers fork, so closures need no pickling."""

    plans: list[RulePlan]
    options: ReadOptions
    index_all: bool
    stage_of: list[tuple[int, int]] = field(default_factory=list)  # global -> (rule, plan)
    line_filter: LineFilter | None = None  # phase one: every stage, gated ones opaque-only
    event_filter: LineFilter | None = None  # every stage, for events of non-NDJSON inputs
    key_stages: dict[int, int] = field(default_factory=dict)  # pivot stage -> gated rule
    gated: tuple[int, ...] = ()  # the sequences gated on their pivot's keys (step 2)
    key_sets: dict[int, set[tuple[Any, ...]]] = field(default_factory=dict)  # phase two gates
    phase_two: LineFilter | None = None  # the gated stages, scanned for key values
    phase_two_stages: list[tuple[int, int]] = field(default_factory=list)
    gates: RecordGates | None = None  # the EVTX records worth mapping (evtx_gate)
    indexes: dict[tuple[bool, tuple[int, ...]], StageIndex] = field(default_factory=dict)
    accepting: dict[str | None, frozenset[int]] = field(default_factory=dict)  # by index


_JOB: _Job | None = None


def _job() -> _Job:
    assert _JOB is not None, "worker started without a job"
    return _JOB


@dataclass(frozen=True, slots=True)
class _JobSpec:
    """What rebuilds the job exactly in a worker that was not forked from the parent (the
    "spawn" start method: Windows, macOS): every field pickles, and ``_build_job`` is
    deterministic in them. With phase two, its filter's clauses and the key sets too."""

    rules: tuple[Rule, ...]
    options: ReadOptions
    index_all: bool
    gate: bool
    sample: bytes
    schema_for: Callable[[str], Schema]
    evtx: bool
    other: bool
    phase_two: tuple[Cnf, ...] | None = None
    phase_two_stages: tuple[tuple[int, int], ...] = ()
    key_sets: tuple[tuple[int, frozenset[tuple[Any, ...]]], ...] = ()


@dataclass(slots=True)
class _Built:
    job: _Job
    cnfs: list[Cnf]
    gated_stages: dict[int, int]  # global stage -> rule, for the non-pivot gated stages


def _build_job(spec: _JobSpec) -> _Built:
    plans = plan_rules(spec.rules, spec.sample, spec.schema_for)
    job = _Job(plans, spec.options, spec.index_all)
    if spec.evtx:
        # EVTX records no stage can match are skipped before parsing or mapping; the stage
        # filter (_judge) would drop them after mapping (evtx_gate's docstring has the
        # argument).
        evtx_gate = EvtxGate([(p.compiled, p.selector) for p in plans],
                             index_all=spec.index_all, logon_id=spec.options.logon_id)
        job.gates = (RecordGates() if evtx_gate.decides_nothing()
                     else RecordGates(evtx_gate.relevant, evtx_gate.relevant_event))
    cnfs: list[Cnf] = []
    for rule_no, plan in enumerate(plans):
        for plan_no, cnf in enumerate(plan.cnfs):
            job.stage_of.append((rule_no, plan_no))
            cnfs.append(cnf)
    # Gate every sequence on the keys of its pivot stage (the rarest-looking positive one).
    gated = [n for n, p in enumerate(plans)
             if spec.gate and p.pivot is not None and len(p.cnfs) > 1]
    job.gated = tuple(gated)
    gated_stages: dict[int, int] = {}
    phase_one = list(cnfs)
    for global_no, (rule_no, plan_no) in enumerate(job.stage_of):
        if rule_no in gated:
            if plan_no == plans[rule_no].pivot:
                job.key_stages[global_no] = rule_no
            else:
                gated_stages[global_no] = rule_no
                phase_one[global_no] = (frozenset(),)  # phase two looks for these
    job.line_filter = LineFilter(phase_one, sample=spec.sample)
    if spec.other and len(cnfs) > _FEW_STAGES:
        job.event_filter = LineFilter(cnfs, sample=spec.sample, mapped=True)
    if spec.phase_two is not None:
        job.phase_two = LineFilter(list(spec.phase_two), opaque=False, sample=spec.sample)
        job.phase_two_stages = list(spec.phase_two_stages)
        job.key_sets = {n: set(keys) for n, keys in spec.key_sets}
    return _Built(job, cnfs, gated_stages)


def _init_worker(spec: _JobSpec) -> None:
    """A spawned worker's start: the job built from its spec (a forked one inherits it)."""
    global _JOB
    _JOB = _build_job(spec).job


def start_method() -> str:
    """How the fast path starts its workers: "fork" on Linux (they share the parent's job
    and pages), "spawn" elsewhere (Windows has no fork; macOS's is unsafe with threads), or
    what ``VIGIL_START_METHOD`` says (the tests force "spawn" on Linux)."""
    forced = os.environ.get("VIGIL_START_METHOD")
    if forced in multiprocessing.get_all_start_methods():
        return forced
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _pool(workers: int, spec: _JobSpec) -> Any:
    method = start_method()
    context = multiprocessing.get_context(method)
    if method == "fork":
        return context.Pool(workers)
    return context.Pool(workers, initializer=_init_worker, initargs=(spec,))


def plan_rules(rules: Sequence[Rule], sample: bytes = b"",
               schema_for: Callable[[str], Schema] = ecs_schema) -> list[RulePlan]:
    """Each rule compiled as ``run_detection`` compiles it (or, with ``schema_for``, on
    another schema: the one the caller's engine uses), with its stage literals, the field
    checks of its stages and, for a sequence, its pivot: the positive stage whose literals
    hit the fewest lines of ``sample`` (the last one when none is known better)."""
    plans = []
    for rule in rules:
        timestamp_field = rule.timestamp_field or "@timestamp"
        schema = schema_for(timestamp_field)
        resolver = SchemaResolver(None, timestamp_field, default=schema)
        category_field = rule.event_category_override or "event.category"
        compiled = Compiled(rule.tree, resolver, category_field)
        body = rule.tree.body
        last_plan: int | None = None
        positive: list[int] = []
        if isinstance(body, ast.Sequence):
            positive = [i for i, stage in enumerate(body.stages) if not stage.missing]
            last_plan = positive[-1] if positive else None
        plans.append(RulePlan(rule, compiled, IndexSelector(rule.index), query_cnfs(rule.tree, schema),
                              last_plan, [keys for _q, keys in compiled.stage_nodes],
                              query_field_cnfs(rule.tree, schema, category_field),
                              positive=positive))
    frequency = atom_frequencies((a for p in plans for cnf in p.cnfs for c in cnf for a in c), sample)
    lines = max(1, sample.count(b"\n"))

    def hits(atoms: Iterable[Atom]) -> float:
        return sum(frequency.get(a, lines) for a in atoms)

    for plan in plans:
        plan.checks = build_checks(plan.field_cnfs, plan.compiled.schemas.default)
        plan.keys = [key_clause(cnf) for cnf in plan.field_cnfs]
        if plan.compiled.schemas.per_index:
            plan.checks = [None] * len(plan.checks)  # one schema per rule here; be safe
            plan.keys = [None] * len(plan.keys)
        if plan.positive:
            # Fewest expected matches first; later stages win ties (the last one by default).
            plan.pivot = min(reversed(plan.positive), key=lambda i: min(
                (hits(c) for c in plan.cnfs[i]), default=float(lines + 1)))
    return plans


# ------------------------------------------------------------------ scanning workers


@dataclass(frozen=True, slots=True)
class _Range:
    path: str
    start: int
    end: int
    phase: int


@dataclass(slots=True)
class _RangeResult:
    lines: int = 0
    size: int = 0
    parsed: int = 0
    kept: list[tuple[int, bytes, frozenset[int]]] = field(default_factory=list)  # offset, line, rules
    keys: dict[int, set[tuple[Any, ...]]] = field(default_factory=dict)
    bad: list[tuple[int, str, str]] = field(default_factory=list)  # (line in range, reason, kind)
    alert_documents: int = 0  # candidate lines that were alert documents (not events)


def _blocks(path: str, start: int, end: int) -> Iterator[tuple[bytes, int]]:
    """Whole lines of ``path`` between ``start`` and ``end`` in blocks of about BLOCK bytes,
    each with the number of file bytes it stands for: a line longer than the reader's limit
    is its marker (``jsonl.too_long_line``), as the reader gives it."""
    limit = max_line_bytes()
    with open(path, "rb") as handle:
        handle.seek(start)
        at = start
        while at < end:
            data = handle.read(min(BLOCK, end - at))
            if not data:
                break
            size = len(data)
            if at + len(data) < end:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # a line longer than a block: read on, bounded
                    data += handle.readline(max(limit + 1 - len(data), 0))
                    size = len(data)
                    if len(data) > limit and not data.endswith(b"\n"):
                        marker = finish_long_line(handle, data, limit)
                        size = int(marker[len(TOO_LONG):])
                        data = marker
                elif cut < len(data):
                    handle.seek(at + cut)  # the partial line starts the next block
                    data = data[:cut]
                    size = cut
            at += size
            yield data, size


class _Collector:
    """Records bad lines of a range the way ``ReadStats`` would; the line number is only
    computed for a bad line (counting newlines costs as much as scanning)."""

    def __init__(self, result: _RangeResult) -> None:
        self.result = result
        self.block = b""
        self.start = 0
        self.lines_before = 0

    @property
    def alert_documents(self) -> int:
        return self.result.alert_documents

    @alert_documents.setter
    def alert_documents(self, value: int) -> None:
        self.result.alert_documents = value

    def line(self) -> int:
        return self.lines_before + self.block.count(b"\n", 0, self.start) + 1

    def bad(self, _path: str, _position: str, reason: str, *, kind: str | None = None) -> None:
        self.result.bad.append((self.line(), reason, kind or reason))


def _scan(work: _Range) -> _RangeResult:
    job = _job()
    result = _RangeResult()
    first = work.phase == 1
    line_filter = job.line_filter if first else job.phase_two
    stage_of = job.stage_of if first else job.phase_two_stages
    assert line_filter is not None
    collector = _Collector(result)
    finish = _Finisher(work.path, collector, job.options)  # type: ignore[arg-type]
    lines = 0
    offset = work.start
    for block, size in _blocks(work.path, work.start, work.end):
        collector.block = block
        collector.lines_before = lines
        count = 0  # line numbers: phase one only
        suspects: Sequence[int] = ()
        if first:
            count, regular = _line_shape(block)
            if not regular or job.options.timestamp_field != "@timestamp":
                suspects = _irregular(block, count, job.options)
        for start, end, stages in line_filter.candidates(block, suspects):
            collector.start = start
            raw = block[start:end]
            result.parsed += 1
            event = _parse_line(raw, work.path, 0, collector)  # type: ignore[arg-type]
            if event is None:
                continue
            event = finish(event, "")
            if event is None:
                continue
            matching = _judge(job, event, stages, stage_of, result.keys if first else None)
            if matching:
                result.kept.append((offset + start, raw, matching))
        if first:  # line counts are for the stats, which phase one reports
            lines += count + (0 if block.endswith(b"\n") else 1)
        result.size += size
        offset += size
    result.lines = lines
    return result


_REGULAR = b'{"@timestamp":"20'  # years 2000-2099: inside the engine's nanosecond range


SHORT_LINES = 512  # average line length (bytes) below which counting beats walking


def _line_shape(block: bytes) -> tuple[int, bool]:
    """The number of newlines in ``block`` and whether every line is regular (opens with
    ``_REGULAR`` and closes with ``}``, the block ending with a newline): ``_irregular``'s
    test, ``block.count(b"}\\n" + _REGULAR) == newlines - 1``, read off one walk from
    newline to newline (``find`` runs at memchr speed; two ``count`` passes over a block of
    long lines cost three times as much). Blocks of short lines are counted instead (the
    walk pays per line); both ways give the same answer."""
    find = block.find
    probe = -1
    for _ in range(16):
        probe = find(b"\n", probe + 1)
        if probe < 0:
            break
    if 0 <= probe < 16 * SHORT_LINES:
        newlines = block.count(b"\n")
        return newlines, (block.startswith(_REGULAR) and block.endswith(b"}\n")
                          and block.count(b"}\n" + _REGULAR) == newlines - 1)
    regular = block.startswith(_REGULAR) and block.endswith(b"}\n")
    if not regular:
        return block.count(b"\n"), False
    last = len(block) - 1  # the final newline (checked above)
    starts = block.startswith
    newlines = 0
    at = find(b"\n")
    while at < last:  # a newline inside the block: after "}", before a regular line
        newlines += 1
        if block[at - 1] != 0x7D or not starts(_REGULAR, at + 1):
            return newlines + block.count(b"\n", at + 1), False
        at = find(b"\n", at + 1)
    return newlines + 1, True


def _irregular(block: bytes, newlines: int, options: ReadOptions) -> list[int]:
    """Starts of the lines that are parsed whatever they hold, so that bad records are
    counted as the reference counts them: every line unless it opens with an ``@timestamp``
    string that starts like a date and closes with ``}`` (one count over the block tells
    that every line does; only irregular blocks are walked line by line)."""
    if options.timestamp_field != "@timestamp":
        starts = [0]
        at = block.find(b"\n")
        while 0 <= at < len(block) - 1:
            starts.append(at + 1)
            at = block.find(b"\n", at + 1)
        return starts
    if (block.startswith(_REGULAR) and block.endswith(b"}\n")
            and block.count(b"}\n" + _REGULAR) == newlines - 1):
        return _doubtful_dates(block)
    return sorted({start for start, end in line_spans(block)
                   if not (block.startswith(_REGULAR, start)
                           and block.endswith(b"}", start, end))} | set(_doubtful_dates(block)))


# A regular line's @timestamp may still name no real moment: the 29th to 31st of February,
# the 31st of a 30-day month, a leap second. Such lines (rare) are parsed as the reference
# parses them, so that they are reported as bad records in both engines.
_DOUBTFUL = re2.compile(rb'\{"@timestamp":"20\d\d-(?:02-(?:29|3[01])|(?:04|06|09|11)-31|'
                        rb'\d\d-\d\dT\d\d:\d\d:60)', byte_options())


def _doubtful_dates(block: bytes) -> list[int]:
    starts = []
    position = 0
    while (match := _DOUBTFUL.search(block, position)) is not None:
        starts.append(match.start())
        position = match.end()
    return starts


def _matching_rules(job: _Job, event: dict[str, Any], stages: Sequence[int],
                    stage_of: Sequence[tuple[int, int]]) -> frozenset[int]:
    """``_judge`` without its dispatch and field checks (the same answer): cheaper when the
    stages are few (the seed's two), where those checks seldom save a predicate."""
    accepting: frozenset[int] | None = None
    found: set[int] = set()
    for stage in stages:
        rule_no, plan_no = stage_of[stage]
        if rule_no in found:
            continue
        if not job.index_all:
            if accepting is None:
                accepting = _accepting(job, index_of(event))
            if rule_no not in accepting:
                continue
        if job.plans[rule_no].compiled.plans(event)[plan_no].matches(event):
            found.add(rule_no)
    return frozenset(found)


def _judge(job: _Job, event: dict[str, Any], stages: Sequence[int],
           stage_of: Sequence[tuple[int, int]],
           keys: dict[int, set[tuple[Any, ...]]] | None,
           dispatch: StageIndex | None = None) -> frozenset[int]:
    """The rules with a candidate stage whose compiled predicate (the reference's) matches the
    event, for rules whose index patterns accept it. Before a stage's predicate: the
    dispatch by key clause and the stage's field check (necessary conditions, with field
    values shared by all stages) and, in phase two (``keys`` None), for a gated stage, a
    join key of the rule's pivot matches. In phase one (``keys`` given) the keys of
    pivot-stage matches are collected."""
    accepting: frozenset[int] | None = None  # the rules reading the event's index
    found: set[int] = set()
    cache = FieldCache(event)
    if dispatch is None:
        dispatch = _dispatch(job, stages, stage_of, keys is not None)
    stages = dispatch.passing(cache)
    key_stages = job.key_stages if keys is not None else None
    key_sets = job.key_sets if keys is None else None
    for stage in stages:
        rule_no, plan_no = stage_of[stage]
        pivot = key_stages is not None and stage in key_stages
        if rule_no in found and not pivot:
            continue
        plan = job.plans[rule_no]
        if not job.index_all:
            if accepting is None:
                accepting = _accepting(job, index_of(event))
            if rule_no not in accepting:
                continue
        stage_plan = None
        gate = key_sets.get(rule_no) if key_sets is not None else None
        if gate is not None:
            stage_plan = plan.compiled.plans(event)[plan_no]
            # The key gate before the field check: both are necessary conditions, and in
            # phase two the key (e.g. a source.ip of no failed logon) rejects most lines.
            try:
                outside = gate.isdisjoint(stage_plan.keys(event))
            except TypeError:  # unhashable key values: decided after the check, as before
                outside = False
            else:
                gate = None  # decided
            if outside:
                continue  # its partials never complete (see prefilter: the key gate)
        check = plan.checks[plan_no]
        if check is not None and not check(cache):
            continue
        if stage_plan is None:
            stage_plan = plan.compiled.plans(event)[plan_no]
        if gate is not None and gate.isdisjoint(stage_plan.keys(event)):
            continue
        if stage_plan.matches(event):
            found.add(rule_no)
            if pivot:
                assert keys is not None
                keys.setdefault(rule_no, set()).update(stage_plan.keys(event))
    return frozenset(found)


def _accepting(job: _Job, index: str | None) -> frozenset[int]:
    """The rules whose index patterns accept ``index`` (an input holds few indices)."""
    found = job.accepting.get(index)
    if found is None:
        if len(job.accepting) >= 1 << 12:  # hostile input: an index per event
            job.accepting.clear()
        found = job.accepting[index] = frozenset(
            n for n, plan in enumerate(job.plans) if plan.selector.accepts(index))
    return found


def _dispatch(job: _Job, stages: Sequence[int], stage_of: Sequence[tuple[int, int]],
              first: bool) -> StageIndex:
    """The dispatch index of a candidate stage list (lines of one shape share it): a stage
    whose key clause (``fieldcheck.key_clause``, one of its field check's clauses) no value
    satisfies fails its field check, so it is not looked at."""
    memo_key = (first, tuple(stages))
    found = job.indexes.get(memo_key)
    if found is None:
        if len(job.indexes) >= 1 << 14:
            job.indexes.clear()
        keys: list[KeyClause | None] = []
        getters = {}
        for stage in stages:
            plan = job.plans[stage_of[stage][0]]
            key = plan.keys[stage_of[stage][1]] if plan.keys else None
            keys.append(key)
            if key is not None and key[0] not in getters:
                getters[key[0]] = plan.compiled.schemas.default.getter(key[0])
        found = job.indexes[memo_key] = StageIndex(stages, keys, getters)
    return found


# ------------------------------------------------------------------ the run


def _ranges(path: Path, phase: int, pieces: int) -> list[_Range]:
    size = path.stat().st_size
    if size == 0:
        return [_Range(str(path), 0, 0, phase)]
    step = max(RANGE, -(-size // pieces))
    bounds = [0]
    with path.open("rb") as handle:
        at = step
        while at < size:
            handle.seek(at)
            handle.readline()  # to the next line start
            cut = handle.tell()
            if cut >= size:
                break
            bounds.append(cut)
            at = cut + step
    bounds.append(size)
    return [_Range(str(path), a, b, phase) for a, b in itertools.pairwise(bounds)]


def _is_plain(path: Path) -> bool:
    name = path.name.lower()
    if not name.endswith(PLAIN_SUFFIXES):
        return False
    with path.open("rb") as handle:
        head = handle.read(4096)
    if text_encoding(head) is not None:
        return False  # a byte-order mark or UTF-16: the reader decodes it, line by line
    return head.lstrip()[:1] != b"["  # a JSON array is read whole by the reference reader


def _gate(plan: RulePlan, keys: set[tuple[Any, ...]]) -> Clause | None:
    """The key clause for the non-final stages of a sequence rule, or None (no gate)."""
    if not keys or plan.last_plan is None:
        return frozenset() if plan.last_plan is not None and not keys else None
    width = len(next(iter(keys)))
    best: tuple[int, Clause] | None = None
    schema = plan.compiled.schemas.default
    for j in range(width):
        if any(len(fields) <= j or schema.field_type(fields[j].name) not in (None, *STRING_TYPES)
               for fields in plan.key_fields):
            continue  # a typed key (ip) is normalised: its text may differ from the line's
        values = {key[j] for key in keys}
        clause = gate_clause(values)
        if clause is not None and (best is None or len(values) > best[0]):
            best = (len(values), clause)
    return None if best is None else best[1]


def run_fast(rules: Sequence[Rule], paths: Sequence[Path], stats: ReadStats,
             read_options: ReadOptions, options: DetectOptions,
             exceptions_for: Callable[[Rule], EventFilter | None] | None = None,
             workers: int | None = None, gate: bool = True,
             progress: ReadProgress | None = None,
             ) -> tuple[DetectResult, FastStats]:
    """``run_detection`` over the input files, reading only what a rule can match."""
    events, per_rule, fast = kept_events(rules, paths, stats, read_options,
                                         index_all=options.index_all, workers=workers,
                                         gate=gate, progress=progress)
    if progress is not None:
        progress.phase(f"running {len(rules)} rule(s) on {len(events):,} kept event(s)")
    totals = run_detection([], events, options=options)
    outcomes = []
    for rule, rule_events in zip(rules, per_rule, strict=True):
        outcomes.extend(run_detection([rule], rule_events, options=options,
                                      exceptions_for=exceptions_for).outcomes)
    # Events searched: every event read, as the reference searches every event it reads.
    result = DetectResult(outcomes, stats.events, totals.events_in_window,
                          totals.events_without_time)
    _trace("reference run on the kept events")
    return result, fast


def kept_events(rules: Sequence[Rule], paths: Sequence[Path], stats: ReadStats,
                read_options: ReadOptions, *, index_all: bool = False,
                workers: int | None = None, gate: bool = True,
                schema_for: Callable[[str], Schema] = ecs_schema,
                progress: ReadProgress | None = None,
                ) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]], FastStats]:
    """The events the rules must see, read from the input files as the reference reads
    them, in input order: all of them, and per rule those that match one of its stages
    (after the key gate); ``stats`` counts every event read. The rules' engine, run on a
    rule's list, answers as on every event (the module docstring has the argument), provided
    it compiles the rules on ``schema_for``'s schema."""
    global _JOB
    fast = FastStats()
    workers = workers or os.cpu_count() or 1
    files = list(iter_input_files(paths, stats))
    plain = [p for p in files if _is_plain(p)]
    other = [p for p in files if p not in plain]
    if progress is not None:
        progress.begin(len(files), sum(_size(p) for p in files), "reading")
    sample = _sample(plain)
    spec = _JobSpec(tuple(rules), read_options, index_all, gate, sample, schema_for,
                    evtx=any(p.name.lower().endswith(".evtx") for p in other),
                    other=bool(other))
    built = _build_job(spec)
    job, cnfs, gated_stages = built.job, built.cnfs, built.gated_stages
    plans = job.plans
    gated = list(job.gated)
    _JOB = job
    # The workers share the parent's objects until they write to them; collecting them in
    # a worker would touch (and copy) every page that holds one. Python's advice for forking
    # servers: freeze them first (undone below, so the parent still collects them later;
    # left alone when the program embedding vigil froze objects of its own).
    freeze = gc.get_freeze_count() == 0 and start_method() == "fork"
    per_file: dict[Path, list[tuple[bytes, _Matched]]] = {}  # events as JSON until needed
    # Per file, merged in input order at the end: bad records are reported in the order the
    # reference reads the files, whichever pool read them.
    file_stats: dict[Path, ReadStats] = {}
    kept: dict[Path, dict[int, tuple[bytes, frozenset[int]]]] = {p: {} for p in plain}
    keys: dict[int, set[tuple[Any, ...]]] = {n: set() for n in gated}
    try:
        if freeze:
            gc.freeze()
        with _pool(workers, spec) as pool:
            for path, (data, matched, read_stats) in zip(
                    other, _read_others(pool, other, workers, progress), strict=True):
                file_stats[path] = read_stats
                received = list(zip(data, matched, strict=True))
                per_file[path] = received
                for _raw, (_rules, joins) in received:
                    for n, (pivot_keys, _stage_keys) in joins.items():
                        keys[n].update(pivot_keys)
            _trace("other inputs read")
            for path in plain:
                scan_stats = file_stats[path] = ReadStats(files=1)
                lines_before = 0
                for scanned in pool.imap(_scan, _ranges(path, 1, workers * 4)):
                    _account(scan_stats, str(path), scanned, lines_before)
                    if progress is not None:
                        progress.read(str(path), scanned.size, scanned.lines)
                    lines_before += scanned.lines
                    fast.lines_parsed += scanned.parsed
                    fast.lines_skipped += scanned.lines - scanned.parsed
                    _merge(kept[path], scanned.kept)
                    for n, found in scanned.keys.items():
                        keys[n].update(found)
            _trace("phase one")
        phase_two: list[Cnf] = []
        job.key_sets = keys
        for global_no, rule_no in gated_stages.items():
            clause = _gate(plans[rule_no], keys[rule_no])
            job.phase_two_stages.append(job.stage_of[global_no])
            if clause is None:  # no usable key values: the stage's own literals
                phase_two.append(cnfs[global_no])
            else:
                phase_two.append((*cnfs[global_no], clause))
        fast.gated_rules = len({r for r in gated_stages.values()})
        if phase_two and plain:
            # Opaque lines were judged on every stage in phase one.
            # Each stage is scanned for its clause (key gate included) that hits the fewest
            # sample lines: a gate on a key column most lines hold (a host name) would make
            # the scan stop on nearly every line.
            job.phase_two = LineFilter(phase_two, opaque=False, sample=sample)
            second = replace(spec, phase_two=tuple(phase_two),
                             phase_two_stages=tuple(job.phase_two_stages),
                             key_sets=tuple((n, frozenset(k)) for n, k in keys.items()))
            if progress is not None:
                progress.begin(len(plain), sum(_size(p) for p in plain),
                               "second pass (join keys)")
            with _pool(workers, second) as pool:  # forked now: the workers see phase two
                for path in plain:
                    for scanned in pool.imap(_scan, _ranges(path, 2, workers * 4)):
                        fast.lines_parsed += scanned.parsed
                        if progress is not None:
                            progress.read(str(path), scanned.size, 0)
                        _merge(kept[path], scanned.kept)
            _trace("phase two")
    finally:
        _JOB = None
        if freeze:
            gc.unfreeze()
    for path in files:
        if path in file_stats:
            stats.merge(file_stats[path])
    # Each rule runs on the events that match one of its stages (the others change nothing
    # for it), so broad stages of one rule do not make every rule search their events.
    events: list[dict[str, Any]] = []
    per_rule: list[list[dict[str, Any]]] = [[] for _ in rules]
    for path in files:
        if path in kept:
            ordered = sorted(kept[path].items())
            parsed = _reparse([(o, raw) for o, (raw, _r) in ordered], str(path), read_options)
            pairs = list(zip(parsed, (r for _o, (_raw, r) in ordered), strict=True))
        else:
            # Only the events that go to some rule are parsed: with the key gate, that is
            # usually a small part of those the stage filter kept.
            pairs = [(orjson.loads(raw), rule_numbers)
                     for raw, matched in per_file.get(path, ())
                     if (rule_numbers := _keyed_rules(matched, keys))]
        for event, rule_numbers in pairs:
            events.append(event)
            for number in rule_numbers:
                per_rule[number].append(event)
    fast.events_kept = len(events)
    return events, per_rule, fast


def _keyed_rules(matched: _Matched, keys: Mapping[int, set[tuple[Any, ...]]]) -> frozenset[int]:
    """The rules an event of a non-NDJSON input goes to: those with a stage it matches, but a
    gated sequence only when a stage it matches gives it a join key of the pivot's (step 2
    of the module docstring: under any other key no partial completes, and missing stages
    and ``until`` only act on the partials of their own key)."""
    rules, joins = matched
    for n, (_pivot_keys, stage_keys) in joins.items():
        if keys[n].isdisjoint(stage_keys):
            rules = rules - {n}
    return rules


def _merge(into: dict[int, tuple[bytes, frozenset[int]]],
           kept: list[tuple[int, bytes, frozenset[int]]]) -> None:
    """Kept lines by offset; a line kept by both phases keeps the union of its rules."""
    for offset, raw, rules in kept:
        known = into.get(offset)
        into[offset] = (raw, rules if known is None else known[1] | rules)


def _sample(paths: Sequence[Path]) -> bytes:
    """The first lines of the first file, to choose anchors by their frequency."""
    if not paths:
        return b""
    with paths[0].open("rb") as handle:
        data = handle.read(2 << 20)
    return data[: data.rfind(b"\n") + 1]


# What a worker reports with each kept event of a non-NDJSON input: the rules with a stage
# it matches and, per gated sequence among them, the join keys of the event under the pivot
# (when the pivot matches) and under every stage it matches.
_Joins = dict[int, tuple[frozenset[tuple[Any, ...]], frozenset[tuple[Any, ...]]]]
_Matched = tuple[frozenset[int], _Joins]


def _read_other(path: str) -> tuple[list[bytes], list[_Matched], ReadStats]:
    """One non-NDJSON file: its events that match a stage of some rule (as JSON: orjson
    bytes cross the process boundary faster than pickled dicts, and take a fifth of the
    memory of the parsed event while they wait), what each matches, and the file's stats.
    The join keys are worked out here, on both cores, not by the process that gathers the
    results."""
    job = _job()
    stats = ReadStats()
    stages = range(len(job.stage_of))
    events: list[bytes] = []
    matched: list[_Matched] = []
    # The exact stage filter. With many stages, an event is first written as the JSON line
    # it would be in an NDJSON file and the stages that line may match are found as phase
    # one finds them (``event_filter``: every stage, no key gate: the key sets are empty
    # while these files are read); then the NDJSON path's dispatch and field checks.
    event_filter = job.event_filter
    for event in read_file(Path(path), stats, job.options, job.gates):
        if event_filter is not None:
            try:
                raw = orjson.dumps(event)
            except TypeError:  # a value JSON cannot hold (no reader makes one): every stage
                raw, candidates = b"", list(stages)
            else:
                candidates = event_filter.line_stages(raw)
            if not candidates:
                continue
            rule_numbers = _judge(job, event, candidates, job.stage_of, None)
        else:
            raw = b""
            rule_numbers = _matching_rules(job, event, stages, job.stage_of)
        if not rule_numbers:
            continue
        joins: _Joins = {}
        for n in job.gated:
            if n in rule_numbers:
                joins[n] = _join_keys(job.plans[n], event)
        events.append(raw or orjson.dumps(event))
        matched.append((rule_numbers, joins))
    return events, matched, stats


def _join_keys(plan: RulePlan, event: dict[str, Any],
               ) -> tuple[frozenset[tuple[Any, ...]], frozenset[tuple[Any, ...]]]:
    """The event's join keys under the pivot stage (if it matches it) and under all the
    stages it matches."""
    pivot: set[tuple[Any, ...]] = set()
    every: set[tuple[Any, ...]] = set()
    for number, stage in enumerate(plan.compiled.plans(event)):
        if stage.matches(event):
            found = stage.keys(event)
            every.update(found)
            if number == plan.pivot:
                pivot.update(found)
    return frozenset(pivot), frozenset(every)


def _read_other_at(task: tuple[int, str],
                   ) -> tuple[int, list[bytes], list[_Matched], ReadStats]:
    number, path = task
    data, matched, stats = _read_other(path)
    return number, data, matched, stats


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_others(pool: Any, paths: Sequence[Path], workers: int,
                 progress: ReadProgress | None = None,
                 ) -> Iterator[tuple[list[bytes], list[_Matched], ReadStats]]:
    """``_read_other`` of each path, yielded in the order of ``paths``. The files are handed
    out largest first (the last tasks are then the shortest, so the workers finish
    together), a few per task: many small files cost a pipe round trip each otherwise."""
    sizes = {number: _size(path) for number, path in enumerate(paths)}
    order = sorted(sizes, key=lambda number: -sizes[number])
    chunk = max(1, min(_MAX_CHUNK, len(paths) // (workers * _TASKS_PER_WORKER)))
    done: dict[int, tuple[list[bytes], list[_Matched], ReadStats]] = {}
    following = 0
    for number, data, matched, stats in pool.imap_unordered(
            _read_other_at, [(n, str(paths[n])) for n in order], chunksize=chunk):
        done[number] = (data, matched, stats)
        if progress is not None:  # as they arrive: a slow first file must not hide the rest
            progress.read(str(paths[number]), sizes[number], stats.events)
        while following in done:
            yield done.pop(following)
            following += 1


_FEW_STAGES = 8  # up to this many stages, a plain loop over them beats the dispatch
_MAX_CHUNK = 32  # files per task at most
_TASKS_PER_WORKER = 4  # tasks per worker at least (when there are that many files)


def _account(stats: ReadStats, name: str, scanned: _RangeResult, lines_before: int) -> None:
    stats.events += scanned.lines - len(scanned.bad) - scanned.alert_documents
    stats.alert_documents += scanned.alert_documents
    stats.bytes += scanned.size
    for line, reason, kind in scanned.bad:
        stats.bad(name, str(lines_before + line), reason, kind=kind)


def _reparse(lines: list[tuple[int, bytes]], name: str,
             options: ReadOptions) -> list[dict[str, Any]]:
    """The kept lines (with their byte offsets) as events, by the reader's own code (they
    parsed cleanly before, so there is one event per line), marked with their place as the
    reader marks them."""
    scratch = ReadStats()
    finish = _Finisher(name, scratch, options)
    events = []
    for offset, raw in lines:
        event = _parse_line(raw, name, 0, scratch)
        if event is not None:
            event = finish(event, "", f"offset {offset}")
            if event is not None:
                events.append(event)
    return events


__all__ = ["FastStats", "kept_events", "plan_rules", "run_fast"]


def _trace(what: str) -> None:
    if _TRACE:
        print(f"vigil fast: {what} at {time.perf_counter() - _TRACE_START:.3f} s", file=sys.stderr)


_TRACE = bool(os.environ.get("VIGIL_TRACE"))
_TRACE_START = time.perf_counter()
