"""KQL's meaning, written once: Kibana's syntax tree lowered into vigil's expression tree.

Kibana turns each KQL node into an Elasticsearch query (kbn-es-query ``kuery/functions/is.ts``,
``range.ts``; query rules load the named fields' types first, ``getQueryFilterLoadFields``).
This module turns it into the ``eql.ast`` node with that query's semantics, so the reference
evaluator, the fast path's prefilters and field checks, and the EVTX gate serve KQL rules
unchanged. Per field type (``field_kind``):

============================  ==========================================  ====================
KQL                           Elasticsearch query                         vigil node
============================  ==========================================  ====================
``f: v``, ``f: "v"`` keyword  ``term`` (exact, case-sensitive)            ``f == "v"``
``f: v*`` keyword             ``wildcard`` on the whole value             ``f like "v*"``
``f: v`` ip                   ``match``: the address or a CIDR range      ``cidrMatch(f, "v")``
``f: v`` wildcard-typed       ``match`` / ``match_phrase``: whole value   ``f == "v"``
``f: a b*`` wildcard-typed    ``query_string``: split on whitespace,      ``f == "a" or
                              terms OR'ed (kibana#23001)                  f like "b*"``
``f: v`` / ``f: "v"`` text    ``match`` (any term) / ``match_phrase``     ``TextMatch``
``f: a b*`` text              ``query_string``: ``a`` analysed, ``b*``    ``TextMatch`` or'ed
                              lowercased against each term
``f: *``                      ``exists``                                  ``f != null``
``f < v`` ...                 ``range``                                   comparison
``not``/``and``/``or``        ``bool`` must_not / filter / should         Not / And / Or
``p: { q }``                  ``nested``                                  ``q`` with ``p.``
============================  ==========================================  ====================

A value is a string whatever it looks like (``event.code: 4624``); Elasticsearch parses it for
the field's type, as vigil's untyped comparison does for the event's value. In a wildcard,
``?`` is a plain character and ``\\*`` a star (Kibana escapes both for query_string).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal, TypeAlias

from vigil.eql import ast
from vigil.errors import KqlError
from vigil.kql import syntax as k
from vigil.times import DateMath

FieldKind: TypeAlias = Literal["keyword", "wildcard", "ip", "text", "caseless"]

# How Elasticsearch maps the fields rules name (ECS's ecs@mappings dynamic templates and the
# windows integration's fields.yml), by the few names and suffixes that are not keyword.
_TEXT_NAMES = frozenset({"message", "powershell.command.value",
                         "powershell.command.invocation_details.value"})
_WILDCARD_SUFFIXES = ("command_line", "stack_trace", ".body.content", "url.full",
                      "url.original", ".io.text", ".message_id", "registry.data.strings",
                      "url.path")
POWERSHELL_SCRIPT = "powershell.file.script_block_text"
# Lucene's classic query parser splits a query_string on these (QueryParser.jj _WHITESPACE).
_QUERY_STRING_SPACE = re.compile("[ \t\n\r\u3000]+")
_LUCENE_SPECIAL = frozenset('.?+*|{}[]()"\\#@&<>~')


def field_kind(name: str) -> FieldKind:
    """The Elasticsearch type family of a field, as the rule's indices map it."""
    if name.endswith(".caseless"):
        return "caseless"  # Elastic Endpoint's keyword multi-field with a lowercase normalizer
    if name.endswith(_WILDCARD_SUFFIXES):
        return "wildcard"
    if (name in _TEXT_NAMES or name == POWERSHELL_SCRIPT or name.endswith(".message")
            or name.endswith(".text")):
        return "text"
    if name == "ip" or name.endswith((".ip", "_ip")):
        return "ip"
    return "keyword"


def resolve_date_math(bound: str) -> str:
    """Date math (``now-30d/d``), which Elasticsearch resolves on a date field when the
    search runs, as an instant: here when the query is read (a long-running ``watch`` reads
    its rules once). Anything else, ``nowak`` included, is left as it is."""
    if not bound.strip().startswith("now"):
        return bound
    try:
        moment = DateMath.parse(bound).resolve(datetime.now(UTC))
    except ValueError:
        return bound
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _lucene_literal(text: str) -> str:
    return "".join("\\" + c if c in _LUCENE_SPECIAL else c for c in text)


def _split_query_string(pieces: tuple[str, ...]) -> list[tuple[str, ...]]:
    """A wildcard value as Lucene's query_string reads it: terms split on whitespace (KQL
    does not escape it, kibana#23001), each term its own pieces between the wildcards."""
    terms: list[list[str]] = [[]]
    for index, piece in enumerate(pieces):
        parts = _QUERY_STRING_SPACE.split(piece)
        if index:
            terms[-1].append("")  # the wildcard between two pieces
        terms[-1][-1:] = [(terms[-1][-1] if terms[-1] else "") + parts[0]]
        for part in parts[1:]:
            terms.append([part])
    return [tuple(t) for t in terms if any(t) or len(t) > 1]


