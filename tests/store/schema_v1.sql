-- Frozen copy of the store's schema version 1 (vigil 0.1): the migration tests start here.
-- Never edit: it stands for databases already on users' disks.
CREATE TABLE rules (
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
);
CREATE TABLE executions (
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
);
CREATE INDEX executions_rule ON executions (rule_id, scheduled_start);
CREATE TABLE alerts (
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
);
CREATE INDEX alerts_time ON alerts (original_time);
CREATE INDEX alerts_rule ON alerts (rule_id, original_time);
CREATE INDEX alerts_host ON alerts (host);
CREATE INDEX alerts_group ON alerts (group_id);
CREATE INDEX alerts_execution ON alerts (execution_id);
PRAGMA user_version = 1;
