"""``vigil rules coverage``: which rules can fire on the data at hand, and why the others cannot.

Real NDJSON files and rule TOML files in tmp_path, read by vigil's readers and loaders; the
command line as a real process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import REPO, shared_dir
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.rules import bundled_rules, load_rules
from vigil.rules.coverage import Coverage, DataProfile, assess, summary_line

SECURITY = {"type": "logs", "dataset": "system.security", "namespace": "default"}
LOGON = {
    "@timestamp": "2024-05-01T08:00:00.000Z",
    "event": {"category": ["authentication"], "type": ["start"], "action": "logged-in",
              "outcome": "success", "code": "4624"},
    "winlog": {"computer_name": "WS1", "event_id": "4624",
               "logon": {"type": "Network", "id": "0x1d2e"},
               "event_data": {"TargetLogonId": "0x1d2e", "LogonType": "3"}},
    "source": {"ip": "10.0.0.5"},
    "host": {"name": "WS1"},
    "data_stream": SECURITY,
}
SERVICE = {
    "@timestamp": "2024-05-01T08:00:10.000Z",
    "event": {"category": ["iam"], "type": ["admin"], "action": "service-installed",
              "code": "4697"},
    "winlog": {"computer_name": "WS1", "event_id": "4697", "logon": {"id": "0x1d2e"},
               "event_data": {"SubjectLogonId": "0x1d2e", "ServiceName": "evil",
                              "ServiceFileName": "C:\\Windows\\evil.exe"}},
    "host": {"name": "WS1"},
    "data_stream": SECURITY,
}

RULE = """\
[metadata]
creation_date = "2025/01/01"
maturity = "production"
updated_date = "2025/01/01"

