"""The store's schema: created at the latest version, migrated from older ones, refused when
newer or not a store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from tests.store.factory import RULE_ID, sequence_docs
from vigil.store import SCHEMA_VERSION, AlertFilter, StoreError, open_store
from vigil.store.schema import MIGRATIONS, migrate, schema_version

V1_SQL = Path(__file__).with_name("schema_v1.sql")


def _v1_database(path: Path) -> None:
    """A version-1 store with one execution and one sequence, written with v1's SQL only."""
    conn = sqlite3.connect(path)
    conn.executescript(V1_SQL.read_text())
    conn.execute(
        """INSERT INTO rules VALUES (?, 'Remote Windows Service Installed', 108, '5m', 1,
               '2024-05-01T10:05:00.000000000Z', 'succeeded',
               'Rule execution completed successfully', 1, '2024-05-01T10:05:01.000000000Z')""",
        (RULE_ID,))
    conn.execute(
        """INSERT INTO executions (rule_id, scheduled_start, window_from, window_to, started_at,
               finished_at, duration_ms, events_read, alerts_created, status, message)
           VALUES (?, '2024-05-01T10:05:00.000000000Z', '2024-05-01T09:56:00.000000000Z',
               '2024-05-01T10:05:00.000000000Z', '2024-05-01T10:05:00.100000000Z',
               '2024-05-01T10:05:00.900000000Z', 800, 1200, 3, 'succeeded',
               'Rule execution completed successfully')""", (RULE_ID,))
    for doc in sequence_docs("old"):
        is_block = "kibana.alert.building_block_type" in doc
        conn.execute(
            """INSERT INTO alerts (id, rule_id, rule_name, group_id, is_building_block,
                   original_time, severity, risk_score, host, user, source_ip, workflow_status,
                   created_at, execution_id, document)
               VALUES (?, ?, 'Remote Windows Service Installed', ?, ?,
                   '2024-05-01T10:00:00.000000000Z', 'medium', 47, 'DC01', 'admin',
                   '10.0.0.5', 'open', '2024-05-01T10:05:00.900000000Z', 1, ?)""",
            (doc["kibana.alert.uuid"], RULE_ID, doc["kibana.alert.group.id"], int(is_block),
             orjson.dumps(doc).decode()))
    conn.commit()
    conn.close()


def test_new_store_is_at_latest_version_in_wal_mode(db_path: Path) -> None:
    with open_store(db_path) as store:
        assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_upgrade_from_version_1_keeps_data_and_backfills(db_path: Path) -> None:
    _v1_database(db_path)
    with open_store(db_path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        state = store.get_rule_state(RULE_ID)
        assert state is not None and state.version == 108
        assert state.last_scheduled_start is not None
        assert state.last_scheduled_start.isoformat() == "2024-05-01T10:05:00+00:00"
        [run] = store.list_executions()
        assert (run.status, run.events_read, run.alerts_created) == ("succeeded", 1200, 3)
        docs = sequence_docs("old")
        shell = store.get_alert(docs[-1]["kibana.alert.uuid"])
        assert shell is not None
        # v2 backfilled the stage order from the documents: building blocks come in order.
        assert [b.id for b in shell.building_blocks] == [d["kibana.alert.uuid"]
                                                         for d in docs[:-1]]
        assert [d["kibana.alert.uuid"] for d in store.export_alerts(AlertFilter())] == \
            [d["kibana.alert.uuid"] for d in docs]
        # The v2 tables work on the upgraded file.
        assert store.enqueue_notifications([docs[-1]["kibana.alert.uuid"]]) == 1
        # Dedup still holds against pre-upgrade rows.
        assert store.insert_alerts(docs) == []


def test_migrations_are_stepwise_and_idempotent(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "steps.db", isolation_level=None)
    assert migrate(conn, target=1) == 0
    assert schema_version(conn) == 1
    assert migrate(conn) == 1
    assert schema_version(conn) == SCHEMA_VERSION
    assert migrate(conn) == SCHEMA_VERSION  # nothing left to do
    conn.close()


def test_failed_migration_leaves_the_old_version(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    # A table in the way of version 2: its migration fails, and must leave no trace.
    conn.execute("CREATE TABLE webhook_outbox (x)")
    with pytest.raises(StoreError, match="from schema version 1 to 2"):
        migrate(conn)
    assert schema_version(conn) == 1
    columns = [r[1] for r in conn.execute("PRAGMA table_info(alerts)")]
    assert "group_index" not in columns
    conn.close()


def test_newer_schema_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this vigil"):
        open_store(db_path)


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not sqlite, just text " * 100)
    with pytest.raises(StoreError, match="not a vigil store"):
        open_store(path)


def test_missing_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "nope" / "vigil.db")
