"""Baselines: `lines PATH` (a plain Python line read), `evtx PATH...` (bare evtx JSON parse)."""

from __future__ import annotations

import sys

kind, *paths = sys.argv[1:]
count = 0
if kind == "lines":
    for path in paths:
        with open(path, "rb") as handle:
            for _line in handle:
                count += 1
else:
    from evtx import PyEvtxParser

    for path in paths:
        records = PyEvtxParser(path).records_json()
        while True:  # a damaged record raises; count on (as vigil's reader does)
            try:
                next(records)
            except StopIteration:
                break
            except (RuntimeError, OSError):
                continue
            count += 1
print(count)
