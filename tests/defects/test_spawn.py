"""The fast engine works where processes cannot fork (issue 13, item 20): Windows starts
workers with "spawn"; forced here on Linux, detect and query give what "fork" gives, on
NDJSON (the byte scan, both phases of the key gate) and EVTX (the workers' reader)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_dir
from tests.test_cli import EXAMPLES


def _timeless(doc: dict[str, object]) -> dict[str, object]:
    """An alert document without the run's own time (the alert's @timestamp and the fields
    that repeat it)."""
    now = doc["@timestamp"]
    return {key: value for key, value in doc.items() if value != now}


def _vigil(method: str, *args: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VIGIL_START_METHOD=method)
    return subprocess.run([sys.executable, "-m", "vigil.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("source", ["example", "evtx", "kql"])
def test_detect_with_spawned_workers_equals_fork(tmp_path: Path, source: str) -> None:
    if source == "example":
        args: list[object] = [EXAMPLES]
    elif source == "kql":
        # KQL query, threshold and new terms rules (text matches, field patterns) in workers
        args = [shared_dir() / "samples", "--rule",
                shared_dir() / "rules" / "elastic-prebuilt-other" / "rules"]
    else:
        args = [shared_dir() / "samples" / "evtx",
                "--rule", shared_dir() / "rules" / "elastic-prebuilt" / "rules" / "windows"]
    outputs = {}
    for method in ("fork", "spawn"):
        out = tmp_path / f"{method}.ndjson"
        result = _vigil(method, "detect", *args, "--engine", "fast", "--format", "ndjson",
                        "--output", out)
        assert result.returncode == 0, result.stderr
        outputs[method] = [_timeless(json.loads(line)) for line in out.open(encoding="utf-8")]
    assert outputs["fork"], "no alert: nothing is compared"
    assert outputs["spawn"] == outputs["fork"]


def test_query_with_spawned_workers(tmp_path: Path) -> None:
    query = 'iam where event.action == "service-installed"'
    fork = _vigil("fork", "query", query, EXAMPLES, "--format", "ndjson")
    spawn = _vigil("spawn", "query", query, EXAMPLES, "--format", "ndjson")
    assert fork.returncode == 0 and spawn.returncode == 0, spawn.stderr
    assert fork.stdout and spawn.stdout == fork.stdout


def test_spawned_workers_rebuild_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """In process: with "spawn" forced, the workers get no forked job and rebuild it from
    its spec; the alerts equal the reference engine's."""
    from vigil.backends import fast
    from vigil.detect.run import DetectOptions, run_detection
    from vigil.events import ReadOptions, ReadStats, read_events
    from vigil.rules import bundled_rules

    monkeypatch.setenv("VIGIL_START_METHOD", "spawn")
    assert fast.start_method() == "spawn"
    options = DetectOptions(now="2024-06-01T00:00:00.000Z")
    rules = bundled_rules()
    expected = run_detection(rules, list(read_events([EXAMPLES], ReadStats(), ReadOptions())),
                             options=options)
    got, _stats = fast.run_fast(rules, [EXAMPLES], ReadStats(), ReadOptions(), options,
                                workers=2)
    assert [a.document for a in got.alerts] == [a.document for a in expected.alerts]
    assert len(got.alerts) == 3
