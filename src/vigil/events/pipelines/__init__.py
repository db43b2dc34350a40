"""Elastic's ingest pipelines for Windows event logs, one module a data stream family.

A Windows event reaches Elastic as the winlog input's document (Elastic Agent or Winlogbeat:
``winlog.*`` with ``event_data``, ``event.code``, ``winlog.time_created``, ...); Elastic Agent
routes it by channel to a data stream, whose ingest pipeline maps it to ECS. ``ingest`` does
the same to such a document, in place: vigil builds it from EVTX records and NXLog exports
(``vigil.events.winlog.base_document``) and reads it as written by Winlogbeat or the Agent
(raw winlog documents), so every source goes through the same code.

| channel | data stream | module |
|---|---|---|
| Security | ``system.security`` | ``security`` |
| System, Application | ``system.system``, ``system.application`` | (ECS version only) |
| Microsoft-Windows-Sysmon/Operational | ``windows.sysmon_operational`` | ``sysmon`` |
| Windows PowerShell | ``windows.powershell`` | ``powershell`` |
| Microsoft-Windows-PowerShell/Operational | ``windows.powershell_operational`` | ``powershell`` |
| Microsoft-Windows-AppLocker/* (four logs) | ``windows.applocker_*`` | ``applocker`` |
| Microsoft-Windows-Windows Defender/Operational | ``windows.windows_defender`` | ``applocker`` |
| any other (ForwardedEvents, ...) | ``windows.forwarded`` | by the event's own channel |

``windows.forwarded`` is where Windows Event Forwarding lands: its pipeline hands each event
to the pipeline of the channel it was first written to (Security and Sysmon over WEF keep
their mapping), as the package's ``forwarded`` data stream does.
"""

from __future__ import annotations

from collections.abc import Callable

from vigil.events.pipelines.applocker import ingest_applocker, ingest_defender
from vigil.events.pipelines.common import Doc, drop_empty_data, sub, time_and_level
from vigil.events.pipelines.powershell import ingest_classic, ingest_operational
from vigil.events.pipelines.security import apply_security_pipeline
from vigil.events.pipelines.sysmon import ingest as ingest_sysmon

__all__ = ["DATASETS", "DEFAULT_DATASET", "SECURITY_PROVIDERS", "dataset_for", "ingest"]

# Lower-cased channel -> data stream dataset (Elastic Agent's System and Windows integrations).
DATASETS: dict[str, str] = {
    "security": "system.security",
    "system": "system.system",
    "application": "system.application",
    "microsoft-windows-sysmon/operational": "windows.sysmon_operational",
    "windows powershell": "windows.powershell",
    "microsoft-windows-powershell/operational": "windows.powershell_operational",
    "microsoft-windows-applocker/exe and dll": "windows.applocker_exe_and_dll",
    "microsoft-windows-applocker/msi and script": "windows.applocker_msi_and_script",
    "microsoft-windows-applocker/packaged app-deployment":
        "windows.applocker_packaged_app_deployment",
    "microsoft-windows-applocker/packaged app-execution":
        "windows.applocker_packaged_app_execution",
    "microsoft-windows-windows defender/operational": "windows.windows_defender",
}
DEFAULT_DATASET = "windows.forwarded"
SECURITY_PROVIDERS = frozenset({"Microsoft-Windows-Security-Auditing",
                                "Microsoft-Windows-Eventlog"})
SECURITY_ECS_VERSION = "8.11.0"
EVENT_ECS_VERSION = "8.11.0"


def dataset_for(channel: str) -> str:
    return DATASETS.get(channel.lower(), DEFAULT_DATASET)


def ingest_security(doc: Doc) -> None:
    """``system.security`` (system_security_default.yml): empty EventData values out, the
    standard mapping for the Security-Auditing and Eventlog providers, the common tail."""
    winlog = sub(doc, "winlog")
    event = sub(doc, "event")
    if isinstance(event.get("code"), int) and not isinstance(event["code"], bool):
        event["code"] = str(event["code"])
    drop_empty_data(winlog)
    if winlog.get("provider_name") in SECURITY_PROVIDERS:
        apply_security_pipeline(doc)
    doc["ecs"] = {"version": SECURITY_ECS_VERSION}
    time_and_level(doc, winlog, keep=True)
    for key in ("record_id", "event_id"):
        value = winlog.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            winlog[key] = str(value)
    if "event_data" in winlog and not winlog["event_data"]:
        del winlog["event_data"]


def ingest_event(doc: Doc) -> None:
    """``system.system`` / ``system.application`` (windows_event.yml): the ECS version and
    error.code as a string; the winlog input's fields stay as they are."""
    doc["ecs"] = {"version": EVENT_ECS_VERSION}
    error = doc.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        error["code"] = str(error["code"])


def ingest_forwarded(doc: Doc) -> None:
    """``windows.forwarded``: the pipeline of the event's own channel; then host.os as
    Windows when the collector did not say (the package's forwarded pipeline)."""
    channel = str(sub(doc, "winlog").get("channel") or "")
    dataset = dataset_for(channel)
    PIPELINES[dataset](doc) if dataset != DEFAULT_DATASET else ingest_event(doc)
    os = sub(sub(doc, "host"), "os")
    os.setdefault("type", "windows")
    os.setdefault("family", "windows")


PIPELINES: dict[str, Callable[[Doc], None]] = {
    "system.security": ingest_security,
    "system.system": ingest_event,
    "system.application": ingest_event,
    "windows.sysmon_operational": ingest_sysmon,
    "windows.powershell": ingest_classic,
    "windows.powershell_operational": ingest_operational,
    "windows.applocker_exe_and_dll": ingest_applocker,
    "windows.applocker_msi_and_script": ingest_applocker,
    "windows.applocker_packaged_app_deployment": ingest_applocker,
    "windows.applocker_packaged_app_execution": ingest_applocker,
    "windows.windows_defender": ingest_defender,
    "windows.forwarded": ingest_forwarded,
}


def ingest(doc: Doc, dataset: str | None = None) -> str:
    """Run the pipeline of ``dataset`` (default: the one the channel routes to) on ``doc``
    in place; the dataset is returned."""
    if dataset is None or dataset not in PIPELINES:
        dataset = dataset_for(str(sub(doc, "winlog").get("channel") or ""))
    PIPELINES[dataset](doc)
    return dataset
