"""Files and folders in, events out: one reader per kind of file, chosen by its name.

Readers are listed here by file-name suffix; every reader has the same shape,
``(path, stats, options) -> Iterator[event dict]``, and reports bad records into ``stats``
instead of raising. A file that cannot be opened at all is one line in ``stats`` and the run
goes on with the other files.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from vigil.events.jsonl import read_json_lines
from vigil.events.records import ReadStats

LogonIdMode = Literal["intended", "elastic"]


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read: the logon-id mapping (see README) and the timestamp field."""

    logon_id: LogonIdMode = "intended"
    timestamp_field: str = "@timestamp"


Reader = Callable[[Path, ReadStats, ReadOptions], Iterator[dict[str, Any]]]


# Readers by file-name suffix, as "module:function", imported on first use so that a
# missing optional dependency only affects its own kind of file.
_READERS: dict[str, str] = {
    ".ndjson.gz": "vigil.events.reader:read_json_file",
    ".jsonl.gz": "vigil.events.reader:read_json_file",
    ".json.gz": "vigil.events.reader:read_json_file",
    ".ndjson": "vigil.events.reader:read_json_file",
    ".jsonl": "vigil.events.reader:read_json_file",
    ".json": "vigil.events.reader:read_json_file",
    ".gz": "vigil.events.reader:read_json_file",
    ".evtx": "vigil.events.evtx:read_evtx_file",
    ".zip": "vigil.events.otrf:read_zip_file",
}
_SUFFIXES = sorted(_READERS, key=len, reverse=True)  # ".json.gz" before ".gz"


def read_json_file(path: Path, stats: ReadStats, options: ReadOptions) -> Iterator[dict[str, Any]]:
    return read_json_lines(path, stats)


@cache
def _load(target: str) -> Reader | None:
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None  # that kind of file is not supported in this build
        raise
    reader: Reader = getattr(module, function)
    return reader


def reader_for(path: Path) -> Reader | None:
    name = path.name.lower()
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return _load(_READERS[suffix])
    return None


def iter_input_files(paths: Iterable[Path], stats: ReadStats | None = None) -> Iterator[Path]:
    """The readable files among ``paths``: files as given, folders walked recursively in
    name order; files of unknown kinds inside folders are passed over silently."""
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if reader_for(child) is not None:
                    yield child
        elif path.is_file():
            yield path
        elif stats is not None:
            stats.bad(str(path), "", "no such file or folder", kind="missing input")
            stats.files_failed += 1


def read_events(paths: Iterable[Path], stats: ReadStats,
                options: ReadOptions | None = None) -> Iterator[dict[str, Any]]:
    """Every event of every input file, file by file, bad records counted in ``stats``."""
    options = options or ReadOptions()
    for path in iter_input_files(paths, stats):
        reader = reader_for(path)
        if reader is None:
            stats.bad(str(path), "", "unknown kind of file (expected .evtx, .ndjson, .jsonl, "
                      ".json, .gz or .zip)", kind="unknown file kind")
            stats.files_failed += 1
            continue
        stats.files += 1
        try:
            for event in reader(path, stats, options):
                stats.events += 1
                yield event
        except OSError as exc:
            stats.bad(str(path), "", f"cannot read: {exc.strerror or exc}", kind="unreadable file")
            stats.files_failed += 1
