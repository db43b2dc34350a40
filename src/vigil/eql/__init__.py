"""Elasticsearch EQL: parser, reference evaluator and search.

``parse(text) -> Query`` and ``search(query, events, ...) -> list[Match]`` are the contract
the rest of vigil (and checks outside it) rely on.
"""

from __future__ import annotations

from vigil.eql.ast import Query
from vigil.eql.engine import Match
from vigil.eql.parser import parse, parse_expression
from vigil.eql.search import search
from vigil.errors import EqlError, EqlSemanticError, EqlSyntaxError

__all__ = [
    "EqlError",
    "EqlSemanticError",
    "EqlSyntaxError",
    "Match",
    "Query",
    "parse",
    "parse_expression",
    "search",
]
