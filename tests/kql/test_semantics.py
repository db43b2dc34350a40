"""KQL semantics: which events a query matches, as Elasticsearch answers Kibana's query.

Kibana builds the query in ``kbn-es-query/src/kuery/functions/is.ts`` and ``range.ts`` (the
tests named below are in ``is.test.ts`` / ``range.test.ts``); query rules load the named
fields' mapping types first (security_solution ``get_query_filter_load_fields.ts``). The text
analysis follows Lucene's ``TestStandardAnalyzer`` and the windows integration's
``powershell_script_analyzer`` (a pattern analyzer, ``[\\W&&[^-]]+``).
"""

from __future__ import annotations

from typing import Any

import pytest

from vigil.eql.search import search
from vigil.errors import KqlError
from vigil.kql.analysis import analyze
from vigil.kql.lower import kql_query


def matches(query: str, *events: dict[str, Any]) -> list[int]:
    """Indexes of the events the query matches."""
    docs = [{"@timestamp": f"2024-01-01T00:00:{i:02d}Z", "i": i, **e}
            for i, e in enumerate(events)]
    return [m.events[0]["i"] for m in search(kql_query(query), docs)]


# ------------------------------------------------------------------ keyword fields


def test_keyword_value_is_an_exact_case_sensitive_term() -> None:
    # is.test "should use a term query for keyword fields" (the space survives: one term)
    evs = [{"process": {"name": "cmd.exe"}}, {"process": {"name": "CMD.EXE"}},
           {"process": {"name": "Win 7"}}, {"process": {"name": ["x", "cmd.exe"]}}]
    assert matches("process.name: cmd.exe", *evs) == [0, 3]
    assert matches('process.name: "cmd.exe"', *evs) == [0, 3]
    assert matches("process.name: Win 7", *evs) == [2]
    assert matches("process.name: win", *evs) == []


def test_keyword_wildcard_is_on_the_whole_value_case_sensitive() -> None:
    # is.test "should create a wildcard query for keyword fields" (no case_insensitive:
    # detection rules never set it)
    evs = [{"f": "win 10"}, {"f": "Win 10"}, {"f": "my win"}, {"f": "a?cd"}, {"f": "abcd"},
           {"f": "a*bz"}, {"f": "axbz"}]
    assert matches("f: win*", *evs) == [0]
    assert matches("f: *win*", *evs) == [0, 2]
    # ? is no wildcard in KQL (wildcard.ts escapes it); \* is a star
    assert matches("f: a?c*", *evs) == [3]
    assert matches(r"f: a\*b*", *evs) == [5]


def test_values_are_parsed_for_the_field() -> None:
    # ast.test: numbers stay strings; Elasticsearch parses them for the field's type
    evs = [{"winlog": {"event_id": 4624}}, {"winlog": {"event_id": "4624"}},
           {"winlog": {"event_id": 4625}}, {"flag": True}, {"flag": "true"}]
    assert matches("winlog.event_id: 4624", *evs) == [0, 1]
    assert matches("flag: true", *evs) == [3, 4]


def test_exists() -> None:
    # is.test "should return an ES exists query when value is \"*\""
    evs = [{"user": {"name": ""}}, {"user": {"name": "bob"}}, {"user": {}}, {}]
    assert matches("user.name: *", *evs) == [0, 1]
    assert matches("not user.name: *", *evs) == [2, 3]


def test_ip_fields_take_addresses_and_cidr_ranges() -> None:
    evs = [{"source": {"ip": "10.1.2.3"}}, {"source": {"ip": "192.168.0.1"}},
           {"source": {"ip": "::1"}}]
    assert matches("source.ip: 10.0.0.0/8", *evs) == [0]
    assert matches("source.ip: 192.168.0.1", *evs) == [1]
    assert matches('source.ip: "0:0::1"', *evs) == [2]  # addresses, not text


def test_not_matches_events_without_the_field() -> None:
    # not.ts: bool must_not; a missing field is not "cmd.exe"
    evs = [{"process": {"name": "cmd.exe"}}, {"process": {"name": "x"}}, {}]
    assert matches("not process.name: cmd.exe", *evs) == [1, 2]


def test_ranges() -> None:
    # range.test "should return an ES range query for the node's field and params"
    evs = [{"bytes": 999}, {"bytes": 1000}, {"bytes": 1001}, {"bytes": "2000"}, {}]
    assert matches("bytes > 1000", *evs) == [2, 3]
    assert matches("bytes >= 1000", *evs) == [1, 2, 3]
    assert matches("bytes < 1000", *evs) == [0]
    times = [{"@timestamp": "2024-01-01T00:00:00Z"}]
    assert matches('@timestamp >= "2023-12-31T23:59:59Z"', *times) == [0]
    assert matches('@timestamp > "2024-01-01T00:00:00Z"', *times) == []


