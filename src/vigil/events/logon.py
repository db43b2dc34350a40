"""The logon-id fix: which session a logon event belongs to.

Elastic's current Windows pipelines set ``winlog.logon.id`` of every Security event from
SubjectLogonId, 4624 included. On a network logon SubjectLogonId is ``0x0`` (the requesting
side has no local session), so rules that join a logon to what that session did afterwards
(``sequence by winlog.logon.id``, e.g. "Remote Windows Service Installed") can never match on
Elastic-ingested data (elastic/integrations#20004). Winlogbeat 7 took TargetLogonId, the id of
the session the event creates, which is what such rules mean.

``apply_intended_logon_id`` is that correction. vigil applies it by default ("intended" mode)
both to events it maps itself (EVTX, OTRF JSON) and to ECS documents Elastic already ingested,
whose ``winlog.event_data`` still carries TargetLogonId; "elastic" mode leaves Elastic's value.
"""

from __future__ import annotations

from typing import Any

# Events whose TargetLogonId is the session the event is about: 4624 logon, 4627 its group
# membership, 4964 special groups of the new logon; 4634/4647 (logoff) Elastic already maps so.
TARGET_LOGON_EVENTS = frozenset({"4624", "4627", "4634", "4647", "4964"})


def apply_intended_logon_id(event: dict[str, Any]) -> None:
    """Set ``winlog.logon.id`` from TargetLogonId for logon events that carry it (in place)."""
    winlog = event.get("winlog")
    if not isinstance(winlog, dict):
        return
    code = winlog.get("event_id")
    if code is None:
        fields = event.get("event")
        code = fields.get("code") if isinstance(fields, dict) else None
    if str(code) not in TARGET_LOGON_EVENTS:
        return
    data = winlog.get("event_data")
    target = data.get("TargetLogonId") if isinstance(data, dict) else None
    if not isinstance(target, str) or not target:
        return
    logon = winlog.get("logon")
    if not isinstance(logon, dict):
        logon = winlog["logon"] = {}
    logon["id"] = target
