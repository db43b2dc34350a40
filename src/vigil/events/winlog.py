"""A Windows event as Winlogbeat's Go side hands it to an ingest pipeline.

Both sources (EVTX records and NXLog/OTRF exports) are first normalised into a ``WinEvent``;
``base_document`` then builds the document the winlog input of Elastic Agent / Winlogbeat
hands to an ingest pipeline (ECS_MAPPING.md section 1): ``@timestamp``,
``event.code/kind/provider/outcome/action``, ``host.name``, ``log.level`` and ``winlog.*``
(``time_created`` and ``level`` included) with ``event_data`` values as strings.

Names that need the publisher's message files (task, opcode) come from the event when the
source rendered them (NXLog does), otherwise from Windows' default tables; a name that cannot
be known offline is left out rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Keyword bits that have a name in Windows' default metadata (winmeta.xml).
KEYWORD_NAMES: tuple[tuple[int, str], ...] = (
    (0x1000000000000, "Response Time"),
    (0x4000000000000, "WDI Diag"),
    (0x8000000000000, "SQM"),
    (0x10000000000000, "Audit Failure"),
    (0x20000000000000, "Audit Success"),
    (0x40000000000000, "Correlation Hint"),
    (0x80000000000000, "Classic"),
)
AUDIT_FAILURE = 0x10000000000000
AUDIT_SUCCESS = 0x20000000000000

LEVEL_NAMES = {0: "Information", 1: "Critical", 2: "Error", 3: "Warning", 4: "Information",
               5: "Verbose"}
OPCODE_NAMES = {0: "Info", 1: "Start", 2: "Stop", 3: "DCStart", 4: "DCStop", 5: "Extension",
                6: "Reply", 7: "Resume", 8: "Suspend", 9: "Send"}

SECURITY_AUDITING = "Microsoft-Windows-Security-Auditing"

# Task numbers of Microsoft-Windows-Security-Auditing are audit subcategory ids; their names
# (what Windows renders as the task) let 4624 read "Logon" and 4697 "Security System
# Extension" offline.
SECURITY_TASK_NAMES: dict[int, str] = {
    12288: "Security State Change", 12289: "Security System Extension",
    12290: "System Integrity", 12291: "IPsec Driver", 12292: "Other System Events",
    12544: "Logon", 12545: "Logoff", 12546: "Account Lockout", 12547: "IPsec Main Mode",
    12548: "Special Logon", 12549: "IPsec Quick Mode", 12550: "IPsec Extended Mode",
    12551: "Other Logon/Logoff Events", 12552: "Network Policy Server",
    12553: "User / Device Claims", 12554: "Group Membership",
    12800: "File System", 12801: "Registry", 12802: "Kernel Object", 12803: "SAM",
    12804: "Other Object Access Events", 12805: "Certification Services",
    12806: "Application Generated", 12807: "Handle Manipulation", 12808: "File Share",
    12809: "Filtering Platform Packet Drop", 12810: "Filtering Platform Connection",
    12811: "Detailed File Share", 12812: "Removable Storage", 12813: "Central Policy Staging",
    13056: "Sensitive Privilege Use", 13057: "Non Sensitive Privilege Use",
    13058: "Other Privilege Use Events",
    13312: "Process Creation", 13313: "Process Termination", 13314: "DPAPI Activity",
    13315: "RPC Events", 13316: "Plug and Play Events", 13317: "Token Right Adjusted Events",
    13568: "Audit Policy Change", 13569: "Authentication Policy Change",
    13570: "Authorization Policy Change", 13571: "MPSSVC Rule-Level Policy Change",
    13572: "Filtering Platform Policy Change", 13573: "Other Policy Change Events",
    13824: "User Account Management", 13825: "Computer Account Management",
    13826: "Security Group Management", 13827: "Distribution Group Management",
    13828: "Application Group Management", 13829: "Other Account Management Events",
    14080: "Directory Service Access", 14081: "Directory Service Changes",
    14082: "Directory Service Replication", 14083: "Detailed Directory Service Replication",
    14336: "Credential Validation", 14337: "Kerberos Service Ticket Operations",
    14338: "Other Account Logon Events", 14339: "Kerberos Authentication Service",
}


@dataclass(slots=True)
class WinEvent:
    """One Windows event, source-neutral: the System part, EventData and UserData.

    ``*_name`` fields carry names the source already rendered (NXLog does); when ``None`` they
    are looked up in the default tables above.
    """

    time_created: str
    event_id: int
    provider_name: str
    channel: str
    computer: str
    record_id: int | None = None
    provider_guid: str | None = None
    version: int | None = None
    level: int | None = None
    task: int | None = None
    opcode: int | None = None
    keywords: int | None = None
    activity_id: str | None = None
    related_activity_id: str | None = None
    process_id: int | None = None
    thread_id: int | None = None
    user_sid: str | None = None
    event_data: dict[str, str] | None = None
    user_data: dict[str, Any] | None = None
    task_name: str | None = None
    opcode_name: str | None = None
    level_name: str | None = None
    outcome_hint: str | None = None  # "success"/"failure" when the source only has a label
    user_name: str | None = None
    user_domain: str | None = None
    user_type: str | None = None
    message: str | None = None


def braced_guid(guid: str | None) -> str | None:
    """Windows renders GUIDs in braces; the evtx crate prints them bare."""
    if not guid:
        return None
    return guid if guid.startswith("{") else "{" + guid + "}"


def data_text(value: Any) -> str | None:
    """An EventData value as the string Windows' XML rendering shows; ``None`` when empty.

    The evtx crate types some values (UInt32 as numbers, booleans); Winlogbeat sees text.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            return None
        return value.replace("\r\n", "\n") if "\r" in value else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return data_text(value.get("#text"))
    if isinstance(value, list):
        # Repeated elements: the first one wins, as in Winlogbeat.
        for item in value:
            text = data_text(item)
            if text is not None:
                return text
        return None
    return str(value)


