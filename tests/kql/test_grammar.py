"""KQL grammar: the trees Kibana's parser builds.

Each case cites the test in Kibana's ``kbn-es-query/src/kuery/ast/ast.test.ts`` (or the rule of
``kuery/grammar/grammar.peggy``) that pins the same answer; the round trip (parse, print,
parse) runs over every KQL query of Elastic's prebuilt rules.
"""

from __future__ import annotations

import tomllib

import pytest

from tests.conftest import shared_dir
from vigil.errors import KqlSyntaxError
from vigil.kql.parser import parse_kql
from vigil.kql.syntax import And, Is, MatchAll, Nested, Not, Or, Range, Value, to_kql


def _is(field: str | None, text: str | bool | None, *, quoted: bool = False,
        pieces: tuple[str, ...] | None = None) -> Is:
    name = None if field is None else Value(field)
    return Is(name, Value(text, quoted, pieces))


def test_whitespace_is_match_all() -> None:
    # ast.test: 'should return a match all "is" function for whitespace'
    assert isinstance(parse_kql("  \t"), MatchAll)
    assert isinstance(parse_kql(""), MatchAll)


def test_unquoted_values_keep_their_spaces() -> None:
    # 'should not split on whitespace'; '...also not split on whitespace when matching
    # specific fields'
    assert parse_kql("foo bar") == _is(None, "foo bar")
    assert parse_kql("foo:bar baz") == _is("foo", "bar baz")
    assert parse_kql("foo:  bar  ") == _is("foo", "bar")  # trimmed


def test_and_binds_tighter_than_or() -> None:
    # '"and" should have a higher precedence than "or"'
    assert parse_kql("foo or bar and baz or qux") == Or((
        _is(None, "foo"), And((_is(None, "bar"), _is(None, "baz"))), _is(None, "qux")))
    # 'should support grouping to override default precedence'
    assert parse_kql("(foo or bar) and baz") == And((
        Or((_is(None, "foo"), _is(None, "bar"))), _is(None, "baz")))


def test_keywords_are_case_insensitive_and_need_spaces() -> None:
    assert parse_kql("a:1 OR a:2") == parse_kql("a:1 or a:2") == parse_kql("a:1 oR a:2")
    assert parse_kql("NOT a:1") == Not(_is("a", "1"))
    # No space after a keyword: part of the value ("a:1 or" at the end is one value).
    assert parse_kql("a:1 or") == _is("a", "1 or")
    with pytest.raises(KqlSyntaxError):
        parse_kql("not(a:1)")  # Not = 'not' Space+ : "not(" is a value, then "(" fails


def test_value_lists() -> None:
    # 'should support "and" and "not" operators and grouping in the shorthand as well'
    assert parse_kql("foo:((bar or baz) and not qux)") == And((
        Or((_is("foo", "bar"), _is("foo", "baz"))), Not(_is("foo", "qux"))))


def test_escapes_in_unquoted_values() -> None:
    # 'should allow escaping of special characters with a backslash'
    assert parse_kql(r'foo:\\\(\)\:\<\>\"\*') == _is("foo", '\\():<>"*')
    # escaped keywords and whitespace, \uXXXX
    assert parse_kql(r"foo:\or \and \NOT \t\u0041") == _is("foo", "or and NOT \tA")
    # any other backslash is not valid unquoted
    with pytest.raises(KqlSyntaxError):
        parse_kql(r"path:C:\Windows")


def test_quoted_strings() -> None:
    # 'should support double quoted strings that do not need escapes except for quotes'
    assert parse_kql(r'foo:"C:\Windows \"x\" \\ *"') == _is("foo", 'C:\\Windows "x" \\ *',
                                                            quoted=True)
    # \t \r \n are converted inside quotes too (QuotedCharacter = EscapedWhitespace / ...)
    assert parse_kql(r'foo:"C:\temp"') == _is("foo", "C:\temp", quoted=True)


def test_primitive_literals() -> None:
    # 'should create literal nodes for unquoted values with correct primitive types':
    # true, false, null become literals of that type; numbers stay strings
    assert parse_kql("a:true") == _is("a", True)
    assert parse_kql("a:false") == _is("a", False)
    assert parse_kql("a:null") == _is("a", None)
    assert parse_kql("a:42") == _is("a", "42")
    assert parse_kql('a:"true"') == _is("a", "true", quoted=True)


def test_wildcards() -> None:
    assert parse_kql("a:win*") == _is("a", "win*", pieces=("win", ""))
    assert parse_kql("a:*") == _is("a", "*", pieces=("", ""))
    assert parse_kql("a:x\\*y*") == _is("a", "x*y*", pieces=("x*y", ""))
    assert parse_kql('a:"x*"') == _is("a", "x*", quoted=True)  # a quoted star is a star


def test_nbsp_is_whitespace() -> None:
    # 'nbsp should be recognised as whitespace'
    assert parse_kql("a:1\u00a0and\u00a0b:2") == And((_is("a", "1"), _is("b", "2")))


def test_ranges_and_nesting() -> None:
    assert parse_kql("bytes >= 1000") == Range(Value("bytes"), ">=", Value("1000"))
    assert parse_kql("bytes<1000") == Range(Value("bytes"), "<", Value("1000"))
    # 'should support nested queries indicated by curly braces'
    assert parse_kql("nestedField:{ childOfNested: foo }") == Nested(
        Value("nestedField"), _is("childOfNested", "foo"))


def test_a_not_inside_a_value_ends_it() -> None:
    # Keyword = ... / 'not'i Space: it needs no space before it, so "cannot be" stops at
    # "can" and the rest does not parse.
    with pytest.raises(KqlSyntaxError):
        parse_kql("message: cannot be")
    # \not is no way out: EscapedWhitespace comes before EscapedKeyword, so it reads as a
    # newline and "ot"; \u006e spells the n.
    assert parse_kql(r"message: can\not be") == _is("message", "can\not be")
    assert parse_kql(r"message: can\u006eot be") == _is("message", "cannot be")
    assert parse_kql(to_kql(_is("message", "cannot be"))) == _is("message", "cannot be")


def test_errors_point_at_the_line_and_column() -> None:
    with pytest.raises(KqlSyntaxError) as caught:
        parse_kql("event.code: 4624 and\n  (process.name: cmd.exe")
    error = caught.value
    assert (error.line, error.column) == (2, 25)  # the end of the text
    assert 'expected ")"' in error.reason and "end of input" in error.reason
    assert str(error).splitlines()[-1].endswith("^")
    with pytest.raises(KqlSyntaxError, match="nested more than"):
        parse_kql("(" * 500 + "a:1" + ")" * 500)


def _prebuilt_queries() -> list[tuple[str, str]]:
    root = shared_dir() / "rules" / "elastic-prebuilt-other"
    found = []
    for path in sorted(root.rglob("*.toml")):
        rule = tomllib.loads(path.read_text(encoding="utf-8"))["rule"]
        if rule.get("language") == "kuery":
            found.append((path.name, rule["query"]))
    return found


def test_every_prebuilt_kql_query_parses_and_round_trips() -> None:
    queries = _prebuilt_queries()
    assert len(queries) == 729  # query 454 (447 KQL), new_terms 241, threshold 28, ...
    for name, text in queries:
        tree = parse_kql(text)
        printed = to_kql(tree)
        assert parse_kql(printed) == tree, (name, printed)
