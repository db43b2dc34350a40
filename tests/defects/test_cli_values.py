"""Values that cannot work are usage errors before any work (issue 13, items 15 and 18):
exit 2 with the option named, never a traceback, a spinning core or a silent empty run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import EXAMPLES, vigil

FROM, TO = "2024-05-01T00:00Z", "2024-05-02T00:00Z"


@pytest.mark.parametrize(("args", "hint"), [
    (["detect", "{ex}", "--max-signals", "0"], "--max-signals"),
    (["detect", "{ex}", "--max-signals", "-1"], "--max-signals"),
    (["detect", "{ex}", "--from", TO, "--to", FROM], "later than --to"),
    (["detect", "{ex}", "--from", "99999-01-01T00:00Z"], "--from"),
    (["detect", "{ex}", "--format", "ndjson", "--output", "{tmp}/no/such/dir/a.ndjson"],
     "--output"),
    (["detect", "{ex}", "--format", "ndjson", "--output", "{tmp}"], "is a folder"),
    (["convert", "{ex}", "--output", "{tmp}/no/such/dir/a.ndjson"], "--output"),
    (["replay", "{ex}", "--store", "{tmp}/r.db", "--from", TO, "--to", FROM], "later than"),
    (["replay", "{ex}", "--store", "{tmp}/r.db", "--from", FROM, "--to", TO,
      "--interval", "999999999999d"], "--interval"),
    (["watch", "{ex}", "--store", "{tmp}/w.db", "--once", "--poll", "0"], "--poll"),
    (["watch", "{ex}", "--store", "{tmp}/w.db", "--once", "--poll", "nan"], "--poll"),
])
def test_bad_values_are_usage_errors(tmp_path: Path, args: list[str], hint: str) -> None:
    filled = [a.replace("{ex}", str(EXAMPLES)).replace("{tmp}", str(tmp_path)) for a in args]
    result = vigil(*filled)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert hint in " ".join(result.stderr.replace("\u2502", " ").split()), result.stderr
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "w.db").exists()


RULE = (EXAMPLES.parent / "src" / "vigil" / "rules" / "bundled" /
        "lateral_movement_remote_service_installed_winlog.toml")


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("interval", '"999999999999d"', "longer than 366 days"),
    ("from", '"now-99999999y"', "reaches more than 100 years"),
    ("max_signals", "100000000000000000000", "must be between 1 and"),
])
def test_rule_limits_are_checked_where_the_rule_is_loaded(tmp_path: Path, key: str,
                                                          value: str, reason: str) -> None:
    text = RULE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith(f"{key} =")]
    at = lines.index("[rule]") + 1
    lines.insert(at, f"{key} = {value}")
    rule = tmp_path / "huge.toml"
    rule.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = vigil("rules", "validate", rule)
    assert result.returncode == 2, result.stdout
    assert reason in result.stderr and f"huge.toml:{at + 1}:" in result.stderr, result.stderr
    replay = vigil("replay", EXAMPLES, "--store", tmp_path / "r.db", "--rule", rule,
                   "--from", FROM, "--to", TO)
    assert "Traceback" not in replay.stderr
