"""Reading events: files and folders in, ECS event dicts out, bad records counted.

``read_events(paths, stats)`` walks files and folders, picks a reader per file kind and yields
event dicts (nested ECS). A bad record never stops a run: it is skipped, counted in
``ReadStats`` and reported as ``file:position: reason``.
"""

from __future__ import annotations

from vigil.events.reader import ReadOptions, iter_input_files, read_events
from vigil.events.records import BadRecord, ReadStats

__all__ = ["BadRecord", "ReadOptions", "ReadStats", "iter_input_files", "read_events"]
