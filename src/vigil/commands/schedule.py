"""``vigil replay`` and ``vigil watch``: rules on Elastic's schedule, alerts in a store.

Both run the same executions (vigil.detect.executor) and write them the same way: one
transaction per execution holds its alerts (created only if their deterministic id is new, so
overlapping windows never duplicate and closed alerts stay closed), its status and the rule's
position in the schedule. Killed at any moment, a restart re-covers the window of the run that
did not commit, and the ids make it idempotent.
"""

from __future__ import annotations

import io
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from vigil.detect.aggregations import ThresholdHistory
from vigil.detect.alerts import Alert
from vigil.detect.executor import Execution, Timeline, WindowOn, execute, late_events, to_ns
from vigil.detect.schedule import GapMode, RunPlan
from vigil.eql.schema import to_date_ns
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.events.jsonl import read_json_stream
from vigil.events.reader import LogonIdMode, iter_input_files
from vigil.report.safe import display_time, terminal_text
from vigil.rules import Rule, load_exceptions
from vigil.rules.model import parse_interval
from vigil.store import (
    AlertFilter,
    FileBlock,
    Gap,
    RuleState,
    SqliteStore,
    WebhookNotifier,
    open_store,
)
from vigil.store import views as store_views
from vigil.store.lock import StoreLock
from vigil.store.webhook import DEFAULT_ATTEMPTS
from vigil.times import DateMath

Event = Mapping[str, Any]
Excludes = Callable[[Event], bool] | None


@dataclass(frozen=True, slots=True)
class ScheduleRequest:
    paths: Sequence[Path]
    store: Path
    rules: Sequence[Rule]
    exceptions: Path | None = None
    gap_mode: GapMode = "complete"
    window_on: WindowOn = "@timestamp"
    logon_id: LogonIdMode = "intended"
    index_all: bool = False
    interval: timedelta | None = None  # override every rule's interval (demos, tests)
    webhook: str | None = None
    webhook_attempts: int | None = None  # tries before a notification is dead-lettered


def _apply_interval(rules: Sequence[Rule], interval: timedelta | None) -> list[Rule]:
    if interval is None:
        return list(rules)
    text = f"{int(interval.total_seconds())}s"
    return [replace(rule, interval=text) for rule in rules]


def _exceptions(request: ScheduleRequest, rules: Sequence[Rule]) -> dict[str, Excludes]:
    if request.exceptions is None:
        return {rule.rule_id: None for rule in rules}
    exceptions = load_exceptions([request.exceptions])
    now = datetime.now(UTC)
    out: dict[str, Excludes] = {}
    for rule in rules:
        flt = exceptions.filter_for(rule, now, rules=rules)
        out[rule.rule_id] = flt.excludes if flt.items else None
    return out


def _gap(plan: RunPlan) -> Gap | None:
    if plan.gap <= timedelta(0) or plan.gap_start is None:
        return None
    return Gap(plan.gap_start, plan.gap_start + plan.gap)


def _store_execution(store: SqliteStore, execution: Execution, notify: bool) -> list[str]:
    windows = execution.plan.windows
    execution_id = store.record_execution_start(execution.rule.rule_id, execution.started_at,
                                                windows[0].start, windows[-1].end)
    alerts = _suppressed_across_executions(store, execution)
    documents = [doc for alert in alerts for doc in alert.documents()]
    return store.complete_execution(
        execution_id, execution.status, execution.message if execution.messages else "",
        documents=documents, events_read=execution.events_read, gap=_gap(execution.plan),
        notify=notify,
    )


