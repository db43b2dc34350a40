"""Elastic's ``windows.powershell`` and ``windows.powershell_operational`` pipelines.

Read from elastic/integrations ``packages/windows/_dev/shared/ingest_pipeline/
powershell.yml`` and ``powershell_operational.yml`` (copies in ``../shared/conformance/
elastic-pipelines``); vigil's own code, in the pipelines' order. Two steps of the newest
operational pipeline are not reproduced yet: the ``fingerprint`` of the script block
(``powershell.file.script_block_hash``) and its entropy statistics
(``powershell.file.script_block_entropy_*``, ``..._length``, ``..._unique_symbols``,
``..._surprisal_stdev``); no EQL rule reads them (docs/ARCHITECTURE.md, "Channel mappings").
"""

from __future__ import annotations

import re

from vigil.events.pipelines.common import (
    Doc,
    add_related,
    convert_long,
    drop_empty_data,
    file_parts,
    move,
    present,
    put,
    set_args,
    split_user,
    stringify_ids,
    sub,
    time_and_level,
)

ECS_VERSION = "8.17.0"

# The classic log's 4xx/600 "key=value" blocks: a key is a tab, word characters and "=";
# everything up to the next key is the value (values may span lines). Linear: one pass of
# finditer, no nested repetition.
_PARAM_KEY = re.compile(r"\t(\w+)=", re.ASCII)
# 4103's ContextInfo: pairs split at a newline (not followed by another) and blanks.
_CONTEXT_SPLIT = re.compile(r"\n(?!\n)\s+")
_CONTEXT_VALUE = re.compile(r"[:=]")
_BLANK = re.compile(r"\s")
# Command invocation details (800's param3, 4103's Payload), matched whole.
_DETAIL_CLASSIC = re.compile(r"([^:(]+)\(([^)]+)\):\s*(.+)?", re.DOTALL)
_DETAIL_OPERATIONAL = re.compile(r"([^(]+)\(([^)]+)\):\s*(.+)?", re.DOTALL)
_BINDING = re.compile(r"name=(.+);\s*value=(.+)", re.DOTALL)

# Renames shared by both logs: EventData key -> ECS field.
_CLASSIC_RENAMES = (
    ("NewEngineState", "powershell.engine.new_state"),
    ("PreviousEngineState", "powershell.engine.previous_state"),
    ("NewProviderState", "powershell.provider.new_state"),
    ("ProviderName", "powershell.provider.name"),
)
_COMMAND_RENAMES = (
    ("EngineVersion", "powershell.engine.version"),
    ("PipelineId", "powershell.pipeline_id"),
    ("PipelineID", "powershell.pipeline_id"),
    ("RunspaceID", "powershell.runspace_id"),
    ("RunspaceId", "powershell.runspace_id"),
    ("HostVersion", "powershell.process.executable_version"),
    ("CommandLine", "powershell.command.value"),
    ("CommandPath", "powershell.command.path"),
    ("CommandName", "powershell.command.name"),
    ("CommandType", "powershell.command.type"),
)
_CLASSIC_REMOVED = ("param1", "param2", "param3", "SequenceNumber", "DetailTotal",
                    "DetailSequence", "UserId")
_OPERATIONAL_REMOVED = ("SequenceNumber", "User", "ConnectedUser", "ContextInfo", "Severity",
                        "MessageTotal", "MessageNumber", "Payload")


def _java_trim(text: str) -> str:
    """Java's String.trim: strips characters up to U+0020 at both ends."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _kv(text: str, pairs: re.Pattern[str] | str, value_split: re.Pattern[str] | str,
        trim: str) -> dict[str, str]:
    """The ``kv`` processor: split into pairs, each at its first value separator, keys and
    values stripped of ``trim`` characters; pairs without a separator are passed over."""
    out: dict[str, str] = {}
    parts = pairs.split(text) if isinstance(pairs, re.Pattern) else text.split(pairs)
    for pair in parts:
        if isinstance(value_split, re.Pattern):
            found = value_split.search(pair)
            if found is None:
                continue
            key, value = pair[:found.start()], pair[found.end():]
        else:
            key, sep, value = pair.partition(value_split)
            if not sep:
                continue
        key, value = key.strip(trim), value.strip(trim)
        if key:
            out[key] = value
    return out


def _param_blocks(text: str) -> dict[str, str]:
    """The classic log's script: each ``\\tKey=`` starts a value that runs to the next."""
    out: dict[str, str] = {}
    key: str | None = None
    end = 0
    for match in _PARAM_KEY.finditer(text):
        if key is not None:
            out[key] = _java_trim(text[end:match.start()])
        key = _java_trim(match.group(1))
        end = match.end()
    if key is not None:
        out[key] = _java_trim(text[end:])
    return out


def _details(lines: list[str], pattern: re.Pattern[str]) -> list[Doc]:
    out: list[Doc] = []
    for raw in lines:
        match = pattern.fullmatch(raw)
        if match is None:
            out.append({"value": raw})
            continue
        kind, command, value = match.group(1), match.group(2), match.group(3)
        if kind != "ParameterBinding":
            detail: Doc = {"type": kind, "related_command": command}
            if value is not None:
                detail["value"] = value
            out.append(detail)
            continue
        binding = _BINDING.fullmatch(value or "")
        if binding is None:
            out.append({"value": value})
            continue
        out.append({"type": kind, "related_command": command, "name": binding.group(1),
                    "value": binding.group(2)})
    return out


