"""The real corpus: every prebuilt EQL rule in ../shared must load, none skipped, no error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import shared_dir
from vigil.rules import LoadResult, load_rules

EXPECTED = 1024


def _corpus() -> Path:
    return shared_dir() / "rules" / "elastic-prebuilt"


@pytest.fixture(scope="module")
def result() -> LoadResult:
    return load_rules([_corpus()])


def test_all_prebuilt_rules_load(result: LoadResult) -> None:
    assert [str(e) for e in result.errors] == []
    assert result.skipped == ()
    assert len(result.rules) == EXPECTED
    assert len({r.rule_id for r in result.rules}) == EXPECTED


def test_corpus_query_positions_are_exact(result: LoadResult) -> None:
    # Every query's characters were located in its file, so EQL errors get file columns.
    for rule in result.rules:
        positions = rule.source.query_positions
        assert len(positions) == len(rule.query), rule.source.path
        lines = Path(rule.source.path).read_text(encoding="utf-8").splitlines()
        for char, (line, column) in zip(rule.query, positions, strict=True):
            if char != "\n":
                assert lines[line - 1][column - 1] == char, (rule.source.path, line, column)


def test_corpus_defaults_and_schedules(result: LoadResult) -> None:
    rules = {r.rule_id: r for r in result.rules}
    seed = rules["d33ea3bf-9a11-463e-bd46-f648f2a0f4b1"]
    assert seed.version == 1  # detection-rules TOML carries no version: Kibana's default
    assert seed.interval == "5m" and seed.to == "now" and seed.max_signals == 100
    for rule in rules.values():
        assert rule.look_back.total_seconds() > 0
        assert rule.interval_delta.total_seconds() > 0
        assert rule.eql.kind in ("event", "sequence", "sample")
    assert any(r.timestamp_override == "event.ingested" for r in rules.values())
    assert any(r.building_block_type == "default" for r in rules.values())
    assert any(r.event_category_override for r in rules.values())
