"""Parquet in, the same events (and alerts) as the NDJSON they were exported from."""

from __future__ import annotations

from pathlib import Path

import pyarrow.json as pa_json
import pyarrow.parquet as pq

from tests.conftest import REPO, unsourced
from vigil.detect.run import run_detection
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.rules import bundled_rules

EXAMPLE = REPO / "examples" / "windows-security.ndjson"


def test_parquet_rows_are_the_ndjson_events_and_raise_the_same_alerts(tmp_path: Path) -> None:
    # pyarrow's JSON reader unifies the schema over every row (Table.from_pylist would take the
    # first row's fields only and silently drop the rest).
    table = pa_json.read_json(EXAMPLE)
    assert table.num_rows == len(EXAMPLE.read_bytes().splitlines())
    target = tmp_path / "lake.parquet"
    pq.write_table(table, target, row_group_size=100)
    from_json = list(read_events([EXAMPLE], ReadStats()))
    stats = ReadStats()
    from_parquet = list(read_events([target], stats))
    assert stats.bad_total == 0 and len(from_parquet) == len(from_json)
    assert unsourced(from_parquet) == unsourced(from_json)
    assert [e["vigil"]["source"]["position"] for e in from_parquet[:2]] == ["row 1", "row 2"]
    ids = [a.id for a in run_detection(bundled_rules(), from_parquet).alerts]
    assert ids == [a.id for a in run_detection(bundled_rules(), from_json).alerts] and ids
    elastic = list(read_events([target], ReadStats(), ReadOptions(logon_id="elastic")))
    assert run_detection(bundled_rules(), elastic).alerts == []


def test_a_file_that_is_not_parquet_is_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a.parquet").write_bytes(b"PAR1 this is not really parquet")
    (tmp_path / "b.ndjson").write_bytes(EXAMPLE.read_bytes())
    stats = ReadStats()
    events = list(read_events([tmp_path], stats))
    assert len(events) > 0
    assert stats.bad_total == 1 and "not a Parquet file" in str(stats.bad_records[0])
    assert str(stats.bad_records[0]).startswith(str(tmp_path / "a.parquet"))
