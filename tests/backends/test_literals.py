"""Soundness of the literals from regexes, string functions and non-ASCII pattern text, and of
the dispatch by key clause: whenever the reference matches, the checks pass."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.backends.test_differential import _literals, _set, corpus, draw_rule_event, reaches
from vigil.backends.fieldcheck import (
    FieldCache,
    StageIndex,
    build_checks,
    key_clause,
    query_field_cnfs,
)
from vigil.backends.literals import NON_ASCII, caseless, regex_cnf
from vigil.backends.prefilter import LineFilter, query_cnfs
from vigil.detect.run import ecs_schema
from vigil.eql import parse
from vigil.eql.engine import Compiled, SchemaResolver
from vigil.eql.patterns import compile_regexes, lucene_to_re2


def test_caseless_characters_have_no_case_partner() -> None:
    """No character's case mappings lead to a caseless character other than itself."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        for mapped in char.lower() + char.upper() + char.casefold() + char.title():
            if mapped != char:
                assert not caseless(mapped), (hex(code), mapped)
    assert caseless("\u202e") and not caseless("K") and not caseless("\u017f")


REGEXES = [
    r"(C:\\Program Files \(x86\)\\|C:\\Program Files\\)\w+.exe",
    r".*[ʰ-˿ᴬ-ᶻ]+.*",
    r"[A-Z]:\\:.+",
    r"ab(c|d)+e*f",
    r"a{2}bc",
    r"x(yz)?w[0-9]{1,3}q",
    r".*\\AppData\\(Local|Roaming)\\[a-z]+\.dll",
    r"[^a]b+c",
    r".*\u202e.*",
    r"k+s",
]


def _python_regex(pattern: str) -> str:
    return lucene_to_re2(pattern)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_regex_literals_occur_in_every_match(data: st.DataObject) -> None:
    pattern = data.draw(st.sampled_from(REGEXES))
    ci = data.draw(st.booleans())
    flags = re.IGNORECASE if ci else 0
    value = data.draw(st.from_regex(re.compile(_python_regex(pattern), flags), fullmatch=True))
    if data.draw(st.booleans()):
        value = "".join(c.swapcase() if data.draw(st.booleans()) else c for c in value)
    assume(compile_regexes([pattern], case_insensitive=ci)(value))
    for clause in regex_cnf(pattern, ci):
        if not value.isascii():
            continue  # opaque to every consumer
        assert clause != frozenset({NON_ASCII}), (pattern, ci, value)
        text = value.lower() if ci else value
        assert any(s in text for s in clause), (pattern, ci, value, clause)


CRAFTED = [
    'process where endsWith~(process.name, ".EXE") and startsWith(process.executable, "C:\\\\W")',
    'process where stringContains~(process.command_line, "-EnC") or endsWith(user.name, "$")',
    'file where file.path : "*\u202e*" or process.name : "*\u202e*.exe"',
    'file where file.path like~ "*\u202eK*"',
    'process where process.command_line regex """.*[ʰ-˿ᴬ-ᶻ]+.*"""',
    'process where process.executable regex~ """[A-Z]:\\\\:.+"""',
    'process where process.name regex~ """k+s.exe""" and process.name in ("ks.exe", "KS.EXE")',
    'process where (event.type == "start" and process.name : "a*.exe") or '
    '(event.type == "end" and process.name regex """b[0-9]+""")',
]

PIECES = ["\u202e", "K", "\u017f", "é", "ʰ", "C:\\W", ".exe", ".EXE", "-enc", "$", "ks", "kſ",
          "b12", "a", "start", "end", "C:\\:x", "Z:\\:", "cmd", "\\", "/"]


@st.composite
def crafted_value(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.integers(-5, 50))
    text = "".join(draw(st.lists(st.sampled_from(PIECES), max_size=4)))
    if draw(st.booleans()):
        text = "".join(c.swapcase() if draw(st.booleans()) else c for c in text)
    if kind == 5:
        return [text, draw(st.sampled_from(PIECES))]
    return text


def _check_event(query: str, event: dict[str, Any]) -> None:
    eql = parse(query)
    schema = ecs_schema()
    compiled = Compiled(eql, SchemaResolver(None, "@timestamp", default=schema), "event.category")
    field_cnfs = query_field_cnfs(eql, schema, "event.category")
    checks = build_checks(field_cnfs, schema)
    cnfs = query_cnfs(eql, schema)
    for index in range(len(compiled.stage_nodes)):
        if not compiled.plans(event)[index].matches(event):
            continue
        cache = FieldCache(event)
        check = checks[index]
        assert check is None or check(cache), (query, index, event)
        key = key_clause(field_cnfs[index])
        getters = {key[0]: schema.getter(key[0])} if key is not None else {}
        assert StageIndex([7], [key], getters).passing(FieldCache(event)) == [7]
        line_filter = LineFilter([cnfs[index]])
        for line in (orjson.dumps(event), json.dumps(event).encode()):
            assert line_filter.line_stages(line) == [0], (query, index, line)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_crafted_checks_pass_every_event_the_reference_matches(data: st.DataObject) -> None:
    query = data.draw(st.sampled_from(CRAFTED))
    event: dict[str, Any] = {"@timestamp": "2024-05-01T08:00:00.000Z",
                             "event": {"category": ["process", "file"]}}
    for name in ("process.name", "process.executable", "process.command_line", "user.name",
                 "file.path", "event.type"):
        if data.draw(st.integers(0, 9)) < 8:
            _set(event, name, data.draw(crafted_value()), data.draw(st.booleans()))
    _check_event(query, event)


def test_dispatch_passes_every_event_the_reference_matches() -> None:
    """Corpus rules: the key clause of a stage holds whenever the stage matches."""
    seen: Counter[str] = Counter()
    _dispatch_property(seen)
    reaches(seen, 0.15)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def _dispatch_property(seen: Counter[str], data: st.DataObject) -> None:
    rule = data.draw(st.sampled_from(corpus()))
    schema = ecs_schema()
    field_cnfs = query_field_cnfs(rule.eql, schema, "event.category")
    checks = build_checks(field_cnfs, schema)
    compiled, event = draw_rule_event(data, rule, [*_literals(rule.eql), "\u202e", "ʰ"])
    seen["examples"] += 1
    for index in range(len(compiled.stage_nodes)):
        if not compiled.plans(event)[index].matches(event):
            continue
        seen["matched"] += 1
        check = checks[index]
        assert check is None or check(FieldCache(event)), (rule.name, index, event)
        key = key_clause(field_cnfs[index])
        getters = {key[0]: schema.getter(key[0])} if key is not None else {}
        assert StageIndex([3], [key], getters).passing(FieldCache(event)) == [3], rule.name
