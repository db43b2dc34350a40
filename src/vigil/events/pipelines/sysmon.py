"""Elastic's ``windows.sysmon_operational`` pipeline: Sysmon events (ids 1-29, 255) to ECS.

Read from elastic/integrations ``packages/windows/_dev/shared/ingest_pipeline/
sysmon_operational.yml`` (an older copy is in ``../shared/conformance/elastic-pipelines``);
this is vigil's own code, in the pipeline's order, its tables as data. ``ingest`` takes the
winlog input's document (``vigil.events.winlog.base_document`` or a raw Winlogbeat / Elastic
Agent document) and changes it in place.
"""

from __future__ import annotations

import re
from datetime import datetime

from vigil.events.pipelines.common import (
    Doc,
    add_related,
    convert_long,
    copy,
    drop_empty_data,
    file_parts,
    finish_event_data,
    is_ip,
    java_hash_order,
    move,
    present,
    process_names,
    put,
    set_args,
    split_user,
    stringify_ids,
    sub,
    to_boolean,
)
from vigil.events.pipelines.tables import DNS_RECORD_TYPES, DNS_STATUS

ECS_VERSION = "8.17.0"

# event id | event.category | event.type | event.action ("|" between the values of a list)
_TABLE = """
1   process               start                   Process creation
2   file                  change                  A process changed a file creation time
3   network               start,connection,protocol Network connection
4   process               change                  Sysmon service state changed
5   process               end                     Process terminated
6   driver                start                   Driver loaded
7   process,library       change,start            Image loaded|load
8   process               change                  CreateRemoteThread
9   process               access                  RawAccessRead
10  process               access                  ProcessAccess
11  file                  creation                FileCreate
12  configuration,registry change                 RegistryEvent (Object create and delete)
13  configuration,registry change                 RegistryEvent (Value Set)
14  configuration,registry change                 RegistryEvent (Key and Value Rename)
15  file                  access                  FileCreateStreamHash
16  configuration         change                  ServiceConfigurationChange
17  file                  creation                PipeEvent (Pipe Created)
18  file                  access                  PipeEvent (Pipe Connected)
19  process               creation                WmiEvent (WmiEventFilter activity detected)
20  process               creation                WmiEvent (WmiEventConsumer activity detected)
21  process               access                  WmiEvent (WmiEventConsumerToFilter activity detected)
22  network               connection,protocol,info DNSEvent (DNS query)
23  file                  deletion                FileDelete (File Delete archived)
24  -                     change                  ClipboardChange (New content in the clipboard)
25  process               change                  ProcessTampering (Process image change)
26  file                  deletion                FileDeleteDetected (File Delete logged)
27  file                  creation,denied         FileBlockExecutable
28  file                  deletion,denied         FileBlockShredding
29  file                  creation                FileExecutableDetected
255 process               error                   Error
"""


def _parse_table(text: str,
                 ) -> dict[str, tuple[list[str] | None, list[str], str | list[str]]]:
    table = {}
    for line in text.strip().splitlines():
        code, category, kind, action = line.split(None, 3)
        table[code] = (None if category == "-" else category.split(","), kind.split(","),
                       action.split("|") if "|" in action else action)
    return table


EVENTS = _parse_table(_TABLE)

# Where the hash of an event goes: process.hash for process images, file.hash for files.
PROCESS_HASH_EVENTS = frozenset({"1", "23", "24", "25"})
FILE_HASH_EVENTS = frozenset({"6", "7", "15", "26", "29"})
REGISTRY_EVENTS = frozenset({"12", "13", "14"})

HIVES = {"HKEY_CLASSES_ROOT": "HKCR", "HKCR": "HKCR", "HKEY_CURRENT_CONFIG": "HKCC",
         "HKCC": "HKCC", "HKEY_CURRENT_USER": "HKCU", "HKCU": "HKCU", "HKEY_DYN_DATA": "HKDD",
         "HKDD": "HKDD", "HKEY_LOCAL_MACHINE": "HKLM", "HKLM": "HKLM",
         "HKEY_PERFORMANCE_DATA": "HKPD", "HKPD": "HKPD", "HKEY_USERS": "HKU", "HKU": "HKU"}

# Linear-time, anchored (the registry script's matchers use matches(): whole string).
_QWORD = re.compile(r"QWORD \(((0x[0-9A-F]{8})-(0x[0-9A-F]{8}))\)\Z", re.IGNORECASE)
_DWORD = re.compile(r"DWORD \((0x[0-9A-F]{8})\)\Z", re.IGNORECASE)
_EMPTY_HASH = re.compile(r"0*\Z")
_BLANKS = re.compile(r"\s+")

