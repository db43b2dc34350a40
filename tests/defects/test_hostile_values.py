"""Hostile or odd field values crash nothing (issue 13, item 12): a join-key value that is a
list holding an object, in both engines and in watch."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.test_cli import EXAMPLES, vigil


def _with_object_key(tmp_path: Path) -> Path:
    """The example, with one host's computer name (a join key of the seed rule) a list that
    holds an object beside the name."""
    out = tmp_path / "odd.ndjson"
    lines = []
    for raw in (EXAMPLES / "windows-security.ndjson").read_bytes().splitlines():
        doc = orjson.loads(raw)
        if doc["winlog"].get("computer_name") == "WS004.corp.local":
            doc["winlog"]["computer_name"] = [{"x": 1}, "WS004.corp.local"]
        lines.append(orjson.dumps(doc))
    out.write_bytes(b"\n".join(lines) + b"\n")
    return out


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_object_in_a_join_key_list_is_no_key_value(tmp_path: Path, engine: str) -> None:
    result = vigil("detect", _with_object_key(tmp_path), "--engine", engine)
    assert result.returncode == 0, result.stderr
    # The object is passed over; the host's name in the same list still joins.
    assert "ran 1 rule(s): 3 alert(s)" in result.stderr


def test_watch_survives_an_object_in_a_join_key(tmp_path: Path) -> None:
    store = tmp_path / "alerts.db"
    result = vigil("watch", "--once", "--store", store, _with_object_key(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_numbers_past_64_bits_crash_no_output(tmp_path: Path) -> None:
    """Issue 13, item 13: a 64-bit unsigned value and one past 64 bits in the events (NXLog
    and ECS) reach the NDJSON output and the store without a crash."""
    out = tmp_path / "big.ndjson"
    lines = []
    for raw in (EXAMPLES / "windows-security.ndjson").read_bytes().splitlines():
        doc = orjson.loads(raw)
        if doc["event"]["code"] == "4697":
            doc["winlog"]["process"] = {"pid": 18446744073709551615}
        lines.append(orjson.dumps(doc).replace(b'"kind":"event"',
                                               b'"kind":"event","big":123456789012345678901234'))
    out.write_bytes(b"\n".join(lines) + b"\n")
    result = vigil("detect", out, "--format", "ndjson", "--output", tmp_path / "a.ndjson")
    assert result.returncode == 0 and "3 alert(s)" in result.stderr, result.stderr
    replay = vigil("replay", out, "--store", tmp_path / "s.db", "--from", "2024-05-01T07:00Z",
                   "--to", "2024-05-01T10:00Z")
    assert replay.returncode == 0 and "3 new alert(s)" in replay.stderr, replay.stderr
