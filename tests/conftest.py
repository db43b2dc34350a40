"""Shared test fixtures: where ../shared (the conformance suites, rules, samples) lives."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent

# In CI (.ci/run: CI=true) property tests draw the same examples on every run, so a failure
# reproduces; locally they explore anew each time.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI") or os.environ.get("VIGIL_REQUIRE_SHARED") == "1":
    settings.load_profile("ci")


def shared_dir() -> Path:
    """The shared material: $VIGIL_SHARED, default ../shared beside the repository.

    Tests that need it skip with the reason when it is absent, and fail instead when
    VIGIL_REQUIRE_SHARED=1 (as .ci/run sets), so CI can never pass by skipping.
    """
    path = Path(os.environ.get("VIGIL_SHARED", REPO.parent / "shared"))
    if not path.is_dir():
        reason = f"shared material not found at {path} (set VIGIL_SHARED)"
        if os.environ.get("VIGIL_REQUIRE_SHARED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


def unsourced(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events without the marks of where they were read (``vigil.source`` and the
    ``log.file.path`` vigil added): to compare the same events read from two places."""
    out = []
    for event in events:
        copy = dict(event)
        source = copy.pop("vigil", {}).get("source", {})
        log = copy.get("log")
        if isinstance(log, dict) and isinstance(log.get("file"), dict) and \
                log["file"].get("path") == source.get("path"):
            file = {k: v for k, v in log["file"].items() if k != "path"}
            log = {k: v for k, v in log.items() if k != "file"} | ({"file": file} if file else {})
            if log:
                copy["log"] = log
            else:
                del copy["log"]
        out.append(copy)
    return out
