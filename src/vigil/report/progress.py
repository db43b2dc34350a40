"""The terminal's progress bar (issue 14): bytes, events and files read, on stderr.

Shown only on a terminal, only without ``--quiet``, and only once a run has taken longer than
``VIGIL_PROGRESS_DELAY`` seconds (2 by default): a short run prints nothing more than its
summary. The bar is transient: it is erased when the run ends, so the summary and the table
read as they do without it. File names come from the input and may be hostile: they are
shown through ``terminal_text`` and never read as rich markup.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from vigil.report.safe import terminal_text

DEFAULT_DELAY = 2.0


def progress_delay() -> float:
    """``VIGIL_PROGRESS_DELAY`` in seconds (a bad value is the default)."""
    try:
        return max(0.0, float(os.environ.get("VIGIL_PROGRESS_DELAY", DEFAULT_DELAY)))
    except ValueError:
        return DEFAULT_DELAY


class TerminalProgress:
    """A ``ReadProgress`` drawn with rich on ``stream`` (stderr) when it is a terminal."""

    def __init__(self, stream: IO[str] | None = None, *, delay: float | None = None) -> None:
        self._stream = stream or sys.stderr
        self._delay = progress_delay() if delay is None else delay
        self._started = time.monotonic()
        self._bar: Any = None  # rich.progress.Progress once shown
        self._task: Any = None
        self._total = 0
        self._done = 0
        self._files = 0
        self._files_seen: set[str] = set()
        self._events = 0
        self._text = ""

    @staticmethod
    def wanted(stream: IO[str] | None = None, *, quiet: bool = False) -> bool:
        """On a terminal and not ``--quiet`` (``TERM=dumb`` counts as no terminal)."""
        stream = stream or sys.stderr
        if quiet or os.environ.get("TERM") == "dumb":
            return False
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())

    # ------------------------------------------------------------------ ReadProgress

    def begin(self, files: int, total_bytes: int, text: str) -> None:
        self._files, self._total, self._done, self._text = files, total_bytes, 0, text
        self._files_seen = set()
        if self._bar is not None:
            self._bar.reset(self._task, total=max(total_bytes, 1), completed=0,
                            description=text, files=f"0/{files} files")
        self._maybe_show()

    def read(self, path: str, nbytes: int, events: int) -> None:
        self._done += nbytes
        self._events += events
        if path:
            self._files_seen.add(path)
        self._maybe_show()
        if self._bar is not None:
            name = terminal_text(Path(path).name)
            if len(name) > 40:
                name = name[:39] + "…"
            self._bar.update(self._task, completed=self._done,
                             description=f"{self._text} {name}",
                             events=f"{self._events:,} events",
                             files=f"{len(self._files_seen)}/{self._files} files")

    # ------------------------------------------------------------------ the rest

    def phase(self, text: str) -> None:
        """A step after the reading (running the rules): the bar shows it, full."""
        self._text = text
        if self._bar is not None:
            self._bar.update(self._task, completed=self._total, description=text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _maybe_show(self) -> None:
        if self._bar is not None or time.monotonic() - self._started < self._delay:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        console = Console(file=self._stream, highlight=False)
        self._bar = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[events]}", markup=False),
            TextColumn("{task.fields[files]}", markup=False),
            TimeRemainingColumn(),
            console=console, transient=True, refresh_per_second=8)
        self._task = self._bar.add_task(
            self._text, total=max(self._total, 1), completed=self._done,
            events=f"{self._events:,} events",
            files=f"{len(self._files_seen)}/{self._files} files")
        self._bar.start()

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
