"""Kibana Query Language: parser, and lowering into the one expression tree vigil runs.

``parse_kql(text)`` gives Kibana's syntax tree; ``kql_query(text)`` gives an ``eql.ast.Query``
(an ``any where`` event query) that every engine, prefilter and field check serves unchanged.
"""

from __future__ import annotations

from vigil.kql.parser import parse_kql

__all__ = ["parse_kql"]
