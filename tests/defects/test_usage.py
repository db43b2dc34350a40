"""A path that does not exist is a usage error: exit 2 and one line, before any work, for
every command that reads logs (issue 13, item 19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import EXAMPLES, vigil


@pytest.mark.parametrize("command", [
    ["detect"], ["query", "any where true"], ["convert"], ["rules", "coverage"],
    ["replay", "--store", "{store}", "--from", "2024-05-01T00:00Z", "--to", "2024-05-02T00:00Z"],
    ["watch", "--once", "--store", "{store}"],
])
def test_missing_input_is_a_usage_error(tmp_path: Path, command: list[str]) -> None:
    store = tmp_path / "alerts.db"
    args = [part.replace("{store}", str(store)) for part in command]
    missing = tmp_path / "no-such-folder"
    result = vigil(*args, EXAMPLES, missing)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "no such file or folder" in result.stderr and str(missing) in result.stderr
    assert result.stdout == ""
    assert not store.exists()  # no work was done: not even the store was created
