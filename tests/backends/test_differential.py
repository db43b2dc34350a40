"""The fast path against the reference: the prefilter never rejects a line whose event the
reference evaluator matches, and ``run_fast`` returns exactly ``run_detection``'s alerts."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import shared_dir
from vigil.backends import fast, fieldcheck
from vigil.backends.fieldcheck import FieldCache, build_checks, query_field_cnfs
from vigil.backends.prefilter import LineFilter, query_cnfs
from vigil.detect.run import DetectOptions, ecs_schema, run_detection
from vigil.eql import ast, parse
from vigil.eql.engine import Compiled, SchemaResolver
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.rules import bundled_rules, load_rules
from vigil.rules.model import Rule
from vigil.synth import Generator

NOW = "2024-06-01T00:00:00.000Z"


@cache
def corpus() -> tuple[Rule, ...]:
    """The seed and the 391 Windows prebuilt EQL rules (every EQL rule in rules/windows)."""
    root = shared_dir() / "rules" / "elastic-prebuilt" / "rules" / "windows"
    loaded = load_rules([root]).rules
    return (*bundled_rules(), *(r for r in loaded if r.language == "eql"))


@cache
def kql_corpus() -> tuple[Rule, ...]:
    """Every Windows KQL query rule of the prebuilt set (rules and building blocks)."""
    root = shared_dir() / "rules" / "elastic-prebuilt-other"
    loaded = load_rules([root / "rules" / "windows",
                         root / "rules_building_block"]).rules
    found = tuple(r for r in loaded if r.type == "query" and "windows" in r.query)
    assert len(found) > 40, len(found)
    return found


def _literals(query: ast.Query) -> list[str]:
    found: list[str] = []
    for event_query in query.event_queries():
        if event_query.category:
            found.append(event_query.category)
        for node in ast.walk(event_query.condition):
            if isinstance(node, ast.Literal) and isinstance(node.value, str):
                found.append(node.value)
            elif isinstance(node, ast.TextMatch):
                found.append(node.query)
    return found or ["x"]


@st.composite
def value_for(draw: st.DrawFn, literals: list[str]) -> Any:
    """A value close to the query's constants: case flips, wildcards filled, escapes."""
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return draw(st.integers(-5, 5000))
    if kind == 1:
        return draw(st.booleans())
    if kind == 2:
        return draw(st.text(max_size=8))
    text = draw(st.sampled_from(literals))
    filler = draw(st.sampled_from(["", "a", "Zq", "\\", "/", "é", "K"]))
    text = text.replace("*", filler).replace("?", filler[:1] or "b")
    if draw(st.booleans()):
        text = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in text)
    if kind == 6:
        return [text, draw(st.text(max_size=3))]
    return text


def _set(event: dict[str, Any], name: str, value: Any, nested: bool) -> None:
    if not nested:
        event[name] = value
        return
    parts = name.split(".")
    target = event
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[parts[-1]] = value


def _field_literals(query: ast.Query) -> dict[str, list[Any]]:
    """Per field, the constants the query compares it with (==, :, in, like, regex, the
    first argument of a string function): values drawn from these make stages match."""
    found: dict[str, list[Any]] = {}
    for event_query in query.event_queries():
        for node in ast.walk(event_query.condition):
            field: Any = None
            values: list[Any] = []
            if isinstance(node, ast.Comparison):
                pairs = [(node.left, node.right), (node.right, node.left)]
                for side, other in pairs:
                    if isinstance(side, ast.Field) and isinstance(other, ast.Literal):
                        field, values = side, [other.value]
            elif isinstance(node, ast.InSet) and isinstance(node.value, ast.Field):
                field = node.value
                values = [o.value for o in node.options if isinstance(o, ast.Literal)]
            elif isinstance(node, ast.Match) and isinstance(node.value, ast.Field):
                field, values = node.value, [p.value for p in node.patterns]
            elif isinstance(node, ast.TextMatch):
                field, values = node.value, [node.query.replace("*", "a")]
            elif isinstance(node, ast.FunctionCall) and node.args and isinstance(
                    node.args[0], ast.Field):
                field = node.args[0]
                values = [a.value for a in node.args[1:] if isinstance(a, ast.Literal)]
            if field is not None and values:
                found.setdefault(field.name, []).extend(v for v in values if v is not None)
    return found


