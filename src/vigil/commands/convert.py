"""``vigil convert``: Windows events (EVTX, OTRF JSON, ECS NDJSON) to ECS documents."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import orjson
from rich.console import Console

from vigil.events import ReadOptions, ReadStats, read_events
from vigil.events.reader import LogonIdMode
from vigil.report.safe import terminal_text

TARGETS = ("ndjson", "bulk")


def _write(events: Any, out: IO[bytes], target: str) -> int:
    count = 0
    for event in events:
        body = {k: v for k, v in event.items() if k not in ("_index", "_id")}
        if target == "bulk":
            # Data streams take only "create"; the id keeps a re-load from duplicating.
            action: dict[str, Any] = {"create": {"_index": event.get("_index") or "logs-vigil-default"}}
            if event.get("_id"):
                action["create"]["_id"] = event["_id"]
            out.write(orjson.dumps(action) + b"\n")
        out.write(orjson.dumps(body, default=str) + b"\n")
        count += 1
    return count


def run_convert(paths: list[Path], target: str, output: Path | None,
                logon_id: LogonIdMode) -> int:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if target not in TARGETS:
        err.print(f"vigil convert: --to must be one of {', '.join(TARGETS)}", markup=False)
        return 2
    stats = ReadStats()
    events = read_events(paths, stats, ReadOptions(logon_id=logon_id))
    if output is None:
        count = _write(events, sys.stdout.buffer, target)
        sys.stdout.flush()
    else:
        with output.open("wb") as handle:
            count = _write(events, handle, target)
    err.print(f"converted {count:,} events from {stats.files:,} file(s)"
              + (f"; skipped {stats.bad_total:,} bad record(s):" if stats.bad_total else ""),
              markup=False)
    for bad in stats.bad_records[:5]:
        err.print(f"  {terminal_text(str(bad))}", markup=False)
    return 0
