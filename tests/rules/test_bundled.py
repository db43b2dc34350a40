"""The seed rule ships with the package, exactly as the seed file has it, at version 108."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tests.conftest import shared_dir
from vigil.eql import parse
from vigil.rules import (
    Rule,
    bundled_rules,
)
from vigil.rules.render import (
    LOGON_ID_NOTE,
    joins_on_logon_id,
    render_rule,
    render_rule_list,
    rule_list_rows,
    rule_markdown,
)

SEED_ID = "d33ea3bf-9a11-463e-bd46-f648f2a0f4b1"
BUNDLED = (Path(__file__).resolve().parents[2] / "src" / "vigil" / "rules" / "bundled"
           / "lateral_movement_remote_service_installed_winlog.toml")


def _seed_file() -> dict[str, Any]:
    path = shared_dir() / "seed" / "lateral_movement_remote_service_installed_winlog.v108.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def seed() -> Rule:
    rules = bundled_rules()
    assert [r.rule_id for r in rules] == [SEED_ID]
    return rules[0]


def test_bundled_seed_equals_seed_file(seed: Rule) -> None:
    document = _seed_file()
    expected = document["rule"]
    assert seed.query == expected["query"]
    assert seed.eql == parse(expected["query"])
    assert seed.name == expected["name"]
    assert seed.description == expected["description"]
    assert seed.note == expected["note"]
    assert seed.index == tuple(expected["index"])
    assert seed.tags == tuple(expected["tags"])
    assert seed.from_ == expected["from"] == "now-9m"
    assert seed.severity == expected["severity"]
    assert seed.risk_score == expected["risk_score"]
    assert seed.author == tuple(expected["author"])
    assert seed.license == expected["license"]
    assert [t.to_dict() for t in seed.threat] == expected["threat"]
    assert dict(seed.metadata) == document["metadata"]


def test_bundled_file_differs_from_seed_only_by_version() -> None:
    seed_text = (shared_dir() / "seed"
                 / "lateral_movement_remote_service_installed_winlog.v108.toml").read_text()
    bundled_text = BUNDLED.read_text()
    added = [line for line in bundled_text.splitlines() if line not in seed_text.splitlines()]
    assert [a for a in added if not a.startswith("#")] == ["version = 108"]
    bundled = tomllib.loads(bundled_text)
    del bundled["rule"]["version"]
    assert bundled == tomllib.loads(seed_text)


def test_bundled_seed_version_and_defaults(seed: Rule) -> None:
    assert seed.version == 108
    assert seed.type == seed.language == "eql"
    assert seed.interval == "5m" and seed.interval_delta == timedelta(minutes=5)
    assert seed.to == "now" and seed.max_signals == 100
    assert seed.look_back == timedelta(minutes=9)
    assert seed.additional_look_back == timedelta(minutes=4)
    start = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert seed.from_math.resolve(start) == start - timedelta(minutes=9)
    assert seed.to_math.resolve(start) == start
    assert seed.timestamp_override is None and seed.tiebreaker_field is None
    assert seed.building_block_type is None and seed.exceptions_list == ()
    assert seed.source.bundled and seed.source.format == "toml"
    assert seed.eql.kind == "sequence"
    assert seed.join_fields() == ("winlog.logon.id", "winlog.computer_name")
    assert [(t.tactic.id, [x.id for x in t.techniques]) for t in seed.threat] == [
        ("TA0008", ["T1021"]), ("TA0003", ["T1543"])]
    assert seed.threat[1].techniques[0].subtechniques[0].id == "T1543.003"


def test_rule_show_renders_everything(seed: Rule) -> None:
    text = rule_markdown(seed)
    for expected in ("# Remote Windows Service Installed", "version 108", "severity **medium**",
                     "risk score 47", "`winlogbeat-*`", "`logs-system.*`", "TA0008 Lateral Movement",
                     "T1543.003 Windows Service", "Runs every **5m**", "`now-9m`",
                     "Maximum alerts per run: 100", "```eql", "sequence by winlog.logon.id",
                     "## Investigation guide", "### Possible investigation steps",
                     "elastic/integrations#20004", "--logon-id elastic", "TargetLogonId"):
        assert expected in text, expected
    assert joins_on_logon_id(seed) and LOGON_ID_NOTE in text
    console = Console(width=100, record=True, color_system=None)
    console.print(render_rule(seed))
    shown = console.export_text()
    assert "Investigating Remote Windows Service Installed" in shown
    assert "## " not in shown  # headings rendered, not raw Markdown


def test_rule_show_neutralises_control_characters(seed: Rule) -> None:
    from dataclasses import replace

    evil = replace(seed, name="evil\x1b]8;;http://x\x07name", note="guide\x1b[2J")
    text = rule_markdown(evil)
    assert "\x1b" not in text and "\x07" not in text


def test_rule_list(seed: Rule) -> None:
    rows = rule_list_rows([seed])
    assert rows == [(SEED_ID, "Remote Windows Service Installed", "108", "medium", "47",
                     "eql sequence", "Lateral Movement, Persistence", "bundled")]
    console = Console(width=200, record=True, color_system=None)
    console.print(render_rule_list([seed]))
    assert "Remote Windows Service Installed" in console.export_text()


def test_find_rule(seed: Rule) -> None:
    from vigil.rules import find_rule

    assert find_rule([seed], SEED_ID) is seed
    assert find_rule([seed], "d33ea3bf") is seed
    assert find_rule([seed], "remote windows service installed") is seed
    assert find_rule([seed], "d33") is None and find_rule([seed], "nope") is None


def test_rules_are_hashable_values(seed: Rule) -> None:
    assert {seed, bundled_rules()[0]} == {seed}