_OTHER = "zz-not-a-constant"
_TEXT_FUNCTIONS = {"startswith", "endswith", "stringcontains"}


def _satisfy(data: st.DataObject, node: ast.Expr, positive: bool,
             out: dict[str, Any]) -> None:
    """Field values that make ``node`` true (``positive``) or false, as far as simple
    leaves go: and/or/not pick branches, ``==``/``:``/``in``/string functions get one of
    their constants (wildcards filled), their negations a value that is none of them.
    Fields already set keep their value (the first constraint on a field wins)."""
    if isinstance(node, ast.Not):
        _satisfy(data, node.operand, not positive, out)
        return
    if isinstance(node, ast.And | ast.Or):
        every = isinstance(node, ast.And) == positive
        if every:
            for operand in node.operands:
                _satisfy(data, operand, positive, out)
        else:
            chosen = data.draw(st.integers(0, len(node.operands) - 1))
            _satisfy(data, node.operands[chosen], positive, out)
        return
    field: Any = None
    wanted: Any = None
    if isinstance(node, ast.Comparison) and isinstance(node.left, ast.Field) and isinstance(
            node.right, ast.Literal) and node.op in ("==", "!=", ":"):
        field = node.left
        holds = positive if node.op != "!=" else not positive
        wanted = node.right.value if holds else _OTHER
    elif isinstance(node, ast.InSet) and isinstance(node.value, ast.Field):
        options = [o.value for o in node.options if isinstance(o, ast.Literal)]
        holds = positive != node.negated
        field = node.value
        wanted = data.draw(st.sampled_from(options)) if holds and options else _OTHER
    elif isinstance(node, ast.Match) and isinstance(node.value, ast.Field) and \
            node.kind != "regex":
        field = node.value
        pattern = data.draw(st.sampled_from([p.value for p in node.patterns]))
        wanted = str(pattern).replace("*", "a").replace("?", "b") if positive else _OTHER
    elif isinstance(node, ast.TextMatch):
        # The query's own text holds its terms in order (a wildcard's pieces, filled).
        field = node.value
        wanted = node.query.replace("*", "a") if positive else _OTHER
    elif isinstance(node, ast.FunctionCall) and node.name.lower() in _TEXT_FUNCTIONS and \
            len(node.args) == 2 and isinstance(node.args[0], ast.Field) and isinstance(
                node.args[1], ast.Literal):
        field = node.args[0]
        wanted = node.args[1].value if positive else _OTHER
    if field is not None and wanted is not None and field.name not in out:
        out[field.name] = wanted


def draw_rule_event(data: st.DataObject, rule: Rule,
                    literals: list[str]) -> tuple[Compiled, dict[str, Any]]:
    """The rule compiled, and an event whose fields get values near the rule's constants
    (so that stages do match: mostly each field's own constants), nested or dotted, with
    some stages' categories."""
    compiled = Compiled(rule.eql, SchemaResolver(None, "@timestamp", default=ecs_schema()),
                        "event.category")
    event: dict[str, Any] = {"@timestamp": "2024-05-01T08:00:00.000Z"}
    nested = data.draw(st.booleans())
    own = _field_literals(rule.eql)
    if data.draw(st.integers(0, 9)) < 6:
        # Built to satisfy one stage (its category too); the other fields left out or near
        # the constants.
        stage, _keys = data.draw(st.sampled_from(compiled.stage_nodes))
        wanted: dict[str, Any] = {}
        _satisfy(data, stage.condition, True, wanted)
        for name, value in wanted.items():
            _set(event, name, value, nested)
        if stage.category:
            _set(event, "event.category", [stage.category], nested)
        return compiled, event
    for field in rule.eql.fields():
        if data.draw(st.integers(0, 9)) < 8:
            mine = [v for v in own.get(field.name, []) if isinstance(v, str)]
            choices = mine if mine and data.draw(st.integers(0, 9)) < 8 else literals
            _set(event, field.name, data.draw(value_for(choices)), nested)
    categories = [q.category for q, _keys in compiled.stage_nodes if q.category]
    if categories and data.draw(st.integers(0, 9)) < 8:
        chosen = data.draw(st.sampled_from(categories))
        _set(event, "event.category", data.draw(st.sampled_from([[chosen], [chosen, "x"],
                                                                 chosen])), nested)
    return compiled, event