def _suppressed_across_executions(store: SqliteStore, execution: Execution) -> list[Alert]:
    """With a suppression ``duration``, an alert whose group a stored alert of the last
    ``duration`` already holds is folded into that one (its end, its count, when it was
    last detected) instead of being written (Kibana's bulkCreateWithSuppression)."""
    spec = execution.rule.alert_suppression
    if spec is None or spec.duration_ns is None or not execution.alerts:
        return list(execution.alerts)
    since = execution.started_at - timedelta(microseconds=spec.duration_ns // 1000)
    holding = store.suppressing_alerts(execution.rule.rule_id, since.isoformat())
    now = execution.started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    kept = []
    for alert in execution.alerts:
        instance = alert.document.get("kibana.alert.instance.id")
        held = holding.get(instance) if isinstance(instance, str) else None
        if held is None or held[0] == alert.id:
            kept.append(alert)
            continue
        held_id, document = held
        end = max(str(document.get("kibana.alert.suppression.end", "")),
                  str(alert.document.get("kibana.alert.suppression.end", "")))
        count = int(document.get("kibana.alert.suppression.docs_count", 0)) + int(
            alert.document.get("kibana.alert.suppression.docs_count", 0)) + 1
        store.update_suppression(held_id, end, count, now)
        document.update({"kibana.alert.suppression.end": end,
                         "kibana.alert.suppression.docs_count": count})
    return kept


def _reach(rule: Rule) -> timedelta:
    """How far before a run's start the rule can read: its look-back and one interval
    (catch-up windows never reach further), or for a new terms rule its history window."""
    reach = max(-rule.from_math.offset, rule.look_back) + rule.interval_delta
    if rule.new_terms is not None:
        history = -(rule.to_math.offset + DateMath.parse(
            rule.new_terms.history_window_start).offset)
        reach = max(reach, history + rule.interval_delta)
    return reach


def _suppression_history(store: SqliteStore, rule: Rule) -> dict[str, int]:
    """Per suppression group, up to when the stored alerts counted its events."""
    groups: dict[str, int] = {}
    if rule.alert_suppression is None:
        return groups
    for alert in store.list_alerts(AlertFilter(rule=rule.rule_id)):
        instance = alert.document.get("kibana.alert.instance.id")
        end = to_date_ns(alert.document.get("kibana.alert.suppression.end"))
        if isinstance(instance, str) and end is not None:
            groups[instance] = max(groups.get(instance, end), end)
    return groups


def _threshold_history(store: SqliteStore, rule: Rule) -> ThresholdHistory:
    """A threshold rule's state from its stored alerts: per bucket, its last alert's time."""
    history = ThresholdHistory()
    if rule.threshold is None:
        return history
    for alert in store.list_alerts(AlertFilter(rule=rule.rule_id)):
        result = alert.document.get("kibana.alert.threshold_result")
        moment = to_date_ns(alert.document.get("kibana.alert.original_time"))
        if not isinstance(result, dict) or moment is None:
            continue
        terms = tuple((str(t.get("field")), t.get("value")) for t in result.get("terms", [])
                      if isinstance(t, dict))
        history.last[terms] = max(history.last.get(terms, moment), moment)
    return history


def _prepare_store(store: SqliteStore, rules: Sequence[Rule]) -> None:
    store.mark_interrupted_executions()
    for rule in rules:
        state = store.get_rule_state(rule.rule_id)
        fresh = RuleState.from_rule(rule)
        if state is None:
            store.set_rule_state(fresh)
        else:
            store.set_rule_state(replace(fresh, last_scheduled_start=state.last_scheduled_start,
                                         last_status=state.last_status,
                                         last_message=state.last_message,
                                         last_execution_id=state.last_execution_id))


# ------------------------------------------------------------------ replay


def _first_at_or_after(start: datetime, step: timedelta, moment: datetime) -> int:
    """The index of the first scheduled run at or after ``moment``."""
    if moment <= start:
        return 0
    return -((start - moment) // step)  # ceil((moment - start) / step)


def _first_run_at(start: datetime, step: timedelta, ns: int, rule: Rule, total: int) -> int:
    """The index of the first run whose window ends at or after ``ns`` (at most ``total``)."""
    if ns >= 1 << 62:
        return total
    end_of_first = to_ns(start + rule.to_math.offset)
    if ns <= end_of_first:
        return 0
    step_ns = int(step.total_seconds() * 1_000_000_000)
    return min(total, -((end_of_first - ns) // step_ns))


def _quiet(execution: Execution) -> bool:
    """A run that found nothing: no event in its windows, no alert, no gap, succeeded."""
    return (execution.events_read == 0 and not execution.alerts
            and execution.status == "succeeded" and not execution.plan.gap)


@dataclass(slots=True)
class _QuietStretch:
    """Consecutive runs with nothing in their windows, recorded as one execution: its
    window spans theirs, its message says how many runs it stands for, and the rule's
    state moves to the last of them. So a replay over years of sparse data writes one row
    per stretch, not one per run (and its cost grows with the runs that see events)."""

    store: SqliteStore
    rule: Rule
    first: datetime | None = None
    last: datetime | None = None
    window_from: datetime | None = None
    window_to: datetime | None = None
    count: int = 0

    def add_execution(self, execution: Execution) -> None:
        self._extend(execution.started_at, execution.plan.windows[0].start,
                     execution.plan.windows[-1].end)

    def add_runs(self, first: datetime, last: datetime, count: int, rule: Rule) -> None:
        """``count`` runs from ``first`` to ``last`` not executed: their windows are the
        rule's from..to around them (runs right after another: no catch-up window)."""
        self._extend(first, first + rule.from_math.offset, first + rule.to_math.offset)
        self.last, self.window_to = last, last + rule.to_math.offset
        self.count += count - 1

    def _extend(self, started: datetime, window_from: datetime, window_to: datetime) -> None:
        if self.count == 0:
            self.first, self.window_from = started, window_from
        self.last, self.window_to = started, window_to
        self.count += 1

    def flush(self) -> None:
        if self.count == 0:
            return
        assert self.last is not None and self.window_from is not None
        assert self.window_to is not None and self.first is not None
        execution_id = self.store.record_execution_start(self.rule.rule_id, self.last,
                                                         self.window_from, self.window_to)
        message = ("Rule execution completed successfully" if self.count == 1 else
                   f"{self.count:,} runs from {display_time(self.first)} to "
                   f"{display_time(self.last)} found no event in their windows")
        self.store.complete_execution(execution_id, "succeeded", message, documents=[],
                                      events_read=0, gap=None, notify=False)
        self.count = 0


def run_replay(request: ScheduleRequest, start: datetime, end: datetime,
               down: Sequence[tuple[datetime, datetime]] = ()) -> int:
    """Simulate the schedule from ``start`` to ``end`` over historical data."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    rules = _apply_interval(request.rules, request.interval)
    excludes = _exceptions(request, rules)
    stats = ReadStats()
    began = time.perf_counter()
    # Only the events some stage of some rule matches (the fast path's kept events, every
    # event still read and counted): each rule's engine answers on them as on every event
    # (backends/fast.py), and memory grows with what the rules match, not with the input.
    from vigil.backends.fast import kept_events

    kept, _per_rule, _fast = kept_events(rules, request.paths, stats,
                                         ReadOptions(logon_id=request.logon_id),
                                         index_all=request.index_all)
    timeline = Timeline.of(kept)
    new_alerts = 0
    runs: list[tuple[datetime, RunPlan]] = []
    not_ok: list[Execution] = []
    executions = 0
    with StoreLock(request.store, "replay"), open_store(request.store,
                                                        synchronous="normal") as store:
        _prepare_store(store, rules)
        histories = {rule.rule_id: _threshold_history(store, rule) for rule in rules}
        suppressed = {rule.rule_id: _suppression_history(store, rule) for rule in rules}
        for rule in rules:
            previous: datetime | None = None
            quiet = _QuietStretch(store, rule)
            # Runs whose windows end before this time (ns) see no event: not executed (the
            # previous run, with nothing in its windows, had the same view of the data), and
            # jumped over in one step, so the cost is the runs that see events.
            skip_until: int | None = None
            step = rule.interval_delta
            total = int((end - start) / step) + 1 if end >= start else 0
            k = 0
            while k < total:
                started = start + k * step
                if any(lo <= started <= hi for lo, hi in down):
                    quiet.flush()
                    skip_until = None
                    k += 1
                    continue  # the scheduler was down: no run started
                if skip_until is not None and to_ns(started + rule.to_math.offset) < skip_until:
                    target = _first_run_at(start, step, skip_until, rule, total)
                    outage = next((lo for lo, _hi in sorted(down) if lo > started), None)
                    if outage is not None:
                        target = min(target, max(k + 1, _first_at_or_after(start, step,
                                                                           outage)))
                    last = start + (target - 1) * step
                    quiet.add_runs(started, last, target - k, rule)
                    executions += target - k
                    previous = last
                    k = target
                    continue
                executions += 1
                execution = execute(rule, timeline, started, previous,
                                    gap_mode=request.gap_mode, window_on=request.window_on,
                                    index_all=request.index_all,
                                    excludes=excludes[rule.rule_id],
                                    threshold_history=histories[rule.rule_id],
                                    suppression_history=suppressed[rule.rule_id])
                if _quiet(execution) and request.window_on == "@timestamp":
                    quiet.add_execution(execution)
                    following = timeline.next_time_after(to_ns(execution.plan.windows[-1].end),
                                                         rule)
                    skip_until = (1 << 63) if following is None else following
                else:
                    quiet.flush()
                    skip_until = None
                    created = set(_store_execution(store, execution, notify=False))
                    # Alerts, not documents: a sequence is one alert (its shell).
                    new_alerts += sum(1 for alert in execution.alerts if alert.id in created)
                    runs.append((started, execution.plan))
                    if execution.status != "succeeded":
                        not_ok.append(execution)
                previous = started
                k += 1
            quiet.flush()
    late = late_events(timeline, runs) if request.window_on == "@timestamp" else []
    seconds = time.perf_counter() - began
    err.print(f"replayed {executions:,} execution(s) of {len(rules)} rule(s) from "
              f"{display_time(start)} to {display_time(end)} over {stats.events:,} events "
              f"in {seconds:.1f} s: {new_alerts:,} new alert(s)", markup=False)
    for bad in stats.bad_records[:10]:
        err.print(f"  {terminal_text(str(bad))}", markup=False)
    for execution in not_ok:
        err.print(f"  {display_time(execution.started_at)} {terminal_text(execution.rule.name)}: "
                  f"{execution.status}: {terminal_text(execution.message)}", markup=False)
    if late:
        err.print(f"{len(late):,} event(s) arrived after every window covering their "
                  "@timestamp had run (late): Elastic never searches them; "
                  "--window-on event.ingested searches them again", markup=False)
    return 0


# ------------------------------------------------------------------ watch


_MARK = 256  # bytes compared to tell a file rewritten in place from one that grew
_READ_PIECE = 8 << 20  # bytes of a backlog read at a time
_BATCH_EVENTS = 20_000  # events of a whole-file input (EVTX) added at a time


@dataclass(slots=True)
class _Tail:
    """A growing NDJSON file: what was read so far, by inode, offset and line number. Each
    chunk read is recorded in the store's event-time index, so that a restart seeks to the
    first block a pending window can need."""

    path: Path
    store: SqliteStore
    needed_from: int | None = None  # ns: nothing older is needed (None: read everything)
    inode: int = -1
    offset: int = 0
    line: int = 0
    partial: bytes = b""
    mark: bytes = b""  # the last bytes before ``offset``, as read: a rewrite changes them
    behind: bool = False  # the last read stopped at its limit: more is waiting

    def _resume(self, inode: int) -> None:
        self.inode, self.offset, self.line, self.partial = inode, 0, 0, b""
        if self.needed_from is None:
            return
        blocks = self.store.file_blocks(str(self.path), inode)
        for block in blocks:
            if block.max_ts is None or block.max_ts >= self.needed_from or block is blocks[-1]:
                self.offset, self.line = block.start_offset, block.first_line - 1
                return

    def _same_start(self) -> bool:
        """Do the bytes before ``offset`` still read as they did? (True when nothing is
        known to compare: the first read, or after a restart.)"""
        if not self.mark or self.offset < len(self.mark):
            return True
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset - len(self.mark))
                return handle.read(len(self.mark)) == self.mark
        except OSError:
            return True

    def read_new(self, stats: ReadStats, options: ReadOptions,
                 limit: int | None = None) -> list[dict[str, Any]]:
        """The events of what the file gained since the last read (at most ``limit`` bytes
        of it; ``behind`` then says whether more is waiting)."""
        self.behind = False
        try:
            info = self.path.stat()
        except OSError:
            return []
        if self.inode == -1:
            self._resume(info.st_ino)
        if info.st_ino != self.inode or info.st_size < self.offset or not self._same_start():
            # Rotated, truncated, or truncated and refilled past the old end between two
            # polls (copytruncate): a new file under the same name, read from the start.
            self.inode, self.offset, self.line, self.partial = info.st_ino, 0, 0, b""
            self.mark = b""
        if info.st_size == self.offset:
            return []
        size = info.st_size - self.offset
        if limit is not None and size > limit:
            size, self.behind = limit, True
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read(size)
        self.mark = (self.mark + data)[-_MARK:]
        block_start = self.offset - len(self.partial)
        self.offset += len(data)
        data = self.partial + data
        cut = data.rfind(b"\n") + 1
        complete, self.partial = data[:cut], data[cut:]
        if not complete:
            return []
        chunk_stats = ReadStats()
        events = list(read_json_stream(io.BufferedReader(io.BytesIO(complete)),
                                       str(self.path), chunk_stats, options))
        for bad in chunk_stats.bad_records:  # positions in the file, not in this chunk
            position = str(int(bad.position) + self.line) if bad.position.isdigit() else \
                bad.position
            stats.bad(bad.path, position, bad.reason)
        stats.events += len(events)
        times = [t for t in (to_date_ns(e.get("@timestamp")) for e in events) if t is not None]
        self.store.record_file_block(FileBlock(
            str(self.path), self.inode, block_start, block_start + len(complete), self.line + 1,
            min(times) if times else None, max(times) if times else None))
        self.line += complete.count(b"\n")
        return events


_TAILABLE = (".ndjson", ".jsonl", ".json")


@dataclass(slots=True)
class Watcher:
    request: ScheduleRequest
    poll: float = 2.0
    stop_requested: bool = False
    tails: dict[Path, _Tail] = field(default_factory=dict)
    whole: dict[Path, float] = field(default_factory=dict)  # other files: mtime when read
    seen_ids: set[str] = field(default_factory=set)
    threshold_histories: dict[str, ThresholdHistory] = field(default_factory=dict)
    suppression_histories: dict[str, dict[str, int]] = field(default_factory=dict)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True

    def refresh(self, store: SqliteStore, timeline: Timeline, stats: ReadStats,
                options: ReadOptions, needed_from: int | None,
                rules: Sequence[Rule] = ()) -> list[int]:
        """Read what is new in the watched files and folders into ``timeline``; returns the
        new events' times. They arrive at this second: the runs start on whole seconds
        (``_maybe_run``), so a run of this pass sees what this pass read. A backlog is read
        in bounded pieces, and after each piece the events no window still to run can reach
        are dropped: memory stays bounded by what the rules can still need, not by the
        backlog (issue 13, item 16)."""
        now = to_ns(datetime.now(UTC).replace(microsecond=0))
        times: list[int] = []
        batch: list[dict[str, Any]] = []

        def settle() -> None:
            timeline.add(batch, arrived_at=now)
            times.extend(t for t in (to_date_ns(e.get("@timestamp")) for e in batch)
                         if t is not None)
            batch.clear()
            keep_from = self._keep_from(store, rules, now)
            if keep_from is not None:
                timeline.forget_before(keep_from)

        for path in iter_input_files(self.request.paths):
            if path.name.lower().endswith(_TAILABLE):
                tail = self.tails.get(path)
                if tail is None:
                    tail = self.tails[path] = _Tail(path, store, needed_from)
                while True:
                    batch.extend(tail.read_new(stats, options, limit=_READ_PIECE))
                    settle()
                    if not tail.behind:
                        break
                continue
            mtime = path.stat().st_mtime
            if self.whole.get(path) == mtime:
                continue
            self.whole[path] = mtime
            from vigil.detect.ids import event_id

            for event in read_events([path], stats, options):
                key = event_id(event)
                if key not in self.seen_ids:  # an EVTX re-read after it grew
                    self.seen_ids.add(key)
                    batch.append(event)
                    if len(batch) >= _BATCH_EVENTS:
                        settle()
        settle()
        return times

    def _keep_from(self, store: SqliteStore, rules: Sequence[Rule], now: int) -> int | None:
        """The earliest event time (ns) a window still to run can reach, or None (keep all):
        from each rule's previous run (``_searched_from``), or, for a rule that never ran,
        from the window of its first run at ``now`` (a run of a rule without a previous one
        searches its from..to and nothing older). With ``--window-on event.ingested`` runs
        search by arrival, which for what is read now is now: nothing is dropped."""
        if not rules or self.request.window_on != "@timestamp":
            return None
        oldest: int | None = None
        for rule in rules:
            state = store.get_rule_state(rule.rule_id)
            if state is not None and state.last_scheduled_start is not None:
                need = to_ns(state.last_scheduled_start - _reach(rule))
            else:
                need = now - int(_reach(rule).total_seconds() * 1e9)
            oldest = need if oldest is None else min(oldest, need)
        return oldest

    def run(self, once: bool = False) -> int:
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        rules = _apply_interval(self.request.rules, self.request.interval)
        excludes = _exceptions(self.request, rules)
        options = ReadOptions(logon_id=self.request.logon_id)
        stats = ReadStats()
        timeline = Timeline()
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        with StoreLock(self.request.store, "watch"):
            return self._run_locked(once, err, rules, excludes, options, stats, timeline)

    def _run_locked(self, once: bool, err: Console, rules: list[Rule],
                    excludes: dict[str, Excludes], options: ReadOptions, stats: ReadStats,
                    timeline: Timeline) -> int:
        store = open_store(self.request.store)
        notifier = (WebhookNotifier(store, self.request.webhook,
                                    max_attempts=self.request.webhook_attempts
                                    or DEFAULT_ATTEMPTS)
                    if self.request.webhook else None)
        if notifier is not None:
            notifier.start()
        try:
            _prepare_store(store, rules)
            err.print(f"watching {len(self.request.paths)} path(s) with {len(rules)} rule(s); "
                      f"store {self.request.store}", markup=False)
            first_pass = True
            while not self.stop_requested:
                searched_from = self._searched_from(store, rules)
                fresh = self.refresh(store, timeline, stats, options, searched_from, rules)
                if not first_pass and searched_from is not None:
                    self._report_late(fresh, searched_from, err)
                first_pass = False
                for rule in rules:
                    if self.stop_requested:
                        break
                    self._maybe_run(store, rule, timeline, excludes[rule.rule_id], err,
                                    notify=notifier is not None)
                self._forget(store, rules, timeline)
                if once:
                    break
                deadline = time.monotonic() + self.poll
                while not self.stop_requested and time.monotonic() < deadline:
                    time.sleep(min(0.1, self.poll))
        finally:
            if notifier is not None:
                notifier.stop(5.0)
            store.close()
        for bad in stats.bad_records[:10]:
            err.print(f"  {terminal_text(str(bad))}", markup=False)
        err.print("stopped" if self.stop_requested else "done", markup=False)
        return 0

    def _maybe_run(self, store: SqliteStore, rule: Rule, timeline: Timeline,
                   excludes: Excludes, err: Console, *, notify: bool) -> None:
        state = store.get_rule_state(rule.rule_id)
        previous = state.last_scheduled_start if state else None
        now = datetime.now(UTC).replace(microsecond=0)
        if previous is not None and now < previous + rule.interval_delta:
            return
        # Threshold state: kept between runs; after a restart rebuilt from the stored
        # alerts, as Kibana rebuilds it from its alerts index (get_threshold_signal_history).
        history = self.threshold_histories.get(rule.rule_id)
        if history is None:
            history = self.threshold_histories[rule.rule_id] = _threshold_history(store, rule)
        groups = self.suppression_histories.get(rule.rule_id)
        if groups is None:
            groups = self.suppression_histories[rule.rule_id] = _suppression_history(store,
                                                                                     rule)
        execution = execute(rule, timeline, now, previous, gap_mode=self.request.gap_mode,
                            window_on=self.request.window_on,
                            index_all=self.request.index_all, excludes=excludes,
                            threshold_history=history, suppression_history=groups)
        created = _store_execution(store, execution, notify)
        if created or execution.status != "succeeded":
            shells = sum(1 for a in execution.alerts if a.id in set(created))
            err.print(f"{display_time(now)} {terminal_text(rule.name)}: {execution.status}, "
                      f"{shells} new alert(s)"
                      + (f": {terminal_text(execution.message)}" if execution.messages else ""),
                      markup=False)

    @staticmethod
    def _searched_from(store: SqliteStore, rules: Sequence[Rule]) -> int | None:
        """The earliest time (ns) a future window can start at: the previous run of each
        rule minus its look-back and one interval (catch-up windows never reach further)."""
        oldest = None
        for rule in rules:
            state = store.get_rule_state(rule.rule_id)
            if state is None or state.last_scheduled_start is None:
                return None
            need = state.last_scheduled_start - _reach(rule)
            oldest = need if oldest is None else min(oldest, need)
        return None if oldest is None else to_ns(oldest)

    def _report_late(self, fresh: Sequence[int], searched_from: int, err: Console) -> None:
        late = sum(1 for ts in fresh if ts < searched_from)
        if late and self.request.window_on == "@timestamp":
            err.print(f"{late:,} late event(s): older than every window still to run, so no "
                      "rule will see them (Elastic would not either); --window-on "
                      "event.ingested searches their time range again", markup=False)

    def _forget(self, store: SqliteStore, rules: Sequence[Rule], timeline: Timeline) -> None:
        """Keep only what a future window can need: bounded memory."""
        oldest = self._searched_from(store, rules)
        if oldest is not None:
            timeline.forget_before(oldest)


def run_watch(request: ScheduleRequest, poll: float, once: bool) -> int:
    return Watcher(request, poll=poll).run(once=once)


def parse_duration(text: str) -> timedelta:
    return parse_interval(text)


def print_executions(store_path: Path, status: str | None) -> None:
    with open_store(store_path) as store:
        Console(highlight=False).print(
            store_views.executions_table(store.list_executions(status=status)))


