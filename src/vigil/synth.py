"""A generator of realistic Windows ECS documents, as Elastic Agent's System integration
ingests them, with planted attacks and near misses whose answer is known.

Used for the bundled example, the tests' held-out scenarios and the benchmarks. The documents
follow ../shared/samples/ECS_MAPPING.md, including Elastic's current behaviour of taking a
4624's ``winlog.logon.id`` from SubjectLogonId (``0x0`` for network logons): on these
documents the seed rule fires only with vigil's default logon-id fix.

    python -m vigil.synth --events 100000 --seed 7 --output windows.ndjson
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

SECURITY = "Microsoft-Windows-Security-Auditing"
DOMAIN = "CORP"
BENIGN_SERVICES = (
    ("edgeupdate", "\"C:\\Program Files (x86)\\Microsoft\\EdgeUpdate\\MicrosoftEdgeUpdate.exe\" /svc"),
    ("VSS", "C:\\Windows\\System32\\VSSVC.exe"),
    ("TrustedInstaller", "C:\\Windows\\servicing\\TrustedInstaller.exe"),
    ("WinDefend", "C:\\Program Files\\Windows Defender\\MsMpEng.exe"),
)
EVIL_SERVICES = (
    ("updsvc", "C:\\Users\\Public\\updsvc.exe"),
    ("WinSvcHost", "%COMSPEC% /Q /c echo whoami > \\\\127.0.0.1\\C$\\out.txt"),
    ("KMSsvc", "C:\\Windows\\Temp\\kms.exe"),
    ("BTOBTO", "%COMSPEC% /Q /c echo cd ^> \\\\127.0.0.1\\C$\\__output 2^>^&1 > %TEMP%\\e.bat"),
)
PROCESSES = ("C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\System32\\cmd.exe",
             "C:\\Windows\\explorer.exe", "C:\\Program Files\\Mozilla Firefox\\firefox.exe",
             "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
             "C:\\Windows\\System32\\conhost.exe", "C:\\Windows\\System32\\taskhostw.exe")


@dataclass(frozen=True, slots=True)
class Planted:
    """A planted scenario: ``fires`` says whether the seed rule (intended mapping) matches."""

    kind: str
    host: str
    logon_id: str
    record_ids: tuple[str, ...]
    fires: bool


@dataclass(slots=True)
class Generator:
    seed: int = 7
    start: datetime = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    hosts: int = 40
    users: int = 60
    events_per_second: float = 50.0
    network_logon_share: float = 0.30
    rng: random.Random = field(init=False)
    record: int = field(init=False, default=1000)
    planted: list[Planted] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # -------------------------------------------------------------- helpers

    def host(self) -> str:
        return f"WS{self.rng.randrange(self.hosts):03d}.corp.local"

    def user(self) -> str:
        return f"user{self.rng.randrange(self.users):03d}"

    def logon_id(self) -> str:
        return hex(self.rng.randrange(0x10000, 0xFFFFFFF))

    def ip(self) -> str:
        return f"10.{self.rng.randrange(1, 20)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"

    def base(self, at: datetime, host: str, code: str, channel: str = "Security",
             provider: str = SECURITY, dataset: str = "system.security") -> dict[str, Any]:
        self.record += 1
        return {
            "@timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": {"code": code, "kind": "event", "provider": provider, "module": "system",
                      "dataset": dataset},
            "host": {"name": host, "os": {"type": "windows", "family": "windows"}},
            "winlog": {"channel": channel, "provider_name": provider, "computer_name": host,
                       "record_id": str(self.record), "event_id": code, "api": "wineventlog"},
            "data_stream": {"type": "logs", "dataset": dataset, "namespace": "default"},
            "agent": {"type": "filebeat", "version": "8.14.0"},
            "ecs": {"version": "8.11.0"},
        }

    # -------------------------------------------------------------- event kinds

    def logon(self, at: datetime, host: str, *, logon_type: str = "3", target_id: str = "",
              ip: str | None = None, user: str = "", outcome: str = "success") -> dict[str, Any]:
        code = "4624" if outcome == "success" else "4625"
        doc = self.base(at, host, code)
        user = user or self.user()
        target_id = target_id or self.logon_id()
        network = logon_type == "3"
        subject = "0x0" if network else "0x3e7"
        type_names = {"2": "Interactive", "3": "Network", "5": "Service", "10": "RemoteInteractive"}
        data = {
            "SubjectUserSid": "S-1-0-0" if network else "S-1-5-18",
            "SubjectUserName": "-" if network else host.split(".")[0] + "$",
            "SubjectDomainName": "-" if network else DOMAIN,
            "SubjectLogonId": subject, "TargetUserSid": f"S-1-5-21-1-2-3-{1000 + int(user[4:] or 0)}",
            "TargetUserName": user, "TargetDomainName": DOMAIN, "TargetLogonId": target_id,
            "LogonType": logon_type, "LogonProcessName": "NtLmSsp " if network else "Advapi  ",
            "AuthenticationPackageName": "NTLM" if network else "Negotiate",
        }
        doc["event"].update({
            "category": ["authentication"], "type": ["start"],
            "action": "logged-in" if outcome == "success" else "logon-failed", "outcome": outcome,
        })
        # Elastic's current pipelines: winlog.logon.id of a 4624 is SubjectLogonId.
        doc["winlog"].update({"event_data": data, "logon": {"id": subject,
                                                             "type": type_names[logon_type]}})
        doc["user"] = {"name": user, "domain": DOMAIN, "id": data["TargetUserSid"]}
        related: dict[str, Any] = {"user": [user]}
        if network and ip != "-":
            source_ip = ip or self.ip()
            doc["source"] = {"ip": source_ip, "port": self.rng.randrange(49152, 65535),
                             "domain": "-"}
            related["ip"] = [source_ip]
        doc["related"] = related
        doc["message"] = "An account was successfully logged on."
        return doc

    def logoff(self, at: datetime, host: str, target_id: str) -> dict[str, Any]:
        doc = self.base(at, host, "4634")
        user = self.user()
        doc["event"].update({"category": ["authentication"], "type": ["end"],
                             "action": "logged-out", "outcome": "success"})
        doc["winlog"].update({"event_data": {"TargetUserName": user, "TargetDomainName": DOMAIN,
                                             "TargetLogonId": target_id, "LogonType": "3"},
                              "logon": {"id": target_id, "type": "Network"}})
        doc["user"] = {"name": user, "domain": DOMAIN}
        return doc

    def service_install(self, at: datetime, host: str, subject_id: str, name: str,
                        path: str, user: str = "") -> dict[str, Any]:
        doc = self.base(at, host, "4697")
        user = user or self.user()
        doc["event"].update({"category": ["iam", "configuration"], "type": ["admin", "change"],
                             "action": "service-installed", "outcome": "success"})
        doc["winlog"].update({
            "event_data": {"SubjectUserSid": "S-1-5-21-1-2-3-1104", "SubjectUserName": user,
                           "SubjectDomainName": DOMAIN, "SubjectLogonId": subject_id,
                           "ServiceName": name, "ServiceFileName": path, "ServiceType": "0x10",
                           "ServiceStartType": "3", "ServiceAccount": "LocalSystem"},
            "logon": {"id": subject_id},
        })
        doc["service"] = {"name": name, "type": "Win32 Own Process"}
        doc["user"] = {"name": user, "domain": DOMAIN}
        doc["related"] = {"user": [user]}
        doc["message"] = "A service was installed in the system."
        return doc

    def system_7045(self, at: datetime, host: str, name: str, path: str) -> dict[str, Any]:
        doc = self.base(at, host, "7045", channel="System",
                        provider="Service Control Manager", dataset="system.system")
        doc["event"]["action"] = "None"
        doc["winlog"]["event_data"] = {"ServiceName": name, "ImagePath": path,
                                       "ServiceType": "user mode service",
                                       "StartType": "demand start", "AccountName": "LocalSystem"}
        return doc

    def process(self, at: datetime, host: str) -> dict[str, Any]:
        doc = self.base(at, host, "4688")
        executable = self.rng.choice(PROCESSES)
        doc["event"].update({"category": ["process"], "type": ["start"],
                             "action": "created-process", "outcome": "success"})
        doc["process"] = {"executable": executable, "name": executable.rsplit("\\", 1)[-1],
                          "pid": self.rng.randrange(400, 30000),
                          "command_line": executable + " -k netsvcs"}
        doc["winlog"]["logon"] = {"id": self.logon_id()}
        return doc

    def special(self, at: datetime, host: str, logon_id: str) -> dict[str, Any]:
        doc = self.base(at, host, "4672")
        doc["event"].update({"category": ["iam"], "type": ["admin"],
                             "action": "logged-in-special", "outcome": "success"})
        doc["winlog"].update({"logon": {"id": logon_id}, "event_data": {
            "SubjectLogonId": logon_id, "PrivilegeList": "SeDebugPrivilege"}})
        return doc

    # -------------------------------------------------------------- scenarios

    def scenario(self, at: datetime) -> list[dict[str, Any]]:
        """A planted lateral movement or a near miss (the kind chosen at random)."""
        host, logon_id, ip = self.host(), self.logon_id(), self.ip()
        name, path = self.rng.choice(EVIL_SERVICES)
        kind = self.rng.choice(("attack", "attack", "too-late", "other-host", "system-account",
                                "excluded-path", "loopback", "failed-logon", "other-session"))
        gap = timedelta(seconds=self.rng.randrange(2, 59))
        service_host, subject, logon_ip, outcome = host, logon_id, ip, "success"
        if kind == "too-late":
            gap = timedelta(seconds=61 + self.rng.randrange(300))
        elif kind == "other-host":
            service_host = self.host()
            while service_host == host:
                service_host = self.host()
        elif kind == "system-account":
            subject = "0x3e7"
        elif kind == "excluded-path":
            name, path = "PSEXESVC", "C:\\Windows\\PSEXESVC.exe"
        elif kind == "loopback":
            logon_ip = "127.0.0.1"
        elif kind == "failed-logon":
            outcome = "failure"
        elif kind == "other-session":
            subject = self.logon_id()
        account = self.user()  # the attacker's account: it logs on, then installs
        logon = self.logon(at, host, target_id=logon_id, ip=logon_ip, outcome=outcome,
                           user=account)
        install = self.service_install(at + gap, service_host, subject, name, path,
                                       user=account)
        shadow = self.system_7045(at + gap, service_host, name, path)
        self.planted.append(Planted(kind, host, logon_id,
                                    (logon["winlog"]["record_id"],
                                     install["winlog"]["record_id"]),
                                    kind == "attack"))
        return [logon, install, shadow]

    def events(self, count: int, planted_every: int = 5_000) -> Iterator[dict[str, Any]]:
        """``count`` background events in time order, with a scenario every
        ``planted_every`` events (scenario events come on top of the count)."""
        step = timedelta(seconds=1 / self.events_per_second)
        pending: list[dict[str, Any]] = []
        at = self.start
        open_sessions: list[tuple[str, str]] = []
        for n in range(count):
            at += step * self.rng.uniform(0.2, 1.8)
            while pending and pending[0]["@timestamp"] <= _iso(at):
                yield pending.pop(0)
            if planted_every and n % planted_every == planted_every // 2:
                pending.extend(self.scenario(at))
                pending.sort(key=lambda d: d["@timestamp"])
            roll = self.rng.random()
            host = self.host()
            if roll < self.network_logon_share:
                session = self.logon_id()
                open_sessions.append((host, session))
                yield self.logon(at, host, target_id=session)
            elif roll < self.network_logon_share + 0.05:
                yield self.logon(at, host, logon_type=self.rng.choice(("2", "5", "10")))
            elif roll < self.network_logon_share + 0.15 and open_sessions:
                session_host, session = open_sessions.pop(self.rng.randrange(len(open_sessions)))
                yield self.logoff(at, session_host, session)
            elif roll < self.network_logon_share + 0.20:
                yield self.special(at, host, self.logon_id())
            elif roll < self.network_logon_share + 0.201:
                name, path = self.rng.choice(BENIGN_SERVICES)
                yield self.service_install(at, host, "0x3e7", name, path)
            else:
                yield self.process(at, host)
            if len(open_sessions) > 5_000:
                open_sessions = open_sessions[-1_000:]
        yield from pending


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_ndjson(path: Path, count: int, seed: int, planted_every: int = 5_000,
                 network_logon_share: float = 0.30) -> list[Planted]:
    generator = Generator(seed=seed, network_logon_share=network_logon_share)
    with path.open("wb") as out:
        for doc in generator.events(count, planted_every):
            out.write(orjson.dumps(doc) + b"\n")
    return generator.planted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--planted-every", type=int, default=5_000)
    parser.add_argument("--network-logon-share", type=float, default=0.30)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    planted = write_ndjson(args.output, args.events, args.seed, args.planted_every,
                           args.network_logon_share)
    fires = sum(p.fires for p in planted)
    print(f"wrote {args.output}: {args.events:,} background events, {len(planted)} planted "
          f"scenarios ({fires} true attacks)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
