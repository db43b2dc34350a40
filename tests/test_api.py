"""The Python API as the README shows it: the README's own example is run and its printed
lines checked (issue 14)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO


def test_the_readme_example_runs_and_prints_what_it_says() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    result = subprocess.run([sys.executable, "-c", code.group(1)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["424 3 Remote Windows Service Installed", "0 3"]


def test_search_without_the_ecs_view_misses_the_raw_documents() -> None:
    """What ``ecs=True`` changes: the example's logon events as Elastic stored them
    (``winlog.logon.id`` is SubjectLogonId, 0x0) join nothing without the logon-id fix."""
    import orjson

    import vigil
    from vigil.eql import search

    raw = [orjson.loads(line) for line in
           (REPO / "examples" / "windows-security.ndjson").read_bytes().splitlines()]
    rule = vigil.load_rules()[0]
    assert len(search(rule.eql, raw)) == 0
    assert len(search(rule.eql, raw, ecs=True)) == 3
