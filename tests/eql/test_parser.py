"""Parser: the tree keeps Elasticsearch's distinctions; errors carry line, column and a caret."""

from __future__ import annotations

import pytest

from vigil.eql import EqlSyntaxError, ast, parse


def condition(text: str) -> ast.Expr:
    query = parse(f"any where {text}")
    assert isinstance(query.body, ast.EventQuery)
    return query.body.condition


@pytest.mark.parametrize(
    ("text", "kind", "insensitive"),
    [("x : \"a\"", ":", True), ("x like \"a*\"", "like", False), ("x like~ \"a*\"", "like", True),
     ("x regex \"a.*\"", "regex", False), ("x regex~ \"a.*\"", "regex", True)],
)
def test_match_operators_stay_distinct(text: str, kind: str, insensitive: bool) -> None:
    node = condition(text)
    assert isinstance(node, ast.Match)
    assert (node.kind, node.case_insensitive) == (kind, insensitive)


def test_in_variants_and_optional_fields_stay_distinct() -> None:
    plain, tilde, negated = (condition(t) for t in
                             ('x in ("a")', 'x in~ ("a")', 'x not in ("a")'))
    assert isinstance(plain, ast.InSet) and not plain.case_insensitive and not plain.negated
    assert isinstance(tilde, ast.InSet) and tilde.case_insensitive
    assert isinstance(negated, ast.InSet) and negated.negated
    opt = condition("?x.y == 1")
    assert isinstance(opt, ast.Comparison) and opt.left == ast.Field("x.y", optional=True)
    assert condition("x.y == 1") != opt


def test_precedence_not_and_or_and_arithmetic() -> None:
    node = condition("not a == 1 and b == 2 or c == 3")
    assert isinstance(node, ast.Or)
    first = node.operands[0]
    assert isinstance(first, ast.And) and isinstance(first.operands[0], ast.Not)
    arith = condition("a + b * 2 == 7")
    assert isinstance(arith, ast.Comparison) and isinstance(arith.left, ast.Arithmetic)
    assert arith.left.op == "+" and isinstance(arith.left.right, ast.Arithmetic)


def test_strings_escapes_raw_and_backquoted_fields() -> None:
    node = condition(r'`weird field`.x == "a\"b\\c\t" and y == """C:\Raw\"""')
    assert isinstance(node, ast.And)
    left, right = node.operands
    assert isinstance(left, ast.Comparison) and left.left == ast.Field("weird field.x")
    assert isinstance(left.right, ast.Literal) and left.right.value == 'a"b\\c\t'
    assert isinstance(right, ast.Comparison) and isinstance(right.right, ast.Literal)
    assert right.right.value == "C:\\Raw\\"
    assert condition("@timestamp > 0") == ast.Comparison(">", ast.Field("@timestamp"),
                                                         ast.Literal(0))


def test_functions_are_case_insensitive_and_tilde_is_kept() -> None:
    node = condition('CONCAT(a, "b") == "ab" and startsWith~(c, "X")')
    assert isinstance(node, ast.And)
    concat = node.operands[0]
    assert isinstance(concat, ast.Comparison) and isinstance(concat.left, ast.FunctionCall)
    assert concat.left.name == "concat"
    starts = node.operands[1]
    assert isinstance(starts, ast.FunctionCall) and starts.case_insensitive


def test_sequence_sample_and_pipes() -> None:
    query = parse("""
        sequence by host.name with maxspan=2m
          [process where true] by user.name with runs=2
         ![file where true] by user.name
          [network where true] by user.name
        until [process where event.type == "end"] by user.name
        | head 5 | tail 2""")
    body = query.body
    assert isinstance(body, ast.Sequence)
    assert body.maxspan_ms == 120_000
    assert [s.runs for s in body.stages] == [2, 1, 1]
    assert [s.missing for s in body.stages] == [False, True, False]
    assert body.until is not None
    assert [(p.kind, p.count) for p in query.pipes] == [("head", 5), ("tail", 2)]
    sample = parse("sample by host [any where true] [any where true]").body
    assert isinstance(sample, ast.Sample) and len(sample.stages) == 2


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("process where (", 1, 16, "unexpected end of the query"),
        ('process where x == "a', 1, 20, "unterminated string"),
        ("process where x = 1", 1, 17, "use '=='"),
        ("process where x == 'a'", 1, 20, "use double quotes"),
        ("sequence\n  [process where true]\n  [file where x ==]", 3, 19, "expected a value"),
        ("sequence with maxspan=5 [a where true] [b where true]", 1, 23, "time unit"),
        ("sequence [a where true] [b where true] by x", 1, 25, "inconsistent number of join keys"),
        ("process where foo(x)", 1, 15, "unknown function 'foo'"),
        ("process where length(x, y) > 1", 1, 15, "takes 1 arguments"),
        ("process where startsWith~~(x)", 1, 26, "expected '('"),
        ("join [a where true] [b where true]", 1, 1, "not supported by Elasticsearch EQL"),
        ("process where x == 1 | unique x", 1, 24, "not supported by Elasticsearch EQL"),
        ("process where descendant of [process where true]", 1, 15,
         "not supported by Elasticsearch EQL"),
        ("process where arrayContains(x, 1)", 1, 15, "not supported by Elasticsearch EQL"),
        ("sequence with maxspan=1m [a where true] ![b where true] | head 0", 1, 64, "positive"),
        ("sequence [a where true] ![b where true]", 1, 1, "maxspan"),
    ],
)
def test_errors_point_at_line_and_column(text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(EqlSyntaxError) as info:
        parse(text)
    error = info.value
    assert (error.line, error.column) == (line, column), str(error)
    assert words in str(error)
    # The message shows the offending line and a caret under the column.
    shown_line, caret = str(error).splitlines()[1:3]
    assert shown_line.strip() == text.splitlines()[line - 1].strip()
    assert caret.index("^") - caret.index(" ") == column - 1 or caret.strip().startswith("^")
    assert isinstance(error, ValueError)
