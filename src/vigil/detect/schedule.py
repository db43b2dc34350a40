"""The time windows of a rule's runs: Elastic's tuples, gaps and catch-up, and vigil's fix.

Elastic (Kibana ``getRuleRangeTuples``, ELASTIC_ENGINE.md §2.2): a run scheduled at T searches
``[from(T), to(T)]`` (both ends inclusive). When runs are missed, up to 4 catch-up windows,
each one ``interval`` earlier, are searched too; what is still uncovered is reported as a gap
and the run is marked failed with Elastic's message.

vigil goes further (kibana#285154): ``complete`` mode adds as many catch-up windows as it
takes, and makes sure each window overlaps the previous coverage by at least the rule's
``maxspan``, so that no sequence can fall between two runs unseen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

MAX_CATCHUP = 4  # Kibana's MAX_RULE_GAP_RATIO

GapMode = Literal["elastic", "complete"]


@dataclass(frozen=True, slots=True)
class Window:
    """One search window of a run, both ends inclusive."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class RunPlan:
    windows: tuple[Window, ...]  # oldest first
    gap: timedelta  # time no window covers (Elastic mode only)
    gap_start: datetime | None = None

    @property
    def gap_message(self) -> str | None:
        """Elastic's failure message for an uncovered gap."""
        if self.gap <= timedelta(0):
            return None
        ms = int(self.gap.total_seconds() * 1000)
        return (f"{humanize(self.gap)} ({ms}ms) were not queried between this rule execution "
                "and the last execution, so signals may have been missed. Consider increasing "
                "your look behind time or adding more Kibana instances")


def humanize(delta: timedelta) -> str:
    """Durations the way moment.js ``humanize`` words them (Kibana's gap message)."""
    seconds = delta.total_seconds()
    minutes = seconds / 60
    hours = minutes / 60
    days = hours / 24
    if seconds < 45:
        return "a few seconds"
    if seconds < 90:
        return "a minute"
    if minutes < 45:
        return f"{round(minutes)} minutes"
    if minutes < 90:
        return "an hour"
    if hours < 22:
        return f"{round(hours)} hours"
    if hours < 36:
        return "a day"
    return f"{round(days)} days"


def plan_run(started_at: datetime, previous_started_at: datetime | None, *,
             look_back: timedelta, interval: timedelta, to_offset: timedelta = timedelta(0),
             maxspan: timedelta | None = None, mode: GapMode = "elastic") -> RunPlan:
    """The windows a run scheduled at ``started_at`` searches.

    ``look_back`` is ``to - from`` (9 minutes for ``from: now-9m``), ``to_offset`` how far
    ``to`` lies before now (0 for ``now``).
    """
    end = started_at - to_offset
    start = end - look_back
    current = Window(start, end)
    if previous_started_at is None:
        return RunPlan((current,), timedelta(0))
    elapsed = started_at - previous_started_at
    gap = elapsed - look_back
    if mode == "elastic":
        if gap <= timedelta(0):
            return RunPlan((current,), timedelta(0))
        catchup = min(math.ceil(gap / interval), MAX_CATCHUP)
        windows = [Window(start - k * interval, end - k * interval)
                   for k in range(catchup, 0, -1)]
        remaining = max(gap - catchup * interval, timedelta(0))
        gap_start = previous_started_at - to_offset if remaining > timedelta(0) else None
        return RunPlan((*windows, current), remaining, gap_start)
    # complete: cover from the previous run's end, minus maxspan so sequences spanning the
    # boundary are seen whole, with windows stepping back by interval.
    previous_end = previous_started_at - to_offset
    must_cover_from = previous_end - (maxspan or timedelta(0))
    windows_list = [current]
    k = 1
    while windows_list[0].start > must_cover_from:
        windows_list.insert(0, Window(start - k * interval, end - k * interval))
        k += 1
    return RunPlan(tuple(windows_list), timedelta(0))


def schedule(first_start: datetime, last_start: datetime, interval: timedelta) -> list[datetime]:
    """Scheduled start times from ``first_start`` to ``last_start`` (inclusive)."""
    times: list[datetime] = []
    moment = first_start
    while moment <= last_start:
        times.append(moment)
        moment += interval
    return times


def covered(windows: Sequence[Window]) -> list[Window]:
    """The union of windows as disjoint ranges (for reporting coverage)."""
    merged: list[Window] = []
    for window in sorted(windows, key=lambda w: w.start):
        if merged and window.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Window(last.start, max(last.end, window.end))
        else:
            merged.append(window)
    return merged
