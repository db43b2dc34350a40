"""What ``vigil alerts ...`` prints: safe from hostile log content, ids by prefix, NDJSON
export an alerts index accepts."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.store.factory import render, sequence_docs, single_doc
from vigil.store import AlertFilter, SqliteStore, StoreError
from vigil.store.views import (
    ALERTS_INDEX,
    alert_filter,
    alert_json,
    alert_view,
    alerts_table,
    change_status,
    executions_table,
    export_ndjson,
    parse_when,
)

HOSTILE_USER = "\x1b]8;;http://evil\x07click\x1b]8;;\x07[bold red]admin[/]\x1b[2J"



@pytest.fixture
def filled(store: SqliteStore) -> SqliteStore:
    store.insert_alerts(sequence_docs("a", user=HOSTILE_USER))
    store.insert_alerts([single_doc("b", time="2024-05-02T00:00:00Z")])
    return store


def test_list_and_show_neutralise_log_content(filled: SqliteStore) -> None:
    listing = render(alerts_table(filled.list_alerts(AlertFilter())))
    assert "\x1b]" not in listing and "\x1b[2J" not in listing and "\x07" not in listing
    assert "[bold red]admin[/]" in listing  # shown as text, not applied as markup
    shell = filled.get_alert(sequence_docs("a")[-1]["kibana.alert.uuid"])
    assert shell is not None
    shown = render(alert_view(shell))
    assert "\x1b]" not in shown and "[bold red]admin[/]" in shown
    assert "2 event(s) of the sequence" in shown and "service-installed" in shown
    raw = alert_json(shell)
    documents = orjson.loads(raw)  # one JSON document: the array of the alert's documents
    assert "\x1b" not in raw and [d.get("kibana.alert.group.index") for d in documents] == \
        [0, 1, None]
    assert render(alerts_table([])).strip() == "no alerts match"


def test_change_status_by_prefix(filled: SqliteStore) -> None:
    shell_id = sequence_docs("a")[-1]["kibana.alert.uuid"]
    result = change_status(filled, [shell_id[:8], "abc", "0123456789"], "close", who="ann")
    assert result.message == "closed 1 alert(s) and 2 building block(s)"
    assert result.problems == ("abc: no such alert", "0123456789: no such alert")
    again = change_status(filled, [shell_id], "closed", who="ann")
    assert again.ok and again.message == "closed 0 alert(s); 1 already closed"
    back = change_status(filled, [shell_id[:8]], "reopen", who="bob")
    assert back.message == "reopened 1 alert(s) and 2 building block(s)"
    alert = filled.get_alert(shell_id)
    assert alert is not None and alert.status_changed_by == "bob"


def test_short_prefix_is_refused(filled: SqliteStore) -> None:
    shell_id = sequence_docs("a")[-1]["kibana.alert.uuid"]
    result = change_status(filled, [shell_id[:3]], "ack", who="ann")
    assert not result.ok and "at least 6 characters" in result.problems[0]


def test_export_ndjson_and_bulk(filled: SqliteStore) -> None:
    out = io.BytesIO()
    assert export_ndjson(filled, AlertFilter(), out) == 4
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [d["kibana.alert.uuid"] for d in lines] == [
        d["kibana.alert.uuid"] for d in [*sequence_docs("a"), single_doc("b")]]
    bulk = io.BytesIO()
    assert export_ndjson(filled, AlertFilter(host="WS7"), bulk, bulk_index=ALERTS_INDEX,
                         elastic_only=True) == 1
    action, document = (orjson.loads(x) for x in bulk.getvalue().splitlines())
    assert action == {"create": {"_index": ALERTS_INDEX, "_id": document["kibana.alert.uuid"]}}
    assert not any(k.startswith("vigil.") for k in document)


def test_parse_when_and_filters() -> None:
    now = datetime(2024, 5, 10, 12, tzinfo=UTC)
    assert parse_when("24h", now) == now - timedelta(hours=24)
    assert parse_when("now-7d", now) == now - timedelta(days=7)
    assert parse_when("2024-05-01", now) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_when("2024-05-01T12:00:00+02:00", now) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    with pytest.raises(StoreError, match="not a time"):
        parse_when("last tuesday", now)
    f = alert_filter(host="dc01", status="ack", since="1d", now=now)
    assert (f.status, f.since) == ("acknowledged", now - timedelta(days=1))
    with pytest.raises(StoreError, match="unknown workflow status"):
        alert_filter(status="done")


def test_executions_table(store: SqliteStore) -> None:
    start = datetime(2024, 5, 1, 10, 5, tzinfo=UTC)
    run = store.record_execution_start("r1", start, start - timedelta(minutes=9), start)
    store.finish_execution(run, "partial failure", "This rule reached the maximum alert limit "
                           "for the rule execution. Some alerts were not created.")
    shown = render(executions_table(store.list_executions()))
    assert "partial failure" in shown and "maximum alert limit" in shown


def test_a_building_block_follows_its_shell(filled: SqliteStore) -> None:
    """Issue 14: closing a building block closes its alert (the shell and every block)."""
    docs = sequence_docs("a")
    block_id = docs[0]["kibana.alert.uuid"]
    shell_id = docs[-1]["kibana.alert.uuid"]
    result = change_status(filled, [block_id], "close", who="ann")
    assert result.message == "closed 1 alert(s) and 2 building block(s)"
    shell = filled.get_alert(shell_id)
    assert shell is not None and shell.workflow_status == "closed"
    assert {b.workflow_status for b in shell.building_blocks} == {"closed"}
