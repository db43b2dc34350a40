"""Hostile queries and data: every one ends with an answer or an EqlSyntaxError, quickly.

The time bounds are generous hang detectors (a catastrophic case takes minutes or never
ends), not performance claims.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from vigil.eql import EqlSyntaxError, parse, search

HANG = 10.0  # seconds; the real figures are well under one second on this machine


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def event(**fields: Any) -> dict[str, Any]:
    return {"@timestamp": 1, "event": {"category": "process"}, **fields}


def test_a_one_megabyte_query_parses_and_runs() -> None:
    query = "process where " + " or ".join(f'process.name == "n{i}.exe"' for i in range(33_000))
    assert len(query) > 1_000_000
    parsed, seconds = timed(lambda: parse(query))
    assert seconds < HANG
    matches = search(parsed, [event(process={"name": "n32999.exe"}),
                              event(process={"name": "other.exe"})])
    assert len(matches) == 1


@pytest.mark.parametrize(
    "query",
    [
        "process where " + "(" * 10_000 + "true" + ")" * 10_000,
        "process where " + "not " * 10_000 + "true",
        "process where " + "-" * 10_000 + "1 == 1",
        "process where " + "length(" * 5_000 + "x" + ")" * 5_000 + " > 0",
    ],
)
def test_deep_nesting_is_an_error_not_a_recursion_trace(query: str) -> None:
    with pytest.raises(EqlSyntaxError, match="nested too deeply"):
        parse(query)


def test_catastrophic_regex_runs_in_linear_time() -> None:
    hostile = event(p="a" * 200_000 + "!")
    matches, seconds = timed(lambda: search('process where p regex "(a+)+b"', [hostile]))
    assert matches == [] and seconds < HANG
    matches, seconds = timed(lambda: search('process where p regex "(a|aa)*c"', [hostile]))
    assert matches == [] and seconds < HANG


def test_ten_thousand_stars_pattern() -> None:
    pattern = "*" * 10_000 + "x" + "*" * 10_000
    events = [event(p="b" * 100_000), event(p="b" * 100_000 + "x")]
    matches, seconds = timed(lambda: search(f'process where p : "{pattern}"', events))
    assert len(matches) == 1 and seconds < HANG
    pattern = "?*" * 5_000
    matches, seconds = timed(lambda: search(f'process where p like "{pattern}"', events))
    assert len(matches) == 2 and seconds < HANG


def test_thousands_of_wildcard_patterns_in_one_list() -> None:
    patterns = ",".join(f'"*{i}*x?"' for i in range(20_000))
    events = [event(p="b" * 1_000), event(p="7777xz")]
    matches, seconds = timed(lambda: search(f"process where p : ({patterns})", events))
    assert len(matches) == 1 and seconds < HANG


def test_control_characters_and_huge_values_in_events() -> None:
    events = [event(p="\x1b[31m\x00" * 10_000), event(p=None), event(p={"nested": "object"}),
              event(p=[["deep", ["er"]]])]
    assert len(search('process where p : "*deep*" or p : "*er"', events)) == 1