def test_nested_prefixes_its_fields() -> None:
    # nested.test "should pass the nested path to subqueries so the full field name can be
    # used"
    evs = [{"p": {"a": "1", "b": "2"}}, {"p": {"a": "1"}}]
    assert matches("p:{ a: 1 and b: 2 }", *evs) == [0]


def test_wildcard_field_names_expand_over_the_events_fields() -> None:
    # is.test "should support wildcard field names"; each field with its own type's meaning
    # (the Entra ID prebuilt rules name flattened arrays: target_resources.*.new_value)
    evs = [{"a": {"t": {"0": {"new_value": "Global Administrator"}}}},
           {"a": {"t": {"1": {"new_value": "Reader"}}, "name": "x"}},
           {"a": {"t": {"0": {"message": "the global admin"}}}}]
    assert matches('a.t.*.new_value: "Global Administrator"', *evs) == [0]
    assert matches("a.t.*: *", *evs) == [0, 1, 2]
    assert matches("not a.t.*.new_value: *", *evs) == [2]
    assert matches("a.t.*.message: GLOBAL", *evs) == [2]  # *.message is analysed text


def test_errors_name_what_elasticsearch_rejects() -> None:
    with pytest.raises(KqlError) as caught:
        kql_query("event.code: 1 and user.name: null")
    assert (caught.value.line, caught.value.column) == (1, 30)
    with pytest.raises(KqlError, match="free-text"):
        kql_query("mimikatz")


# ------------------------------------------------------------------ analysed fields


@pytest.mark.parametrize(("text", "terms"), [
    # TestStandardAnalyzer.testDelimitersSA
    ("some-dashed-phrase", ("some", "dashed", "phrase")),
    ("dogs,chase,cats", ("dogs", "chase", "cats")),
    ("ac/dc", ("ac", "dc")),
    # testApostrophesSA
    ("O'Reilly", ("o'reilly",)), ("you're", ("you're",)), ("O'Reilly's", ("o'reilly's",)),
    # testNumericSA
    ("21.35", ("21.35",)), ("216.239.63.104", ("216.239.63.104",)),
    ("R2D2 C3PO", ("r2d2", "c3po")),
    # testMid
    ("A:B", ("a:b",)), ("A::B", ("a", "b")), ("1.2", ("1.2",)), ("A.B", ("a.b",)),
    ("1,2", ("1,2",)), ("1..2", ("1", "2")), ("A:B_A:B", ("a:b_a:b",)),
    # testEmpty
    (".", ()),
    # Windows text
    ("C:\\Windows\\System32\\cmd.exe", ("c", "windows", "system32", "cmd.exe")),
    ("Invoke-Mimikatz", ("invoke", "mimikatz")),
])
def test_standard_analyzer(text: str, terms: tuple[str, ...]) -> None:
    assert analyze(text) == terms


def test_standard_analyzer_splits_long_tokens() -> None:
    # testMaxTokenLengthDefault: tokens longer than 255 are split, not dropped
    assert analyze("b" * 511) == ("b" * 255, "b" * 255, "b")


def test_powershell_script_analyzer_keeps_dashes() -> None:
    assert analyze("Invoke-Mimikatz -DumpCreds; [Reflection.Emit.OpCodes]::Call",
                   "powershell") == ("invoke-mimikatz", "-dumpcreds", "reflection", "emit",
                                     "opcodes", "call")
    assert analyze("C:\\Windows\\cmd.exe é", "powershell") == ("c", "windows", "cmd", "exe")


def test_match_on_text_is_any_term_and_phrases_are_in_order() -> None:
    evs = [{"message": "The quick Brown fox"}, {"message": "brown QUICK"},
           {"message": ["quick", "brown"]}]
    assert matches("message: brown", *evs) == [0, 1, 2]
    assert matches("message: quick dog", *evs) == [0, 1, 2]  # match: OR of the terms
    assert matches('message: "quick brown"', *evs) == [0]  # no phrase across two values
    assert matches('message: "--"', *evs) == []  # no terms: zero_terms_query none


