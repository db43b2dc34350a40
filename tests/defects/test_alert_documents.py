"""vigil's own output in its input folder is not read as events (issue 13, item 7): the
next run does not alert on the alerts (3, 6, 9, ...), and says once that it skipped them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.test_cli import EXAMPLES, vigil


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_output_in_the_input_folder_changes_nothing(tmp_path: Path, engine: str) -> None:
    folder = tmp_path / "case"
    shutil.copytree(EXAMPLES, folder)
    for run in range(3):
        result = vigil("detect", folder, "--engine", engine, "--format", "ndjson",
                       "--output", folder / f"alerts-{run}.ndjson")
        assert result.returncode == 0, result.stderr
        assert "ran 1 rule(s): 3 alert(s)" in result.stderr, result.stderr
    assert "skipped" in result.stderr and "alert document(s)" in result.stderr