class Lowering:
    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, reason: str, span: ast.Span) -> KqlError:
        return KqlError(reason, self.text, span.line, span.column,
                        max(1, span.end - span.start))

    def lower(self, node: k.Node, prefix: str = "") -> ast.Expr:
        match node:
            case k.MatchAll(span=span):
                return ast.Literal(True, span)
            case k.And(operands=ops, span=span):
                return ast.And(tuple(self.lower(o, prefix) for o in ops), span)
            case k.Or(operands=ops, span=span):
                return ast.Or(tuple(self.lower(o, prefix) for o in ops), span)
            case k.Not(operand=operand, span=span):
                return ast.Not(self.lower(operand, prefix), span)
            case k.Nested(path=path, query=query):
                return self.lower(query, prefix + self.field_name(path) + ".")
            case k.Range(field=name, op=op, value=value, span=span):
                field = self.field(name, prefix)
                if value.text is None or isinstance(value.text, bool):
                    raise self.error("a range needs a number, date or text bound", value.span)
                bound = resolve_date_math(value.text)
                return ast.Comparison(op, field, ast.Literal(bound, value.span), span)
            case k.Is(field=None, value=value, span=span):
                if value.is_star:
                    return ast.Literal(True, span)
                raise self.error("a value without a field (free-text search over every field) "
                                 "is not supported; name the field: field: value", span)
            case k.Is(field=name, value=value, span=span):
                assert name is not None
                if name.pieces is not None and not prefix:
                    if value.text is None:
                        raise self.error("field: null is rejected by Elasticsearch",
                                         value.span)
                    return ast.FieldPattern(name.pieces, value.text, value.quoted,
                                            value.pieces, span)
                return self.is_(self.field(name, prefix), value, span)
        raise TypeError(type(node).__name__)

    def field_name(self, value: k.Value) -> str:
        if value.is_wildcard:
            raise self.error("a wildcard in a field name is not supported; name each field",
                             value.span)
        if not isinstance(value.text, str) or not value.text:
            raise self.error("expected a field name", value.span)
        return value.text

    def field(self, value: k.Value, prefix: str) -> ast.Field:
        return ast.Field(prefix + self.field_name(value), span=value.span)

    def is_(self, field: ast.Field, value: k.Value, span: ast.Span) -> ast.Expr:
        if value.is_star:
            return ast.Comparison("!=", field, ast.Literal(None), span)
        if value.text is None:
            raise self.error("field: null is rejected by Elasticsearch (a match query needs "
                             "a value); use not field: * for a missing field", value.span)
        kind = field_kind(field.name)
        pieces = value.pieces
        if kind == "caseless":
            # The parent's value through a lowercase normalizer: case-insensitive, whole value.
            read = ast.Field(field.name[: -len(".caseless")], span=field.span)
            if pieces is None:
                return ast.InSet(read, (ast.Literal(value.text, value.span),), True, False, span)
            return self.whole_value_wildcard(read, pieces, value.span, span, insensitive=True)
        if kind == "keyword":
            if pieces is None:
                return ast.Comparison("==", field, ast.Literal(value.text, value.span), span)
            return self.whole_value_wildcard(field, pieces, value.span, span)
        if kind == "ip" and pieces is None and isinstance(value.text, str):
            return ast.FunctionCall("cidrMatch", (field, ast.Literal(value.text, value.span)),
                                    False, span)
        if kind == "text":
            return self.text_field(field, value, span)
        if pieces is None:  # match / match_phrase on a wildcard field: the whole value
            return ast.Comparison("==", field, ast.Literal(value.text, value.span), span)
        terms = _split_query_string(pieces)
        nodes: list[ast.Expr] = []
        for term in terms:
            if len(term) == 1:
                nodes.append(ast.Comparison("==", field, ast.Literal(term[0], value.span), span))
            else:
                nodes.append(self.whole_value_wildcard(field, term, value.span, span))
        return nodes[0] if len(nodes) == 1 else ast.Or(tuple(nodes), span)

    def whole_value_wildcard(self, field: ast.Field, pieces: tuple[str, ...],
                             value_span: ast.Span, span: ast.Span, *,
                             insensitive: bool = False) -> ast.Expr:
        if all(p == "" for p in pieces):
            return ast.Comparison("!=", field, ast.Literal(None), span)
        if any("?" in p or "*" in p for p in pieces):
            # EQL's like has no escape: a literal ? or * needs a regex.
            pattern = ".*".join(_lucene_literal(p) for p in pieces)
            return ast.Match("regex", field, (ast.Literal(pattern, value_span),), insensitive,
                             span)
        return ast.Match("like", field, (ast.Literal("*".join(pieces), value_span),),
                         insensitive, span)

    def text_field(self, field: ast.Field, value: k.Value, span: ast.Span) -> ast.Expr:
        analyzer: ast.Analyzer = "powershell" if field.name == POWERSHELL_SCRIPT else "standard"
        read = field
        if field.name.endswith(".text"):  # an ECS multi-field: its parent's value, analysed
            read = ast.Field(field.name[: -len(".text")], span=field.span)
        text = str(value.text)
        if value.pieces is None:
            kind: ast.TextMatchKind = "phrase" if value.quoted else "match"
            return ast.TextMatch(read, text, kind, analyzer, (), span)
        nodes: list[ast.Expr] = []
        for term in _split_query_string(value.pieces):
            if len(term) == 1:  # a term without wildcard: analysed
                nodes.append(ast.TextMatch(read, term[0], "match", analyzer, (), span))
            elif all(p == "" for p in term):
                nodes.append(ast.Comparison("!=", read, ast.Literal(None), span))
            else:  # normalised (lowercased), matched against each term of the field
                lowered = tuple(p.lower() for p in term)
                nodes.append(ast.TextMatch(read, "*".join(lowered), "wildcard", analyzer,
                                           lowered, span))
        return nodes[0] if len(nodes) == 1 else ast.Or(tuple(nodes), span)


def lower(node: k.Node, text: str = "") -> ast.Expr:
    """The KQL tree as a vigil expression (raises ``KqlError`` at the offending node)."""
    return Lowering(text).lower(node)


def kql_query(text: str) -> ast.Query:
    """A KQL query as the event query vigil runs (``any where <condition>``)."""
    from vigil.kql.parser import parse_kql

    condition = lower(parse_kql(text), text)
    return ast.Query(ast.EventQuery(None, condition), (), text)
