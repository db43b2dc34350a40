"""KQL query rules end to end: Elastic's prebuilt set loads, alerts are Kibana's documents,
and named Windows rules fire on the shared samples where the logs show their technique."""

from __future__ import annotations

import hashlib
from collections import Counter
from functools import cache

from tests.conftest import shared_dir
from vigil.api import detect
from vigil.detect.ids import rule_uuid
from vigil.rules import Rule, load_rules
from vigil.rules.loader import skipped_summary


@cache
def _windows_kql_rules() -> tuple[Rule, ...]:
    root = shared_dir() / "rules" / "elastic-prebuilt-other" / "rules" / "windows"
    return tuple(r for r in load_rules([root]).rules if r.type == "query")


def test_the_prebuilt_set_loads_and_says_what_it_skips() -> None:
    result = load_rules([shared_dir() / "rules" / "elastic-prebuilt-other"])
    by_type = Counter(r.type for r in result.rules)
    assert by_type == {"query": 454, "new_terms": 241, "threshold": 28, "threat_match": 6}
    assert result.errors == ()
    skipped = Counter(s.rule_type for s in result.skipped)
    assert skipped["esql"] == 209 and skipped["machine_learning"] == 106
    summary = skipped_summary(result.skipped)
    assert len(summary) == len(skipped)  # one line per type, never one per rule
    assert any(line.startswith("skipped 209 esql rule(s): ES|QL") for line in summary)


def test_a_query_rule_alert_is_kibanas_document() -> None:
    rule = next(r for r in _windows_kql_rules() if r.name == "Windows Event Logs Cleared")
    sample = shared_dir() / "samples" / "evtx" / "sans-blue-team_DeepBlueCLI"
    docs = list(detect([sample / "metasploit-psexec-native-target-security.evtx"],
                             rules=[rule]))
    (doc,) = docs
    assert doc["kibana.alert.rule.type"] == "query"
    assert doc["kibana.alert.rule.rule_type_id"] == "siem.queryRule"
    assert doc["kibana.alert.rule.category"] == "Custom Query Rule"
    assert doc["kibana.alert.rule.parameters"]["language"] == "kuery"
    assert doc["kibana.alert.original_event.code"] == "1102"
    # wrap_hits.ts: generateId(_index, _id, String(_version), `${spaceId}:${rule uuid}`)
    ancestor = doc["kibana.alert.ancestors"][0]
    recipe = f"{ancestor['index']}{ancestor['id']}1default:{rule_uuid(rule.rule_id)}"
    assert doc["kibana.alert.uuid"] == hashlib.sha256(recipe.encode()).hexdigest()


def test_named_windows_kql_rules_fire_where_the_samples_show_the_technique() -> None:
    samples = shared_dir() / "samples"
    rules = _windows_kql_rules()
    assert len(rules) >= 40
    fired: dict[str, set[str]] = {}
    for doc in detect([samples], rules=rules):
        source = doc.get("vigil", {}).get("source", {}).get("path", "")
        fired.setdefault(doc["kibana.alert.rule.name"], set()).add(source.rsplit("/", 1)[-1])
    # Security 1102 "The audit log was cleared" in these captures.
    assert {"metasploit-psexec-native-target-security.evtx",
            "ID4697-New service for Mimikatz.evtx"} <= fired["Windows Event Logs Cleared"]
    # PowerShell 4104 script blocks of Empire's stager, which patches AMSI.
    amsi = fired["Potential Antimalware Scan Interface Bypass via PowerShell"]
    assert any("empire_psexec_dcerpc_tcp_svcctl" in name for name in amsi)
