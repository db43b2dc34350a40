"""The syntax tree written back as EQL text: ``parse(to_eql(q)) == q`` (spans aside).

One method per node type, as sqlglot's generator has, so every query vigil holds has one
normalised spelling: what ``--explain``-style output shows, what round-trip tests compare and
what a plan cache could key on. Parentheses are added wherever the parser's precedence would
otherwise regroup the tree (``eql.parser``: or < and < not < comparisons < + - < * / % <
unary -, the predicates ``in``/``:``/``like``/``regex`` binding to the primary before them).
KQL-only nodes (``TextMatch``, ``FieldPattern``) have no EQL spelling and raise ``ValueError``.
"""

from __future__ import annotations

import re

from vigil.eql import ast

_IDENT = re.compile(r"[A-Za-z_@][A-Za-z0-9_]*\Z")
_RESERVED = frozenset(
    {"and", "any", "by", "false", "in", "like", "not", "null", "or", "regex", "sample",
     "sequence", "true", "until", "where", "with"})
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
            "\f": "\\f"}
_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def string(text: str) -> str:
    """A double-quoted EQL string; control characters as ``\\u{...}``."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or char in "\u2028\u2029":
            out.append(f"\\u{{{ord(char):X}}}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _name_part(part: str) -> str:
    if _IDENT.match(part) and part not in _RESERVED:
        return part
    return "`" + part.replace("`", "``") + "`"


def to_eql(query: ast.Query) -> str:
    """The whole statement: body, then pipes."""
    text = _body(query.body)
    for pipe in query.pipes:
        text += f" | {pipe.kind} {pipe.count}"
    return text


def _body(body: ast.EventQuery | ast.Sequence | ast.Sample) -> str:
    if isinstance(body, ast.EventQuery):
        return event_query(body)
    head = "sequence" if isinstance(body, ast.Sequence) else "sample"
    if body.join_keys:
        head += " by " + ", ".join(expr(k) for k in body.join_keys)
    if isinstance(body, ast.Sequence) and body.maxspan_ms is not None:
        head += f" with maxspan={_span(body.maxspan_ms)}"
    parts = [head, *(_stage(s) for s in body.stages)]
    if isinstance(body, ast.Sequence) and body.until is not None:
        parts.append("until " + _stage(body.until))
    return " ".join(parts)


def _span(ms: int) -> str:
    for unit, size in _UNITS:
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _stage(stage: ast.Stage) -> str:
    text = ("![" if stage.missing else "[") + event_query(stage.query) + "]"
    if stage.join_keys:
        text += " by " + ", ".join(expr(k) for k in stage.join_keys)
    if stage.runs != 1:
        text += f" with runs={stage.runs}"
    return text


def event_query(query: ast.EventQuery) -> str:
    if query.category is None:
        category = "any"
    elif _IDENT.match(query.category) and query.category not in _RESERVED:
        category = query.category
    else:
        category = string(query.category)
    return f"{category} where {expr(query.condition)}"


def expr(node: ast.Expr) -> str:
    """An expression; operands parenthesised where precedence needs it."""
    match node:
        case ast.Literal(value=value):
            if value is None:
                return "null"
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, str):
                return string(value)
            return repr(value)
        case ast.Field(name=name, optional=optional):
            return ("?" if optional else "") + ".".join(_name_part(p) for p in name.split("."))
        case ast.Or(operands=ops):
            return " or ".join(_grouped(o, ast.Or | ast.And | ast.Not) for o in ops)
        case ast.And(operands=ops):
            return " and ".join(_grouped(o, ast.Or | ast.And | ast.Not) for o in ops)
        case ast.Not(operand=operand):
            return "not " + _grouped(operand, ast.Or | ast.And | ast.Not)
        case ast.Comparison(op=compare, left=left, right=right):
            return f"{_grouped(left, _COMPARE_GROUPED)} {compare} " \
                   f"{_grouped(right, _COMPARE_GROUPED)}"
        case ast.Arithmetic(op=arithmetic, left=left, right=right):
            return f"{_grouped(left, _ARITHMETIC_GROUPED)} {arithmetic} " \
                   f"{_grouped(right, _ARITHMETIC_GROUPED)}"
        case ast.Negate(operand=operand):
            return "-" + _primary(operand)
        case ast.InSet(value=value, options=options, case_insensitive=ci, negated=negated):
            keyword = ("not " if negated else "") + ("in~" if ci else "in")
            return f"{_primary(value)} {keyword} ({', '.join(expr(o) for o in options)})"
        case ast.Match(kind=kind, value=value, patterns=patterns, case_insensitive=ci):
            word = ":" if kind == ":" else kind + ("~" if ci else "")
            listed = ", ".join(expr(p) for p in patterns)
            return f"{_primary(value)} {word} " + (listed if len(patterns) == 1
                                                    else f"({listed})")
        case ast.FunctionCall(name=name, args=args, case_insensitive=ci):
            return f"{name}{'~' if ci else ''}({', '.join(expr(a) for a in args)})"
    raise ValueError(f"{type(node).__name__} has no EQL spelling (a KQL-only node)")


_COMPARE_GROUPED = (ast.Or, ast.And, ast.Not, ast.Comparison)
_ARITHMETIC_GROUPED = (*_COMPARE_GROUPED, ast.Arithmetic)


def _grouped(node: ast.Expr, compound: object) -> str:
    text = expr(node)
    return f"({text})" if isinstance(node, compound) else text  # type: ignore[arg-type]


def _primary(node: ast.Expr) -> str:
    text = expr(node)
    negative = isinstance(node, ast.Literal) and not isinstance(node.value, bool) and \
        isinstance(node.value, int | float) and node.value < 0
    if isinstance(node, ast.Literal | ast.Field | ast.FunctionCall) and not negative:
        return text
    return f"({text})"
