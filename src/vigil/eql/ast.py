"""The EQL syntax tree: small frozen dataclasses, each with its source span.

One tree serves every backend (the reference evaluator, prefilters, SQL generators).
Distinctions Elasticsearch makes are kept in the tree: ``==`` vs ``:``, ``like`` vs ``like~``,
``in`` vs ``in~``, ``regex`` vs ``regex~``, ``?field`` vs ``field``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal as TypingLiteral
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node stands in the query text: 0-based offsets, 1-based line and column."""

    start: int
    end: int
    line: int
    column: int


NO_SPAN = Span(0, 0, 1, 1)

Scalar: TypeAlias = str | int | float | bool | None


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Literal:
    value: Scalar
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Field:
    """A field reference. ``name`` is the dotted path; ``optional`` is the ``?`` prefix."""

    name: str
    optional: bool = False
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    """Conjunction; n-ary so that long chains do not make deep trees."""

    operands: tuple[Expr, ...]
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]
    span: Span = field(default=NO_SPAN, compare=False)


ComparisonOp: TypeAlias = TypingLiteral["==", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class Comparison:
    """``==`` (case-sensitive, exact), ``!=`` and the ordering comparisons."""

    op: ComparisonOp
    left: Expr
    right: Expr
    span: Span = field(default=NO_SPAN, compare=False)


ArithmeticOp: TypeAlias = TypingLiteral["+", "-", "*", "/", "%"]


@dataclass(frozen=True, slots=True)
class Arithmetic:
    op: ArithmeticOp
    left: Expr
    right: Expr
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Expr
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class InSet:
    """``x in (...)`` (exact), ``x in~ (...)`` (case-insensitive, no wildcards), ``not in``."""

    value: Expr
    options: tuple[Expr, ...]
    case_insensitive: bool = False
    negated: bool = False
    span: Span = field(default=NO_SPAN, compare=False)


MatchKind: TypeAlias = TypingLiteral[":", "like", "regex"]


@dataclass(frozen=True, slots=True)
class Match:
    """Pattern operators against one or more constant patterns (any one matching).

    ``:``      case-insensitive equality; a string with ``*``/``?`` is a wildcard pattern
    ``like``   wildcard, case-sensitive (``like~``: case-insensitive)
    ``regex``  Lucene regex, case-sensitive (``regex~``: case-insensitive)
    """

    kind: MatchKind
    value: Expr
    patterns: tuple[Literal, ...]
    case_insensitive: bool
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A function call. ``name`` is the canonical (registry) name; ``~`` sets case_insensitive."""

    name: str
    args: tuple[Expr, ...]
    case_insensitive: bool = False
    span: Span = field(default=NO_SPAN, compare=False)


TextMatchKind: TypeAlias = TypingLiteral["match", "phrase", "wildcard"]
Analyzer: TypeAlias = TypingLiteral["standard", "powershell"]


@dataclass(frozen=True, slots=True)
class TextMatch:
    """A match on an analysed (``text``) field: KQL's ``field: value`` on ``message``,
    ``powershell.file.script_block_text`` or an ECS ``*.text`` multi-field. EQL has no syntax
    for it; only KQL builds it (``vigil.kql.lower``).

    ``match``    any term of ``query`` is a term of the field (Elasticsearch ``match``)
    ``phrase``   the terms of ``query`` at consecutive positions of one value (``match_phrase``)
    ``wildcard`` one term of the field matches ``pieces`` joined by ``*`` (lowercased, not
                 analysed: ``query_string`` without ``analyze_wildcard``)
    Terms come from the field's analyzer (``vigil.kql.analysis``).
    """

    value: Field
    query: str
    kind: TextMatchKind
    analyzer: Analyzer = "standard"
    pieces: tuple[str, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class FieldPattern:
    """KQL's ``name*: value`` (kbn-es-query ``is.ts`` expands a field name with ``*`` over the
    index's fields): true when a field of the event whose name matches ``name`` (``*`` any
    run) matches the value, each field with its own type's meaning. ``value`` is the KQL
    value (text, quoted, the pieces of a wildcard value). It reads fields no derivation can
    name in advance: prefilters and field checks leave it unconstrained, the EVTX gate never
    decides it."""

    name: tuple[str, ...]  # the pattern's pieces between wildcards
    text: str | bool
    quoted: bool = False
    pieces: tuple[str, ...] | None = None
    span: Span = field(default=NO_SPAN, compare=False)


Expr: TypeAlias = (
    Literal | Field | Not | And | Or | Comparison | Arithmetic | Negate | InSet | Match | FunctionCall
    | TextMatch | FieldPattern
)


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``node``."""
    match node:
        case Not(operand=o) | Negate(operand=o):
            return (o,)
        case And(operands=ops) | Or(operands=ops):
            return ops
        case Comparison(left=a, right=b) | Arithmetic(left=a, right=b):
            return (a, b)
        case InSet(value=v, options=opts):
            return (v, *opts)
        case Match(value=v, patterns=pats):
            return (v, *pats)
        case FunctionCall(args=args):
            return args
        case TextMatch(value=v):
            return (v,)
    return ()


