"""Run windows: Elastic's tuples, catch-up and gaps (ELASTIC_ENGINE.md §2.2), and vigil's
complete coverage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vigil.detect.schedule import Window, covered, humanize, plan_run

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
SEED = {"look_back": 9 * M, "interval": 5 * M}


def test_first_run_searches_from_now_minus_9m_to_now() -> None:
    plan = plan_run(T, None, **SEED)
    assert plan.windows == (Window(T - 9 * M, T),) and plan.gap == timedelta(0)


@pytest.mark.parametrize(
    ("elapsed", "catchups", "gap"),
    # The worked examples of §2.2: on time; 12 min (1 catch-up); 29 min (4 catch-ups, no gap);
    # 35 min (4 catch-ups, 6 min uncovered).
    [(5, 0, 0), (12, 1, 0), (29, 4, 0), (35, 4, 6)],
)
def test_elastic_catch_up_and_gap(elapsed: int, catchups: int, gap: int) -> None:
    plan = plan_run(T, T - elapsed * M, **SEED)
    assert len(plan.windows) == catchups + 1
    assert plan.gap == gap * M
    for k, window in enumerate(reversed(plan.windows)):
        assert window == Window(T - 9 * M - k * 5 * M, T - k * 5 * M)
    assert (plan.gap_message is None) == (gap == 0)


def test_gap_message_is_elastics() -> None:
    message = plan_run(T, T - 35 * M, **SEED).gap_message
    assert message == ("6 minutes (360000ms) were not queried between this rule execution and "
                       "the last execution, so signals may have been missed. Consider "
                       "increasing your look behind time or adding more Kibana instances")
    assert humanize(timedelta(seconds=30)) == "a few seconds"
    assert humanize(timedelta(hours=3)) == "3 hours"


@pytest.mark.parametrize("elapsed", [5, 9, 12, 35, 24 * 60])
def test_complete_mode_leaves_nothing_uncovered(elapsed: int) -> None:
    previous_end = T - elapsed * M
    plan = plan_run(T, previous_end, mode="complete", maxspan=M, **SEED)
    assert plan.gap == timedelta(0)
    union = covered(plan.windows)
    assert len(union) == 1
    # Overlaps the previous coverage by maxspan, so a sequence across the boundary is seen.
    assert union[0].start <= previous_end - M and union[0].end == T


def test_complete_mode_covers_the_late_run_that_elastic_misses() -> None:
    # kibana#285154: a run 9 minutes late is "covered" by the look-back for Elastic (no gap),
    # but a 1-minute sequence straddling the previous window's end is in neither window.
    elastic = plan_run(T, T - 9 * M, **SEED)
    complete = plan_run(T, T - 9 * M, mode="complete", maxspan=M, **SEED)
    straddling_start = T - 9 * M - timedelta(seconds=30)
    assert all(not (w.start <= straddling_start <= w.end) for w in elastic.windows)
    assert any(w.start <= straddling_start and w.end >= T - 9 * M + timedelta(seconds=30)
               for w in complete.windows)