# EventData keys the pipeline's cleanup removes (their values went to ECS fields).
_REMOVED = ("ProcessId", "ParentProcessId", "SourceProcessId", "SourceThreadId", "SourceIp",
            "SourcePort", "SourcePortName", "DestinationIp", "DestinationPort",
            "DestinationPortName", "RuleName", "User", "Initiated", "SourceIsIpv6",
            "DestinationIsIpv6", "QueryStatus", "Archived", "IsExecutable", "QueryResults",
            "UtcTime", "Hash", "Hashes", "TargetObject")


def _utc_time(text: str) -> str | None:
    """``yyyy-MM-dd HH:mm:ss.SSS`` (UTC) as the date processor writes it."""
    try:
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return None
    if len(text) != 23:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _hashes(text: str) -> dict[str, str]:
    """The ``kv`` split of ``SHA1=..,MD5=..`` into lower-cased names and values, empty and
    all-zero hashes left out, in the order the pipeline's script meets them (it walks the
    Java HashMap the kv processor filled: related.hash is in that order)."""
    pairs: dict[str, str] = {}
    for pair in text.split(","):
        key, sep, value = pair.partition("=")
        if sep and key:
            pairs[key] = value
    out: dict[str, str] = {}
    for key in java_hash_order(list(pairs)):
        value = pairs[key].lower()
        if not _EMPTY_HASH.match(value):
            out[key.lower()] = value
    return out


def _registry(doc: Doc, data: Doc) -> None:
    path = data["TargetObject"]
    registry: Doc = {"path": path}
    doc["registry"] = registry
    tokens = path.split("\\")
    while len(tokens) > 1 and tokens[-1] == "":
        tokens.pop()  # Java's String.split drops trailing empty strings
    hive = HIVES.get(tokens[0])
    if hive is not None:
        registry["hive"] = hive
        if len(tokens) > 1:
            registry["key"] = "\\".join(tokens[1:])
    registry["value"] = tokens[-1]
    details = present(data, "Details")
    if not isinstance(details, str):
        return
    match = _QWORD.match(details)
    if match:
        high, low = int(match.group(2)[2:], 16), int(match.group(3)[2:], 16)
        registry["data"] = {"strings": [str((high << 8) + low)], "type": "SZ_QWORD"}
        return
    match = _DWORD.match(details)
    if match:
        registry["data"] = {"strings": [str(int(match.group(1)[2:], 16))], "type": "SZ_DWORD"}
        return
    kind = "REG_BINARY" if details == "Binary Data" else "REG_SZ"
    registry["data"] = {"strings": [details], "type": kind}


def _dns_results(doc: Doc, text: str) -> None:
    answers: list[Doc] = []
    ips: list[str] = []
    hosts: list[str] = []
    for answer in text.split(";"):
        if answer == "":
            continue
        if answer.startswith("type:"):
            parts = [p for p in _BLANKS.split(answer)]
            while parts and parts[-1] == "":
                parts.pop()
            if len(parts) == 3:
                answers.append({"type": DNS_RECORD_TYPES.get(parts[1]), "data": parts[2]})
                hosts.append(parts[2])
            elif len(parts) >= 2:
                answers.append({"type": DNS_RECORD_TYPES.get(parts[1])})
        else:
            ips.append(answer.replace("::ffff:", ""))
    dns = sub(doc, "dns")
    if answers:
        dns["answers"] = answers
    ips = [ip for ip in ips if is_ip(ip)]  # foreach convert ip: failures removed
    if ips:
        dns["resolved_ip"] = ips
        answers = dns.setdefault("answers", [])
        for ip in ips:
            answers.append({"type": "AAAA" if ":" in ip else "A", "data": ip})
    if hosts:
        sub(doc, "related")["hosts"] = hosts


