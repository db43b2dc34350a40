"""A Windows event -> the ECS document Elastic would store, with its index and id.

``to_ecs`` = the winlog input's document (``winlog.base_document``) + the ingest pipeline of
the data stream Elastic Agent routes the channel to (``vigil.events.pipelines``) + vigil's
choices (``finish``, which raw Winlogbeat / Elastic Agent documents get too):

* ``_index``: the data stream the event lands in with Elastic Agent's System and Windows
  integrations (namespace ``default``), by channel (the table in ``vigil.events.pipelines``):
  Security -> ``logs-system.security-default``, Sysmon ->
  ``logs-windows.sysmon_operational-default``, ...; any other channel ->
  ``logs-windows.forwarded-default`` (how such events reach Elastic through Windows Event
  Forwarding), mapped by the pipeline of the channel the event names.
* ``_id``: base64url of SHA-256 over ``computer NUL channel NUL record_id`` (first 20
  characters, the length of Elasticsearch's own ids). The same record read twice, from two
  copies of a log or an EVTX and its JSON export, gets the same id, so alert ids built on it
  are reproducible. Without a record id (some exports) the hash covers time, event id and
  event data instead.
* ``host.os.type/family = windows`` on every event (Agent adds it from host metadata; the
  rules test it). ``host.id``, when the source has none (EVTX, NXLog, raw winlog without
  Agent metadata): a UUID derived from the lower-cased computer name (``host_id``), stable
  across files and runs, so rules joining on ``host.id`` (31 of the 74 Windows sequence
  rules) work as on Agent-collected data; ``host.name`` is the event's computer name. ``event.created``/``event.ingested`` are left out: they would make output
  differ from run to run.
* ``winlog.logon.id``: Elastic's value, then corrected by ``apply_intended_logon_id`` unless
  ``logon_id == "elastic"`` (see ``vigil.events.logon``).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from functools import lru_cache
from typing import Any

import orjson

from vigil.events.logon import apply_intended_logon_id
from vigil.events.pipelines import DATASETS, DEFAULT_DATASET, dataset_for, ingest
from vigil.events.records import LogonIdMode
from vigil.events.winlog import WinEvent, base_document

__all__ = ["DATASETS", "DEFAULT_DATASET", "dataset_for", "document_id", "finish", "host_id",
           "to_ecs"]

# Exports sometimes lower-case the classic channels; Windows names them like this.
CANONICAL_CHANNELS = {"security": "Security", "system": "System", "application": "Application"}
# The namespace of synthesised host ids (uuid5 of the lower-cased computer name).
HOST_NAMESPACE = uuid.UUID("6f1c3b52-6d1e-5a5e-9d3c-7669676c0001")


@lru_cache(maxsize=4096)
def host_id(computer: str) -> str:
    """The stable ``host.id`` vigil gives a computer that has none in the data."""
    return str(uuid.uuid5(HOST_NAMESPACE, computer.lower()))


def _id_of(computer: str, channel: str, record_id: Any, time: Any, event_id: Any,
           event_data: Any) -> str:
    if record_id is not None and record_id != "":
        key = f"{computer}\x00{channel}\x00{record_id}".encode()
    else:
        data = orjson.dumps(event_data or {}, option=orjson.OPT_SORT_KEYS)
        key = f"{computer}\x00{channel}\x00{time}\x00{event_id}\x00".encode() + data
    digest = hashlib.sha256(key).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:20]


def document_id(event: WinEvent) -> str:
    return _id_of(event.computer, event.channel, event.record_id, event.time_created,
                  event.event_id, event.event_data)


def winlog_document_id(doc: dict[str, Any]) -> str:
    """The id of a winlog input document (before its pipeline), as ``document_id``."""
    winlog = doc.get("winlog") if isinstance(doc.get("winlog"), dict) else {}
    assert isinstance(winlog, dict)
    return _id_of(str(winlog.get("computer_name") or ""), str(winlog.get("channel") or ""),
                  winlog.get("record_id"), winlog.get("time_created", doc.get("@timestamp")),
                  winlog.get("event_id"), winlog.get("event_data"))


def finish(doc: dict[str, Any], dataset: str, doc_id: str,
           logon_id: LogonIdMode = "intended") -> dict[str, Any]:
    """vigil's additions to a mapped document (see the module docstring), in place."""
    if logon_id == "intended":
        apply_intended_logon_id(doc)
    host = doc.get("host")
    if not isinstance(host, dict):
        host = doc["host"] = {}
    if not isinstance(host.get("os"), dict):
        host["os"] = {"type": "windows", "family": "windows"}
    if not host.get("name"):
        winlog = doc.get("winlog")
        computer = winlog.get("computer_name") if isinstance(winlog, dict) else None
        if isinstance(computer, str) and computer:
            host["name"] = computer
    if not host.get("id") and isinstance(host.get("name"), str) and host["name"]:
        host["id"] = host_id(host["name"])
    event = doc.get("event")
    if not isinstance(event, dict):
        event = doc["event"] = {}
    event["dataset"] = dataset
    event["module"] = dataset.split(".", 1)[0]
    doc["data_stream"] = {"type": "logs", "dataset": dataset, "namespace": "default"}
    doc["_index"] = f"logs-{dataset}-default"
    doc.setdefault("_id", doc_id)
    return doc


def to_ecs(event: WinEvent, logon_id: LogonIdMode = "intended") -> dict[str, Any]:
    """The ECS document for ``event`` as Elastic would index it (nested dicts)."""
    event.channel = CANONICAL_CHANNELS.get(event.channel.lower(), event.channel)
    doc_id = document_id(event)
    doc = base_document(event)
    # vigil's one departure from the pipelines' date step (``common.time_and_level``): the
    # record's own time (to 100 ns in EVTX) stays in @timestamp, where Elasticsearch keeps
    # milliseconds, so events within one millisecond keep their order and maxspan is
    # measured exactly.
    dataset = ingest(doc)
    return finish(doc, dataset, doc_id, logon_id)


def winlog_to_ecs(doc: dict[str, Any], logon_id: LogonIdMode = "intended") -> dict[str, Any]:
    """A raw winlog input document (Winlogbeat or Elastic Agent output before any ingest
    pipeline) mapped by the same pipelines as EVTX records, in place. A data stream the
    document names (``data_stream.dataset``, e.g. ``windows.forwarded``) is kept."""
    doc_id = winlog_document_id(doc)
    stream = doc.get("data_stream")
    named = stream.get("dataset") if isinstance(stream, dict) else None
    dataset = ingest(doc, named if isinstance(named, str) else None)
    return finish(doc, dataset, doc_id, logon_id)
