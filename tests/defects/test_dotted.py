"""Flat dotted documents are the same events as nested ones (issue 13, item 2): the bundled
example written with dotted keys (as many exports and flat Parquet tables have them) gets
the logon-id fix, its index and its alerts, in both engines and from Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import unsourced
from tests.test_cli import EXAMPLES, vigil
from vigil.events import ReadOptions, ReadStats, read_events


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, inner in value.items():
        name = f"{prefix}{key}"
        if isinstance(inner, dict) and inner:
            out.update(_flat(inner, name + "."))
        else:
            out[name] = inner
    return out


def _write_flat(tmp_path: Path) -> Path:
    out = tmp_path / "flat.ndjson"
    lines = [orjson.dumps(_flat(orjson.loads(raw)))
             for raw in (EXAMPLES / "windows-security.ndjson").read_bytes().splitlines()]
    out.write_bytes(b"\n".join(lines) + b"\n")
    return out


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_flat_example_finds_the_three_alerts(tmp_path: Path, engine: str) -> None:
    result = vigil("detect", _write_flat(tmp_path), "--engine", engine)
    assert result.returncode == 0, result.stderr
    assert "ran 1 rule(s): 3 alert(s)" in result.stderr, result.stderr


def test_flat_and_nested_read_as_the_same_events(tmp_path: Path) -> None:
    flat = list(read_events([_write_flat(tmp_path)], ReadStats(), ReadOptions()))
    nested = list(read_events([EXAMPLES / "windows-security.ndjson"], ReadStats(),
                              ReadOptions()))
    assert unsourced(flat) == unsourced(nested)


def test_flat_parquet_finds_the_three_alerts(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [orjson.loads(line) for line in _write_flat(tmp_path).read_bytes().splitlines()]
    # Every column a string (or list of strings), as a flat export table would hold them.
    columns = sorted({key for row in rows for key in row})
    table = pa.table({name: [None if row.get(name) is None else orjson.dumps(row[name]).decode()
                             if not isinstance(row.get(name), str) else row[name]
                             for row in rows] for name in columns if name != "event.category"
                      and name != "event.type" and name != "related.user"
                      and name != "related.ip"} | {
        name: [row.get(name) for row in rows]
        for name in ("event.category", "event.type", "related.user", "related.ip")})
    path = tmp_path / "flat.parquet"
    pq.write_table(table, path)
    result = vigil("detect", path)
    assert result.returncode == 0, result.stderr
    assert "ran 1 rule(s): 3 alert(s)" in result.stderr, result.stderr