def reaches(seen: Counter[str], share: float) -> None:
    """A property test's examples reached its assertion often enough: ``seen`` counts the
    examples run and those in which some stage matched (the assertion's precondition)."""
    assert seen["examples"] > 0
    assert seen["matched"] >= share * seen["examples"], dict(seen)


@pytest.mark.parametrize("language", ["eql", "kuery"])
def test_prefilter_keeps_every_line_the_reference_matches(language: str) -> None:
    seen: Counter[str] = Counter()
    _prefilter_property(seen, corpus() if language == "eql" else kql_corpus())
    reaches(seen, 0.15)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def _prefilter_property(seen: Counter[str], rules: tuple[Rule, ...],
                        data: st.DataObject) -> None:
    rule = data.draw(st.sampled_from(rules))
    schema = ecs_schema()
    cnfs = query_cnfs(rule.eql, schema)
    compiled, event = draw_rule_event(data, rule, _literals(rule.eql))
    seen["examples"] += 1
    matched = [i for i in range(len(compiled.stage_nodes))
               if compiled.plans(event)[i].matches(event)]
    seen["matched"] += bool(matched)
    for index in matched:
        # Every JSON spelling of the event: orjson's, ASCII-escaped, and with escaped slashes.
        plain = orjson.dumps(event)
        escaped = json.dumps(event).encode()
        slashes = plain.replace(b"/", b"\\/")
        line_filter = LineFilter([cnfs[index]])
        for line in (plain, escaped, slashes):
            assert line_filter.line_stages(line) == [0], (rule.name, index, line)
            block = b'{"a":1}\n' + line + b"\n"
            assert [s for _a, _b, s in line_filter.candidates(block)] == [[0]]


def _synthetic(path: Path, seed: int, events: int, share: float, planted: int) -> None:
    generator = Generator(seed=seed, network_logon_share=share)
    docs = list(generator.events(events, planted))
    rng = random.Random(seed)
    lines = [orjson.dumps(d) for d in docs]
    # Adversarial spellings of planted attack lines: escapes hide literals from a byte search.
    for i in rng.sample(range(len(lines)), 3):
        lines[i] = json.dumps(docs[i]).replace("i", "\\u0069").encode()
    lines.insert(rng.randrange(len(lines)), b'{"broken": ')
    lines.insert(rng.randrange(len(lines)), b"[1, 2]")
    path.write_bytes(b"\n".join(lines) + b"\n")


def _documents(result: Any) -> list[Any]:
    return [(a.document, a.building_blocks) for a in result.alerts]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), share=st.sampled_from([0.0, 0.3, 0.6]),
       planted=st.sampled_from([40, 150]), gate=st.booleans(), rule_pick=st.integers(0, 10_000))
def test_fast_path_equals_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int,
                                    share: float, planted: int, gate: bool,
                                    rule_pick: int) -> None:
    # Small ranges and blocks so that files split across workers and blocks.
    monkeypatch.setattr(fast, "RANGE", 50_000)
    monkeypatch.setattr(fast, "BLOCK", 20_000)
    first = tmp_path / f"a{seed}.ndjson"
    _synthetic(first, seed, 1_500, share, planted)
    second = tmp_path / f"b{seed}.ndjson.gz"
    other = tmp_path / "other.ndjson"
    _synthetic(other, seed + 1, 400, share, 50)
    second.write_bytes(gzip.compress(other.read_bytes()))
    other.unlink()
    rng = random.Random(rule_pick)
    rules = [*bundled_rules(), *rng.sample(corpus()[1:], 12)]
    options = DetectOptions(now=NOW)
    paths = [first, second]
    reference_stats = ReadStats()
    expected = run_detection(rules, list(read_events(paths, reference_stats, ReadOptions())),
                             options=options)
    stats = ReadStats()
    got, _fast = fast.run_fast(rules, paths, stats, ReadOptions(), options, workers=2, gate=gate)
    assert _documents(got) == _documents(expected)
    assert [o.matches for o in got.outcomes] == [o.matches for o in expected.outcomes]
    # Bad lines are parsed (they hold no literal... or are opaque) only when candidates;
    # what is reported is a subset of the reference's, with the same places.
    reported = {str(b) for b in stats.bad_records}
    assert reported <= {str(b) for b in reference_stats.bad_records}