def walk(node: Expr) -> Iterator[Expr]:
    """Every node of the expression, parents before children (iterative: no recursion limit)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


# ---------------------------------------------------------------- queries


@dataclass(frozen=True, slots=True)
class EventQuery:
    """``category where condition``; ``category`` None means ``any``."""

    category: str | None
    condition: Expr
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Stage:
    """One bracketed stage of a sequence or sample."""

    query: EventQuery
    join_keys: tuple[Field, ...] = ()
    missing: bool = False  # ![...]
    runs: int = 1  # with runs=N
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Sequence:
    join_keys: tuple[Field, ...]
    maxspan_ms: int | None
    stages: tuple[Stage, ...]
    until: Stage | None = None
    span: Span = field(default=NO_SPAN, compare=False)

    def keys_of(self, stage: Stage) -> tuple[Field, ...]:
        """The full join key of a stage: the sequence's keys, then the stage's own."""
        return self.join_keys + stage.join_keys


@dataclass(frozen=True, slots=True)
class Sample:
    join_keys: tuple[Field, ...]
    stages: tuple[Stage, ...]
    span: Span = field(default=NO_SPAN, compare=False)

    def keys_of(self, stage: Stage) -> tuple[Field, ...]:
        return self.join_keys + stage.join_keys


@dataclass(frozen=True, slots=True)
class Pipe:
    """``| head N`` or ``| tail N``."""

    kind: TypingLiteral["head", "tail"]
    count: int
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Query:
    """A whole EQL statement: the body and its pipes, with the text it came from."""

    body: EventQuery | Sequence | Sample
    pipes: tuple[Pipe, ...] = ()
    text: str = field(default="", compare=False)

    @property
    def kind(self) -> str:
        if isinstance(self.body, Sequence):
            return "sequence"
        if isinstance(self.body, Sample):
            return "sample"
        return "event"

    def event_queries(self) -> Iterator[EventQuery]:
        """Every event filter of the query (stages and until included)."""
        body = self.body
        if isinstance(body, EventQuery):
            yield body
            return
        for stage in body.stages:
            yield stage.query
        if isinstance(body, Sequence) and body.until is not None:
            yield body.until.query

    def fields(self) -> list[Field]:
        """Every field the query reads (conditions and join keys), in first-seen order."""
        seen: dict[str, Field] = {}
        body = self.body
        exprs: list[Expr] = [q.condition for q in self.event_queries()]
        if not isinstance(body, EventQuery):
            stages = list(body.stages)
            if isinstance(body, Sequence) and body.until is not None:
                stages.append(body.until)
            for stage in stages:
                exprs.extend(body.keys_of(stage))
        for expr in exprs:
            for node in walk(expr):
                if isinstance(node, Field) and node.name not in seen:
                    seen[node.name] = node
        return list(seen.values())
