"""A zip member that cannot be read costs that member only (issue 13, item 13): an encrypted
member or one compressed with a method Python's zipfile lacks (Deflate64, method 9) is
reported with its name; the other members' alerts are raised, in both engines."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests.test_cli import EXAMPLES, vigil


def _zip(tmp_path: Path, damage: str) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a-odd.json", b'{"x": 1}\n')
        archive.writestr("b-good.json", (EXAMPLES / "windows-security.ndjson").read_bytes())
    data = bytearray(buffer.getvalue())
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    if damage == "encrypted":  # general-purpose flag bit 0, in both headers
        data[local + 6] |= 1
        data[central + 8] |= 1
    else:  # compression method 9 (Deflate64)
        data[local + 8] = 9
        data[central + 10] = 9
    path = tmp_path / f"{damage}.zip"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("damage", ["encrypted", "deflate64"])
def test_unreadable_member_is_reported_and_the_rest_read(tmp_path: Path, damage: str,
                                                         engine: str) -> None:
    result = vigil("detect", _zip(tmp_path, damage), "--engine", engine)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{damage}.zip!a-odd.json:" in result.stderr and "skipped" in result.stderr
    assert "ran 1 rule(s): 3 alert(s)" in result.stderr