def test_fast_path_finds_the_planted_attacks(tmp_path: Path) -> None:
    path = tmp_path / "w.ndjson"
    generator = Generator(seed=5)
    with path.open("wb") as out:
        for doc in generator.events(4_000, 300):
            out.write(orjson.dumps(doc) + b"\n")
    result, stats = fast.run_fast(bundled_rules(), [path], ReadStats(), ReadOptions(),
                                  DetectOptions(now=NOW), workers=2)
    attacks = sum(p.fires for p in generator.planted)
    assert attacks and len(result.alerts) == attacks
    assert stats.lines_skipped > 3_000  # most lines were never parsed


# ------------------------------------------------------------------ many rules at once


@pytest.mark.parametrize("language", ["eql", "kuery"])
def test_field_check_passes_every_event_the_reference_matches(language: str) -> None:
    """The post-parse field check (a necessary condition) never rejects a matching event."""
    seen: Counter[str] = Counter()
    _field_check_property(seen, corpus() if language == "eql" else kql_corpus())
    reaches(seen, 0.15)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def _field_check_property(seen: Counter[str], rules: tuple[Rule, ...],
                          data: st.DataObject) -> None:
    rule = data.draw(st.sampled_from(rules))
    schema = ecs_schema()
    checks = build_checks(query_field_cnfs(rule.eql, schema, "event.category"), schema)
    compiled, event = draw_rule_event(data, rule, _literals(rule.eql))
    seen["examples"] += 1
    for index in range(len(compiled.stage_nodes)):
        check = checks[index]
        if compiled.plans(event)[index].matches(event):
            seen["matched"] += 1
            if check is not None:
                assert check(FieldCache(event)), (rule.name, index, event)


def _custom(text: str, name: str) -> Rule:
    seed = bundled_rules()[0]
    return replace(seed, name=name, rule_id=f"00000000-0000-4000-8000-{len(name):012d}",
                   query=text, tree=parse(text))


# Shapes the prebuilt Windows corpus lacks: until, missing stages, no maxspan.
CUSTOM = (
    """sequence by winlog.computer_name with maxspan=10m
       [authentication where event.action == "logon-failed"]
       [authentication where event.action == "logged-in"]
       until [authentication where event.action == "logged-out"]""",
    """sequence by host.name with maxspan=5m
       [process where event.type == "start" and process.name : "cmd.exe"]
       ![process where process.name : "conhost.exe"]
       [process where event.type == "start"]""",
    """sequence by winlog.logon.id
       [authentication where event.outcome == "success"]
       [iam where event.action == "service-installed"]""",
)


def _exceptions(rule: Rule) -> Any:
    if rule.rule_id.endswith("1") or rule.rule_id.endswith("5"):
        return lambda event: str(event.get("host", {}).get("name", "")).startswith("WS003")
    return None


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), share=st.sampled_from([0.0, 0.3]),
       cap=st.sampled_from([None, 1, 3]), rule_pick=st.integers(0, 10_000),
       compressed=st.booleans())
