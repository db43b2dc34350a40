"""The store in watch, replay and alerts (issue 13, item 17): a corrupt store is one line, a
damaged alert row costs that alert only, and one writer holds a store at a time: a second
watcher stops with a line naming the first, and a killed watcher's lock is gone at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO
from tests.test_cli import EXAMPLES, vigil

FROM, TO = "2024-05-01T08:00Z", "2024-05-01T09:00Z"


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "alerts.db"
    result = vigil("replay", EXAMPLES, "--store", store, "--from", FROM, "--to", TO)
    assert result.returncode == 0, result.stderr
    return store


def test_a_corrupt_store_is_one_line(tmp_path: Path) -> None:
    store = _store(tmp_path)
    data = bytearray(store.read_bytes())
    data[100:4000] = os.urandom(3900)
    store.write_bytes(bytes(data[:8192]))
    for args in (["watch", "--once", "--store", store, EXAMPLES],
                 ["replay", EXAMPLES, "--store", store, "--from", FROM, "--to", TO],
                 ["alerts", "list", "--store", store]):
        result = vigil(*args)
        assert result.returncode in (1, 2), result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) <= 2, result.stderr


def test_a_damaged_alert_row_costs_that_alert_only(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with sqlite3.connect(store) as conn:
        victim = conn.execute("SELECT id FROM alerts WHERE id = group_id LIMIT 1").fetchone()[0]
        conn.execute("UPDATE alerts SET document = '{not json' WHERE id = ?", (victim,))
    for args in (["alerts", "list"], ["alerts", "export"],
                 ["alerts", "report", "-o", tmp_path / "r.html"], ["alerts", "show", victim]):
        result = vigil(*args, "--store", store)
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert victim[:12] in result.stderr and "damaged" in result.stderr, (args, result.stderr)
    exported = vigil("alerts", "export", "--store", store)
    # Only the damaged shell is left out: the 6 building blocks and the 2 other shells stay.
    assert exported.stdout.count("\n") == 8


def test_one_watcher_at_a_time(tmp_path: Path) -> None:
    store = tmp_path / "alerts.db"
    first = subprocess.Popen([sys.executable, "-m", "vigil.cli", "watch", "--store", str(store),
                              "--poll", "0.2", str(EXAMPLES)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        lock = store.with_name(store.name + ".lock")
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
            time.sleep(0.1)
        second = vigil("watch", "--once", "--store", store, EXAMPLES)
        assert second.returncode == 1, second.stderr
        assert f"pid {first.pid}" in second.stderr and "in use by vigil watch" in second.stderr
        assert first.poll() is None  # the first one goes on
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        third = vigil("watch", "--once", "--store", store, EXAMPLES)
        assert third.returncode == 0, third.stderr  # the killed one's lock went with it
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(30)
