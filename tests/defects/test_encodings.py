"""Files as Windows tools write them lose nothing (issue 13, item 3): a UTF-8 byte-order
mark (before NDJSON or a JSON array), UTF-16 (Windows PowerShell's default for redirected
output, with or without a mark), an upper-case ``.GZ``; in both engines."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.test_cli import EXAMPLES, vigil

EXAMPLE = (EXAMPLES / "windows-security.ndjson").read_bytes()


def _as_array(data: bytes) -> bytes:
    return b"[" + b",\n".join(line for line in data.splitlines() if line.strip()) + b"]\n"


VARIANTS = {
    "bom.ndjson": lambda: b"\xef\xbb\xbf" + EXAMPLE,
    "bom-array.json": lambda: b"\xef\xbb\xbf" + _as_array(EXAMPLE),
    "utf16.ndjson": lambda: EXAMPLE.decode("utf-8").replace("\n", "\r\n").encode("utf-16"),
    "utf16le-no-bom.ndjson": lambda: EXAMPLE.decode("utf-8").encode("utf-16-le"),
    "utf16-array.json": lambda: _as_array(EXAMPLE).decode("utf-8").encode("utf-16"),
    "upper.NDJSON.GZ": lambda: gzip.compress(EXAMPLE),
}


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_event_is_read(tmp_path: Path, name: str, engine: str) -> None:
    path = tmp_path / name
    path.write_bytes(VARIANTS[name]())
    result = vigil("detect", path, "--engine", engine)
    assert result.returncode == 0, result.stderr
    assert "ran 1 rule(s): 3 alert(s)" in result.stderr, result.stderr
    assert "bad" not in result.stderr and "skipped" not in result.stderr.replace(
        "skipped unparsed", ""), result.stderr
    events = EXAMPLE.count(b"\n")
    assert f"{events:,} events" in result.stderr, result.stderr