def test_wildcards_on_text_match_single_terms() -> None:
    # query_string without analyze_wildcard: the pattern is lowercased (normalised), never
    # split, and each term of the field is tested on its own
    evs = [{"message": "ran Invoke-Mimikatz now"}]
    assert matches("message: *MIMI*", *evs) == [0]
    assert matches("message: *invoke-mimi*", *evs) == []  # no standard term holds a dash
    script = [{"powershell": {"file": {"script_block_text": "ran Invoke-Mimikatz now"}}}]
    assert matches("powershell.file.script_block_text: *invoke-mimi*", *script) == [0]


def test_script_block_text_uses_the_powershell_analyzer() -> None:
    evs = [{"powershell": {"file": {"script_block_text":
            "$t = [Reflection.Emit.OpCodes]::Call; Invoke-Mimikatz -DumpCreds"}}}]
    field = "powershell.file.script_block_text"
    assert matches(f'{field}: "Reflection.Emit.OpCodes"', *evs) == [0]
    assert matches(f"{field}: invoke-mimikatz", *evs) == [0]
    assert matches(f"{field}: mimikatz", *evs) == []  # one term: invoke-mimikatz
    assert matches(f'{field}: "OpCodes Reflection"', *evs) == []


def test_text_multi_fields_analyse_their_parent() -> None:
    # ECS: process.command_line is a wildcard field with a match_only_text .text multi-field
    evs = [{"process": {"command_line": "powershell.exe -enc AAAA"}}]
    assert matches("process.command_line.text: ENC", *evs) == [0]
    assert matches("process.command_line: enc", *evs) == []  # the whole value
    assert matches('process.command_line: "powershell.exe -enc AAAA"', *evs) == [0]


def test_wildcards_with_spaces_split_on_wildcard_fields() -> None:
    # kibana#23001: Kibana does not escape whitespace for query_string, which splits the
    # value into terms joined by OR; each term is tested against the whole value
    evs = [{"process": {"command_line": "powershell.exe -enc AAAA"}},
           {"process": {"command_line": "C:\\x\\powershell"}},
           {"process": {"command_line": "-encodedcommand x"}}]
    assert matches("process.command_line: *powershell -enc*", *evs) == [1, 2]
    assert matches("process.command_line: *-enc*", *evs) == [0, 2]


def _detected(query: str, *events: dict[str, Any]) -> list[int]:
    """Indexes of the events a query rule alerts on (detect's ECS field types: ip fields)."""
    from vigil.detect.run import DetectOptions, run_detection
    from vigil.rules import Rule

    rule = Rule.from_dict({"rule_id": "00000000-0000-4000-8000-0000000001ab", "name": "n",
                           "description": "d", "type": "query", "language": "kuery",
                           "query": query, "severity": "low", "risk_score": 21})
    docs = [{"@timestamp": f"2024-01-01T00:00:{i:02d}Z", "_id": f"e{i}", "i": i, **e}
            for i, e in enumerate(events)]
    alerts = run_detection([rule], docs, options=DetectOptions(now="2024-06-01T00:00:00Z"))
    return sorted(a.events[0]["i"] for a in alerts.alerts)


def test_ranges_on_ip_fields_order_addresses() -> None:
    # range on an ip field: addresses, not text ("9.1.1.1" < "10.0.0.0")
    evs = [{"source": {"ip": "9.1.1.1"}}, {"source": {"ip": "10.0.0.7"}},
           {"source": {"ip": "::ffff:10.0.0.9"}}]
    assert _detected("source.ip > 10.0.0.0", *evs) == [1, 2]
    assert _detected("source.ip < 10.0.0.0", *evs) == [0]


def test_caseless_multi_fields_match_any_case() -> None:
    # Elastic Endpoint's process.name.caseless: the keyword through a lowercase normalizer
    evs = [{"process": {"name": "REG.exe"}}, {"process": {"name": "cmd.exe"}}]
    assert matches("process.name.caseless: reg.exe", *evs) == [0]
    assert matches("process.name.caseless: RE*", *evs) == [0]


def test_date_math_only_where_it_is_date_math() -> None:
    recent = [{"@timestamp": "2020-01-01T00:00:00Z", "host": {"name": "nowak"}}]
    assert matches("host.name >= nowak", *recent) == [0]  # text, not date math
    assert matches('@timestamp >= "now-30d/d"', *recent) == []  # six years ago


def test_surrogate_pairs_and_java_lowercase() -> None:
    # \\uD83D\\uDE00 is one character in Kibana's JavaScript strings; Java lowercases Σ to σ
    # whatever its place (Python's final-sigma rule gives ς)
    evs = [{"message": "smile 😀 ΟΔΟΣ"}]
    assert matches(r'message: "\uD83D\uDE00"', *evs) == [0]
    assert matches("message: οδοσ", *evs) == [0]
