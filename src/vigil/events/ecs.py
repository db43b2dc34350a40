"""A Windows event -> the ECS document Elastic would store, with its index and id.

``to_ecs`` = Winlogbeat's base fields (``winlog.base_document``) + the ingest pipeline of the
data stream Elastic Agent routes the channel to + vigil's choices:

* ``_index``: the data stream the event lands in with Elastic Agent's System and Windows
  integrations (namespace ``default``): Security -> ``logs-system.security-default``, System
  -> ``logs-system.system-default``, Application -> ``logs-system.application-default``,
  Sysmon -> ``logs-windows.sysmon_operational-default``, PowerShell channels ->
  ``logs-windows.powershell[_operational]-default``; any other channel ->
  ``logs-windows.forwarded-default`` (how such events reach Elastic through Windows Event
  Forwarding). The security pipeline runs for the Security channel (providers
  Security-Auditing and Eventlog); ``windows.forwarded`` runs it too when the channel is
  Security, so both land in the same shape.
* ``_id``: base64url of SHA-256 over ``computer NUL channel NUL record_id`` (first 20
  characters, the length of Elasticsearch's own ids). The same record read twice, from two
  copies of a log or an EVTX and its JSON export, gets the same id, so alert ids built on it
  are reproducible. Without a record id (some exports) the hash covers time, event id and
  event data instead.
* ``host.os.type/family = windows`` on every event (Agent adds it from host metadata; the
  rules test it). ``event.created``/``event.ingested`` are left out: they would make output
  differ from run to run.
* ``winlog.logon.id``: Elastic's value, then corrected by ``apply_intended_logon_id`` unless
  ``logon_id == "elastic"`` (see ``vigil.events.logon``).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from vigil.events.logon import apply_intended_logon_id
from vigil.events.records import LogonIdMode
from vigil.events.security import apply_security_pipeline
from vigil.events.winlog import WinEvent, base_document

ECS_VERSION = "8.11.0"

# Lower-cased channel -> data stream dataset.
DATASETS = {
    "security": "system.security",
    "system": "system.system",
    "application": "system.application",
    "microsoft-windows-sysmon/operational": "windows.sysmon_operational",
    "windows powershell": "windows.powershell",
    "microsoft-windows-powershell/operational": "windows.powershell_operational",
}
DEFAULT_DATASET = "windows.forwarded"
SECURITY_PROVIDERS = frozenset({"Microsoft-Windows-Security-Auditing",
                                "Microsoft-Windows-Eventlog"})
# Exports sometimes lower-case the classic channels; Windows names them like this.
CANONICAL_CHANNELS = {"security": "Security", "system": "System", "application": "Application"}


def dataset_for(channel: str) -> str:
    return DATASETS.get(channel.lower(), DEFAULT_DATASET)


def document_id(event: WinEvent) -> str:
    if event.record_id is not None:
        key = f"{event.computer}\x00{event.channel}\x00{event.record_id}".encode()
    else:
        data = orjson.dumps(event.event_data or {}, option=orjson.OPT_SORT_KEYS)
        key = (f"{event.computer}\x00{event.channel}\x00{event.time_created}\x00"
               f"{event.event_id}\x00").encode() + data
    digest = hashlib.sha256(key).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:20]


def to_ecs(event: WinEvent, logon_id: LogonIdMode = "intended") -> dict[str, Any]:
    """The ECS document for ``event`` as Elastic would index it (nested dicts)."""
    event.channel = CANONICAL_CHANNELS.get(event.channel.lower(), event.channel)
    doc = base_document(event)
    dataset = dataset_for(event.channel)
    if event.channel == "Security" and event.provider_name in SECURITY_PROVIDERS:
        apply_security_pipeline(doc)
    if logon_id == "intended":
        apply_intended_logon_id(doc)
    doc["host"]["os"] = {"type": "windows", "family": "windows"}
    doc["ecs"] = {"version": ECS_VERSION}
    doc["event"]["dataset"] = dataset
    doc["event"]["module"] = dataset.split(".", 1)[0]
    doc["data_stream"] = {"type": "logs", "dataset": dataset, "namespace": "default"}
    doc["_index"] = f"logs-{dataset}-default"
    doc["_id"] = document_id(event)
    return doc