def keyword_names(keywords: int) -> list[str]:
    return [name for bit, name in KEYWORD_NAMES if keywords & bit]


def outcome_of(keywords: int | None) -> str | None:
    if keywords is None:
        return None
    if keywords & AUDIT_FAILURE:
        return "failure"
    if keywords & AUDIT_SUCCESS:
        return "success"
    return None


def task_name_of(event: WinEvent) -> str | None:
    if event.task_name:
        return event.task_name
    if event.task is None:
        return None
    if event.provider_name == SECURITY_AUDITING:
        return SECURITY_TASK_NAMES.get(event.task)
    return "None" if event.task == 0 else None


def base_document(event: WinEvent) -> dict[str, Any]:
    """The document Winlogbeat's Go side produces for ``event`` (before ingest pipelines)."""
    code = str(event.event_id)
    event_fields: dict[str, Any] = {"code": code, "kind": "event",
                                    "provider": event.provider_name}
    outcome = outcome_of(event.keywords) or event.outcome_hint
    if outcome:
        event_fields["outcome"] = outcome
    task_name = task_name_of(event)
    if task_name:
        event_fields["action"] = task_name

    winlog: dict[str, Any] = {
        "api": "wineventlog",
        "channel": event.channel,
        "computer_name": event.computer,
        "event_id": code,
        "provider_name": event.provider_name,
    }
    guid = braced_guid(event.provider_guid)
    if guid:
        winlog["provider_guid"] = guid
    if event.record_id is not None:
        winlog["record_id"] = str(event.record_id)
    if event.version:
        winlog["version"] = event.version
    if task_name:
        winlog["task"] = task_name
    opcode = event.opcode_name or (OPCODE_NAMES.get(event.opcode)
                                   if event.opcode is not None else None)
    if opcode:
        winlog["opcode"] = opcode
    if event.keywords is not None:
        names = keyword_names(event.keywords)
        if names:
            winlog["keywords"] = names
    activity = braced_guid(event.activity_id)
    if activity:
        winlog["activity_id"] = activity
    related = braced_guid(event.related_activity_id)
    if related:
        winlog["related_activity_id"] = related
    if event.process_id is not None:
        process: dict[str, Any] = {"pid": event.process_id}
        if event.thread_id is not None:
            process["thread"] = {"id": event.thread_id}
        winlog["process"] = process
    if event.user_sid:
        user: dict[str, Any] = {"identifier": event.user_sid}
        if event.user_name:
            user["name"] = event.user_name
        if event.user_domain:
            user["domain"] = event.user_domain
        if event.user_type:
            user["type"] = event.user_type
        winlog["user"] = user
    if event.event_data:
        winlog["event_data"] = event.event_data
    if event.user_data:
        winlog["user_data"] = event.user_data

    document: dict[str, Any] = {
        "@timestamp": event.time_created,
        "event": event_fields,
        "host": {"name": event.computer},
        "winlog": winlog,
    }
    level = event.level_name or (LEVEL_NAMES.get(event.level) if event.level is not None
                                 else None)
    if level:
        document["log"] = {"level": level.lower()}
        winlog["level"] = level.lower()
    winlog["time_created"] = document["@timestamp"]  # one object: see time_and_level
    if event.message:
        document["message"] = (event.message.replace("\r\n", "\n") if "\r" in event.message
                               else event.message)
    return document