@example(seed=11, share=0.3, cap=None, rule_pick=5, compressed=True)
def test_fast_path_with_many_prebuilt_rules_equals_reference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, share: float,
        cap: int | None, rule_pick: int, compressed: bool) -> None:
    """Every prebuilt sequence (pivots, key gates), a sample of event queries, custom
    sequences with until and missing stages, max_signals and exceptions; the input plain
    (the byte scan) or gzipped (read by the workers, join keys sent with the events)."""
    monkeypatch.setattr(fast, "RANGE", 60_000)
    monkeypatch.setattr(fast, "BLOCK", 25_000)
    path = tmp_path / f"m{seed}.ndjson"
    _synthetic(path, seed, 1_200, share, 150)
    if compressed:
        packed = path.with_name(path.name + ".gz")
        packed.write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
        path = packed
    rng = random.Random(rule_pick)
    prebuilt = corpus()[1:]
    sequences = [r for r in prebuilt if isinstance(r.eql.body, ast.Sequence)]
    singles = [r for r in prebuilt if not isinstance(r.eql.body, ast.Sequence)]
    rules = [*bundled_rules(), *sequences, *rng.sample(singles, 40),
             *rng.sample(kql_corpus(), 15),
             *(_custom(text, f"custom {n}") for n, text in enumerate(CUSTOM))]
    options = DetectOptions(now=NOW, max_signals=cap)
    expected = run_detection(rules, list(read_events([path], ReadStats(), ReadOptions())),
                             options=options, exceptions_for=_exceptions)
    got, stats = fast.run_fast(rules, [path], ReadStats(), ReadOptions(), options,
                               exceptions_for=_exceptions, workers=2)
    assert _documents(got) == _documents(expected)
    assert [(o.matches, o.dropped_by_cap) for o in got.outcomes] == \
        [(o.matches, o.dropped_by_cap) for o in expected.outcomes]
    assert stats.gated_rules >= len(sequences)


# ------------------------------------------------------------------ line shapes, gate order


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.tuples(st.sampled_from([0, 3, 40, 700, 2000]),
                                st.sampled_from(["regular", "no-brace", "no-timestamp"])),
                      max_size=40),
       ending=st.sampled_from([b"\n", b"", b"}\n", b"\n\n"]),
       noise=st.tuples(st.integers(0, 100_000), st.sampled_from([b"\n", b"}", b"{", b"x\n{"])))
def test_line_shape_equals_the_counts(lines: list[tuple[int, str]], ending: bytes,
                                      noise: tuple[int, bytes]) -> None:
    """``_line_shape`` (a walk between newlines for long lines) gives the newline count and
    the regularity test of the two ``count`` passes it replaces."""
    parts = []
    for length, kind in lines:
        body = b'"x":"' + b"a" * length + b'"'
        if kind == "regular":
            parts.append(b'{"@timestamp":"2024",' + body + b"}")
        elif kind == "no-brace":
            parts.append(b'{"@timestamp":"2024",' + body)
        else:
            parts.append(b"{" + body + b"}")
    block = b"\n".join(parts) + ending
    at, extra = noise
    if block and at % 3 == 0:
        at %= len(block)
        block = block[:at] + extra + block[at:]
    newlines = block.count(b"\n")
    regular = (block.startswith(fast._REGULAR) and block.endswith(b"}\n")
               and block.count(b"}\n" + fast._REGULAR) == newlines - 1)
    assert fast._line_shape(block) == (newlines, regular)


def test_key_gate_before_the_field_check_keeps_the_reference_answer(tmp_path: Path) -> None:
    """In phase two the key gate runs before the field check; a key value that cannot be
    hashed (an object in a list) leaves the decision to the check, as before: the line
    below fails the check, so neither engine computes its keys."""
    rule = _custom("""sequence by user.name with maxspan=10m
       [authentication where event.action == "logon-failed"]
       [authentication where event.action == "logged-in" and user.domain == "CORP"]""",
                   "gate order")

    def doc(second: int, action: str, user: Any, domain: str = "CORP") -> bytes:
        return orjson.dumps({"@timestamp": f"2024-05-01T08:00:{second:02d}.000Z",
                             "event": {"category": "authentication", "action": action},
                             "user": {"name": user, "domain": domain}, "message": "alice CORP"})

    lines = [doc(1, "logon-failed", "alice"), doc(2, "logged-in", [{"n": "alice"}], "OTHER"),
             doc(3, "logged-in", "bob"), doc(4, "logged-in", "alice"),
             *(doc(5 + n, "logged-in", f"user{n}") for n in range(30))]
    path = tmp_path / "g.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    options = DetectOptions(now=NOW)
    expected = run_detection([rule], list(read_events([path], ReadStats(), ReadOptions())),
                             options=options)
    got, stats = fast.run_fast([rule], [path], ReadStats(), ReadOptions(), options, workers=2)
    assert stats.gated_rules == 1
    assert _documents(got) == _documents(expected)
    assert len(expected.alerts) == 1