def ingest(doc: Doc) -> None:
    """Map a Sysmon event of the winlog input to ECS, in place."""
    winlog = sub(doc, "winlog")
    event = sub(doc, "event")
    drop_empty_data(winlog)
    data = winlog.get("event_data")
    if not isinstance(data, dict):
        data = {}
    level = winlog.pop("level", None)
    if isinstance(level, str) and level:
        sub(doc, "log")["level"] = level
    created = winlog.get("time_created")
    if isinstance(created, str) and created:
        event["created"] = created
    utc = present(data, "UtcTime")
    if isinstance(utc, str) and (moment := _utc_time(utc)) is not None:
        doc["@timestamp"] = moment
    event["kind"] = "event"
    code = str(winlog.get("event_id", ""))
    event["code"] = code
    spec = EVENTS.get(code)
    if spec is not None:
        category, kind, action = spec
        if category is not None:
            event["category"] = list(category)
        event["type"] = list(kind)
        event["action"] = action
    stringify_ids(winlog)

    if code == "255":
        move(data, "ID", doc, "error.code")
    move(data, "RuleName", doc, "rule.name")
    if code == "25":
        move(data, "Type", doc, "message")
    move(data, "Hash", data, "Hashes")
    hashes: dict[str, str] | None = None
    raw_hashes = data.get("Hashes")
    if isinstance(raw_hashes, str):
        hashes = _hashes(raw_hashes)
        if hashes:
            sub(doc, "related")["hash"] = list(hashes.values())

    # process
    if hashes is not None and code in PROCESS_HASH_EVENTS:
        _put_hashes(sub(doc, "process"), hashes)
    move(data, "ProcessGuid", doc, "process.entity_id")
    convert_long(data, "ProcessId", doc, "process.pid")
    move(data, "Image", doc, "process.executable")
    move(data, "SourceProcessGuid", doc, "process.entity_id")
    move(data, "SourceProcessGUID", doc, "process.entity_id")
    convert_long(data, "SourceProcessId", doc, "process.pid")
    convert_long(data, "SourceThreadId", doc, "process.thread.id")
    move(data, "SourceImage", doc, "process.executable")
    move(data, "Destination", doc, "process.executable")
    move(data, "CommandLine", doc, "process.command_line")
    move(data, "CurrentDirectory", doc, "process.working_directory")
    move(data, "ParentProcessGuid", doc, "process.parent.entity_id")
    convert_long(data, "ParentProcessId", doc, "process.parent.pid")
    move(data, "ParentImage", doc, "process.parent.executable")
    move(data, "ParentCommandLine", doc, "process.parent.command_line")
    pe_target = "file.pe" if code == "7" else "process.pe"
    if code != "7":
        move(data, "OriginalFileName", doc, "process.pe.original_file_name")
        for key, field in _PE_FIELDS:
            copy(data, key, doc, f"process.pe.{field}")
    found = doc.get("process")
    if isinstance(found, dict):
        set_args(found)
        if isinstance(found.get("parent"), dict):
            set_args(found["parent"])
    process_names(doc)

    # file
    if hashes is not None and code in FILE_HASH_EVENTS:
        _put_hashes(sub(doc, "file"), hashes)
    move(data, "TargetFilename", doc, "file.path")
    move(data, "Device", doc, "file.path")
    move(data, "PipeName", doc, "file.name")
    move(data, "ImageLoaded", doc, "file.path")
    copy(data, "Signature", doc, "file.code_signature.subject_name")
    copy(data, "SignatureStatus", doc, "file.code_signature.status")
    if code == "7":
        move(data, "OriginalFileName", doc, "file.pe.original_file_name")
        for key, field in _PE_FIELDS:
            copy(data, key, doc, f"{pe_target}.{field}")
    signed = data.get("Signed")
    if isinstance(signed, str):
        # file.code_signature.trusted from Signed; for a library load that is not signed as
        # trusted, Signed's text is the dll's signature status.
        put(doc, "file.code_signature.trusted", signed == "true")
        if code == "7" and signed != "true":
            put(doc, "dll.code_signature.status", signed)
    if data.get("SignatureStatus") == "Valid":
        put(doc, "file.code_signature.valid", True)
    found = doc.get("file")
    if isinstance(found, dict) and isinstance(found.get("path"), str) and len(found["path"]) > 1:
        found.update(file_parts(found["path"]))
    if code == "7" and isinstance(found, dict):
        _library(doc, found)

    # network, source, destination
    move(data, "Protocol", doc, "network.transport")
    if code != "22":
        move(data, "DestinationPortName", doc, "network.protocol")
        move(data, "SourcePortName", doc, "network.protocol")
    else:
        put(doc, "network.protocol", "dns")
    for key, target in (("SourceIp", "source.ip"), ("DestinationIp", "destination.ip")):
        value = present(data, key)
        if value is not None and is_ip(value):
            put(doc, target, value)
    move(data, "SourceHostname", doc, "source.domain")
    convert_long(data, "SourcePort", doc, "source.port")
    move(data, "DestinationHostname", doc, "destination.domain")
    convert_long(data, "DestinationPort", doc, "destination.port")
    move(data, "QueryName", doc, "dns.question.name")
    initiated = data.get("Initiated")
    if initiated in ("true", "false"):
        put(doc, "network.direction", "egress" if initiated == "true" else "ingress")
    ipv6 = data.get("SourceIsIpv6")
    if ipv6 in ("true", "false"):
        put(doc, "network.type", "ipv6" if ipv6 == "true" else "ipv4")
    results = present(data, "QueryResults")
    if isinstance(results, str):
        _dns_results(doc, results)
    question = doc.get("dns", {}).get("question") if isinstance(doc.get("dns"), dict) else None
    if isinstance(question, dict) and isinstance(question.get("name"), str) and question["name"]:
        _registered_domain(question)
        add_related(doc, "hosts", question["name"])
    dns = doc.get("dns")
    if isinstance(dns, dict) and isinstance(dns.get("resolved_ip"), list):
        for ip in dns["resolved_ip"]:
            add_related(doc, "ip", ip)

    # user
    identifier = winlog.get("user", {}).get("identifier") if isinstance(winlog.get("user"),
                                                                         dict) else None
    if identifier:
        put(doc, "user.id", identifier)
    split_user(doc, data.get("User"))

    # sysmon.*
    move(data, "QueryStatus", doc, "sysmon.dns.status")
    status = doc.get("sysmon", {}).get("dns", {}).get("status") if isinstance(
        doc.get("sysmon"), dict) else None
    if isinstance(status, str) and status in DNS_STATUS:
        doc["sysmon"]["dns"]["status"] = DNS_STATUS[status]
    for key, field in (("Archived", "archived"), ("IsExecutable", "is_executable")):
        value = present(data, key)
        if value is not None and (flag := to_boolean(value)) is not None:
            put(doc, f"sysmon.file.{field}", flag)
    error = doc.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        error["code"] = str(error["code"])

    # related
    user = doc.get("user")
    if isinstance(user, dict) and user.get("name"):
        add_related(doc, "user", user["name"])
    for side in ("source", "destination"):
        node = doc.get(side)
        if isinstance(node, dict) and node.get("ip"):
            add_related(doc, "ip", node["ip"])

    # registry
    if code in REGISTRY_EVENTS and present(data, "TargetObject") is not None:
        _registry(doc, data)

    if "TargetProcessGuid" in data:
        data["TargetProcessGUID"] = data.pop("TargetProcessGuid")
    for key in _REMOVED:
        data.pop(key, None)
    winlog.pop("time_created", None)
    finish_event_data(winlog)
    doc["ecs"] = {"version": ECS_VERSION}


