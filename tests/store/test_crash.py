"""kill -9 at any moment loses nothing and duplicates nothing (issue 6, robustness).

A subprocess stores rule runs in a loop; the test kills it with SIGKILL at random moments,
reads the store while it writes (a reader must never see a half-stored run), restarts it,
and at the end finds every run stored exactly once with all its alerts.
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.store.crash_writer import BASE, PER_RUN, STEP, run_docs

REPO = Path(__file__).resolve().parents[2]
RUNS = 300
KILLS = 8

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _start(db: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "tests.store.crash_writer", str(db),
                             str(RUNS)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _read_line(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            proc.kill()
            pytest.fail(f"writer said nothing for {timeout}s")
    return proc.stdout.readline().strip()


def _k(scheduled_start: str) -> int:
    moment = sqlite3.connect(":memory:").execute(
        "SELECT unixepoch(?)", (scheduled_start[:19],)).fetchone()[0]
    return int((moment - BASE.timestamp()) // STEP.total_seconds())


def check_consistency(db: Path) -> set[int]:
    """Invariants that hold in every committed state; returns the runs stored."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN")  # one snapshot for all the checks
        counts = conn.execute(
            """SELECT e.id, e.scheduled_start, e.alerts_created, count(a.id)
               FROM executions e LEFT JOIN alerts a ON a.execution_id = e.id
               WHERE e.status = 'succeeded' GROUP BY e.id""").fetchall()
        stored_runs: list[int] = []
        for _, start, created, found in counts:
            assert created == found, "a finished run must own exactly the alerts it created"
            stored_runs.append(_k(start))
        assert len(stored_runs) == len(set(stored_runs)), "a run was stored twice"
        orphans = conn.execute(
            """SELECT count(*) FROM alerts a JOIN executions e ON a.execution_id = e.id
               WHERE e.status != 'succeeded'""").fetchone()[0]
        assert orphans == 0, "alerts of an unfinished run are visible"
        ids = {r[0] for r in conn.execute("SELECT id FROM alerts")}
        for k in stored_runs:
            expected = {d["kibana.alert.uuid"] for d in run_docs(k)}
            assert expected <= ids, f"run {k} is missing alerts"
        shells = {r[0] for r in conn.execute("SELECT id FROM alerts WHERE group_id = id")}
        groups = dict(conn.execute(
            "SELECT group_id, count(*) FROM alerts WHERE group_id != id GROUP BY group_id"))
        assert set(groups) == shells and set(groups.values()) <= {2}, "a sequence is partial"
        assert len(shells) == len(stored_runs) * PER_RUN
        queued = [r[0] for r in conn.execute("SELECT alert_id FROM webhook_outbox")]
        assert sorted(queued) == sorted(shells), "every new shell is queued once"
        last = conn.execute("SELECT last_scheduled_start FROM rules").fetchone()
        if stored_runs:
            assert _k(last[0]) == max(stored_runs)
        conn.execute("COMMIT")
        return set(stored_runs)
    finally:
        conn.close()


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    db = tmp_path / "crash.db"
    progress: list[int] = []
    for _ in range(KILLS):
        proc = _start(db)
        try:
            ready = _read_line(proc)
            assert ready.startswith("ready"), f"seed {seed}: {ready!r}"
            progress.append(int(ready.split()[1]))
            # Let it store a few runs, reading while it writes (a reader must see whole runs
            # only), then kill it at a random moment within a run.
            for _ in range(rng.randint(1, 12)):
                _read_line(proc)
            check_consistency(db)
            for _ in range(rng.randint(0, 12)):
                _read_line(proc)
            time.sleep(rng.uniform(0.0, 0.01))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            if proc.stdout:
                proc.stdout.close()
            if proc.stderr:
                proc.stderr.close()
        check_consistency(db)
    # The kills landed while runs were being stored (the writer made progress between them).
    assert progress[-1] > 0, f"seed {seed}: the writer never stored a run"
    proc = _start(db)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"seed {seed}: {err}"
    assert out.strip().endswith("done")
    assert check_consistency(db) == set(range(RUNS)), f"seed {seed}"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    total = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    assert total == RUNS * PER_RUN * 3
    # Runs cut short are recorded as failed, own no alerts, and were run again.
    failed = conn.execute("SELECT count(*) FROM executions WHERE status = 'failed'").fetchone()[0]
    assert failed <= KILLS
    conn.close()
