"""Loaders: detection-rules TOML and Kibana exports; broken files name file:line:column."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from vigil.errors import RuleError
from vigil.rules import (
    DateMath,
    RuleQueryError,
    load_rule_file,
    load_rules,
    parse_interval,
    validate,
    validation_summary,
)
from vigil.rules.loader import rule_warnings, skipped_summary

HEAD = """\
[metadata]
creation_date = "2025/01/01"
maturity = "production"
updated_date = "2025/01/01"

[rule]
author = ["vigil tests"]
description = "A test rule."
license = "Apache-2.0"
name = "{name}"
risk_score = 21
rule_id = "{rule_id}"
severity = "low"
type = "eql"
language = "eql"
"""

GOOD_QUERY = """\
query = '''
process where process.name == "a.exe"
'''
"""

# The second 'and' on query line 3 is the error: query line 3, column 46.
BROKEN_QUERY = """\
query = '''
sequence by host.id with maxspan=1m
  [process where process.name == "a.exe"]
  [network where destination.port == 445 and and source.ip != null]
'''
"""


def _rule_text(name: str, rule_id: str, query: str) -> str:
    return HEAD.format(name=name, rule_id=rule_id) + query


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _write(tmp_path, "good1.toml", _rule_text("Good one", "00000000-0000-4000-8000-000000000001",
                                              GOOD_QUERY))
    _write(tmp_path, "sub/good2.toml", _rule_text("Good two",
                                                  "00000000-0000-4000-8000-000000000002",
                                                  GOOD_QUERY))
    _write(tmp_path, "sub/broken_eql.toml", _rule_text(
        "Broken", "00000000-0000-4000-8000-000000000003", BROKEN_QUERY))
    _write(tmp_path, "bad_toml.toml", '[rule]\nname = "x"\nrisk_score = = 3\n')
    _write(tmp_path, "no_query.toml", _rule_text(
        "No query", "00000000-0000-4000-8000-000000000004", ""))
    _write(tmp_path, "notes.txt", "not a rule file, ignored in folders")
    return tmp_path


def test_folder_with_broken_files(folder: Path) -> None:
    result = load_rules([folder])
    assert sorted(r.name for r in result.rules) == ["Good one", "Good two"]
    messages = sorted(str(e).split("\n")[0] for e in result.errors)
    assert len(messages) == 3
    by_file = {Path(e.path).name: e for e in result.errors}

    eql = by_file["broken_eql.toml"]
    assert isinstance(eql, RuleQueryError)
    # HEAD is 15 lines: 'query' on 16, query line 1 on 17, query line 3 on 19.
    assert (eql.line, eql.column) == (19, 46)
    assert str(eql).startswith(f"{folder / 'sub' / 'broken_eql.toml'}:19:46: unexpected keyword "
                               "'and'")
    lines = str(eql).split("\n")
    assert lines[1] == "    [network where destination.port == 445 and and source.ip != null]"
    assert lines[2].index("^") == 2 + 45

    bad = by_file["bad_toml.toml"]
    assert (bad.line, bad.column) == (3, 14)
    assert str(bad).startswith(f"{folder / 'bad_toml.toml'}:3:14: not valid TOML: ")

    missing = by_file["no_query.toml"]
    assert missing.reason == "missing required field 'query'"
    assert missing.line == 6  # the [rule] header
    assert str(missing) == f"{folder / 'no_query.toml'}:6: missing required field 'query'"


def test_validate_counts(folder: Path) -> None:
    ok, errors = validate([folder])
    assert ok == 2 and len(errors) == 3
    assert validation_summary(ok, errors) == "3 of 5 rules failed to load; the other 2 are valid."
    assert validation_summary(2, []) == "all 2 rules valid."


@pytest.mark.parametrize(("line", "expected"), [
    # query on the key's line: column offset by the opening delimiter
    ("query = '''process where process.name == \"a\" and and'''\n", (16, 50)),
    # basic string with escapes: \" takes two file columns for one query character
    ('query = "process where process.name == \\"a\\" and and"\n', (16, 50)),
    ("query = 'process where process.name == \"a\" and and'\n", (16, 48)),
])
def test_query_error_column_on_key_line(tmp_path: Path, line: str,
                                        expected: tuple[int, int]) -> None:
    path = _write(tmp_path, "r.toml", _rule_text("R", "00000000-0000-4000-8000-000000000009",
                                                 line))
    (error,) = load_rule_file(path).errors
    assert (error.line, error.column) == expected
    text_line = path.read_text().splitlines()[expected[0] - 1]
    assert text_line[expected[1] - 1 : expected[1] + 2] == "and"


def test_wrong_field_types_point_at_the_key(tmp_path: Path) -> None:
    text = _rule_text("R", "00000000-0000-4000-8000-00000000000a", GOOD_QUERY).replace(
        'severity = "low"', 'severity = "extreme"')
    path = _write(tmp_path, "r.toml", text)
    (error,) = load_rule_file(path).errors
    assert error.line == 13
    assert "severity 'extreme' is not one of low, medium, high, critical" in str(error)


def test_kql_query_rule_loads(tmp_path: Path) -> None:
    text = _rule_text("KQL rule", "00000000-0000-4000-8000-00000000000b",
                      'query = "process.name : a"\n').replace(
        'type = "eql"\nlanguage = "eql"', 'type = "query"\nlanguage = "kuery"')
    path = _write(tmp_path, "kql.toml", text)
    result = load_rule_file(path)
    assert result.skipped == () and result.errors == ()
    (rule,) = result.rules
    assert (rule.type, rule.language, rule.tree.kind) == ("query", "kuery", "event")


def test_rule_types_vigil_does_not_run_are_skipped_with_the_reason(tmp_path: Path) -> None:
    for number, (rule_type, language) in enumerate(
            [("esql", "esql"), ("machine_learning", "kuery"), ("query", "lucene"),
             ("esql", "esql")]):
        text = _rule_text(f"{rule_type} rule", f"00000000-0000-4000-8000-0000000001{number:02d}",
                          'query = "x"\n').replace(
            'type = "eql"\nlanguage = "eql"', f'type = "{rule_type}"\nlanguage = "{language}"')
        _write(tmp_path, f"r{number}.toml", text)
    result = load_rules([tmp_path])
    assert result.rules == () and result.errors == ()
    assert sorted(s.rule_type for s in result.skipped) == ["esql", "esql", "machine_learning",
                                                           "query"]
    summary = skipped_summary(result.skipped)
    assert summary[0] == ("skipped 2 esql rule(s): ES|QL rules need Elasticsearch's ES|QL "
                          "engine, which vigil does not have")
    assert any("Lucene query syntax" in line for line in summary) and len(summary) == 3


def test_duplicate_rule_id_is_an_error(tmp_path: Path) -> None:
    for name in ("a.toml", "b.toml"):
        _write(tmp_path, name, _rule_text("Same", "00000000-0000-4000-8000-00000000000c",
                                          GOOD_QUERY))
    result = load_rules([tmp_path])
    assert len(result.rules) == 1
    (error,) = result.errors
    assert "duplicate rule_id" in error.reason and error.path.endswith("b.toml")


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    result = load_rules([tmp_path / "nope"])
    assert [e.reason for e in result.errors] == ["no such file or folder"]


# ---------------------------------------------------------------- Kibana export


def _kibana_rule(**changes: object) -> dict[str, object]:
    rule: dict[str, object] = {
        "id": "5c1bd3a0-0000-4000-8000-000000000001",
        "rule_id": "11111111-0000-4000-8000-000000000001",
        "name": "Kibana EQL rule",
        "description": "From an export.",
        "type": "eql",
        "language": "eql",
        "query": 'sequence by host.id\n  [process where process.name == "a.exe"]\n'
                 '  [network where true]',
        "index": ["logs-*"],
        "risk_score": 73,
        "severity": "high",
        "interval": "10m",
        "from": "now-15m",
        "to": "now",
        "max_signals": 50,
        "version": 3,
        "enabled": True,
        "tags": ["t1"],
        "threat": [{"framework": "MITRE ATT&CK",
                    "tactic": {"id": "TA0002", "name": "Execution",
                               "reference": "https://attack.mitre.org/tactics/TA0002/"},
                    "technique": []}],
        "exceptions_list": [{"id": "x", "list_id": "my-list", "type": "detection",
                             "namespace_type": "single"}],
        "timestamp_override": "event.ingested",
        "tiebreaker_field": "event.sequence",
    }
    rule.update(changes)
    return rule


def test_kibana_ndjson_export(tmp_path: Path) -> None:
    kql = _kibana_rule(rule_id="kql-1", name="A KQL rule", type="query", language="kuery",
                       query="host.name: x")
    esql = _kibana_rule(rule_id="esql-1", name="An ES|QL rule", type="esql", language="esql",
                        query="from logs-*")
    summary = {"exported_count": 2, "exported_rules_count": 2, "missing_rules": [],
               "missing_rules_count": 0, "exported_exception_list_count": 0}
    lines = [orjson.dumps(_kibana_rule()), orjson.dumps(kql), orjson.dumps(esql),
             orjson.dumps(summary)]
    path = tmp_path / "export.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = load_rules([path])
    assert result.errors == ()
    rule, kql_rule = result.rules
    assert (kql_rule.rule_id, kql_rule.type, kql_rule.source.line) == ("kql-1", "query", 2)
    assert rule.rule_id == "11111111-0000-4000-8000-000000000001"
    assert rule.uuid == "5c1bd3a0-0000-4000-8000-000000000001"
    assert (rule.version, rule.interval, rule.from_, rule.max_signals) == (3, "10m", "now-15m", 50)
    assert rule.look_back == timedelta(minutes=15)
    assert (rule.severity, rule.risk_score) == ("high", 73)
    assert rule.timestamp_override == "event.ingested"
    assert rule.tiebreaker_field == "event.sequence"
    assert rule.exceptions_list[0]["list_id"] == "my-list"
    assert rule.threat[0].tactic.name == "Execution"
    assert rule.source.format == "kibana" and rule.source.line == 1
    assert rule.eql.kind == "sequence"
    (skipped,) = result.skipped
    assert (skipped.rule_id, skipped.line) == ("esql-1", 3)
    assert "ES|QL engine" in skipped.reason


def test_kibana_json_array_and_object(tmp_path: Path) -> None:
    array = tmp_path / "rules.json"
    array.write_bytes(orjson.dumps([_kibana_rule(), _kibana_rule(rule_id="two", name="Two")],
                                   option=orjson.OPT_INDENT_2))
    single = tmp_path / "one.json"
    single.write_bytes(orjson.dumps(_kibana_rule(rule_id="three", name="Three")))
    result = load_rules([array, single])
    assert result.errors == ()
    assert sorted(r.name for r in result.rules) == ["Kibana EQL rule", "Three", "Two"]


def test_kibana_defaults_applied(tmp_path: Path) -> None:
    minimal = {"rule_id": "m", "name": "Minimal", "description": "d", "type": "eql",
               "query": "any where true", "risk_score": 1, "severity": "low"}
    path = tmp_path / "m.ndjson"
    path.write_bytes(orjson.dumps(minimal) + b"\n")
    (rule,) = load_rules([path]).rules
    assert (rule.interval, rule.from_, rule.to, rule.max_signals, rule.version,
            rule.language) == ("5m", "now-6m", "now", 100, 1, "eql")
    assert rule.look_back == timedelta(minutes=6)


def test_kibana_query_error_maps_to_file_position(tmp_path: Path) -> None:
    bad = _kibana_rule(query='process where process.name == "a" and and')
    path = tmp_path / "export.ndjson"
    path.write_bytes(orjson.dumps(_kibana_rule(rule_id="ok")) + b"\n" + orjson.dumps(bad) + b"\n")
    result = load_rules([path])
    assert [r.rule_id for r in result.rules] == ["ok"]
    (error,) = result.errors
    line_text = path.read_text().splitlines()[1]
    assert error.line == 2
    assert error.column is not None
    assert error.column == line_text.index("and and") + 5  # the second 'and', 1-based


def test_kibana_broken_lines(tmp_path: Path) -> None:
    path = tmp_path / "export.ndjson"
    path.write_bytes(orjson.dumps(_kibana_rule()) + b"\n{not json\n"
                     + orjson.dumps(_kibana_rule(rule_id="x", risk_score="high")) + b"\n")
    result = load_rules([path])
    assert len(result.rules) == 1
    assert [(e.line, e.reason.split(":")[0]) for e in result.errors] == [
        (2, "not JSON"), (3, "Kibana EQL rule")]
    assert "risk_score must be an integer" in result.errors[1].reason


def test_rule_error_is_a_rule_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "b.toml", _rule_text("B", "b", BROKEN_QUERY))
    (error,) = load_rule_file(path).errors
    assert isinstance(error, RuleError)


# ---------------------------------------------------------------- schedule values


def test_date_math_and_interval() -> None:
    now = datetime(2025, 3, 31, 10, 17, 42, tzinfo=UTC)
    assert DateMath.parse("now-9m").resolve(now) == now - timedelta(minutes=9)
    assert DateMath.parse("now").resolve(now) == now
    assert DateMath.parse("now-1M").resolve(now) == datetime(2025, 2, 28, 10, 17, 42, tzinfo=UTC)
    assert DateMath.parse("now-1d/d").resolve(now) == datetime(2025, 3, 30, tzinfo=UTC)
    assert DateMath.parse("now-2h+30m").offset == timedelta(minutes=-90)
    with pytest.raises(ValueError):
        DateMath.parse("yesterday")
    assert parse_interval("6h") == timedelta(hours=6)
    with pytest.raises(ValueError):
        parse_interval("5 minutes")


def test_bad_schedule_is_reported(tmp_path: Path) -> None:
    text = _rule_text("R", "r", GOOD_QUERY).replace('severity = "low"',
                                                    'severity = "low"\nfrom = "9 minutes ago"')
    path = _write(tmp_path, "r.toml", text)
    (error,) = load_rule_file(path).errors
    assert error.line == 14 and "must start with 'now'" in error.reason


def test_a_field_vigil_does_not_apply_is_a_warning_never_silence(tmp_path: Path) -> None:
    text = _rule_text("Odd", "00000000-0000-4000-8000-0000000000e1", GOOD_QUERY) + \
        "made_up_field = 5\n"
    path = _write(tmp_path, "odd.toml", text)
    result = load_rule_file(path)
    (rule,) = result.rules
    assert rule.warnings == ("the rule's made_up_field field is not applied by vigil",)
    (line,) = rule_warnings(result.rules)
    assert line.startswith(f"{path}:") and "Odd: the rule's made_up_field" in line
    # prebuilt-style fields that change nothing are not warned about
    plain = _write(tmp_path, "plain.toml", _rule_text(
        "Plain", "00000000-0000-4000-8000-0000000000e2", GOOD_QUERY))
    assert load_rule_file(plain).rules[0].warnings == ()
