"""The eql package's PythonEngine (eql==1.0.1, its own venv) on the seed query, in its
dialect: `:` becomes `==` (eql compares case-insensitively) and wildcard lists `wildcard()`
(`?:` becomes `*:`, eql has no `?`). Prints matches; stops after N events.
    _eql_engine.py PATH N"""

import json
import sys
from datetime import datetime

import eql

QUERY = r'''
sequence by winlog.logon.id, winlog.computer_name with maxspan=1m
[authentication where event.action == "logged-in" and winlog.logon.type == "Network" and
 event.outcome == "success" and source.ip != null and source.ip != "127.0.0.1" and source.ip != "::1"]
[iam where event.action == "service-installed" and
 not winlog.event_data.SubjectLogonId == "0x3e7" and
 not wildcard(winlog.event_data.ServiceFileName,
   "*:\\Windows\\ADCR_Agent\\adcrsvc.exe", "*:\\Windows\\System32\\VSSVC.exe",
   "*:\\Windows\\servicing\\TrustedInstaller.exe", "*:\\Windows\\System32\\svchost.exe",
   "*:\\Program Files (x86)\\*.exe", "*:\\Program Files\\*.exe", "*:\\Windows\\PSEXESVC.EXE",
   "*:\\Windows\\System32\\sppsvc.exe", "*:\\Windows\\System32\\wbem\\WmiApSrv.exe",
   "*:\\WINDOWS\\RemoteAuditService.exe", "*:\\Windows\\VeeamVssSupport\\VeeamGuestHelper.exe",
   "*:\\Windows\\VeeamLogShipper\\VeeamLogShipper.exe", "*:\\Windows\\CAInvokerService.exe",
   "*:\\Windows\\System32\\upfc.exe", "*:\\Windows\\AdminArsenal\\PDQ*.exe",
   "*:\\Windows\\System32\\vds.exe", "*:\\Windows\\Veeam\\Backup\\VeeamDeploymentSvc.exe",
   "*:\\Windows\\ProPatches\\Scheduler\\STSchedEx.exe", "*:\\Windows\\System32\\taskhostex.exe")]
'''


def events(path, limit):
    with open(path, "rb") as handle:
        for n, line in enumerate(handle):
            if n >= limit:
                return
            doc = json.loads(line)
            winlog = doc.get("winlog", {})
            target = winlog.get("event_data", {}).get("TargetLogonId")
            if winlog.get("event_id") == "4624" and target:  # vigil's default logon-id fix
                winlog.setdefault("logon", {})["id"] = target
            category = doc.get("event", {}).get("category") or ["any"]
            stamp = datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))
            # eql's default time unit is the Windows filetime tick (100 ns).
            yield eql.Event(category[0] if isinstance(category, list) else category,
                            int(stamp.timestamp() * 10_000_000), doc)


def main():
    path, limit = sys.argv[1], int(sys.argv[2])
    found = []
    engine = eql.PythonEngine()
    with eql.ParserConfig(implied_any=True):
        engine.add_query(eql.parse_query(QUERY))
    engine.add_output_hook(found.append)
    engine.stream_events(events(path, limit))
    print(len(found))


main()
