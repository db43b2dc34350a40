"""Reading several files in worker processes gives what reading them in order gives."""

from __future__ import annotations

from typing import Any

from tests.conftest import shared_dir
from vigil.events import ReadOptions, ReadStats, read_events


def keep_service_installs(event: dict[str, Any]) -> bool:
    return bool(event["event"]["code"] in ("4697", "7045"))


def test_workers_match_serial_reading() -> None:
    folder = shared_dir() / "samples" / "evtx"
    files = sorted(folder.rglob("*.evtx"))
    serial_stats, parallel_stats = ReadStats(), ReadStats()
    serial = list(read_events(files, serial_stats, keep=keep_service_installs))
    parallel = list(read_events(files, parallel_stats, ReadOptions(workers=2),
                                keep=keep_service_installs))
    assert serial and parallel == serial
    assert (parallel_stats.files, parallel_stats.events, parallel_stats.bad_total) == \
        (serial_stats.files, serial_stats.events, serial_stats.bad_total)
