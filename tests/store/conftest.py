"""Store fixtures: a real SQLite file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil.store import SqliteStore, open_store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vigil.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    with open_store(db_path) as opened:
        yield opened
