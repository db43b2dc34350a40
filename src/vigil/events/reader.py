"""Files and folders in, events out: one reader per kind of file, chosen by its name.

Readers are listed here by file-name suffix; every reader has the same shape,
``(path, stats, options) -> Iterator[event dict]``, and reports bad records into ``stats``
instead of raising. A file that cannot be opened at all is one line in ``stats`` and the run
goes on with the other files.
"""

from __future__ import annotations

import importlib
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from vigil.events.jsonl import read_json_lines
from vigil.events.records import LogonIdMode, ReadOptions, ReadStats, RecordGates

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = ["LogonIdMode", "ReadOptions", "Reader", "iter_input_files", "read_events", "read_file",
           "reader_for"]

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
    ".parquet": "vigil.events.parquet:read_parquet_file",
}
_SUFFIXES = sorted(_READERS, key=len, reverse=True)  # ".json.gz" before ".gz"


def read_json_file(path: Path, stats: ReadStats, options: ReadOptions) -> Iterator[dict[str, Any]]:
    return read_json_lines(path, stats, options)


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


EventFilter = Callable[[dict[str, Any]], bool]


def read_events(paths: Iterable[Path], stats: ReadStats, options: ReadOptions | None = None,
                *, keep: EventFilter | None = None) -> Iterator[dict[str, Any]]:
    """Every event of every input file, file by file, bad records counted in ``stats``.

    ``keep``: only events for which it returns true are yielded (a module-level function, so
    that worker processes can run it). With ``options.workers > 1`` and several files, files
    are read in that many processes, each file whole; events still come out file by file in
    input order. Shipping a mapped event back costs about half of mapping it, so workers pay
    off when ``keep`` drops most events (e.g. a rule's prefilter), not for reading everything.
    """
    options = options or ReadOptions()
    files: Iterable[Path] = iter_input_files(paths, stats)
    if options.workers > 1:
        files = list(files)
        if len(files) > 1:
            yield from _read_parallel(files, stats, options, keep)
            return
    for path in files:
        for event in read_file(path, stats, options):
            if keep is None or keep(event):
                yield event


def read_file(path: Path, stats: ReadStats, options: ReadOptions,
              gates: RecordGates | None = None) -> Iterator[dict[str, Any]]:
    """The events of one file, bad records counted in ``stats``. ``gates`` (EVTX files
    only): the records worth mapping (``read_evtx_file``); the others are counted as read
    but not yielded."""
    reader = reader_for(path)
    if reader is None:
        stats.bad(str(path), "", "unknown kind of file (expected .evtx, .ndjson, .jsonl, "
                  ".json, .gz or .zip)", kind="unknown file kind")
        stats.files_failed += 1
        return
    stats.files += 1
    if gates is not None and path.name.lower().endswith(".evtx"):
        from vigil.events.evtx import read_evtx_file

        events = read_evtx_file(path, stats, options, gates)
    else:
        events = reader(path, stats, options)
    try:
        for event in events:
            stats.events += 1
            yield event
    except OSError as exc:
        stats.bad(str(path), "", f"cannot read: {exc.strerror or exc}", kind="unreadable file")
        stats.files_failed += 1


def read_file_whole(path: Path, options: ReadOptions, keep: EventFilter | None = None,
                    ) -> tuple[bytes, ReadStats]:
    """The (kept) events of one file as one JSON array, and its stats: the unit of work of a
    reading process (orjson bytes cross the process boundary faster than pickled dicts)."""
    stats = ReadStats()
    events = [event for event in read_file(path, stats, options)
              if keep is None or keep(event)]
    return orjson.dumps(events), stats


def _read_parallel(files: list[Path], stats: ReadStats, options: ReadOptions,
                   keep: EventFilter | None) -> Iterator[dict[str, Any]]:
    from concurrent.futures import ProcessPoolExecutor  # only parallel reads need it

    # Not "fork": the native EVTX parser may hold threads, which fork does not copy safely.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    window = 2 * options.workers  # files in flight: bounds memory to a few whole files
    with ProcessPoolExecutor(max_workers=options.workers, mp_context=context) as pool:
        pending: deque[tuple[Path, Future[tuple[bytes, ReadStats]]]] = deque()
        queue = iter(files)
        for path in queue:
            pending.append((path, pool.submit(read_file_whole, path, options, keep)))
            if len(pending) >= window:
                break
        while pending:
            path, future = pending.popleft()
            next_path = next(queue, None)
            if next_path is not None:
                pending.append((next_path, pool.submit(read_file_whole, next_path, options, keep)))
            try:
                data, file_stats = future.result()
            except Exception as exc:  # a crashed worker loses one file, not the run
                stats.files += 1
                stats.files_failed += 1
                stats.bad(str(path), "", f"reading failed ({type(exc).__name__}: {exc})",
                          kind="reader failure")
                continue
            stats.merge(file_stats)
            yield from orjson.loads(data)
