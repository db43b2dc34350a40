"""The KQL syntax tree: what a Kibana query says, before field types give it a meaning.

Kibana parses KQL (kbn-es-query ``kuery/grammar/grammar.peggy``) into function nodes ``or``,
``and``, ``not``, ``nested``, ``is``, ``range``, ``exists``; these dataclasses are the same
nodes. ``vigil.kql.lower`` turns them into the one expression tree vigil runs (``eql.ast``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as _field
from typing import Literal, TypeAlias

from vigil.eql.ast import NO_SPAN, Span


@dataclass(frozen=True, slots=True)
class Value:
    """A literal as the grammar reads it.

    ``text`` is the unescaped value (``True``/``False``/``None`` for the unquoted words
    ``true``/``false``/``null``). ``pieces`` is set for an unquoted value holding a wildcard:
    the text between the unescaped ``*`` (``a*b`` → ``("a", "b")``), escaped ``\\*`` staying
    inside a piece as a plain character.
    """

    text: str | bool | None
    quoted: bool = False
    pieces: tuple[str, ...] | None = None
    span: Span = _field(default=NO_SPAN, compare=False)

    @property
    def is_wildcard(self) -> bool:
        return self.pieces is not None

    @property
    def is_star(self) -> bool:
        """The lone ``*``: every value (``field:*`` is an exists query)."""
        return self.pieces is not None and all(p == "" for p in self.pieces)

    def source(self) -> str:
        """The value as KQL text (re-escaped), for messages and the printer."""
        if self.pieces is not None:
            return "*".join(escape_unquoted(p) for p in self.pieces)
        if self.quoted:
            text = str(self.text)
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if self.text is None:
            return "null"
        if isinstance(self.text, bool):
            return "true" if self.text else "false"
        return escape_unquoted(self.text)


_SPECIAL = frozenset('\\():<>"*{}')


def escape_unquoted(text: str) -> str:
    out = []
    for char in text:
        if char in _SPECIAL:
            out.append("\\" + char)
        elif char == "\t":
            out.append("\\t")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        else:
            out.append(char)
    escaped = "".join(out)
    # A keyword inside a value must be escaped, or it would end the value: " or "/" and "
    # between spaces, and "not" before a space anywhere (the grammar's ``Keyword``).
    escaped = _KEYWORD_BETWEEN.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", escaped)
    # "\\not" would read as a newline and "ot" (EscapedWhitespace is tried first): spell the
    # n as a \\u escape instead.
    return _NOT_BEFORE_SPACE.sub(lambda m: f"\\u{ord(m.group(1)[0]):04x}{m.group(1)[1:]}",
                                 escaped)


_KEYWORD_BETWEEN = re.compile(r"([ \t\r\n\u00a0])(or|and)(?=[ \t\r\n\u00a0])", re.IGNORECASE)
_NOT_BEFORE_SPACE = re.compile(r"(?<!\\)(not)(?=[ \t\r\n\u00a0])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Is:
    """``field: value``; ``field`` None is a free-text query (no field named)."""

    field: Value | None
    value: Value
    span: Span = _field(default=NO_SPAN, compare=False)


RangeOp: TypeAlias = Literal["<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class Range:
    field: Value
    op: RangeOp
    value: Value
    span: Span = _field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Nested:
    """``path: { query }``: the inner query's fields are below ``path``."""

    path: Value
    query: Node
    span: Span = _field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]
    span: Span = _field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]
    span: Span = _field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    span: Span = _field(default=NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class MatchAll:
    """The empty query (Kibana: ``is(*, *)``)."""

    span: Span = _field(default=NO_SPAN, compare=False)


Node: TypeAlias = Is | Range | Nested | And | Or | Not | MatchAll


def to_kql(node: Node) -> str:
    """The node as KQL text: parsing the result gives the same tree (round trip)."""
    match node:
        case MatchAll():
            return ""
        case Is(field=None, value=value):
            return value.source()
        case Is(field=name, value=value):
            assert name is not None
            return f"{name.source()}: {value.source()}"
        case Range(field=name, op=op, value=value):
            return f"{name.source()} {op} {value.source()}"
        case Nested(path=path, query=query):
            return f"{path.source()}: {{ {to_kql(query)} }}"
        case Not(operand=operand):
            return f"not {_grouped(operand)}"
        case And(operands=ops):
            return " and ".join(_grouped(o) for o in ops)
        case Or(operands=ops):
            return " or ".join(_grouped(o) for o in ops)
    raise TypeError(type(node).__name__)


def _grouped(node: Node) -> str:
    text = to_kql(node)
    return f"({text})" if isinstance(node, And | Or | Not) else text
