"""Evaluator edge cases that Elasticsearch's spec suite does not cover.

Null handling follows Elasticsearch's query translation (x-pack/plugin/eql QueryTranslator,
ql ExpressionTranslators.Nots: ``not`` of a field query is a ``bool.must_not``, and scripts
hoist ``not`` outside the multi-value loop, ql Scripts.multiValueDocValuesRewrite). So a
negated match on a field the event lacks is true, a positive one false.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import shared_dir
from vigil.eql import parse, search
from vigil.eql.ast import Sequence
from vigil.eql.engine import Compiled, Entry, SchemaResolver, SequenceRun


def ids(query: str, events: list[dict[str, Any]], **kwargs: Any) -> list[list[Any]]:
    return [[e["id"] if e else None for e in m.events] for m in search(query, events, **kwargs)]


def ev(i: int, category: Any = "process", **fields: Any) -> dict[str, Any]:
    return {"id": i, "@timestamp": 1_700_000_000_000 + i, "event": {"category": category},
            **fields}


# ------------------------------------------------------------------ fields


def test_ecs_category_arrays_select_every_listed_category() -> None:
    events = [ev(1, ["iam", "configuration"]), ev(2, "iam"), ev(3, ["configuration"])]
    assert ids("iam where true", events) == [[1], [2]]
    assert ids("configuration where true", events) == [[1], [3]]


def test_nested_dotted_and_mixed_keys_are_the_same_field() -> None:
    events = [
        ev(1, winlog={"logon": {"id": "0x1"}}),
        ev(2, **{"winlog.logon.id": "0x1"}),
        ev(3, winlog={"logon.id": "0x1"}),
        ev(4, **{"winlog.logon": {"id": "0x1"}}),
        ev(5, winlog={"logon": {"id": "0x2"}}),
    ]
    assert ids('process where winlog.logon.id == "0x1"', events) == [[1], [2], [3], [4]]


def test_arrays_of_objects_are_flattened_like_elasticsearch() -> None:
    events = [ev(1, process={"args": [{"v": "a"}, {"v": "b"}]})]
    assert ids('process where process.args.v == "b"', events) == [[1]]


# ------------------------------------------------------------------ null and negation


@pytest.mark.parametrize(
    ("condition", "matches_missing"),
    [
        ('f != "x"', True),  # must_not term
        ('not f : "x"', True),  # must_not term(case_insensitive)
        ('not f == "x"', True),
        ('f not in ("a", "b")', True),  # must_not terms
        ('not f like "x*"', True),  # must_not wildcard
        ("not f > 3", True),  # must_not range
        ('not startsWith(f, "a")', True),  # script, not hoisted out: not(false)
        ("f != null", False),  # exists
        ("f == null", True),  # must_not exists
        ('f : "x"', False),
        ("f > 3", False),
        ('startsWith(f, "a")', False),
        ("length(f) > 0 or true", True),
    ],
)
def test_missing_field_under_negation(condition: str, matches_missing: bool) -> None:
    events = [ev(1), ev(2, f="zzz")]
    got = [m[0] for m in ids(f"process where {condition}", events)]
    assert (1 in got) is matches_missing


def test_negation_of_a_multi_valued_field_needs_no_value_to_match() -> None:
    events = [ev(1, f=["x", "y"]), ev(2, f=["y"])]
    assert ids('process where f != "x"', events) == [[2]]
    assert ids('process where f == "x"', events) == [[1]]


def test_null_checks_in_scripts_are_never_null() -> None:
    # nullEqualityWithGtAndHead: ReplaceNullChecks turns `null == expr` into IsNull(expr).
    events = [ev(1), ev(2, exit_code=0)]
    assert ids("process where null == (exit_code > -1)", events) == [[1]]
    assert ids("process where (exit_code > -1) != null", events) == [[2]]


# ------------------------------------------------------------------ text matching


def test_colon_is_whole_string_case_insensitive_equality_without_wildcards() -> None:
    events = [ev(1, f="Network"), ev(2, f="network logon"), ev(3, f="NETWORK")]
    assert ids('process where f : "network"', events) == [[1], [3]]
    assert ids('process where f == "network"', events) == []
    assert ids('process where f in~ ("network*")', events) == []


def test_question_mark_is_exactly_one_character_and_backslash_is_literal() -> None:
    events = [ev(1, p="C:\\Windows\\x.exe"), ev(2, p="CD:\\Windows\\x.exe"),
              ev(3, p=":\\Windows\\x.exe")]
    assert ids(r'process where p : "?:\\windows\\*.EXE"', events) == [[1]]
    assert ids(r'process where p like "?:\\windows\\*.EXE"', events) == []
    assert ids(r'process where p like~ "?:\\windows\\*.EXE"', events) == [[1]]


def test_regex_is_anchored_lucene_and_linear_time() -> None:
    events = [ev(1, p="abc"), ev(2, p="xabc"), ev(3, p="a" * 50_000 + "c")]
    assert ids('process where p regex "a.c"', events) == [[1]]
    assert ids('process where p regex~ "A.C"', events) == [[1]]
    assert ids('process where p regex "(a+)+b"', events) == []


def test_ip_typed_fields_compare_as_addresses() -> None:
    mapping = {"properties": {"source": {"properties": {"ip": {"type": "ip"}}}}}
    events = [ev(1, source={"ip": "0:0:0:0:0:0:0:1"}), ev(2, source={"ip": "10.0.0.1"})]
    assert ids('process where source.ip != "::1"', events, mapping=mapping) == [[2]]
    assert ids('process where cidrMatch(source.ip, "10.0.0.0/8")', events) == [[2]]


# ------------------------------------------------------------------ the seed rule


def _seed_query() -> str:
    seed = shared_dir() / "seed" / "lateral_movement_remote_service_installed_winlog.v108.toml"
    return str(tomllib.loads(seed.read_text(encoding="utf-8"))["rule"]["query"])


T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def logon(i: int, at: timedelta, *, logon_id: str = "0x1a2b", host: str = "WS01",
          logon_type: str = "Network", outcome: str = "success",
          ip: str | None = "10.0.0.7") -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": i, "@timestamp": (T0 + at).isoformat(),
        "event": {"category": ["authentication"], "action": "logged-in", "outcome": outcome},
        "winlog": {"logon": {"id": logon_id, "type": logon_type}, "computer_name": host},
    }
    if ip is not None:
        event["source"] = {"ip": ip}
    return event


def service(i: int, at: timedelta, *, logon_id: str = "0x1a2b", host: str = "WS01",
            subject: str | None = "0x1a2b", path: str | None = "C:\\Users\\x\\evil.exe",
            category: Any = ("iam", "configuration")) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if subject is not None:
        data["SubjectLogonId"] = subject
    if path is not None:
        data["ServiceFileName"] = path
    return {
        "id": i, "@timestamp": (T0 + at).isoformat(),
        "event": {"category": list(category), "action": "service-installed"},
        "winlog": {"logon": {"id": logon_id}, "computer_name": host, "event_data": data},
    }


S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([logon(1, 0 * S), service(2, 30 * S)], [[1, 2]]),
        ([logon(1, 0 * S), service(2, 60 * S)], [[1, 2]]),  # maxspan is inclusive
        ([logon(1, 0 * S), service(2, 60 * S + timedelta(milliseconds=1))], []),
        ([logon(1, 0 * S), service(2, 30 * S, host="WS02")], []),
        ([logon(1, 0 * S), service(2, 30 * S, logon_id="0x9")], []),
        ([logon(1, 0 * S, logon_type="network"), service(2, 30 * S)], [[1, 2]]),
        ([logon(1, 0 * S, outcome="failure"), service(2, 30 * S)], []),
        ([logon(1, 0 * S, ip=None), service(2, 30 * S)], []),
        ([logon(1, 0 * S, ip="::1"), service(2, 30 * S)], []),
        ([logon(1, 0 * S, ip="127.0.0.1"), service(2, 30 * S)], []),
        ([logon(1, 0 * S), service(2, 30 * S, subject="0x3E7")], []),
        ([logon(1, 0 * S), service(2, 30 * S, subject=None)], [[1, 2]]),
        ([logon(1, 0 * S), service(2, 30 * S, path="c:\\program files\\x\\y.exe")], []),
        ([logon(1, 0 * S), service(2, 30 * S, path="C:\\Windows\\PSEXESVC.EXE")], []),
        ([logon(1, 0 * S), service(2, 30 * S, path="C:\\Windows\\PSEXESVC2.EXE")], [[1, 2]]),
        ([logon(1, 0 * S), service(2, 30 * S, path=None)], [[1, 2]]),
        ([logon(1, 0 * S), service(2, 30 * S, category=("configuration",))], []),
        # service before logon: order matters
        ([service(1, 0 * S), logon(2, 10 * S)], []),
        # two logons, one install: the latest logon pairs (OrdinalGroup.trimBefore)
        ([logon(1, 0 * S), logon(2, 10 * S), service(3, 20 * S)], [[2, 3]]),
        # one logon, two installs: only the first completes
        ([logon(1, 0 * S), service(2, 10 * S), service(3, 20 * S)], [[1, 2]]),
    ],
)
def test_seed_rule_on_hand_made_events(events: list[dict[str, Any]],
                                       expected: list[list[int]]) -> None:
    assert ids(_seed_query(), events) == expected


# ------------------------------------------------------------------ streaming memory


def test_partial_sequences_expire_with_maxspan() -> None:
    query = parse("sequence by k with maxspan=1s [a where true] [b where true]")
    assert isinstance(query.body, Sequence)
    schemas = SchemaResolver(None, "@timestamp")
    run = SequenceRun(query.body, Compiled(query, schemas, "event.category"))
    for i in range(10_000):
        ts = i * 10_000_000  # 10 ms apart: each key is alone for 10 s of stream time
        run.feed(Entry({"event": {"category": "a"}, "k": i, "@timestamp": ts}, i, ts))
        run.expire(ts)
    assert len(run.groups) <= 101  # only keys started in the last second stay open


def test_timestamps_keep_nanoseconds_and_zones() -> None:
    from vigil.eql.schema import parse_iso_ns

    assert parse_iso_ns("1974-03-03T02:22:54.294365140Z") == 131509374294365140
    assert parse_iso_ns("2024-05-01T08:00:00.123Z") == 1714550400123000000
    assert parse_iso_ns("2024-05-01T10:00:00.123+02:00") == 1714550400123000000
    assert parse_iso_ns("yesterday") is None


# ------------------------------------------------------------------ case folding

# Case-insensitive comparisons fold Unicode *simple* case folding, one code point to one:
# Lucene's CaseFolding, which Elasticsearch's case-insensitive term, prefix, wildcard and
# regexp queries use since elastic/elasticsearch#153513 (server AutomatonQueries; its tests
# pin Kelvin/K/k, ſ/s and µ/μ), and RE2's (?i). 8.x folded ASCII letters only.

@pytest.mark.parametrize(("query", "value", "expected"), [
    ('process where process.name : "É.EXE"', "é.exe", True),
    ('process where process.name : "kernel32"', "\u212aERNEL32", True),  # Kelvin sign
    ('process where process.name : "svchost.exe"', "\u017fvchost.exe", True),  # long s
    ('process where process.name : "σ"', "ς", True),  # final sigma, wherever it stands
    ('process where process.name : "?σ"', "xς", True),
    ('process where process.name : "i"', "İ", False),  # no simple folding for İ, ı
    ('process where process.name : "i*"', "İx", False),
    ('process where process.name : "I"', "ı", False),
    ('process where process.name in~ ("STRASSE")', "straße", False),  # full folding only
    ('process where process.name : "ß"', "ẞ", True),  # the S mapping
    ('process where process.name like~ "*\u212a*"', "k", True),
    ('process where process.name regex~ "[a-z]+ſ"', "abS", True),
    ('process where startsWith~(process.name, "ſv")', "SVCHOST", True),
    ('process where endsWith~(process.name, "Σ")', "aς", True),
    ('process where stringContains~(process.name, "\u212a")', "xkx", True),
    ('process where process.name == "É.exe"', "é.exe", False),  # == never folds
])
def test_case_insensitive_matching_folds_unicode_simple_case_folding(
        query: str, value: str, expected: bool) -> None:
    assert bool(ids(query, [ev(1, process={"name": value})])) is expected


def test_index_of_insensitive_lowers_as_java_does() -> None:
    # indexOf~ runs as a script: Java's toLowerCase(Locale.ROOT) on both sides, positions in
    # the lowered text ("İ" lowers to two characters).
    events = [ev(1, process={"name": "İab"})]
    assert ids('process where indexOf~(process.name, "AB") == 2', events) == [[1]]


def test_the_plain_shapes_and_re2_fold_alike_on_every_cased_code_point() -> None:
    """A pattern without wildcards is compared on folded text; with ``?`` it goes to RE2's
    (?i). For every code point with a case mapping, both agree on each of its case
    variants."""
    from vigil.eql.patterns import compile_wildcards, fold

    checked = 0
    for code in range(0x110000):
        if 0xD800 <= code < 0xE000:
            continue
        char = chr(code)
        variants = {v for v in (char.lower(), char.upper(), char.title(), char.casefold(),
                                fold(char)) if len(v) == 1} - {char}
        if not variants:
            continue
        plain = compile_wildcards([char], case_insensitive=True)
        regex = compile_wildcards([char + "?"], case_insensitive=True)
        for other in variants:
            assert plain(other) == regex(other + "z"), (hex(code), hex(ord(other)))
            checked += 1
    assert checked > 2000
