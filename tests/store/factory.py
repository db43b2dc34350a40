"""Alert documents shaped like vigil's (and Elastic's) for store tests: a sequence gives its
building blocks and its shell, with deterministic ids derived from a key."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from rich.console import Console

RULE_ID = "d33ea3bf-9a11-463e-bd46-f648f2a0f4b1"
RULE_NAME = "Remote Windows Service Installed"
RULE_UUID = "5c1bd3a0-0000-4000-8000-000000000001"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _common(rule_id: str, rule_name: str, severity: str) -> dict[str, Any]:
    return {
        "@timestamp": "2024-05-01T12:00:00.000Z",
        "event.kind": "signal",
        "kibana.alert.status": "active",
        "kibana.alert.workflow_status": "open",
        "kibana.alert.rule.rule_id": rule_id,
        "kibana.alert.rule.name": rule_name,
        "kibana.alert.rule.uuid": RULE_UUID,
        "kibana.alert.severity": severity,
        "kibana.alert.risk_score": 47,
        "kibana.space_ids": ["default"],
    }


def sequence_docs(key: str, *, time: str = "2024-05-01T10:00:00.000Z", host: str = "DC01",
                  user: str = "admin", source_ip: str = "10.0.0.5", stages: int = 2,
                  rule_id: str = RULE_ID, rule_name: str = RULE_NAME,
                  severity: str = "medium", filler: int = 0) -> list[dict[str, Any]]:
    """Building blocks (stage order), then the shell."""
    shell_id = sha(f"shell:{key}:{rule_id}")
    docs: list[dict[str, Any]] = []
    for index in range(stages):
        block = _common(rule_id, rule_name, severity)
        block.update({
            "kibana.alert.uuid": sha(f"bb:{key}:{index}:{rule_id}"),
            "kibana.alert.building_block_type": "default",
            "kibana.alert.group.id": shell_id,
            "kibana.alert.group.index": index,
            "kibana.alert.original_time": time,
            "kibana.alert.reason": f"event on {host} created {severity} alert {rule_name}.",
            "event": {"action": "logged-in" if index == 0 else "service-installed",
                      "code": "4624" if index == 0 else "4697"},
            "host": {"name": host},
            "winlog": {"computer_name": host, "logon": {"id": "0x1a2b"}},
        })
        if index == 0:
            block["source"] = {"ip": source_ip}
        if filler:
            block["message"] = "x" * filler
        docs.append(block)
    shell = _common(rule_id, rule_name, severity)
    shell.update({
        "kibana.alert.uuid": shell_id,
        "kibana.alert.group.id": shell_id,
        "kibana.alert.original_time": time,
        "kibana.alert.reason": f"event on {host} created {severity} alert {rule_name}.",
        "host": {"name": host},
        "vigil.summary": {"host": host, "user": user, "source_ip": source_ip,
                          "logon_id": "0x1a2b", "service_name": "evil"},
    })
    docs.append(shell)
    return docs


def single_doc(key: str, *, time: str = "2024-05-01T10:00:00.000Z", host: str = "WS7",
               user: str = "bob", rule_id: str = "rule-single",
               rule_name: str = "Single Event Rule", severity: str = "high") -> dict[str, Any]:
    doc = _common(rule_id, rule_name, severity)
    doc.update({
        "kibana.alert.uuid": sha(f"single:{key}:{rule_id}"),
        "kibana.alert.original_time": time,
        "kibana.alert.reason": f"process event by {user} on {host} created alert.",
        "host.name": host,
        "user": {"name": user},
        "source.ip": "192.0.2.9",
    })
    return doc


def render(renderable: object) -> str:
    """What a 200-column terminal shows (with escapes as rich writes them, no colour)."""
    console = Console(file=io.StringIO(), width=200, force_terminal=True, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out