_PE_FIELDS = (("Company", "company"), ("Description", "description"),
              ("FileVersion", "file_version"), ("Product", "product"))


def _put_hashes(node: Doc, hashes: dict[str, str]) -> None:
    """The hashes under ``node.hash``, the import hash under ``node.pe.imphash``."""
    node["hash"] = dict(hashes)
    if "imphash" in node["hash"]:
        sub(node, "pe")["imphash"] = node["hash"].pop("imphash")


def _library(doc: Doc, file: Doc) -> None:
    """A library load's dll.* fields (ECS's own fields for it), beside the file.* ones."""
    dll = sub(doc, "dll")
    for key in ("path", "name"):
        if key in file:
            dll[key] = file[key]
    hashes = file.get("hash")
    if isinstance(hashes, dict) and hashes:
        dll["hash"] = dict(hashes)
    pe = file.get("pe")
    if isinstance(pe, dict):
        for key in ("imphash", "original_file_name"):
            if key in pe:
                sub(dll, "pe")[key] = pe[key]


def _registered_domain(question: Doc) -> None:
    """The ``registered_domain`` processor on dns.question.name: the registered domain and
    subdomain by the public suffix list's simplest rule (the last label is the suffix);
    names without a dot get nothing."""
    name = question["name"]
    labels = name.rstrip(".").split(".")
    if len(labels) < 2 or any(not label for label in labels):
        return
    question["top_level_domain"] = labels[-1]
    question["registered_domain"] = ".".join(labels[-2:])
    if len(labels) > 2:
        question["subdomain"] = ".".join(labels[:-2])
