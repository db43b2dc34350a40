"""The SQLite store: rule state, executions, dedup, filters, workflow, export, atomicity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.store.factory import RULE_ID, sequence_docs, single_doc
from vigil.store import (
    SUCCEEDED_MESSAGE,
    AlertFilter,
    Gap,
    RuleState,
    SqliteStore,
    StoreError,
    normalize_time,
    open_store,
)

T0 = datetime(2024, 5, 1, 10, 5, tzinfo=UTC)


def _ids(docs: list[dict[str, object]]) -> list[str]:
    return [str(d["kibana.alert.uuid"]) for d in docs]


def _run(store: SqliteStore, start: datetime = T0) -> int:
    return store.record_execution_start(RULE_ID, start, start - timedelta(minutes=9), start)


# ---------------------------------------------------------------- times


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000000000Z"),
    ("2024-05-01T10:00:00.123Z", "2024-05-01T10:00:00.123000000Z"),
    ("2024-05-01T10:00:00.123456789Z", "2024-05-01T10:00:00.123456789Z"),
    ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00.000000000Z"),
    ("2024-05-01", "2024-05-01T00:00:00.000000000Z"),
    (1714557600000, "2024-05-01T10:00:00.000000000Z"),
    (datetime(2024, 5, 1, 10, 0, 0, 5, tzinfo=UTC), "2024-05-01T10:00:00.000005000Z"),
    ("yesterday", None),
    (None, None),
])
def test_times_are_normalised_to_sortable_utc(value: object, expected: str | None) -> None:
    assert normalize_time(value) == expected


def test_normalised_times_sort_like_time() -> None:
    # Raw ISO text sorts "…00Z" after "…00.5Z"; the normalised form does not.
    raw = ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00.5Z", "2024-05-01T09:59:59.999+00:00"]
    assert sorted(raw) != sorted(raw, key=lambda t: normalize_time(t) or "")
    assert [normalize_time(t) for t in sorted(raw, key=lambda t: normalize_time(t) or "")] == [
        "2024-05-01T09:59:59.999000000Z", "2024-05-01T10:00:00.000000000Z",
        "2024-05-01T10:00:00.500000000Z"]


# ---------------------------------------------------------------- rules and executions


def test_rule_state_round_trip(store: SqliteStore) -> None:
    assert store.get_rule_state(RULE_ID) is None
    state = RuleState(RULE_ID, "Remote Windows Service Installed", 108, "5m",
                      last_scheduled_start=T0, last_status="partial failure",
                      last_message="This rule reached the maximum alert limit for the rule "
                                   "execution. Some alerts were not created.")
    store.set_rule_state(state)
    assert store.get_rule_state(RULE_ID) == state
    store.set_rule_state(RuleState(RULE_ID, "renamed", 109, "10m", enabled=False))
    assert store.list_rule_states() == [RuleState(RULE_ID, "renamed", 109, "10m",
                                                  enabled=False)]


def test_execution_lifecycle_updates_the_rule(store: SqliteStore) -> None:
    store.set_rule_state(RuleState(RULE_ID, "Remote Windows Service Installed", 108, "5m"))
    run = _run(store)
    [running] = store.list_executions(status="running")
    assert running.id == run and running.window_from == T0 - timedelta(minutes=9)
    gap = Gap(T0 - timedelta(minutes=40), T0 - timedelta(minutes=34))
    message = ("6 minutes (360000ms) were not queried between this rule execution and the "
               "last execution, so signals may have been missed. Consider increasing your "
               "look behind time or adding more Kibana instances")
    done = store.finish_execution(run, "failed", message, events_read=42, gap=gap)
    assert (done.status, done.message, done.events_read, done.gap) == ("failed", message, 42, gap)
    assert done.finished_at is not None and done.duration_ms is not None
    state = store.get_rule_state(RULE_ID)
    assert state is not None
    assert (state.last_status, state.last_message, state.last_execution_id,
            state.last_scheduled_start) == ("failed", message, run, T0)
    # A late-finishing older execution never moves the schedule backwards.
    older = _run(store, T0 - timedelta(minutes=5))
    store.finish_execution(older, "succeeded")
    state = store.get_rule_state(RULE_ID)
    assert state is not None and state.last_scheduled_start == T0
    assert store.get_execution(older) is not None
    assert store.list_executions(rule="remote windows service installed")[0].message == \
        SUCCEEDED_MESSAGE
    with pytest.raises(StoreError, match="already finished"):
        store.finish_execution(run, "succeeded")
    with pytest.raises(StoreError, match="no execution"):
        store.finish_execution(9999, "succeeded")
    with pytest.raises(StoreError, match="finishes as one of"):
        store.finish_execution(_run(store), "running")


def test_interrupted_executions_are_marked_failed(store: SqliteStore) -> None:
    first, second = _run(store), _run(store, T0 + timedelta(minutes=5))
    store.finish_execution(first, "succeeded")
    assert store.mark_interrupted_executions() == [second]
    interrupted = store.get_execution(second)
    assert interrupted is not None and interrupted.status == "failed"
    assert "next run searches its window again" in interrupted.message


# ---------------------------------------------------------------- dedup


def test_insert_twice_stores_once(store: SqliteStore) -> None:
    docs = [*sequence_docs("a"), single_doc("b")]
    run = _run(store)
    assert store.insert_alerts(docs, run) == _ids(docs)
    assert store.insert_alerts(docs, run) == []
    assert store.count_alerts(AlertFilter(include_building_blocks=True)) == 4
    # Duplicates inside one batch are stored once too.
    again = sequence_docs("c")
    assert store.insert_alerts(again + again) == _ids(again)


def test_closed_alert_stays_closed_when_found_again(store: SqliteStore) -> None:
    docs = sequence_docs("a")
    shell_id = _ids(docs)[-1]
    store.insert_alerts(docs)
    store.set_workflow_status([shell_id], "closed", "analyst")
    # The next overlapping window finds the same sequence, with workflow_status "open".
    assert store.insert_alerts(sequence_docs("a")) == []
    shell = store.get_alert(shell_id)
    assert shell is not None and shell.workflow_status == "closed"
    assert shell.document["kibana.alert.workflow_status"] == "closed"
    assert {b.workflow_status for b in shell.building_blocks} == {"closed"}


def test_complete_execution_is_one_transaction(store: SqliteStore) -> None:
    store.set_rule_state(RuleState(RULE_ID, "Remote Windows Service Installed", 108, "5m"))
    run = _run(store)
    docs = sequence_docs("a") + sequence_docs("b")
    finished = _run(store, T0 - timedelta(hours=1))
    store.finish_execution(finished, "succeeded")
    # A failure after the alerts were written (finishing an execution twice) leaves none
    # of them, and no notification.
    with pytest.raises(StoreError, match="already finished"):
        store.complete_execution(finished, "succeeded", documents=docs, notify=True)
    assert store.count_alerts(AlertFilter(include_building_blocks=True)) == 0
    assert store.pending_notifications() == 0
    store.set_rule_state(RuleState(RULE_ID, "Remote Windows Service Installed", 108, "5m"))
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_alerts(docs, run, notify=True)
        store.finish_execution(run, "succeeded")
        raise RuntimeError("killed mid-way")
    execution = store.get_execution(run)
    assert execution is not None and execution.status == "running"
    assert store.count_alerts(AlertFilter(include_building_blocks=True)) == 0
    assert store.pending_notifications() == 0
    state = store.get_rule_state(RULE_ID)
    assert state is not None and state.last_scheduled_start is None

    inserted = store.complete_execution(run, "succeeded", documents=docs, events_read=10,
                                        notify=True)
    assert inserted == _ids(docs)
    execution = store.get_execution(run)
    assert execution is not None
    assert (execution.status, execution.alerts_created, execution.events_read) == \
        ("succeeded", 6, 10)
    # Only the two shells are queued for the webhook.
    assert {d.alert_id for d in store.list_deliveries()} == {_ids(docs)[2], _ids(docs)[5]}


def test_nested_transaction_failure_rolls_back_only_the_inner_part(store: SqliteStore) -> None:
    with store.transaction():
        store.insert_alerts(sequence_docs("kept"))
        with pytest.raises(RuntimeError), store.transaction():
            store.insert_alerts(sequence_docs("dropped"))
            raise RuntimeError
    assert store.count_alerts(AlertFilter(include_building_blocks=True)) == 3


def test_after_commit_runs_only_on_commit(store: SqliteStore) -> None:
    calls: list[str] = []
    with pytest.raises(RuntimeError), store.transaction():
        store.after_commit(lambda: calls.append("rolled back"))
        raise RuntimeError
    with store.transaction():
        store.after_commit(lambda: calls.append("committed"))
        assert calls == []
    assert calls == ["committed"]


def test_document_without_id_is_refused(store: SqliteStore) -> None:
    with pytest.raises(StoreError, match=r"kibana\.alert\.uuid"):
        store.insert_alerts([{"kibana.alert.rule.rule_id": RULE_ID}])


# ---------------------------------------------------------------- reading


@pytest.fixture
def filled(store: SqliteStore) -> SqliteStore:
    store.insert_alerts(sequence_docs("a", time="2024-05-01T10:00:00.000Z", host="DC01"))
    store.insert_alerts(sequence_docs("b", time="2024-05-02T10:00:00Z", host="dc02",
                                      user="eve", source_ip="10.0.0.9"))
    store.insert_alerts([single_doc("c", time="2024-05-03T10:00:00.5Z", host="WS7")])
    return store


def test_list_filters(filled: SqliteStore) -> None:
    def hosts(**kw: object) -> list[str | None]:
        return [a.host for a in filled.list_alerts(AlertFilter(**kw))]  # type: ignore[arg-type]

    assert hosts() == ["WS7", "dc02", "DC01"]  # newest event first
    assert hosts(host="DC02") == ["dc02"]  # host names ignore case, as Windows does
    assert hosts(rule=RULE_ID) == ["dc02", "DC01"]
    assert hosts(rule="single event rule") == ["WS7"]
    assert hosts(since="2024-05-02T00:00:00Z") == ["WS7", "dc02"]
    assert hosts(until=datetime(2024, 5, 2, 10, tzinfo=UTC)) == ["dc02", "DC01"]
    assert hosts(limit=1) == ["WS7"]
    assert len(hosts(include_building_blocks=True)) == 7
    filled.set_workflow_status([filled.list_alerts()[0].id], "acknowledged", "me")
    assert hosts(status="acknowledged") == ["WS7"]
    assert hosts(status="open") == ["dc02", "DC01"]
    [b] = filled.list_alerts(AlertFilter(host="dc02"))
    assert (b.user, b.source_ip, b.severity, b.risk_score) == ("eve", "10.0.0.9", "medium", 47)
    # A single-event alert has no vigil.summary: the columns come from its fields.
    [c] = filled.list_alerts(AlertFilter(host="ws7"))
    assert (c.user, c.source_ip) == ("bob", "192.0.2.9")
    with pytest.raises(StoreError, match="not a time"):
        filled.list_alerts(AlertFilter(since="last week"))


def test_get_alert_with_building_blocks_and_prefixes(filled: SqliteStore) -> None:
    docs = sequence_docs("a")
    shell = filled.get_alert(_ids(docs)[-1])
    assert shell is not None
    assert [b.id for b in shell.building_blocks] == _ids(docs)[:2]
    assert shell.documents() == docs
    block = filled.get_alert(_ids(docs)[0])
    assert block is not None and block.is_sequence_member and not block.building_blocks
    assert filled.get_alert("0" * 64) is None
    found = filled.resolve_alert_ids([_ids(docs)[-1][:10], _ids(docs)[-1].upper(), "zz"])
    assert found[_ids(docs)[-1][:10]] == [_ids(docs)[-1]]
    assert found["zz"] == []


def test_workflow_changes(filled: SqliteStore) -> None:
    shell_id = _ids(sequence_docs("a"))[-1]
    at = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
    change = filled.set_workflow_status([shell_id, "missing"], "acknowledged", "alice", at=at)
    assert change.missing == ("missing",)
    assert change.changed[0] == shell_id and len(change.changed) == 3  # shell + 2 blocks
    alert = filled.get_alert(shell_id)
    assert alert is not None
    assert (alert.workflow_status, alert.status_changed_by) == ("acknowledged", "alice")
    assert alert.document["kibana.alert.workflow_user"] == "alice"
    assert alert.document["kibana.alert.workflow_status_updated_at"] == "2024-06-01T08:30:00.000Z"
    again = filled.set_workflow_status([shell_id], "acknowledged", "bob")
    assert again.changed == () and again.unchanged == (shell_id,)
    filled.set_workflow_status([shell_id], "closed", "bob")
    reopened = filled.set_workflow_status([shell_id], "open", "carol")
    assert len(reopened.changed) == 3
    alert = filled.get_alert(shell_id)
    assert alert is not None and alert.document["kibana.alert.workflow_status"] == "open"
    with pytest.raises(StoreError, match="unknown workflow status"):
        filled.set_workflow_status([shell_id], "resolved", "x")  # type: ignore[arg-type]


def test_export_orders_blocks_before_their_shell(filled: SqliteStore) -> None:
    exported = list(filled.export_alerts(AlertFilter()))
    expected = sequence_docs("a", host="DC01") + sequence_docs(
        "b", time="2024-05-02T10:00:00Z", host="dc02", user="eve", source_ip="10.0.0.9") + [
        single_doc("c", time="2024-05-03T10:00:00.5Z", host="WS7")]
    assert exported == expected
    # Filters select shells; their building blocks come along.
    only_b = list(filled.export_alerts(AlertFilter(host="dc02")))
    assert [d["kibana.alert.uuid"] for d in only_b] == _ids(expected[3:6])
    assert len(list(filled.export_alerts(AlertFilter(limit=2)))) == 6


def test_export_pages_through_many_alerts(store: SqliteStore) -> None:
    docs = [d for k in range(700) for d in sequence_docs(
        f"k{k}", time=f"2024-05-01T10:{k // 60 % 60:02d}:{k % 60:02d}Z")]
    store.insert_alerts(docs)
    exported = [d["kibana.alert.uuid"] for d in store.export_alerts(AlertFilter())]
    assert len(exported) == len(set(exported)) == 2100
    assert exported == _ids(docs)


def test_outbox_lease_and_dead_letters(store: SqliteStore) -> None:
    store.insert_alerts(sequence_docs("a"), notify=True)
    [claimed] = store.claim_notifications(5, lease_seconds=30, now=1e10)
    assert store.claim_notifications(5, lease_seconds=30, now=1e10 + 1) == []
    [again] = store.claim_notifications(5, lease_seconds=30, now=1e10 + 31)  # lease ran out
    assert again.id == claimed.id
    store.record_failure(claimed.id, "HTTP 500", 500, retry_at=None)
    [dead] = store.list_dead_letters()
    assert (dead.alert_id, dead.attempts, dead.last_status) == (claimed.alert_id, 1, 500)
    assert store.pending_notifications() == 0
    # A dead-lettered alert is not queued again by a repeated enqueue...
    assert store.enqueue_notifications([claimed.alert_id]) == 0
    # ...until an operator requeues it.
    assert store.requeue_dead_letters() == 1
    assert store.pending_notifications() == 1 and store.list_dead_letters() == []


def test_store_survives_reopen(db_path: Path) -> None:
    with open_store(db_path) as store:
        store.insert_alerts(sequence_docs("a"))
    with open_store(db_path, synchronous="normal") as store:
        assert store.count_alerts() == 1
        [row] = store.list_alerts()
        assert orjson.loads(orjson.dumps(row.document)) == sequence_docs("a")[-1]


def test_documents_from_detect_round_trip(store: SqliteStore) -> None:
    """The documents vigil.detect builds are stored, found and exported unchanged."""
    from vigil.detect.alerts import sequence_alert
    from vigil.detect.ids import rule_uuid
    from vigil.rules.loader import bundled_rules

    [rule] = [r for r in bundled_rules() if r.rule_id == RULE_ID]
    events = [
        {"@timestamp": "2024-05-01T12:00:00.000Z", "_id": "e0", "_index": "winlogbeat-1",
         "event": {"category": ["authentication"], "action": "logged-in", "code": "4624"},
         "host": {"name": "WS01"}, "source": {"ip": "10.1.2.3"}, "user": {"name": "alice"},
         "winlog": {"logon": {"id": "0x1a2b", "type": "Network"}, "computer_name": "WS01"}},
        {"@timestamp": "2024-05-01T12:00:20.000Z", "_id": "e1", "_index": "winlogbeat-1",
         "event": {"category": ["iam"], "action": "service-installed", "code": "4697"},
         "host": {"name": "WS01"},
         "winlog": {"logon": {"id": "0x1a2b"}, "computer_name": "WS01",
                    "event_data": {"ServiceFileName": "C:\\evil.exe"}}},
    ]
    alert = sequence_alert(events, rule, rule_uuid(rule.rule_id), "2024-05-01T12:05:00.000Z")
    assert store.insert_alerts(alert.documents()) == [d["kibana.alert.uuid"]
                                                      for d in alert.documents()]
    [listed] = store.list_alerts(AlertFilter(host="ws01"))
    assert (listed.id, listed.user, listed.source_ip) == (alert.id, "alice", "10.1.2.3")
    assert listed.original_time == "2024-05-01T12:00:00.000000000Z"
    stored = store.get_alert(alert.id)
    assert stored is not None and stored.documents() == orjson.loads(
        orjson.dumps(alert.documents()))
    assert list(store.export_alerts(AlertFilter())) == stored.documents()
