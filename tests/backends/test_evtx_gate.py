"""The EVTX record gate: skipping record types no stage can match changes no alert, no count
and no bad-record report; the abstract evaluator decides only on table-determined fields."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import evtx
import orjson
import pytest

from tests.conftest import shared_dir
from vigil.backends import fast
from vigil.backends.evtx_gate import (
    CHANNEL_CLASSES,
    DATA_FIELDS,
    DATA_KEYS,
    MAX_DATA_VERDICTS,
    MAX_TYPE_VERDICTS,
    MISSING,
    TABLE_FIELDS,
    EvtxGate,
    known_fields,
    stage_verdict,
)
from vigil.detect.indices import IndexSelector, index_of
from vigil.detect.run import DetectOptions, ecs_schema, run_detection
from vigil.eql.engine import Compiled, SchemaResolver
from vigil.eql.parser import parse
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.events.ecs import to_ecs
from vigil.events.evtx import (
    _HEAD,
    _TIME,
    ANY_TASK,
    event_data_of,
    named_data,
    read_evtx_file,
    record_type,
    winevent_of,
)
from vigil.events.records import RecordGates, mark_source
from vigil.rules import bundled_rules, load_rules
from vigil.rules.model import Rule

NOW = "2024-06-01T00:00:00.000Z"
SECURITY = CHANNEL_CLASSES[0]
AUDITING = "Microsoft-Windows-Security-Auditing"


def _compiled(text: str) -> Compiled:
    schema = ecs_schema()
    return Compiled(parse(text), SchemaResolver(None, "@timestamp", default=schema),
                    "event.category")


def _verdicts(text: str, channel_class: tuple[str, str], provider: str,
              event_id: int) -> list[bool | None]:
    compiled = _compiled(text)
    known = known_fields(channel_class, provider, event_id)
    return [stage_verdict(compiled, query, known) for query, _keys in compiled.stage_nodes]


def _gate(text: str, index: tuple[str, ...] = ()) -> EvtxGate:
    return EvtxGate([(_compiled(text), IndexSelector(index))])


# ------------------------------------------------------------------ the abstract evaluator


def test_table_fields_are_known_and_event_data_fields_are_not() -> None:
    known = known_fields(SECURITY, AUDITING, 4624)
    assert known["event.action"] == "logged-in"
    assert known["event.category"] == ["authentication"]
    assert known["winlog.channel"] == "Security"
    assert known["_index"] == "logs-system.security-default"
    assert "winlog.logon.type" not in known and "event.outcome" not in known
    # Outside the pipeline's table, event.action is the task name: not known from the id.
    assert "event.action" not in known_fields(SECURITY, AUDITING, 4999)
    assert "event.action" not in known_fields(CHANNEL_CLASSES[1], "Service Control Manager",
                                              7045)
    # A field the mapping never writes for the type is known to be missing.
    assert known_fields(CHANNEL_CLASSES[1], "Service Control Manager",
                        7045)["event.category"] is MISSING
    # Channels spelt differently keep winlog.channel unknown unless the mapping canonicalises.
    assert "winlog.channel" not in known_fields(CHANNEL_CLASSES[-1], "X", 1)


def test_logged_in_is_relevant_for_4624_not_for_4697() -> None:
    query = 'authentication where event.action == "logged-in"'
    assert _verdicts(query, SECURITY, AUDITING, 4624) == [True]
    assert _verdicts(query, SECURITY, AUDITING, 4697) == [False]
    gate = _gate(query)
    assert gate.relevant(AUDITING, 4624)
    assert not gate.relevant(AUDITING, 4697)
    assert not gate.relevant("Service Control Manager", 7045)


def test_unknown_fields_never_decide() -> None:
    query = 'process where process.name == "cmd.exe"'
    # The category decides against a logon, but never the unknown process.name.
    assert _verdicts(query, SECURITY, AUDITING, 4624) == [False]
    assert _verdicts(query, SECURITY, AUDITING, 4688) == [None]
    gate = _gate('any where process.name == "cmd.exe"')
    for provider, event_id in ((AUDITING, 4624), (AUDITING, 4697), ("Sysmon", 1), ("X", 7)):
        assert gate.relevant(provider, event_id)
    # not/or over unknowns stay unknown; a known false conjunct decides the and.
    assert _verdicts('any where not (process.name == "a" or user.name == "b")', SECURITY,
                     AUDITING, 4624) == [None]
    assert _verdicts('any where event.code == "4625" and process.name == "a"', SECURITY,
                     AUDITING, 4624) == [False]
    assert _verdicts('any where event.code == "4625" or process.name == "a"', SECURITY,
                     AUDITING, 4624) == [None]
    assert _verdicts('any where not event.code : "46*"', SECURITY, AUDITING, 4624) == [False]


def test_every_stage_counts_missing_and_until_included() -> None:
    seq = ('sequence by host.id with maxspan=1m '
           '[authentication where event.action == "logged-in"] '
           '![iam where event.action == "service-installed"] '
           '[process where event.code == "4688"] '
           'until [process where event.code == "4689"]')
    assert _verdicts(seq, SECURITY, AUDITING, 4697) == [False, True, False, False]
    assert _verdicts(seq, SECURITY, AUDITING, 4689) == [False, False, False, True]
    gate = _gate(seq)
    assert gate.relevant(AUDITING, 4697) and gate.relevant(AUDITING, 4689)
    assert not gate.relevant(AUDITING, 4625)


def test_the_task_decides_event_action() -> None:
    """event.action comes from the task (Winlogbeat's task name, or the security tables):
    with the task read from the record, a stage on event.action is decided per task."""
    query = 'any where event.action : "service-installed"'
    gate = _gate(query)
    assert not gate.relevant("Service Control Manager", 7040, 0)
    assert not gate.relevant("Service Control Manager", 7040, None)
    assert gate.relevant("Service Control Manager", 7040)  # any task: not decided
    assert gate.relevant(AUDITING, 4697, 12289)  # the security table names it


def test_gates_step_aside_when_a_stage_reads_nothing_they_know() -> None:
    assert _gate('any where process.name == "x.exe"').decides_nothing()
    assert not _gate('any where process.name == "x.exe" and false').decides_nothing()
    assert not _gate('any where event.code == "1" and process.name == "x"').decides_nothing()
    assert not _gate('process where process.name == "x.exe"').decides_nothing()
    # Only a rule that reads every channel class's index: else the gates still skip the
    # records of the other channels.
    assert not _gate('any where process.name == "x.exe"',
                     ("logs-endpoint.events.*",)).decides_nothing()
    assert not _gate('any where process.name == "x.exe"',
                     ("logs-windows.sysmon_operational-*",)).decides_nothing()
    assert _gate('any where process.name == "x.exe"',
                 ("logs-windows.*", "logs-system.*")).decides_nothing()
    plans = fast.plan_rules(list(bundled_rules()))
    assert not EvtxGate([(p.compiled, p.selector) for p in plans]).decides_nothing()


def test_type_verdicts_are_bounded() -> None:
    gate = _gate('process where event.code == "1"')
    for n in range(MAX_TYPE_VERDICTS):
        gate._cache[(f"P{n}", 1, 0)] = False
    assert gate.relevant("Some-Provider", 5, 0)  # kept unjudged, not probed
    assert ("Some-Provider", 5, 0) not in gate._cache


def test_index_patterns_select_channel_classes() -> None:
    query = 'any where event.code == "1"'
    assert _gate(query, ("logs-windows.sysmon_operational-*",)).relevant(
        "Microsoft-Windows-Sysmon", 1)
    assert not _gate(query, ("logs-endpoint.events.*",)).relevant("Microsoft-Windows-Sysmon", 1)
    assert not _gate(query, ("logs-system.security*",)).relevant(AUDITING, 2)


# ------------------------------------------------------------------ raw record types


def _data(system_tail: str) -> str:
    return _HEAD + system_tail


@pytest.mark.parametrize(("head", "expected"), [
    ('Microsoft-Windows-Security-Auditing","Guid":"5484"}},"EventID":4624,"Version":2',
     (AUDITING, 4624, ANY_TASK)),  # no Task in the head: any task
    ('Microsoft-Windows-Security-Auditing","Guid":"5484"}},"EventID":4624,"Version":2,'
     '"Level":0,"Task":12544,"Opcode":0,"Keywords":"0x8020000000000000"',
     (AUDITING, 4624, 12544)),
    ('P"}},"EventID":1,"Task":0', ("P", 1, 0)),
    ('P"}},"EventID":1,"Task":"12"', ("P", 1, ANY_TASK)),  # not a number: any task
    ('P"}},"EventID":1,"Level":"a,\\"Task\\":5","Task":7', ("P", 1, 7)),  # escaped quotes
    ('Service Control Manager","Guid":"{555}","EventSourceName":"x"}},"EventID":7045',
     ("Service Control Manager", 7045, ANY_TASK)),  # classic provider: Name is the provider
    ('DCOM","EventSourceName":"y"}},"EventID":{"#attributes":{"Qualifiers":0},"#text":10016}',
     ("DCOM", 10016, ANY_TASK)),
    ('P","Guid":"{5}","EventSourceName":"a\\"b"}},"EventID":1', None),
    ('P","EventSourceName":"a","Guid":"{5}"}},"EventID":1', None),  # another order: parsed
    ('Service Control Manager"}},"EventID":{"#attributes":{"Qualifiers":16384},"#text":7045},'
     '"Level":4', ("Service Control Manager", 7045, ANY_TASK)),
    ('P"}},"EventID":"4624","Level":"0"', ("P", 4624, ANY_TASK)),
    ('P"}},"EventID":"0x10"', None),
    ('P"}},"EventID":4624.0', None),
    ('P"}},"EventID":null', None),
    ('"}},"EventID":4624', None),  # empty Name: EventSourceName would be used
    ('P\\"Q"}},"EventID":1', None),  # escapes: read by the parser
    ('P"}},"EventID":1,"Execution":{"#attributes":{"ProcessID":4}}', None),  # nested
    ('P"}},"EventID":1}', None),  # System closed before TimeCreated
])
def test_record_type(head: str, expected: tuple[str, int, int] | None) -> None:
    assert record_type(head) == expected


def _record_texts(path: Path) -> Iterator[str]:
    """The JSON text of each record the bare parser gives (damaged ones passed over)."""
    items = evtx.PyEvtxParser(str(path)).records_json()
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except (RuntimeError, OSError):
            continue
        yield item["data"]


@cache
def _sample_records() -> tuple[str, ...]:
    return tuple(text for path in sorted((shared_dir() / "samples").rglob("*.evtx"))
                 for text in _record_texts(path))


def test_record_type_and_known_fields_agree_with_the_mapping() -> None:
    """On every sample record: the type read from the text is the parsed one, and every
    known table field has the value the real mapping gives."""
    typed = 0
    cache_: dict[tuple[str, str, int, int], dict[str, Any]] = {}
    with_task = 0
    for data in _sample_records():
        parsed = winevent_of(orjson.loads(data))
        if not data.startswith(_HEAD) or _TIME not in data:
            continue
        kind = record_type(data[len(_HEAD):data.index(_TIME)])
        if kind is None:
            continue
        typed += 1
        assert not isinstance(parsed, str)
        assert kind[:2] == (parsed.provider_name, parsed.event_id)
        assert kind[2] in (ANY_TASK, parsed.task)
        with_task += kind[2] != ANY_TASK
        channel = parsed.channel
        doc = to_ecs(parsed)
        for channel_class in CHANNEL_CLASSES:
            spellings = {c.lower() for c in channel_class}
            if channel.lower() in spellings or (channel_class is CHANNEL_CLASSES[-1] and all(
                    channel.lower() not in {c.lower() for c in other}
                    for other in CHANNEL_CLASSES[:-1])):
                break
        key = (channel_class[0], *kind)
        known = cache_.get(key)
        if known is None:
            known = cache_[key] = known_fields(channel_class, *kind)
        for path in TABLE_FIELDS:
            if path in known:
                value: Any = doc
                for part in path.split("."):
                    value = value.get(part, MISSING) if isinstance(value, dict) else MISSING
                assert value == known[path], (path, kind, channel)
    assert typed > 0.9 * len(_sample_records())
    assert with_task > 0.9 * typed


# ------------------------------------------------------------------ fast == reference


@cache
def _windows_rules() -> tuple[Rule, ...]:
    root = shared_dir() / "rules" / "elastic-prebuilt" / "rules" / "windows"
    return tuple(r for r in load_rules([root]).rules if r.language == "eql")


def _evtx_files() -> list[Path]:
    return sorted((shared_dir() / "samples").rglob("*.evtx"))


def _compare(rules: list[Rule], paths: list[Path], workers: int) -> None:
    options = DetectOptions(now=NOW)
    reference_stats = ReadStats()
    expected = run_detection(rules, list(read_events(paths, reference_stats, ReadOptions())),
                             options=options)
    stats = ReadStats()
    got, _fast = fast.run_fast(rules, paths, stats, ReadOptions(), options, workers=workers)
    assert [(a.document, a.building_blocks) for a in got.alerts] == \
        [(a.document, a.building_blocks) for a in expected.alerts]
    assert [o.matches for o in got.outcomes] == [o.matches for o in expected.outcomes]
    assert (stats.files, stats.events, stats.bytes, stats.files_failed) == (
        reference_stats.files, reference_stats.events, reference_stats.bytes,
        reference_stats.files_failed)
    assert [str(b) for b in stats.bad_records] == [str(b) for b in reference_stats.bad_records]
    assert stats.bad_by_reason == reference_stats.bad_by_reason


def test_seed_rule_fast_equals_reference_per_file() -> None:
    for path in _evtx_files():
        _compare(list(bundled_rules()), [path], workers=1)


def test_seed_rule_fast_equals_reference_all_files() -> None:
    _compare(list(bundled_rules()), _evtx_files(), workers=2)


def test_windows_prebuilt_rules_fast_equal_reference() -> None:
    _compare([*bundled_rules(), *_windows_rules()], _evtx_files(), workers=2)


def test_fast_equals_reference_when_the_gates_step_aside() -> None:
    text = 'any where process.name : "cmd.exe" or winlog.event_data.ServiceName : "*svc*"'
    anywhere = replace(bundled_rules()[0], name="any record", query=text, tree=parse(text),
                       rule_id="00000000-0000-4000-8000-000000000001")
    plans = fast.plan_rules([anywhere])
    assert EvtxGate([(p.compiled, p.selector) for p in plans]).decides_nothing()
    _compare([*bundled_rules(), anywhere], _evtx_files(), workers=2)


def test_gate_skips_most_sample_records_for_the_seed() -> None:
    plans = fast.plan_rules(list(bundled_rules()))
    gate = EvtxGate([(p.compiled, p.selector) for p in plans])
    skipped = sum(1 for data in _sample_records() if data.startswith(_HEAD) and _TIME in data
                  and (kind := record_type(data[len(_HEAD):data.index(_TIME)])) is not None
                  and not gate.relevant(*kind))
    assert skipped > 0.8 * len(_sample_records())


# ------------------------------------------------------------------ the EventData gate


def _security_4624(**data: Any) -> tuple[str, str, int, dict[str, Any]]:
    return "Security", AUDITING, 4624, dict(data)


def test_event_gate_reads_logon_type_and_address_for_the_seed() -> None:
    plans = fast.plan_rules(list(bundled_rules()))
    gate = EvtxGate([(p.compiled, p.selector) for p in plans])
    assert gate.relevant_event(*_security_4624(LogonType=3, IpAddress="10.0.0.1",
                                               TargetLogonId="0x1"))
    assert gate.relevant_event(*_security_4624(LogonType="3", IpAddress="fe80::1"))
    assert not gate.relevant_event(*_security_4624(LogonType=5, IpAddress="10.0.0.1"))
    assert not gate.relevant_event(*_security_4624(LogonType=3, IpAddress="-"))
    assert not gate.relevant_event(*_security_4624(LogonType=3))
    assert not gate.relevant_event(*_security_4624(LogonType=3, IpAddress="127.0.0.1"))
    # The mapping turns an IPv4-mapped address into IPv4: excluded as 127.0.0.1 is.
    assert not gate.relevant_event(*_security_4624(LogonType=3, IpAddress="::ffff:127.0.0.1"))
    # Not the security pipeline (another channel): the stage's fields are never set.
    assert not gate.relevant_event("ForwardedEvents", AUDITING, 4624,
                                   {"LogonType": 3, "IpAddress": "10.0.0.1"})
    # The service install stage reads fields outside DATA_FIELDS: undecided, kept.
    assert gate.relevant_event("Security", AUDITING, 4697, {"SubjectLogonId": "0x3e7"})


def test_event_gate_keeps_what_it_cannot_work_out() -> None:
    plans = fast.plan_rules(list(bundled_rules()))
    gate = EvtxGate([(p.compiled, p.selector) for p in plans])
    for n in range(MAX_DATA_VERDICTS):
        gate._data_cache[("Security", AUDITING, 4624, (str(n),))] = False
    assert gate.relevant_event(*_security_4624(LogonType=5, IpAddress="-"))


def test_named_data_and_data_fields_agree_with_the_mapping() -> None:
    """On every sample record: ``named_data`` is ``event_data_of`` restricted to DATA_KEYS,
    and the DATA_FIELDS (and table fields) known for the record's channel, type and those
    values have the values of the real mapping."""
    checked = 0
    cache_: dict[tuple[Any, ...], dict[str, Any]] = {}
    for data in _sample_records():
        record = orjson.loads(data)
        parsed = winevent_of(record)
        if isinstance(parsed, str):
            continue
        section = record["Event"].get("EventData")
        fixed = named_data(section, DATA_KEYS)
        full = event_data_of(section)
        assert fixed == {k: v for k, v in full.items() if k in DATA_KEYS}
        key = (parsed.channel, parsed.provider_name, parsed.event_id, tuple(sorted(fixed.items())))
        known = cache_.get(key)
        if known is None:
            known = cache_[key] = known_fields((parsed.channel, parsed.channel),
                                               parsed.provider_name, parsed.event_id,
                                               fixed=fixed)
        doc = to_ecs(parsed)
        for path in (*TABLE_FIELDS, *DATA_FIELDS):
            if path in known:
                value: Any = doc
                for part in path.split("."):
                    value = value.get(part, MISSING) if isinstance(value, dict) else MISSING
                assert value == known[path], (path, key)
                checked += path in DATA_FIELDS
    assert checked > 1000


@pytest.mark.parametrize("which", ["seed", "windows"])
def test_event_gate_rejects_only_records_no_stage_matches(which: str) -> None:
    """Every sample record the gates reject (by its type and task, or by its EventData) maps
    to a document no stage of any rule (whose index patterns accept it) matches; for the
    seed most kept logons are rejected, for the 391 rules a third of the records by type."""
    rules = list(bundled_rules()) if which == "seed" else [*bundled_rules(), *_windows_rules()]
    plans = fast.plan_rules(rules)
    gate = EvtxGate([(p.compiled, p.selector) for p in plans])
    rejected = by_type = 0
    for data in _sample_records():
        record = orjson.loads(data)
        parsed = winevent_of(record)
        if isinstance(parsed, str):
            continue
        if not gate.relevant(parsed.provider_name, parsed.event_id, parsed.task):
            by_type += 1
        elif gate.relevant_event(parsed.channel, parsed.provider_name, parsed.event_id,
                                 record["Event"].get("EventData"), parsed.task):
            continue
        rejected += 1
        doc = to_ecs(parsed)
        index = index_of(doc)
        for plan in plans:
            if plan.selector.accepts(index):
                assert not any(stage.matches(doc) for stage in plan.compiled.plans(doc)), (
                    plan.rule.name, parsed.event_id)
    if which == "seed":
        assert rejected - by_type > 500
    else:
        assert by_type > 0.25 * len(_sample_records())


@pytest.mark.parametrize("which", ["seed", "windows"])
def test_gated_reader_yields_exactly_the_records_the_gates_keep(which: str) -> None:
    """The reader decides from the text (record_type, the last record's head, the
    TimeCreated and depth checks) what the gates decide on the parsed record: per sample
    file, it yields the mapped records whose type and parsed EventData the gates keep, in
    order, and counts the others as read."""
    rules = list(bundled_rules()) if which == "seed" else [*bundled_rules(), *_windows_rules()]
    plans = fast.plan_rules(rules)
    gate = EvtxGate([(p.compiled, p.selector) for p in plans])
    gates = RecordGates(gate.relevant, gate.relevant_event)
    skipped_somewhere = 0
    for path in _evtx_files():
        expected = []
        usable = 0
        for text in _record_texts(path):
            record = orjson.loads(text)
            parsed = winevent_of(record)
            if isinstance(parsed, str):
                continue
            usable += 1
            if gate.relevant(parsed.provider_name, parsed.event_id, parsed.task) and \
                    gate.relevant_event(parsed.channel, parsed.provider_name, parsed.event_id,
                                        record["Event"].get("EventData"), parsed.task):
                doc = to_ecs(parsed)
                mark_source(doc, str(path), f"record {parsed.record_id}")
                expected.append(doc)
        stats = ReadStats()
        got = list(read_evtx_file(path, stats, ReadOptions(), gates))
        assert got == expected, path.name
        assert stats.events + len(got) == usable, path.name
        skipped_somewhere += usable - len(got)
    assert skipped_somewhere > 0


class _ReversePool:
    """imap_unordered that hands results back in reverse order (the worst case)."""

    def imap_unordered(self, function: Any, tasks: list[Any], chunksize: int = 1) -> Any:
        assert chunksize >= 1
        return reversed([function(task) for task in tasks])


def test_read_others_yields_in_input_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           ) -> None:
    paths = []
    for number, size in enumerate((3, 50, 1, 20, 7)):
        path = tmp_path / f"f{number}.bin"
        path.write_bytes(b"x" * size)
        paths.append(path)
    monkeypatch.setattr(fast, "_read_other",
                        lambda path: (path.encode(), [], fast.ReadStats()))
    got = [data.decode() for data, _matched, _stats in fast._read_others(_ReversePool(), paths, 2)]
    assert got == [str(path) for path in paths]
