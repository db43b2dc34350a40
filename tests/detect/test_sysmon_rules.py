"""Prebuilt Windows rules that need Sysmon fire on the OTRF samples, where the datasets show
their technique, now that Sysmon is mapped as Elastic's ``windows.sysmon_operational``
pipeline maps it (before, a Sysmon event had no event.category, process.* or user.*).

Rules and samples are read in place from ``../shared``:

* *Suspicious Lsass Process Access*: Sysmon 10 (ProcessAccess) opening lsass.exe with a
  suspicious access mask; in the Empire SMBexec dataset a process not on the rule's
  exclusion list (CollectGuestLogs.exe) opens lsass.
* *Whoami Process Activity* and *Account Discovery Command via SYSTEM Account*: Sysmon 1
  (process creation) of whoami.exe run as SYSTEM; the Empire PsExec / SMBexec datasets run
  it through the installed service.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import shared_dir
from vigil.detect.run import run_detection
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.rules import load_rules

RULES = {
    "credential_access_suspicious_lsass_access_generic.toml":
        ("128468bf-cab1-4637-99ea-fdf3780a4609", "empire_smbexec_dcerpc_smb_svcctl.zip"),
    "discovery_whoami_command_activity.toml":
        ("ef862985-3f13-4262-a686-5f357bbb9bc2", "empire_psexec_dcerpc_tcp_svcctl.zip"),
    "discovery_command_system_account.toml":
        ("2856446a-34e6-435b-9fb5-f8f040bfa7ed", "empire_psexec_dcerpc_tcp_svcctl.zip"),
}


def _cases() -> list[str]:
    return sorted(RULES)


@pytest.mark.parametrize("rule_file", _cases())
def test_sysmon_rule_fires_on_otrf(rule_file: str) -> None:
    rule_id, sample = RULES[rule_file]
    root: Path = shared_dir()
    loaded = load_rules([root / "rules" / "elastic-prebuilt" / "rules" / "windows" / rule_file])
    assert not loaded.errors and [r.rule_id for r in loaded.rules] == [rule_id]
    stats = ReadStats()
    path = root / "samples" / "json" / "OTRF_Security-Datasets" / sample
    events = list(read_events([path], stats, ReadOptions()))
    assert stats.bad_total == 0
    alerts = run_detection(loaded.rules, events).alerts
    assert alerts, f"{rule_file} raised nothing on {sample}"
    for alert in alerts:
        # The evidence is a Sysmon event, mapped as Elastic maps it.
        [event] = alert.events
        assert event["data_stream"]["dataset"] == "windows.sysmon_operational"
        assert event["event"]["category"][0] == "process"
        assert event["process"]["executable"]
        assert event["host"]["id"]  # synthesised for the computer: rules join on it
