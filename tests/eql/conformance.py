"""Loading Elasticsearch's EQL spec suites exactly as Elasticsearch's test classes do.

The datasets and how each is indexed are described in ../shared/conformance/README.md §2.2:
per suite the data file(s), the mapping, the tiebreaker and id fields, and the timestamp
transformation of the endgame data (FILETIME ticks -> epoch milliseconds).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Suite:
    file: str
    indexes: tuple[str, ...]  # data files (data/<index>.data), queried together
    tiebreaker: str | None
    id_field: str
    endgame: str | None = None  # "millis" or "nanos": the endgame dataset's timestamp rule


SUITES = (
    Suite("test_queries.toml", ("endgame-140",), "serial_event_id", "serial_event_id", "millis"),
    Suite("additional_test_queries.toml", ("endgame-140",), "serial_event_id", "serial_event_id",
          "millis"),
    Suite("test_queries_date.toml", ("endgame-140",), "serial_event_id", "serial_event_id",
          "millis"),
    Suite("test_queries_date_nanos.toml", ("endgame-140-nanos",), "serial_event_id",
          "serial_event_id", "nanos"),
    Suite("test_extra.toml", ("extra",), "sequence", "sequence"),
    Suite("test_missing_events.toml", ("missing-events",), "sequence", "sequence"),
    Suite("test_sample.toml", ("sample1", "sample2", "sample3"), None, "id"),
    Suite("test_sample_multi.toml", ("sample-multi",), None, "id"),
)

_NULL_IN_JOIN_KEYS = re.compile(r"join_keys\s*=\s*\[[^\]]*\]")


def load_cases(root: Path, suite: Suite) -> list[dict[str, Any]]:
    """The [[queries]] of a spec file. JToml accepts bare ``null`` in join_keys; tomllib
    does not, so those are quoted first (the README's recipe)."""
    text = (root / suite.file).read_text(encoding="utf-8")
    text = _NULL_IN_JOIN_KEYS.sub(
        lambda m: re.sub(r'(?<!")\bnull\b(?!")', '"null"', m.group(0)), text
    )
    return list(tomllib.loads(text)["queries"])


def _strip_line_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def load_mapping(root: Path, index: str) -> dict[str, Any]:
    lines = (root / "data" / f"{index}.mapping").read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    # Results must not depend on keyword vs wildcard: keyword is one of the two choices.
    text = text.replace("[runtime_random_keyword_type]", "keyword")
    return dict(json.loads(text))


def _filetime_to_iso_nanos(ticks: int) -> str:
    """The date_nanos suite reads the FILETIME digits as epoch nanoseconds."""
    from datetime import UTC, datetime

    seconds, nanos = divmod(ticks, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


@cache
def load_events(root: Path, suite: Suite) -> tuple[dict[str, Any], ...]:
    events: list[dict[str, Any]] = []
    for index in suite.indexes:
        if suite.endgame:
            raw = json.loads((root / "test_data.json").read_text(encoding="utf-8"))
        else:
            text = (root / "data" / f"{index}.data").read_text(encoding="utf-8")
            raw = json.loads(_strip_line_comments(text))
        for doc in raw:
            event = dict(doc)
            if suite.endgame == "millis":
                event["@timestamp"] = event["timestamp"] // 10_000 - 11_644_473_600_000
            elif suite.endgame == "nanos":
                event["@timestamp"] = _filetime_to_iso_nanos(event["timestamp"])
                event["timestamp"] = event["@timestamp"]
            event["_index"] = index
            events.append(event)
    return tuple(events)


def load_mappings(root: Path, suite: Suite) -> dict[str, Any]:
    if len(suite.indexes) == 1:
        return load_mapping(root, suite.indexes[0])
    return {index: load_mapping(root, index) for index in suite.indexes}


def key_text(value: Any) -> str:
    """A join key as the spec files write it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
