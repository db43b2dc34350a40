"""A rule's ``filters``: the query DSL Kibana puts beside the query, as vigil expressions.

Kibana turns the filters into the search's ``bool`` (kbn-es-query ``es_query/from_filters.ts``):
a filter with ``meta.disabled`` is dropped, one with ``meta.negate`` goes to ``must_not``, the
rest to ``filter``; the DSL is the filter's ``query`` (or the filter itself, in the old shape,
``migrate_filter.ts``). Here each clause becomes the ``eql.ast`` node with the same meaning and
is AND-ed into every event filter of the rule's query (an EQL request's ``filter`` applies to
every event before sequencing, as a query rule's bool does to every hit).

The DSL understood is what Kibana writes and prebuilt rules use: ``match_phrase``, ``match``,
``term``, ``terms``, ``wildcard``, ``prefix``, ``exists``, ``range``, ``match_all`` and
``bool`` (must/filter/should/must_not, ``minimum_should_match`` 1). Anything else is an error
naming the filter: running the rule without it would raise alerts Kibana does not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from vigil.eql import ast
from vigil.kql import syntax as k
from vigil.kql.lower import Lowering, resolve_date_math

_LUCENE_SPECIAL = frozenset('.?+*|{}[]()"\\#@&<>~')


class FilterError(ValueError):
    """A filter vigil cannot run; the message names it (``filters[2]``)."""


def filters_expr(filters: Sequence[Any]) -> ast.Expr | None:
    """The enabled filters as one expression (None when there is none)."""
    parts: list[ast.Expr] = []
    for number, item in enumerate(filters):
        where = f"filters[{number}]"
        if not isinstance(item, Mapping):
            raise FilterError(f"{where} is not a table")
        meta = item.get("meta")
        meta = meta if isinstance(meta, Mapping) else {}
        if meta.get("disabled") is True:
            continue
        query = item.get("query")
        dsl = query if isinstance(query, Mapping) else {
            key: value for key, value in item.items() if key not in ("meta", "$state")}
        expr = _clause(dsl, where)
        parts.append(ast.Not(expr) if meta.get("negate") is True else expr)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else ast.And(tuple(parts))


def with_filter(query: ast.Query, extra: ast.Expr) -> ast.Query:
    """``query`` with ``extra`` AND-ed into each of its event filters."""

    def narrowed(event_query: ast.EventQuery) -> ast.EventQuery:
        return dataclasses.replace(event_query,
                                   condition=ast.And((event_query.condition, extra)))

    body = query.body
    if isinstance(body, ast.EventQuery):
        return dataclasses.replace(query, body=narrowed(body))
    stages = tuple(dataclasses.replace(s, query=narrowed(s.query)) for s in body.stages)
    if isinstance(body, ast.Sequence):
        until = body.until
        if until is not None:
            until = dataclasses.replace(until, query=narrowed(until.query))
        return dataclasses.replace(query, body=dataclasses.replace(body, stages=stages,
                                                                   until=until))
    return dataclasses.replace(query, body=dataclasses.replace(body, stages=stages))


def _one(dsl: Mapping[str, Any], where: str) -> tuple[str, Any]:
    if len(dsl) != 1:
        raise FilterError(f"{where}: expected one query type, found {sorted(dsl) or 'none'}")
    ((kind, body),) = dsl.items()
    return str(kind), body


def _field_body(body: Any, where: str, kind: str) -> tuple[str, Any]:
    if not isinstance(body, Mapping) or len(body) != 1:
        raise FilterError(f"{where}: {kind} needs exactly one field")
    ((name, value),) = body.items()
    return str(name), value


def _clause(dsl: Any, where: str) -> ast.Expr:
    if not isinstance(dsl, Mapping):
        raise FilterError(f"{where}: not a query object")
    kind, body = _one(dsl, where)
    lowering = Lowering("")
    if kind == "match_all":
        return ast.Literal(True)
    if kind in ("match_phrase", "match"):
        name, value = _field_body(body, where, kind)
        if isinstance(value, Mapping):
            value = value.get("query")
        if not isinstance(value, str | int | float | bool):
            raise FilterError(f"{where}: {kind} on {name} needs a value")
        text = value if isinstance(value, str | bool) else str(value)
        return lowering.is_(ast.Field(name), k.Value(text, quoted=kind == "match_phrase"),
                            ast.NO_SPAN)
    if kind == "term":
        name, value = _field_body(body, where, kind)
        insensitive = False
        if isinstance(value, Mapping):
            insensitive = value.get("case_insensitive") is True
            value = value.get("value")
        return _equals(name, [value], insensitive, where)
    if kind == "terms":
        items = {key: v for key, v in body.items() if key != "boost"} \
            if isinstance(body, Mapping) else body
        name, values = _field_body(items, where, kind)
        if not isinstance(values, list):
            raise FilterError(f"{where}: terms on {name} needs a list")
        return _equals(name, values, False, where)
    if kind in ("wildcard", "prefix"):
        name, value = _field_body(body, where, kind)
        insensitive = False
        if isinstance(value, Mapping):
            insensitive = value.get("case_insensitive") is True
            value = value.get("value", value.get("wildcard"))
        if not isinstance(value, str):
            raise FilterError(f"{where}: {kind} on {name} needs a string")
        tokens = _wildcard_tokens(value) if kind == "wildcard" else [value, "*"]
        return _wildcard(ast.Field(name), tokens, insensitive)
    if kind == "exists":
        target = body.get("field") if isinstance(body, Mapping) else None
        if not isinstance(target, str):
            raise FilterError(f"{where}: exists needs a field")
        return ast.Comparison("!=", ast.Field(target), ast.Literal(None))
    if kind == "range":
        name, bounds = _field_body(body, where, kind)
        if not isinstance(bounds, Mapping):
            raise FilterError(f"{where}: range on {name} needs bounds")
        ops = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
        tests: list[ast.Expr] = [
            ast.Comparison(ops[key], ast.Field(name),  # type: ignore[arg-type]
                           ast.Literal(resolve_date_math(bound) if isinstance(bound, str)
                                       else bound))
            for key, bound in bounds.items() if key in ops and bound is not None]
        return ast.And(tuple(tests)) if tests else ast.Comparison(
            "!=", ast.Field(name), ast.Literal(None))
    if kind == "bool":
        return _bool(body, where)
    raise FilterError(f"{where}: the {kind} query is not supported in filters (vigil runs "
                      "match_phrase, match, term, terms, wildcard, prefix, exists, range, bool)")


def _bool(body: Any, where: str) -> ast.Expr:
    if not isinstance(body, Mapping):
        raise FilterError(f"{where}: bool needs clauses")

    def clauses(key: str) -> list[ast.Expr]:
        found = body.get(key, [])
        found = found if isinstance(found, list) else [found]
        return [_clause(c, f"{where}.bool.{key}[{i}]") for i, c in enumerate(found)]

    required = clauses("must") + clauses("filter")
    should = clauses("should")
    minimum = body.get("minimum_should_match")
    if should:
        if minimum not in (None, 1, "1") or (minimum is None and required):
            raise FilterError(f"{where}: bool.should with minimum_should_match "
                              f"{minimum!r} beside required clauses is not supported")
        required.append(ast.Or(tuple(should)) if len(should) > 1 else should[0])
    required += [ast.Not(c) for c in clauses("must_not")]
    if not required:
        return ast.Literal(True)
    return required[0] if len(required) == 1 else ast.And(tuple(required))


def _equals(name: str, values: list[Any], insensitive: bool, where: str) -> ast.Expr:
    if not values or not all(isinstance(v, str | int | float | bool) for v in values):
        raise FilterError(f"{where}: {name} needs values")
    options = tuple(ast.Literal(v) for v in values)
    if len(options) == 1 and not insensitive:
        return ast.Comparison("==", ast.Field(name), options[0])
    return ast.InSet(ast.Field(name), options, case_insensitive=insensitive)


def _wildcard_tokens(pattern: str) -> list[str]:
    """Elasticsearch's wildcard syntax: ``*`` and ``?`` (one character), ``\\`` escapes."""
    tokens: list[str] = []
    literal: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            literal.append(next(chars, "\\"))
        elif char in "*?":
            tokens.append("".join(literal))
            literal.clear()
            tokens.append(char)
        else:
            literal.append(char)
    tokens.append("".join(literal))
    return tokens  # literal, wildcard, literal, ... (literals may be empty)


def _wildcard(field: ast.Field, tokens: list[str], insensitive: bool) -> ast.Expr:
    literals = tokens[0::2]
    if not any("*" in t or "?" in t for t in literals):
        pattern = "".join(tokens)
        return ast.Match("like", field, (ast.Literal(pattern),), insensitive)
    # A literal * or ? (escaped in the pattern) has no spelling in EQL's like: a regex.
    regex = "".join(
        ("".join("\\" + c if c in _LUCENE_SPECIAL else c for c in t) if i % 2 == 0
         else (".*" if t == "*" else "."))
        for i, t in enumerate(tokens))
    return ast.Match("regex", field, (ast.Literal(regex),), insensitive)
