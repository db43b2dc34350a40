"""The printer: parse(to_eql(tree)) gives the same tree, for every query of Elasticsearch's
EQL spec files and of Elastic's 1,024 prebuilt EQL rules (sqlglot's validate_identity
style), and a few shapes the corpora lack."""

from __future__ import annotations

import tomllib

import pytest

from tests.conftest import shared_dir
from tests.eql.conformance import SUITES, load_cases
from vigil.eql import parse
from vigil.eql.ast import Field, TextMatch
from vigil.eql.printer import expr, to_eql
from vigil.errors import EqlError


def _round_trip(text: str) -> None:
    tree = parse(text)
    printed = to_eql(tree)
    assert parse(printed) == tree, (text, printed)
    assert to_eql(parse(printed)) == printed  # the printed form is a fixed point


def test_every_spec_query_round_trips() -> None:
    root = shared_dir() / "conformance" / "elasticsearch"
    count = 0
    for suite in SUITES:
        for case in load_cases(root, suite):
            try:
                parse(case["query"])
            except EqlError:
                continue  # cases of queries Elasticsearch rejects
            _round_trip(case["query"])
            count += 1
    assert count > 250


def test_every_prebuilt_query_round_trips() -> None:
    paths = sorted((shared_dir() / "rules" / "elastic-prebuilt").rglob("*.toml"))
    assert len(paths) == 1024
    for path in paths:
        _round_trip(tomllib.loads(path.read_text(encoding="utf-8"))["rule"]["query"])


@pytest.mark.parametrize("text", [
    'any where not (a == 1 and b == 2) or not not c',
    'process where (a + b) * -c == -1 and -(x - 1) > 2',
    'any where (-1) : 5 and x not in~ ("A", "b") and `my field`.`and` : ("a*", "b")',
    'any where ?opt == null and "tab\\tquote\\"back\\\\slash\\u{7}" == f',
    'any where startsWith~(process.name, "CMD") and 1.5e10 == 15000000000.0',
    '"my-category" where true | head 3 | tail 1',
    'sequence by host.name with maxspan=90s [a where true] by x with runs=2 '
    '![b where false] by x [c where 1 == 1] by x until [d where true] by y',
    'sample by h [a where true] by k [b where true] by k',
    'any where (a : "x") == true and not a regex~ "x.*" and b like "y?"',
])
def test_shapes_the_corpora_lack(text: str) -> None:
    _round_trip(text)


def test_kql_only_nodes_have_no_eql_spelling() -> None:
    with pytest.raises(ValueError, match="no EQL spelling"):
        expr(TextMatch(Field("message"), "x", "match"))
