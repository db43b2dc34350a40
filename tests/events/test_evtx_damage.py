"""Damaged EVTX input: the good records are kept, each problem is one line, the run goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import evtx
import orjson

from tests.conftest import shared_dir
from vigil.events import ReadStats, read_events
from vigil.events.evtx import CHUNK_SIZE, HEADER_SIZE

BAD_CHUNK = "evtx/omerbenamram_evtx/sample_with_a_bad_chunk_magic.evtx"
GOOD = "evtx/omerbenamram_evtx/security.evtx"


def _sample(relative: str) -> Path:
    path = shared_dir() / "samples" / relative
    assert path.is_file(), f"sample missing: {path}"
    return path


def _bare_parse(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Records and errors as the evtx parser alone sees them."""
    records: list[dict[str, Any]] = []
    errors = 0
    iterator = evtx.PyEvtxParser(str(path)).records_json()
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            break
        except RuntimeError:
            errors += 1
            continue
        assert record is not None
        records.append(orjson.loads(record["data"]))
    return records, errors


def test_bad_chunk_sample_keeps_good_records_and_counts_bad_chunks() -> None:
    path = _sample(BAD_CHUNK)
    records, errors = _bare_parse(path)
    timeless = sum(1 for r in records if r["Event"]["System"]["TimeCreated"] is None)
    stats = ReadStats()
    events = list(read_events([path], stats))
    assert errors == 2
    assert len(events) == len(records) - timeless
    lines = [str(b) for b in stats.bad_records]
    chunk_lines = [line for line in lines if "bad chunk magic" in line]
    assert len(chunk_lines) == errors
    for line in chunk_lines:
        assert line.startswith(f"{path}:chunk ")
        assert "lost)" in line  # the record range the damage cost
    assert stats.bad_total == errors + timeless
    assert stats.files_failed == 0


def test_broken_files_give_one_line_each_and_the_run_goes_on(tmp_path: Path) -> None:
    good = _sample(GOOD)
    data = good.read_bytes()
    zero = tmp_path / "zero.evtx"
    zero.write_bytes(b"")
    text = tmp_path / "notes.evtx"
    text.write_text("these are my notes, not an event log\n" * 300)
    cut_at = HEADER_SIZE + 2 * CHUNK_SIZE + 20_000  # inside the third chunk
    truncated = tmp_path / "truncated.evtx"
    truncated.write_bytes(data[:cut_at])
    short_header = tmp_path / "short.evtx"
    short_header.write_bytes(data[:1000])

    complete = tmp_path / "two_chunks.evtx"
    complete.write_bytes(data[:HEADER_SIZE + 2 * CHUNK_SIZE])
    expected_from_truncated = len(_bare_parse(complete)[0])
    expected_good = len(_bare_parse(good)[0])

    stats = ReadStats()
    events = list(read_events([zero, text, truncated, short_header, good], stats))

    by_file: dict[str, list[str]] = {}
    for bad in stats.bad_records:
        by_file.setdefault(bad.path, []).append(str(bad))
    for path in (zero, text, truncated, short_header):
        assert len(by_file[str(path)]) == 1, by_file
    assert str(good) not in by_file
    assert "empty file" in by_file[str(zero)][0]
    assert "not an EVTX file" in by_file[str(text)][0]
    assert "truncated" in by_file[str(short_header)][0]
    line = by_file[str(truncated)][0]
    assert line.startswith(f"{truncated}:chunk 2: file is truncated")
    assert "lost" in line
    assert all("Traceback" not in line for lines in by_file.values() for line in lines)

    # The truncated file yields exactly the records of its complete chunks.
    assert len(events) == expected_from_truncated + expected_good
    assert stats.files == 5
    assert stats.files_failed == 3  # zero, text, short header; the truncated one was read


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    stats = ReadStats()
    assert list(read_events([tmp_path / "nowhere.evtx"], stats)) == []
    assert [b.reason for b in stats.bad_records] == ["no such file or folder"]


# Damage the parser passes over without a word (issue 13, item 4): each is reported with the
# records it cost, counted in ReadStats.records_lost, and named in every output for people.


def _damaged(tmp_path: Path, name: str, edit: Any) -> tuple[Path, int]:
    data = bytearray(_sample(GOOD).read_bytes())
    damaged = edit(data)
    path = tmp_path / f"{name}.evtx"
    path.write_bytes(bytes(damaged))
    good = sum(1 for _ in read_events([_sample(GOOD)], ReadStats()))
    return path, good


def test_zeroed_chunks_are_reported_with_their_records(tmp_path: Path) -> None:
    def zero(data: bytearray) -> bytearray:
        start = HEADER_SIZE + 5 * CHUNK_SIZE
        data[start:start + 2 * CHUNK_SIZE] = bytes(2 * CHUNK_SIZE)
        return data

    path, good = _damaged(tmp_path, "zeroed", zero)
    stats = ReadStats()
    read = sum(1 for _ in read_events([path], stats))
    assert [b.position for b in stats.bad_records] == ["chunks 5-6"]
    assert "no chunk header" in stats.bad_records[0].reason
    assert stats.records_lost == good - read > 0  # every lost record is counted


def test_a_copy_cut_at_a_chunk_boundary_is_reported(tmp_path: Path) -> None:
    path, _good = _damaged(tmp_path, "cut", lambda d: d[:HEADER_SIZE + 20 * CHUNK_SIZE])
    stats = ReadStats()
    list(read_events([path], stats))
    [bad] = stats.bad_records
    assert bad.position == "chunk 20" and "the file holds 20" in bad.reason
    assert stats.records_lost > 0


def test_the_loss_is_in_the_summary_and_the_report(tmp_path: Path) -> None:
    from tests.test_cli import vigil

    def zero(data: bytearray) -> bytearray:
        start = HEADER_SIZE + 5 * CHUNK_SIZE
        data[start:start + CHUNK_SIZE] = bytes(CHUNK_SIZE)
        return data

    path, _good = _damaged(tmp_path, "zeroed", zero)
    report = tmp_path / "report.html"
    result = vigil("detect", path, "--format", "html", "--output", report)
    assert result.returncode == 0, result.stderr
    assert "data lost:" in result.stderr and "EVTX record(s) in damaged" in result.stderr
    assert "EVTX record(s) in damaged or missing chunks" in report.read_text(encoding="utf-8")
