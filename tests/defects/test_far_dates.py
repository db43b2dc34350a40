"""Dates the engine cannot order are bad records with their place, never a crash (issue 13,
items 5, 11 and 13): the 9999-12-31 sentinel (past 2262-04-11, the end of 64-bit
nanoseconds), Feb 30, NaN and infinite epoch numbers; in detect (both engines), watch,
replay and Parquet."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest

from tests.test_cli import EXAMPLES, vigil
from vigil.events import ReadOptions, ReadStats, read_events

EXAMPLE = (EXAMPLES / "windows-security.ndjson").read_bytes()
BAD = {"9999-12-31T23:59:59.000Z": "out of range", "2024-02-30T10:00:00Z": "no such day",
       "1500-01-01T00:00:00Z": "out of range"}


def _with_bad_times(tmp_path: Path) -> Path:
    first = orjson.loads(EXAMPLE.splitlines()[0])
    lines = []
    for value in BAD:
        first["@timestamp"] = value
        lines.append(orjson.dumps(first))
    path = tmp_path / "far.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n" + EXAMPLE)
    return path


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_detect_reports_them_and_keeps_the_rest(tmp_path: Path, engine: str) -> None:
    result = vigil("detect", _with_bad_times(tmp_path), "--engine", engine)
    assert result.returncode == 0, result.stderr
    assert "skipped 3 bad record(s)" in result.stderr, result.stderr
    for line, (value, reason) in enumerate(BAD.items(), 1):
        assert f"far.ndjson:{line}: @timestamp \"{value}\"" in result.stderr
        assert reason in result.stderr
    assert "ran 1 rule(s): 3 alert(s)" in result.stderr


def test_watch_and_replay_do_not_crash(tmp_path: Path) -> None:
    path = _with_bad_times(tmp_path)
    watch = vigil("watch", "--once", "--store", tmp_path / "w.db", path)
    assert watch.returncode == 0, watch.stderr
    assert "out of range" in watch.stderr and "Traceback" not in watch.stderr
    replay = vigil("replay", "--store", tmp_path / "r.db", "--from", "2024-05-01T08:00Z",
                   "--to", "2024-05-01T09:00Z", path)
    assert replay.returncode == 0, replay.stderr
    assert "Traceback" not in replay.stderr


def test_parquet_numbers_that_are_no_time(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"@timestamp": [math.nan, math.inf, 1.7e12, 9.3e18],
                      "event.category": ["process"] * 4})
    path = tmp_path / "times.parquet"
    pq.write_table(table, path)
    stats = ReadStats()
    events = list(read_events([path], stats, ReadOptions()))
    assert [e["@timestamp"] for e in events] == [1.7e12]
    assert stats.bad_total == 3
    assert [b.position for b in stats.bad_records] == ["row 1", "row 2", "row 4"]


def test_parquet_timestamp_past_9999_loses_one_row(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamps = pa.array([1_714_550_400_000_000, 300_000_000_000_000_000, 1_714_550_401_000_000],
                      type=pa.timestamp("us", tz="UTC"))  # the second: year 11476
    pq.write_table(pa.table({"@timestamp": stamps, "event.category": ["process"] * 3}),
                   tmp_path / "t.parquet")
    stats = ReadStats()
    events = list(read_events([tmp_path / "t.parquet"], stats, ReadOptions()))
    assert [e["@timestamp"] for e in events] == ["2024-05-01T08:00:00.000000Z",
                                                 "2024-05-01T08:00:01.000000Z"]
    assert [(b.position, "out of range" in b.reason) for b in stats.bad_records] == \
        [("row 2", True)]
