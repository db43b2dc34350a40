"""The alert store: rule state, executions, alerts with workflow status, webhook outbox.

``open_store(path)`` gives the SQLite implementation of ``AlertStore``; ``WebhookNotifier``
sends new shell alerts to a webhook from a background thread; ``vigil.store.views`` holds
what ``vigil alerts ...`` prints.
"""

from __future__ import annotations

from vigil.store.model import (
    EXECUTION_STATUSES,
    SUCCEEDED_MESSAGE,
    WORKFLOW_STATUSES,
    AlertFilter,
    AlertStore,
    DeadLetter,
    Delivery,
    Execution,
    ExecutionStatus,
    FileBlock,
    Gap,
    RuleState,
    StatusChange,
    StoredAlert,
    StoreError,
    WorkflowStatus,
    normalize_time,
    workflow_status,
)
from vigil.store.schema import LATEST as SCHEMA_VERSION
from vigil.store.sqlite import SqliteStore, open_store
from vigil.store.webhook import WebhookNotifier, webhook_payload

__all__ = [
    "EXECUTION_STATUSES",
    "SCHEMA_VERSION",
    "SUCCEEDED_MESSAGE",
    "WORKFLOW_STATUSES",
    "AlertFilter",
    "AlertStore",
    "DeadLetter",
    "Delivery",
    "Execution",
    "ExecutionStatus",
    "FileBlock",
    "Gap",
    "RuleState",
    "SqliteStore",
    "StatusChange",
    "StoreError",
    "StoredAlert",
    "WebhookNotifier",
    "WorkflowStatus",
    "normalize_time",
    "open_store",
    "webhook_payload",
    "workflow_status",
]
