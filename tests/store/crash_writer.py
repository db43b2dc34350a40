"""A scheduler stand-in for the crash test: runs one rule every 5 minutes of simulated time,
storing each run's alerts (30 new sequences plus 10 found again by the overlapping window)
with ``complete_execution``, resuming where the store says it stopped. The test kills it.

Usage: python -m tests.store.crash_writer DB RUNS
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.store.factory import RULE_ID, RULE_NAME, sequence_docs
from vigil.store import RuleState, open_store

BASE = datetime(2024, 5, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
PER_RUN = 30
OVERLAP = 10


def run_docs(k: int) -> list[dict[str, Any]]:
    docs = [d for j in range(PER_RUN) for d in sequence_docs(f"{k}-{j}", filler=2000)]
    if k:
        docs += [d for j in range(OVERLAP) for d in sequence_docs(f"{k - 1}-{j}", filler=2000)]
    return docs


def main(db: str, runs: int) -> None:
    with open_store(db) as store:
        store.mark_interrupted_executions()
        state = store.get_rule_state(RULE_ID)
        if state is None:
            store.set_rule_state(RuleState(RULE_ID, RULE_NAME, 108, "5m"))
            first = 0
        elif state.last_scheduled_start is None:
            first = 0
        else:
            first = (state.last_scheduled_start - BASE) // STEP + 1
        print("ready", first, flush=True)
        for k in range(first, runs):
            start = BASE + k * STEP
            run = store.record_execution_start(RULE_ID, start, start - timedelta(minutes=9),
                                               start)
            docs = run_docs(k)
            store.complete_execution(run, "succeeded", documents=docs, events_read=len(docs),
                                     notify=True)
            print(k, flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
