"""Memory per line is bounded (issue 13, item 14): a line longer than the limit
(``VIGIL_MAX_LINE_BYTES``) is a bad record with its place, read through without being kept,
whether a gzip inflates to it (a decompression bomb) or a plain file holds it, in both
engines; the other lines' alerts are raised."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.defects.peak import vigil_with_peak
from tests.test_cli import EXAMPLES

EXAMPLE = (EXAMPLES / "windows-security.ndjson").read_bytes()
LIMIT = 2 << 20


def _vigil(*args: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VIGIL_MAX_LINE_BYTES=str(LIMIT))
    return subprocess.run([sys.executable, "-m", "vigil.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=env)


def _long_line(size: int) -> bytes:
    return b'{"@timestamp":"2024-05-01T08:00:00Z","message":"' + b"A" * size + b'"}\n'


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("packing", ["gzip", "plain"])
def test_a_line_over_the_limit_is_a_bad_record(tmp_path: Path, packing: str,
                                               engine: str) -> None:
    lines = EXAMPLE.splitlines(keepends=True)
    data = b"".join(lines[:10]) + _long_line(3 * LIMIT) + b"".join(lines[10:])
    path = tmp_path / ("bomb.ndjson.gz" if packing == "gzip" else "long.ndjson")
    path.write_bytes(gzip.compress(data) if packing == "gzip" else data)
    result = _vigil("detect", path, "--engine", engine)
    assert result.returncode == 0, result.stderr
    assert f"{path.name}:11: line too long: {len(_long_line(3 * LIMIT)):,} bytes" in \
        result.stderr, result.stderr
    assert "ran 1 rule(s): 3 alert(s)" in result.stderr


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_a_decompression_bomb_costs_no_memory(tmp_path: Path) -> None:
    """A 100 MB line in a gzip of about 100 KB: the run's peak memory stays far below it
    (measured in the process that runs the command: the reference engine has no workers)."""
    path = tmp_path / "bomb.ndjson.gz"
    path.write_bytes(gzip.compress(_long_line(100 << 20) + EXAMPLE, compresslevel=9))
    assert path.stat().st_size < 1 << 20
    result, peak_kb = vigil_with_peak("detect", path, "--engine", "reference",
                                      VIGIL_MAX_LINE_BYTES=str(LIMIT))
    assert "line too long" in result.stderr, result.stderr
    assert "ran 1 rule(s): 3 alert(s)" in result.stderr
    assert peak_kb < 100 * 1024, f"peak RSS {peak_kb} KB for a 100 MB line"
