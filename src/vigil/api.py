"""vigil as a library: read events, load rules, detect — what the commands do, as functions.

``vigil.read``, ``vigil.load_rules`` and ``vigil.detect`` (re-exported by the package) give
the events and alerts ``vigil detect`` gives: the same readers (every input kind, bad records
skipped and counted), the same ECS mapping and logon-id fix, the same engines and alert
documents (README "Python API").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from vigil.events import ReadOptions, ReadStats, read_events
from vigil.events.records import LogonIdMode
from vigil.rules import Rule, bundled_rules
from vigil.rules.loader import load_rules as _load_rule_files

PathLike = str | Path


def read(paths: PathLike | Iterable[PathLike], *, logon_id: LogonIdMode = "intended",
         stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """The ECS events of files and folders, as ``vigil detect`` sees them (EVTX, NDJSON,
    JSON arrays, gzip, OTRF zips, Parquet, raw Winlogbeat / Agent documents; the logon-id
    fix in "intended" mode). Bad records are skipped and counted in ``stats``."""
    return read_events(_paths(paths), stats if stats is not None else ReadStats(),
                       ReadOptions(logon_id=logon_id))


def load_rules(paths: PathLike | Iterable[PathLike] | None = None) -> list[Rule]:
    """Rules from rule files or folders (detection-rules TOML, Kibana NDJSON exports);
    the bundled rules when ``paths`` is None. Raises ``RuleError`` (with file:line) for the
    first rule that does not load; ``vigil.rules.load_rules`` collects them all instead."""
    if paths is None:
        return list(bundled_rules())
    result = _load_rule_files(_paths(paths))
    if result.errors:
        raise result.errors[0]
    return list(result.rules)


def detect(paths: PathLike | Iterable[PathLike], *, rules: Iterable[Rule] | None = None,
           exceptions: PathLike | None = None, logon_id: LogonIdMode = "intended",
           engine: Literal["auto", "fast", "reference"] = "auto",
           max_signals: int | None = None, stats: ReadStats | None = None,
           ) -> Iterator[dict[str, Any]]:
    """The alert documents ``vigil detect --format ndjson`` writes, for each alert its
    building blocks then its shell (a single-event alert is one document). ``exceptions``
    is an exception list file (Kibana export or vigil TOML)."""
    from vigil.commands.detect import DetectRequest, exception_filters
    from vigil.detect.run import DetectOptions, run_detection

    chosen = list(rules) if rules is not None else list(bundled_rules())
    read_stats = stats if stats is not None else ReadStats()
    request = DetectRequest(paths=_paths(paths), exceptions=Path(exceptions) if exceptions
                            else None, logon_id=logon_id, max_signals=max_signals,
                            engine=engine)
    exceptions_for = exception_filters(request, chosen)
    options = DetectOptions(max_signals=max_signals)
    read_options = ReadOptions(logon_id=logon_id)
    if engine == "reference":
        events = list(read_events(request.paths, read_stats, read_options))
        result = run_detection(chosen, events, options=options, exceptions_for=exceptions_for)
    else:
        from vigil.backends.fast import run_fast

        result, _fast = run_fast(chosen, request.paths, read_stats, read_options, options,
                                 exceptions_for=exceptions_for)
    for alert in result.alerts:
        yield from alert.documents()


def _paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(paths, str | Path):
        return [Path(paths)]
    return [Path(p) for p in paths]
