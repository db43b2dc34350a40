"""Shared test fixtures: where ../shared (the conformance suites, rules, samples) lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
