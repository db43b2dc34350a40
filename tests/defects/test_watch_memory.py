"""watch reads a backlog in bounded pieces and keeps only what a window still to run can
reach (issue 13, item 16, watch part): a 60 MB file of old events is read with memory far
below what holding it would take (before: 424 MB for this file; now about 120 MB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.defects.peak import vigil_with_peak
from vigil.synth import write_ndjson


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_a_backlog_is_read_with_bounded_memory(tmp_path: Path) -> None:
    backlog = tmp_path / "backlog.ndjson"
    write_ndjson(backlog, 60_000, seed=3)
    assert backlog.stat().st_size > 50 << 20
    result, peak_kb = vigil_with_peak("watch", "--once", "--store", tmp_path / "alerts.db",
                                      backlog)
    assert "done" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert peak_kb < 250 * 1024, f"peak RSS {peak_kb} KB for a 60 MB backlog"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_replay_memory_follows_what_the_rules_match(tmp_path: Path) -> None:
    """replay keeps the events some rule can match, not the input (before: 891 MB for a
    150 MB file, now 51 MB); here a 60 MB file."""
    logs = tmp_path / "logs.ndjson"
    write_ndjson(logs, 60_000, seed=3)
    result, peak_kb = vigil_with_peak("replay", logs, "--store", tmp_path / "alerts.db",
                                      "--from", "2024-05-01T00:00Z", "--to", "2024-05-02T00:00Z")
    assert "new alert(s)" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert peak_kb < 150 * 1024, f"peak RSS {peak_kb} KB for a 60 MB input"