[rule]
author = ["vigil tests"]
description = "A coverage test rule."
license = "Apache-2.0"
name = "{name}"
risk_score = 21
rule_id = "{rule_id}"
severity = "low"
type = "eql"
language = "eql"
index = {index}
query = '''
{query}
'''
"""

DEFAULT_INDEX = ["winlogbeat-*", "logs-system.security*", "logs-windows.*"]


def vigil(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vigil.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def write_events(folder: Path, events: list[dict[str, Any]], name: str = "events.ndjson") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return folder


def write_rules(folder: Path, queries: dict[str, str],
                index: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number, (name, query) in enumerate(queries.items()):
        text = RULE.format(name=name, rule_id=f"00000000-0000-4000-8000-{number:012d}",
                           index=json.dumps(index or DEFAULT_INDEX), query=query)
        (folder / f"rule_{number}.toml").write_text(text, encoding="utf-8")
    return folder


def profile_of(folder: Path) -> DataProfile:
    stats = ReadStats()
    profile = DataProfile().add_all(read_events([folder], stats, ReadOptions()))
    assert stats.events and not stats.bad_total
    return profile


def coverage(tmp_path: Path, queries: dict[str, str], index: list[str] | None = None,
             events: list[dict[str, Any]] | None = None,
             index_all: bool = False) -> dict[str, Coverage]:
    data = write_events(tmp_path / "data", events or [LOGON, SERVICE])
    loaded = load_rules([write_rules(tmp_path / "rules", queries, index)])
    assert not loaded.errors, loaded.errors
    results = assess(loaded.rules, profile_of(data), index_all=index_all)
    return {r.rule.name: r for r in results}


def test_a_rule_whose_stage_the_data_can_satisfy_can_fire(tmp_path: Path) -> None:
    found = coverage(tmp_path, {
        "logon": 'authentication where winlog.logon.type : "Network" and source.ip != null',
        "service": 'iam where event.action == "service-installed" and '
                   'winlog.event_data.ServiceFileName : "*.exe"',
    })
    assert found["logon"].can_fire and found["logon"].reasons == ()
    assert found["logon"].indices == ("logs-system.security-default",)
    assert found["service"].can_fire


def test_a_category_the_data_lacks_is_the_reason(tmp_path: Path) -> None:
    found = coverage(tmp_path, {"proc": 'process where process.name : "psexesvc.exe"'})
    assert not found["proc"].can_fire
    assert found["proc"].reasons == ("no process events in logs-system.security-default",)


def test_an_absent_field_is_named(tmp_path: Path) -> None:
    found = coverage(tmp_path, {
        "parent": 'iam where event.action == "service-installed" and '
                  'process.parent.name : "services.exe"',
        "present": 'iam where winlog.event_data.ServiceName : "evil"',
    })
    assert not found["parent"].can_fire
    assert found["parent"].reasons == (
        "field(s) process.parent.name never present in iam events of "
        "logs-system.security-default",)
    assert found["present"].can_fire


def test_a_negated_match_on_an_absent_field_is_no_requirement(tmp_path: Path) -> None:
    # Elasticsearch's must_not: x != "a" matches events without x (the compiler says so).
    found = coverage(tmp_path, {
        "ne": 'authentication where process.name != "a.exe"',
        "not in": 'authentication where process.name not in ("a.exe", "b.exe")',
        "not match": 'authentication where not process.name : "a*"',
        "eq": 'authentication where process.name == "a.exe"',
        "is null": "authentication where process.name == null",
        "not null": "authentication where process.name != null",
    })
    for name in ("ne", "not in", "not match", "is null"):
        assert found[name].can_fire, (name, found[name].reasons)
    for name in ("eq", "not null"):
        assert not found[name].can_fire
        assert "field(s) process.name never present" in found[name].reasons[0]


def test_an_or_is_possible_when_one_branch_is_and_names_the_cheapest_branch(
        tmp_path: Path) -> None:
    found = coverage(tmp_path, {
        "one branch": 'iam where process.name : "sc.exe" or '
                      'winlog.event_data.ServiceFileName : "*evil*"',
        "none": 'iam where (process.name : "sc.exe" and process.args : "create") or '
                'file.path : "*.sys"',
        "not and": 'iam where not (process.name : "sc.exe" and winlog.event_data.ServiceName '
                   ': "evil")',
        "not and true": 'iam where not (process.name == null and '
                        'winlog.event_data.ServiceName : "evil")',
        "not or true": 'iam where not (process.name == null or '
                       'winlog.event_data.ServiceName : "evil")',
    })
    assert found["one branch"].can_fire
    assert not found["none"].can_fire
    assert found["none"].reasons == (
        "field(s) file.path never present in iam events of logs-system.security-default",)
    # not (absent and present): the absent leaf is false, so the 'and' is false, 'not' true.
    assert found["not and"].can_fire
    # Without process.name, "process.name == null" is true: not (true and unknown) is
    # unknown, but not (true or unknown) is false whatever the service name.
    assert found["not and true"].can_fire
    assert found["not or true"].reasons == (
        "field(s) process.name never present in iam events of logs-system.security-default",)


def test_sequence_join_keys_are_required_unless_optional(tmp_path: Path) -> None:
    found = coverage(tmp_path, {
        "bundled shape": 'sequence by winlog.logon.id, winlog.computer_name with maxspan=1m '
                         '[authentication where winlog.logon.type : "Network"] '
                         '[iam where event.action == "service-installed"]',
        "absent key": "sequence by user.name [authentication where true] [iam where true]",
        "stage key": "sequence [authentication where true] by winlog.logon.id "
                     "[iam where true] by process.entity_id",
        "optional key": "sequence by ?user.name [authentication where true] [iam where true]",
    })
    assert found["bundled shape"].can_fire
    assert not found["absent key"].can_fire
    assert found["absent key"].reasons == (
        "stage 1 (authentication): field(s) user.name never present in authentication events "
        "of logs-system.security-default",
        "stage 2 (iam): field(s) user.name never present in iam events of "
        "logs-system.security-default")
    assert found["stage key"].reasons == (
        "stage 2 (iam): field(s) process.entity_id never present in iam events of "
        "logs-system.security-default",)
    assert found["optional key"].can_fire


def test_until_and_missing_stages_are_not_required(tmp_path: Path) -> None:
    found = coverage(tmp_path, {
        "until": "sequence by winlog.logon.id [authentication where true] [iam where true] "
                 "until [process where true]",
        "missing": "sequence by winlog.logon.id with maxspan=1m [authentication where true] "
                   "![process where true] [iam where true]",
        "positive": "sequence by winlog.logon.id [authentication where true] "
                    "[process where true]",
    })
    assert found["until"].can_fire and found["missing"].can_fire
    assert found["positive"].reasons == (
        "stage 2 (process): no process events in logs-system.security-default",)


def test_index_patterns_that_match_no_data(tmp_path: Path) -> None:
    query = {"q": "authentication where true"}
    defend = coverage(tmp_path / "a", query, index=["logs-endpoint.events.process-*"])["q"]
    assert defend.reasons == ("needs Elastic Defend data (logs-endpoint.*)",)
    other = coverage(tmp_path / "b", query,
                     index=["logs-endpoint.events.process-*", "winlogbeat-*"])["q"]
    assert other.reasons == ("no data for its indices (logs-endpoint.events.process-*, "
                             "winlogbeat-*)",)
    assert not other.indices
    everything = coverage(tmp_path / "c", query, index=["winlogbeat-*"], index_all=True)["q"]
    assert everything.can_fire


def test_the_profile_keeps_field_paths_per_index_and_category() -> None:
    profile = DataProfile().add_all([
        {"_index": "idx", "event.category": ["process", "network"],
         "dns": {"answers": [{"data": "1.2.3.4"}, {"type": None}]}, "a.b": {"c": 1},
         "gone": None, "empty": [], "nulls": [None], "blank": ""},
        {"_index": "idx", "event": {"category": "process"}, "process": {"name": "x"}},
        {"_index": "other"},
    ])
    groups = profile.indices["idx"]
    assert set(groups) == {"process", "network"}
    assert groups["process"].events == 2 and groups["network"].events == 1
    assert groups["network"].fields == {"_index", "event.category", "dns.answers.data",
                                        "a.b.c", "blank"}
    assert "process.name" in groups["process"].fields
    assert profile.indices["other"][None].events == 1
    data = profile.summary()
    assert data["idx"] == {"events": 2, "categories": {"network": 1, "process": 2}}
    assert data["other"] == {"events": 1, "categories": {"(none)": 1}}


def test_the_bundled_rule_can_fire_on_the_bundled_example() -> None:
    results = assess(bundled_rules(), profile_of(REPO / "examples"))
    assert [r.can_fire for r in results] == [True]
    assert summary_line(results) == "1 of 1 rules can fire on this data; 0 need data that is absent"


def test_cli_json_document(tmp_path: Path) -> None:
    data = write_events(tmp_path / "data", [LOGON, SERVICE])
    rules = write_rules(tmp_path / "rules", {
        "logon": "authentication where source.ip != null",
        "proc": "process where true",
    })
    result = vigil("rules", "coverage", data, "--rule", rules, "--rule", "d33ea3bf",
                   "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["summary"] == {"rules": 3, "can_fire": 2, "cannot_fire": 1,
                                   "need_elastic_defend": 0}
    verdicts = {r["name"]: r["verdict"] for r in document["rules"]}
    assert verdicts == {"logon": "can fire", "proc": "cannot fire",
                        "Remote Windows Service Installed": "can fire"}
    proc = next(r for r in document["rules"] if r["name"] == "proc")
    assert proc["reasons"] == ["no process events in logs-system.security-default"]
    assert document["data"] == {"logs-system.security-default": {
        "events": 2, "categories": {"authentication": 1, "iam": 1}}}


def test_cli_table_is_sorted_and_prints_hostile_names_inertly(tmp_path: Path) -> None:
    hostile = dict(SERVICE, _index="evil\x1b[2J[bold]idx[/bold]",
                   event={"category": ["[red]cat[/red]"]})
    data = write_events(tmp_path / "data", [LOGON, SERVICE, hostile])
    rules = write_rules(tmp_path / "rules", {"b proc": "process where true",
                                             "a proc": "process where true",
                                             "z logon": "authentication where true"})
    result = vigil("rules", "coverage", data, "--rule", rules, "--index-all")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out
    assert "[bold]idx[/bold]" in out and "[red]cat[/red]" in out
    assert out.index("z logon") < out.index("a proc") < out.index("b proc")
    assert "1 of 3 rules can fire on this data; 2 need data that is absent" in out


def test_cli_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    result = vigil("rules", "coverage", tmp_path / "nope")
    assert result.returncode == 2
    assert "no such file or folder" in result.stderr and result.stdout == ""


def test_prebuilt_windows_rules_on_the_evtx_samples() -> None:
    shared = shared_dir()
    rules = shared / "rules" / "elastic-prebuilt" / "rules" / "windows"
    samples = shared / "samples" / "evtx"
    result = vigil("rules", "coverage", samples, "--rule", rules, "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    found = document["rules"]
    summary = document["summary"]
    assert summary["rules"] == len(found) == summary["can_fire"] + summary["cannot_fire"]
    assert summary["can_fire"] == sum(r["verdict"] == "can fire" for r in found) >= 1
    assert all(r["reasons"] for r in found if r["verdict"] == "cannot fire")
    assert all(not r["reasons"] and r["indices"] for r in found if r["verdict"] == "can fire")
    assert sum(d["events"] for d in document["data"].values()) > 0
    # Sound: every rule that raises an alert on this data is one coverage says can fire.
    alerts = vigil("detect", samples, "--rule", rules, "--format", "ndjson")
    assert alerts.returncode == 0, alerts.stderr
    fired = {json.loads(line)["kibana.alert.rule.rule_id"]
             for line in alerts.stdout.splitlines() if line.strip()}
    can_fire = {r["id"] for r in found if r["verdict"] == "can fire"}
    assert fired and fired <= can_fire
