"""Issue 14: one timestamp format on every screen — ISO 8601 UTC to the millisecond, event
time first — across ``detect``, ``alerts list``, ``alerts show`` and ``runs``."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_dir
from vigil.report.safe import display_time

SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
# Anything that looks like a timestamp, in any of the forms vigil printed before.
ANY_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?[^\s│┃|,)\]]*")


@pytest.mark.parametrize(("value", "shown"), [
    ("2024-05-01T10:00:00.123456789Z", "2024-05-01T10:00:00.123Z"),  # the store's form
    ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000Z"),
    ("2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00.500Z"),
    ("2024-05-01 10:00:00.000Z", "2024-05-01T10:00:00.000Z"),
    ("2024-05-01T12:30:00.000+02:30", "2024-05-01T10:00:00.000Z"),
    ("2024-05-01T10:00:00", "2024-05-01T10:00:00.000Z"),  # no zone: UTC, as Elastic reads it
    (datetime(2024, 5, 1, 10, 0, 0, 987654, tzinfo=UTC), "2024-05-01T10:00:00.987Z"),
    (datetime(2024, 5, 1, 5, 0, tzinfo=timezone(timedelta(hours=-5))),
     "2024-05-01T10:00:00.000Z"),
    (None, ""),
    ("not a time\x1b[2J", "not a time\ufffd"),  # shown as text, escapes removed
])
def test_display_time(value: object, shown: str) -> None:
    assert display_time(value) == shown


def _vigil(*args: str, columns: int = 100) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vigil.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={"COLUMNS": str(columns), "PATH": "/usr/bin:/bin"})


def test_every_screen_shows_one_format(tmp_path: Path) -> None:
    db = tmp_path / "alerts.db"
    detect = _vigil("detect", "examples/")
    replay = _vigil("replay", "examples/", "--store", str(db), "--from", "2024-05-01T08:00Z",
                    "--to", "2024-05-01T08:30Z")
    assert replay.returncode == 0, replay.stderr
    listing = _vigil("alerts", "list", "--store", str(db))
    first_id = re.search(r"\b([0-9a-f]{8})\b", listing.stdout)
    assert first_id is not None, listing.stdout
    show = _vigil("alerts", "show", "--store", str(db), first_id.group(1))
    runs = _vigil("runs", "list", "--store", str(db))
    seen: dict[str, list[str]] = {}
    for name, result in (("detect", detect), ("list", listing), ("show", show), ("runs", runs),
                         ("replay", replay)):
        assert result.returncode == 0, result.stderr
        seen[name] = ANY_TIME.findall(result.stdout + result.stderr)
        assert seen[name], f"{name} printed no time: {result.stdout}{result.stderr}"
        assert all(SHAPE.fullmatch(t) for t in seen[name]), (name, seen[name])
    # The table's first column is the event time: the same instants in detect and the list.
    assert set(seen["list"]) <= set(seen["detect"]) | set(seen["show"])
    assert listing.stdout.index("time") < listing.stdout.index("id ")


def test_csv_timeline_is_in_event_time_order() -> None:
    """Issue 14: the CSV is a timeline — rows in event time order across alerts (times
    compared as instants, whatever their precision), each sequence's events in stage order."""
    from vigil.times import sort_key

    assert sort_key("2024-05-01T10:00:00.008Z") < sort_key("2024-05-01T10:00:00.0081Z")
    assert sort_key("2024-05-01T12:00:00+02:00") == sort_key("2024-05-01T10:00:00Z")
    result = _vigil("detect", str(shared_dir() / "samples" / "evtx"), "--format", "csv",
                    "--rule", str(shared_dir() / "rules" / "elastic-prebuilt"))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len({r["alert_id"] for r in rows}) > 5  # several alerts, so order is tested
    times = [sort_key(r["datetime"]) for r in rows]
    assert times == sorted(times)
    # Not just the order the alerts came in: that order differs from the timeline.
    by_alert = [sort_key(r["datetime"]) for r in sorted(
        rows, key=lambda r: (r["rule"], r["alert_id"], int(r["stage"])))]
    assert by_alert != times


def test_query_table_reads_as_text() -> None:
    """Issue 14: ``query`` printed ``['iam', 'configuration']`` and, on EVTX, an empty
    message; now lists read as text and an event without a message shows its summary."""
    samples = shared_dir() / "samples" / "evtx"
    result = _vigil("query", 'any where event.code == "4624"', str(samples), columns=200)
    assert result.returncode == 0, result.stderr
    assert "['" not in result.stdout and "authentication" in result.stdout
    assert "logon_id=0x" in result.stdout  # the summary stands in for the missing message
    assert all(SHAPE.fullmatch(t) for t in ANY_TIME.findall(result.stdout))
