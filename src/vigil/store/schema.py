"""The store's schema and its migrations.

The version lives in ``PRAGMA user_version`` (in the database header, so it changes in the
same transaction as the tables). ``MIGRATIONS[n]`` takes a database from version n to n+1.
A released migration is never edited: a change is a new migration appended at the end, and
tests build the old versions from frozen copies of their SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from vigil.store.model import StoreError

# Version 1: rules, executions, alerts (the first released layout).
_V1 = (
    """CREATE TABLE rules (
        rule_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        interval TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        last_scheduled_start TEXT,
        last_status TEXT,
        last_message TEXT NOT NULL DEFAULT '',
        last_execution_id INTEGER,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE executions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rule_id TEXT NOT NULL,
        scheduled_start TEXT NOT NULL,
        window_from TEXT NOT NULL,
        window_to TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        duration_ms INTEGER,
        events_read INTEGER NOT NULL DEFAULT 0,
        alerts_created INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL
            CHECK (status IN ('running', 'succeeded', 'partial failure', 'failed')),
        message TEXT NOT NULL DEFAULT '',
        gap_from TEXT,
        gap_to TEXT
    )""",
    "CREATE INDEX executions_rule ON executions (rule_id, scheduled_start)",
    """CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        rule_id TEXT NOT NULL,
        rule_name TEXT NOT NULL DEFAULT '',
        group_id TEXT,
        is_building_block INTEGER NOT NULL,
        original_time TEXT,
        severity TEXT NOT NULL DEFAULT '',
        risk_score REAL,
        host TEXT COLLATE NOCASE,
        user TEXT,
        source_ip TEXT,
        workflow_status TEXT NOT NULL DEFAULT 'open'
            CHECK (workflow_status IN ('open', 'acknowledged', 'closed')),
        status_changed_by TEXT,
        status_changed_at TEXT,
        created_at TEXT NOT NULL,
        execution_id INTEGER REFERENCES executions (id),
        document TEXT NOT NULL
    )""",
    "CREATE INDEX alerts_time ON alerts (original_time)",
    "CREATE INDEX alerts_rule ON alerts (rule_id, original_time)",
    "CREATE INDEX alerts_host ON alerts (host)",
    "CREATE INDEX alerts_group ON alerts (group_id)",
    "CREATE INDEX alerts_execution ON alerts (execution_id)",
)

# Version 2: the webhook outbox and its dead letters; the building block's position in its
# sequence (exports write building blocks in stage order).
_V2 = (
    "ALTER TABLE alerts ADD COLUMN group_index INTEGER",
    """UPDATE alerts SET group_index = json_extract(document, '$."kibana.alert.group.index"')
       WHERE group_id IS NOT NULL AND group_id != id""",
    """CREATE TABLE webhook_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered')),
        attempts INTEGER NOT NULL DEFAULT 0,
        enqueued_at TEXT NOT NULL,
        next_attempt_at REAL NOT NULL,
        lease_until REAL,
        last_error TEXT,
        last_status INTEGER,
        delivered_at TEXT
    )""",
    "CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at)",
    """CREATE TABLE webhook_dead_letters (
        id INTEGER PRIMARY KEY,
        alert_id TEXT NOT NULL UNIQUE,
        attempts INTEGER NOT NULL,
        enqueued_at TEXT NOT NULL,
        dead_at TEXT NOT NULL,
        last_error TEXT NOT NULL,
        last_status INTEGER
    )""",
)


# Version 3: the event-time index of watched files. Each block is a byte range of a file (by
# inode, so a rotated file starts afresh) with the range of @timestamp it holds: a restarted
# watcher seeks to the first block a pending window can need instead of re-reading the file.
_V3 = (
    """CREATE TABLE file_blocks (
        path TEXT NOT NULL,
        inode INTEGER NOT NULL,
        start_offset INTEGER NOT NULL,
        end_offset INTEGER NOT NULL,
        first_line INTEGER NOT NULL,
        min_ts INTEGER,
        max_ts INTEGER,
        PRIMARY KEY (path, inode, start_offset)
    )""",
)


# Version 4: analysts' notes, one row per note, kept in the order written (`vigil alerts
# close --reason ... --note ...`); the closing reason itself lives in the alert document.
_V4 = (
    """CREATE TABLE alert_notes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id TEXT NOT NULL REFERENCES alerts (id),
        at TEXT NOT NULL,
        by TEXT NOT NULL,
        status TEXT NOT NULL,
        text TEXT NOT NULL
    )""",
    "CREATE INDEX alert_notes_alert ON alert_notes (alert_id, id)",
)


def _statements(sql: tuple[str, ...]) -> Callable[[sqlite3.Connection], None]:
    def migrate(conn: sqlite3.Connection) -> None:
        # One statement at a time: executescript() would COMMIT the surrounding transaction.
        for statement in sql:
            conn.execute(statement)

    return migrate


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _statements(_V1),
    _statements(_V2),
    _statements(_V3),
    _statements(_V4),
)
LATEST = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, target: int = LATEST) -> int:
    """Bring the database to ``target``; returns the version found before. The connection
    must be in autocommit mode (``isolation_level=None``)."""
    if not 0 <= target <= LATEST:
        raise StoreError(f"no schema version {target} (this vigil knows 1 to {LATEST})")
    found = schema_version(conn)
    if found > LATEST:
        raise StoreError(f"the store has schema version {found}, newer than this vigil "
                         f"supports ({LATEST}); upgrade vigil")
    if found >= target:
        return found
    # IMMEDIATE: two processes opening an old store at once must not both migrate it.
    conn.execute("BEGIN IMMEDIATE")
    version = found
    try:
        for version in range(schema_version(conn), target):
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    except sqlite3.Error as error:
        conn.execute("ROLLBACK")
        raise StoreError(f"cannot upgrade the store from schema version {version} to "
                         f"{version + 1}: {error}; it is unchanged") from error
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