@cache
def _big_clause_rules() -> tuple[Rule, ...]:
    """Rules with a stage clause of many atoms on one field (set look-ups, regex screens)."""
    schema = ecs_schema()
    return tuple(r for r in corpus() if any(
        len(clause) >= fieldcheck.SET_CLAUSE and len({n for n, _t, _c, _m in clause}) == 1
        for cnf in query_field_cnfs(r.eql, schema, "event.category") for clause in cnf))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_big_clause_forms_equal_the_atom_loop(data: st.DataObject) -> None:
    """A big clause tested by set look-ups (exact atoms) or behind a regex screen gives the
    atom loop's answer, on values near the rule's constants (holding or not)."""
    rule = data.draw(st.sampled_from(_big_clause_rules()))
    schema = ecs_schema()
    clauses = [clause for cnf in query_field_cnfs(rule.eql, schema, "event.category")
               for clause in cnf if len(clause) >= fieldcheck.SET_CLAUSE
               and len({name for name, _t, _c, _m in clause}) == 1]
    clause = data.draw(st.sampled_from(clauses))
    fast_check = fieldcheck.StageCheck.build((clause,), schema)
    saved = fieldcheck.SET_CLAUSE
    fieldcheck.SET_CLAUSE = 1 << 30
    try:
        loop_check = fieldcheck.StageCheck.build((clause,), schema)
    finally:
        fieldcheck.SET_CLAUSE = saved
    assert fast_check is not None and loop_check is not None
    assert fast_check.clauses[0][:2] != (None, None) and loop_check.clauses[0][:2] == (None, None)
    texts = [text.replace("\0", "*") for _n, text, _c, _m in clause]
    event: dict[str, Any] = {"@timestamp": "2024-05-01T08:00:00.000Z"}
    nested = data.draw(st.booleans())
    for name in {name for name, _t, _c, _m in clause}:
        if data.draw(st.integers(0, 9)) < 9:
            value = data.draw(value_for(texts))
            if isinstance(value, str) and data.draw(st.booleans()):
                value = data.draw(st.sampled_from(["", "x", "C:\\"])) + value + data.draw(
                    st.sampled_from(["", ".exe", "\\y"]))
            _set(event, name, value, nested)
    assert fast_check(FieldCache(event)) == loop_check(FieldCache(event)), (rule.name, event)


def test_parquet_input_with_many_rules_equals_reference(tmp_path: Path) -> None:
    """Parquet rows go through the workers' JSON-line screen (more than 8 stages)."""
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    from vigil.synth import write_ndjson

    source = tmp_path / "lake.ndjson"
    write_ndjson(source, 4_000, 11, planted_every=400)
    target = tmp_path / "lake.parquet"
    pq.write_table(pa_json.read_json(source), target, row_group_size=500)
    prebuilt = corpus()[1:]
    rules = [*bundled_rules(), *[r for r in prebuilt if isinstance(r.eql.body, ast.Sequence)],
             *random.Random(3).sample(prebuilt, 40)]
    options = DetectOptions(now=NOW)
    reference_stats = ReadStats()
    expected = run_detection(rules, list(read_events([target], reference_stats, ReadOptions())),
                             options=options)
    stats = ReadStats()
    got, _fast = fast.run_fast(rules, [target], stats, ReadOptions(), options, workers=2)
    assert _documents(got) == _documents(expected) and got.alerts
    assert [o.matches for o in got.outcomes] == [o.matches for o in expected.outcomes]
    assert stats.events == reference_stats.events


# ------------------------------------------------------------------ vigil query

HUNTS = (
    *CUSTOM,
    'process where process.name : ("cmd.exe", "powershell.exe") and event.type == "start"',
    'authentication where source.ip : "10.*" and winlog.logon.type in~ ("network", "RemoteInteractive")',
    'any where event.code == "4697"',
    'sample by host.name [authentication where true] [iam where true]',
)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), size=st.sampled_from([None, 1, 4]),
       compressed=st.booleans())
