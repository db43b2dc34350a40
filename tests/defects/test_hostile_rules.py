"""A hostile rule is refused where it is loaded, with its file:line:column (issue 13, item
15): a pattern of 3,000 wildcards (seconds per event), a chain of 5,000 ``+`` (it parsed,
then the compiler's recursion died in detect), TOML nested thousands deep (the validator
crashed). Every prebuilt rule stays within the limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, shared_dir
from tests.test_cli import vigil
from vigil.rules import load_rules

BUNDLED = (REPO / "src" / "vigil" / "rules" / "bundled" /
           "lateral_movement_remote_service_installed_winlog.toml").read_text(encoding="utf-8")


def _with_query(tmp_path: Path, query: str) -> Path:
    start = BUNDLED.index("query = '''")
    end = BUNDLED.index("'''", start + 12) + 3
    path = tmp_path / "hostile.toml"
    path.write_text(BUNDLED[:start] + "query = '''\n" + query + "\n'''" + BUNDLED[end:],
                    encoding="utf-8")
    return path


@pytest.mark.parametrize(("query", "reason"), [
    ('process where process.name : "' + "*ab" * 3000 + '"', "3,000 literal parts"),
    ("process where process.pid == " + " + ".join(["1"] * 5000), "nested too deeply"),
])
def test_hostile_query_is_refused_with_its_position(tmp_path: Path, query: str,
                                                    reason: str) -> None:
    path = _with_query(tmp_path, query)
    line = BUNDLED[:BUNDLED.index("query = '''")].count("\n") + 2
    result = vigil("rules", "validate", path)
    assert result.returncode == 2
    assert f"hostile.toml:{line}:" in result.stderr and reason in result.stderr
    detect = vigil("detect", REPO / "examples", "--rule", path)
    assert "Traceback" not in detect.stderr and "RecursionError" not in detect.stderr


def test_deeply_nested_toml_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "nested.toml"
    path.write_text(BUNDLED + "\n[x]\nb = " + "[" * 3000 + "]" * 3000 + "\n", encoding="utf-8")
    result = vigil("rules", "validate", path)
    assert result.returncode == 2
    assert "nested too deeply" in result.stderr and "Traceback" not in result.stderr


def test_every_prebuilt_rule_is_within_the_limits() -> None:
    rules = shared_dir() / "rules" / "elastic-prebuilt" / "rules"
    result = load_rules([rules])
    assert len(result.rules) > 900
    assert not result.errors, [str(e) for e in result.errors][:3]
