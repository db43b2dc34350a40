"""One writer of a store at a time: an advisory lock on ``<store>.lock`` that says who holds it.

``vigil watch`` and ``vigil replay`` take it before they write; a second one finds it held and
stops with one line naming the holder (pid, host, command, since when) instead of racing the
first. The operating system drops the lock when its process ends however it ends (``kill
-9`` included), so a stale lock never blocks a restart: ``fcntl.flock`` on Linux and macOS,
``msvcrt.locking`` on Windows.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from vigil.store.model import StoreError


class StoreLocked(StoreError):
    """Another process holds the store."""


class StoreLock:
    """``with StoreLock(store_path, "watch"):`` — raises StoreLocked when it is held."""

    def __init__(self, store: Path, command: str) -> None:
        self.path = store.with_name(store.name + ".lock")
        self.command = command
        self._handle: IO[str] | None = None

    def __enter__(self) -> StoreLock:
        try:
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the store's lock file "
                             f"({exc.strerror or exc})") from None
        if not _try_lock(handle):
            try:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
            except OSError:  # Windows: the holder's locked byte cannot be read
                holder = "another process"
            handle.close()
            raise StoreLocked(f"the store is in use by {holder}; one watch or replay at a "
                              f"time writes a store (its lock: {self.path})")
        handle.seek(0)
        handle.truncate()
        started = datetime.now(UTC).isoformat(timespec="seconds")
        handle.write(f"vigil {self.command} (pid {os.getpid()} on {socket.gethostname()}, "
                     f"since {started})\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._handle is not None:
            try:
                self._handle.seek(0)
                self._handle.truncate()
            finally:
                _unlock(self._handle)
                self._handle.close()
                self._handle = None


def _try_lock(handle: IO[str]) -> bool:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(handle: IO[str]) -> None:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        with contextlib.suppress(OSError):
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
