"""A watched file truncated and refilled between two polls (copytruncate rotation) is read
from its start again (issue 13, item 8): no event lost, no "not JSON" line from reading at
the old offset in the middle of a new line."""

from __future__ import annotations

from pathlib import Path

import orjson

from vigil.commands.schedule import _Tail
from vigil.events import ReadOptions, ReadStats
from vigil.store import open_store


def _lines(prefix: str, count: int) -> bytes:
    return b"".join(orjson.dumps({"@timestamp": f"2024-05-01T08:00:{n:02d}Z",
                                  "message": f"{prefix}-{n}-" + "x" * (n * 7 % 50)}) + b"\n"
                    for n in range(count))


def test_rewritten_in_place_is_read_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "app.ndjson"
    log.write_bytes(_lines("old", 10))
    with open_store(tmp_path / "alerts.db") as store:
        tail = _Tail(log, store)
        stats = ReadStats()
        first = tail.read_new(stats, ReadOptions())
        assert [e["message"].split("-")[1] for e in first] == [str(n) for n in range(10)]
        inode = log.stat().st_ino
        with log.open("r+b") as handle:  # truncate and refill: same inode, larger file
            handle.truncate(0)
            handle.write(_lines("new", 25))
        assert log.stat().st_ino == inode and log.stat().st_size > tail.offset
        second = tail.read_new(stats, ReadOptions())
    assert [e["message"].split("-")[0] for e in second] == ["new"] * 25
    assert stats.bad_total == 0, [str(b) for b in stats.bad_records]


def test_a_file_that_grew_is_read_from_where_it_was(tmp_path: Path) -> None:
    log = tmp_path / "app.ndjson"
    log.write_bytes(_lines("a", 5))
    with open_store(tmp_path / "alerts.db") as store:
        tail = _Tail(log, store)
        stats = ReadStats()
        assert len(tail.read_new(stats, ReadOptions())) == 5
        with log.open("ab") as handle:
            handle.write(_lines("b", 3))
        grown = tail.read_new(stats, ReadOptions())
    assert [e["message"].split("-")[0] for e in grown] == ["b"] * 3