def test_query_on_the_kept_events_equals_query_on_every_event(
        tmp_path: Path, seed: int, size: int | None, compressed: bool) -> None:
    """``vigil query``'s fast engine: ``search`` over the events ``kept_events`` keeps for
    the query (planned on search's own schema) returns what it returns over every event;
    prebuilt queries and hunts with until, missing stages, samples and ``size``."""
    from vigil.eql import search
    from vigil.eql.schema import open_schema

    path = tmp_path / f"h{seed}.ndjson"
    _synthetic(path, seed, 1_500, 0.3, 150)
    if compressed:
        packed = path.with_name(path.name + ".gz")
        packed.write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
        path = packed
    reference_stats = ReadStats()
    every = list(read_events([path], reference_stats, ReadOptions()))
    queries = [*HUNTS, *(r.query for r in random.Random(seed).sample(corpus()[1:], 6))]
    found = 0
    for text in queries:
        parsed = parse(text)
        hunt = Rule(rule_id="hunt", name="hunt", description="", query=text, tree=parsed)
        stats = ReadStats()
        _all, per_rule, _fast = fast.kept_events(
            [hunt], [path], stats, ReadOptions(), workers=2,
            schema_for=open_schema)
        expected = search(parsed, every, size=size)
        got = search(parsed, per_rule[0], size=size)
        assert [(m.events, m.join_keys) for m in got] == \
            [(m.events, m.join_keys) for m in expected], text
        assert stats.events == reference_stats.events
        found += len(expected)
    assert found


def test_bad_records_of_mixed_inputs_are_reported_in_input_order(tmp_path: Path) -> None:
    """Files read by the byte scan and by the workers' readers: the same bad-record lines,
    in the order the reference reads the files."""
    example = (Path(__file__).parents[2] / "examples" / "windows-security.ndjson").read_bytes()
    (tmp_path / "a.ndjson").write_bytes(
        example[:30_000] + b'\n{"@timestamp":"2024-05-01T08:00:00Z","event":{"code"\n[1,2]\n'
        b'{"@timestamp":"not a date","x":1}\n\xff\xfe broken\n')
    (tmp_path / "b.evtx").write_bytes(b"not evtx at all")
    (tmp_path / "c.ndjson.gz").write_bytes(gzip.compress(example)[:20_000])
    (tmp_path / "d.ndjson").write_bytes(b'{"@timestamp":"2024-05-01T08:00:00Z"}\n{oops}\n')
    reference_stats = ReadStats()
    list(read_events([tmp_path], reference_stats, ReadOptions()))
    stats = ReadStats()
    fast.run_fast(list(bundled_rules()), [tmp_path], stats, ReadOptions(),
                  DetectOptions(now=NOW), workers=2)
    assert [str(b) for b in stats.bad_records] == [str(b) for b in reference_stats.bad_records]
    assert len(reference_stats.bad_records) >= 7


def test_fast_path_equals_reference_for_every_rule_type_on_the_samples() -> None:
    """KQL query, threshold and new terms rules (Windows and cross-platform) over the real
    samples: the fast path's alerts are the reference's, document for document."""
    root = shared_dir() / "rules" / "elastic-prebuilt-other" / "rules"
    rules = [r for r in load_rules([root / "windows", root / "cross-platform"]).rules
             if r.type in ("query", "threshold", "new_terms")]
    assert {r.type for r in rules} == {"query", "threshold", "new_terms"}
    samples = [shared_dir() / "samples"]
    options = DetectOptions(now=NOW)
    expected = run_detection(rules, list(read_events(samples, ReadStats(), ReadOptions())),
                             options=options)
    got, _stats = fast.run_fast(rules, samples, ReadStats(), ReadOptions(), options,
                                workers=2)
    assert len(expected.alerts) > 10  # query rules fire on the samples, threshold ones too
    assert {a.rule.type for a in expected.alerts} >= {"query", "threshold"}
    assert _documents(got) == _documents(expected)
