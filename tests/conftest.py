"""Shared test fixtures: where ../shared (the conformance suites, rules, samples) lives."""

from __future__ import annotations

import os
from pathlib import Path

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
