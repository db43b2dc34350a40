"""The eql (Endgame) package's function fold tests, where Elasticsearch agrees.

../shared/conformance/eql/test_string_functions.toml and test_folding.toml are written in the
eql dialect. Each case is translated to Elasticsearch EQL by rules stated here (never by
per-case answers), then evaluated by vigil's script evaluator. Groups whose semantics differ
in Elasticsearch are excluded, each with its reason:
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.conftest import shared_dir
from vigil.eql.ast import FunctionCall, Literal
from vigil.eql.compiler import FilterCompiler
from vigil.eql.parser import parse_expression
from vigil.eql.schema import Schema

EXCLUDED_GROUPS = {
    "match": "match() is an eql-dialect function; Elasticsearch EQL has no such function "
             "(regex is the 'regex' operator there)",
    "wildcard": "wildcard() is an eql-dialect function; Elasticsearch uses ':' / 'like'",
    "wildcard_case_insensitive": "wildcard() is an eql-dialect function",
    "wildcard_case_sensitive": "wildcard() is an eql-dialect function",
    "string_case_insensitive_match_comparison": (
        "eql's case-insensitive mode makes '==', '!=' and '<' fold case; Elasticsearch's "
        "'==' is always case-sensitive and its ordering of strings never folds case"
    ),
    "complex": "uses the eql method syntax '\"hello\":length()', which Elasticsearch rejects",
}

# Functions whose case-insensitive behaviour Elasticsearch spells with '~'.
_TILDE_FUNCTIONS = ("startsWith", "endsWith", "stringContains", "indexOf", "between")


def _es_syntax(expression: str, case_insensitive_group: bool) -> str:
    """eql dialect -> Elasticsearch: double-quoted strings; in a case-insensitive group the
    string functions take their '~' variant and 'in' becomes 'in~'."""
    text = re.sub(r"'((?:[^'\\]|\\.)*)'",
                  lambda m: '"' + m.group(1).replace('"', '\\"') + '"', expression)
    if case_insensitive_group:
        for name in _TILDE_FUNCTIONS:
            text = re.sub(rf"\b{name}\(", f"{name}~(", text, flags=re.IGNORECASE)
        text = re.sub(r"\bin\s*\(", "in~ (", text)
    return text


def _es_expected(group: str, expression: str, expected: Any) -> Any:
    """Where Elasticsearch's function returns a different value by design."""
    if group != "between":
        return expected
    call = parse_expression(expression)
    assert isinstance(call, FunctionCall)
    source, left, right = (a.value if isinstance(a, Literal) else object() for a in call.args[:3])
    if source is None or left is None or right is None:
        return None
    # BetweenUtils.between: the input itself when it or a bound is empty; "" when a bound is
    # not found (eql returns null there).
    if "" in (source, left, right):
        return source
    return "" if expected is None else expected


def _cases() -> list[Any]:
    try:
        root = shared_dir() / "conformance" / "eql"
    except BaseException:
        return [pytest.param(None, None, None, None, id="shared-missing")]
    params = []
    for file_name in ("test_string_functions.toml", "test_folding.toml"):
        data = tomllib.loads((root / file_name).read_text(encoding="utf-8"))
        for group, spec in data.items():
            if group in EXCLUDED_GROUPS:
                continue
            insensitive = bool(spec.get("case_insensitive"))
            for number, test in enumerate(spec.get("fold", {}).get("tests", [])):
                params.append(pytest.param(group, test["expression"], test.get("expected"),
                                           insensitive, id=f"{group}-{number}"))
    return params


@pytest.mark.parametrize(("group", "expression", "expected", "insensitive"), _cases())
def test_fold(group: str | None, expression: str | None, expected: Any,
              insensitive: bool | None) -> None:
    shared_dir()
    assert group is not None and expression is not None
    es_expression = _es_syntax(expression, bool(insensitive))
    want = _es_expected(group, es_expression, expected)
    got = FilterCompiler(Schema()).value(parse_expression(es_expression))({})
    assert got == want and type(got) is type(want), f"{es_expression} -> {got!r}, want {want!r}"


def test_excluded_groups_exist() -> None:
    """Every exclusion names a group that is really in the suite (no stale excuses)."""
    root = shared_dir() / "conformance" / "eql"
    groups: set[str] = set()
    for file_name in ("test_string_functions.toml", "test_folding.toml"):
        groups |= set(tomllib.loads((root / file_name).read_text(encoding="utf-8")))
    assert set(EXCLUDED_GROUPS) <= groups


def test_enough_cases_run() -> None:
    shared_dir()  # without ../shared: skips with the reason (fails when it is required)
    assert len(_cases()) >= 170