def _common_head(doc: Doc, winlog: Doc, start: str, end: str) -> tuple[Doc, str]:
    """What both pipelines do after splitting EventData: empty values out, time, level,
    event.kind/code/category/type, event.sequence, the host process."""
    doc["ecs"] = {"version": ECS_VERSION}
    drop_empty_data(winlog)
    data = winlog.get("event_data")
    if not isinstance(data, dict):
        data = {}
    time_and_level(doc, winlog, keep=False)
    event = sub(doc, "event")
    event["kind"] = "event"
    code = str(winlog.get("event_id", ""))
    event["code"] = code
    event["category"] = ["process"]
    event["type"] = ["start"] if code == start else ["end"] if code == end else ["info"]
    convert_long(data, "SequenceNumber", doc, "event.sequence")
    stringify_ids(winlog)
    return data, code


def _tail(doc: Doc, winlog: Doc, data: Doc, removed: tuple[str, ...]) -> None:
    process = doc.get("process")
    if isinstance(process, dict):
        set_args(process)
    script = data.get("ScriptName")
    if isinstance(script, str) and len(script) > 1:
        parts = file_parts(script)
        if parts:
            sub(doc, "file").update(parts)
    move(data, "ScriptName", doc, "file.path")
    error = doc.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        error["code"] = str(error["code"])
    for key in removed:
        data.pop(key, None)
    if "event_data" in winlog and not data:
        del winlog["event_data"]


def ingest_classic(doc: Doc) -> None:
    """The "Windows PowerShell" log (400, 403, 600, 800), in place."""
    winlog = sub(doc, "winlog")
    data = winlog.get("event_data")
    if isinstance(data, dict):
        if str(winlog.get("event_id")) == "800":
            if isinstance(data.get("param2"), str):
                data.update(_kv(data["param2"], "\n\t", "=", "\n\t"))
        elif isinstance(data.get("param3"), str):
            data.update(_param_blocks(data["param3"]))
    data, code = _common_head(doc, winlog, "400", "403")
    move(data, "HostId", doc, "process.entity_id")
    move(data, "HostApplication", doc, "process.command_line")
    move(data, "HostName", doc, "process.title")
    split_user(doc, data.get("UserId"))
    user = doc.get("user")
    if isinstance(user, dict) and user.get("name") is not None:
        add_related(doc, "user", user["name"])
    for key, target in _CLASSIC_RENAMES:
        move(data, key, doc, target)
    convert_long(data, "DetailTotal", doc, "powershell.total")
    convert_long(data, "DetailSequence", doc, "powershell.sequence")
    for key, target in _COMMAND_RENAMES:
        move(data, key, doc, target)
    if code == "800" and isinstance(data.get("param3"), str):
        details = _details(data["param3"].split("\n"), _DETAIL_CLASSIC)
        if details:
            put(doc, "powershell.command.invocation_details", details)
    _tail(doc, winlog, data, _CLASSIC_REMOVED)


def ingest_operational(doc: Doc) -> None:
    """The "Microsoft-Windows-PowerShell/Operational" log (4103-4106 and others), in place."""
    winlog = sub(doc, "winlog")
    data = winlog.get("event_data")
    if isinstance(data, dict):
        if str(winlog.get("event_id")) == "4103" and isinstance(data.get("ContextInfo"), str):
            data.update(_kv(data["ContextInfo"], _CONTEXT_SPLIT, _CONTEXT_VALUE, " \n\t"))
        winlog["event_data"] = {_BLANK.sub("", key): value for key, value in data.items()}
    data, code = _common_head(doc, winlog, "4105", "4106")
    move(data, "HostID", doc, "process.entity_id")
    move(data, "HostApplication", doc, "process.command_line")
    move(data, "HostName", doc, "process.title")
    process = winlog.get("process")
    if isinstance(process, dict) and process.get("pid") not in (None, ""):
        put(doc, "process.pid", process["pid"])
    user = winlog.get("user")
    if isinstance(user, dict):
        for key, field in (("identifier", "id"), ("domain", "domain"), ("name", "name")):
            if user.get(key) not in (None, ""):
                put(doc, f"user.{field}", user[key])
    ecs_user = doc.get("user")
    if isinstance(ecs_user, dict):
        if ecs_user.get("name") is not None:
            add_related(doc, "user", ecs_user["name"])
        if ecs_user.get("domain") is not None:
            add_related(doc, "hosts", ecs_user["domain"])
    connected = data.get("ConnectedUser")
    if isinstance(connected, str):
        source: Doc = {}
        split_user(source, connected)
        if source.get("user"):
            sub(doc, "source")["user"] = source["user"]
            if source["user"].get("name") is not None:
                add_related(doc, "user", source["user"]["name"])
            ecs_user = sub(doc, "user")
            for field in ("domain", "name"):
                if field in ecs_user:
                    put(doc, f"destination.user.{field}", ecs_user.pop(field))
            for field in ("domain", "name"):
                if source["user"].get(field):
                    ecs_user[field] = source["user"][field]
    convert_long(data, "MessageNumber", doc, "powershell.sequence")
    convert_long(data, "MessageTotal", doc, "powershell.total")
    move(data, "ShellID", doc, "powershell.id")
    for key, target in _COMMAND_RENAMES:
        move(data, key, doc, target)
    move(data, "ScriptBlockId", doc, "powershell.file.script_block_id")
    move(data, "ScriptBlockText", doc, "powershell.file.script_block_text")
    text = doc.get("powershell", {}).get("file", {}).get("script_block_text") if isinstance(
        doc.get("powershell"), dict) else None
    if isinstance(text, str):
        doc["powershell"]["file"]["script_block_text"] = text.strip()
    if code == "4103" and isinstance(data.get("Payload"), str):
        details = _details(data["Payload"].split("\n"), _DETAIL_OPERATIONAL)
        if details:
            put(doc, "powershell.command.invocation_details", details)
    if present(data, "Path") is not None:
        data["ScriptName"] = data.pop("Path")
    _tail(doc, winlog, data, _OPERATIONAL_REMOVED)
