"""ECS documents in Parquet (a data lake's export): one row per event.

Nested ECS objects are Parquet structs, arrays are lists, and flat dotted column names
(``event.category``) work as well. Timestamps become ISO-8601 UTC strings, as in the JSON an
Elastic export holds, so a row and its NDJSON twin give the same event (and the same ids).
Rows are read batch by batch: memory stays flat whatever the file's size.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from vigil.events.jsonl import _Finisher as Finisher  # the same per-event work as NDJSON
from vigil.events.records import ReadOptions, ReadStats

BATCH_ROWS = 8_192


def _plain(value: Any) -> Any:
    """A Parquet value as the JSON value Elasticsearch would have stored."""
    if isinstance(value, dict):
        # A struct field a row lacks reads as null; the document never had that key.
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


_PER_MILLI = {"s": 1e-3, "ms": 1, "us": 1_000, "ns": 1_000_000}


def _rows(batch: Any) -> list[dict[str, Any]]:
    """The batch's rows as Python values. A timestamp Python's datetime cannot hold (past
    year 9999) fails the whole batch's conversion: that column is then converted value by
    value, such a value given as its epoch milliseconds, which the timestamp check reports as
    out of range with the row's number (one bad value loses one row, not the file)."""
    try:
        rows: list[dict[str, Any]] = batch.to_pylist()
        return rows
    except (OverflowError, ValueError):
        pass
    import pyarrow as pa

    columns: dict[str, list[Any]] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            columns[name] = column.to_pylist()
        except (OverflowError, ValueError):
            if not pa.types.is_timestamp(column.type):
                raise
            per_milli = _PER_MILLI[column.type.unit]
            values = []
            for raw, number in zip(column, column.cast(pa.int64()).to_pylist(), strict=True):
                try:
                    values.append(raw.as_py())
                except (OverflowError, ValueError):
                    values.append(number / per_milli)
            columns[name] = values
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(),
                                                                      strict=True)]


def read_parquet_file(path: Path, stats: ReadStats,
                      options: ReadOptions) -> Iterator[dict[str, Any]]:
    name = str(path)
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        stats.bad(name, "", "reading Parquet needs pyarrow: pip install 'vigil[parquet]'",
                  kind="unsupported file")
        stats.files_failed += 1
        return
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        stats.bad(name, "", f"not a Parquet file ({str(exc).splitlines()[0][:120]})",
                  kind="not Parquet")
        stats.files_failed += 1
        return
    finish = Finisher(name, stats, options)
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            for record in _rows(batch):
                row += 1
                event = finish(_plain(record), f"row {row}", f"row {row}")
                if event is not None:
                    yield event
    except Exception as exc:  # a damaged row group: keep what was read, say where it stopped
        stats.bad(name, f"row {row + 1}", f"stopped reading: {str(exc).splitlines()[0][:120]}",
                  kind="truncated file")
