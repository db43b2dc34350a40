"""Elastic's ``windows.applocker_*`` and ``windows.windows_defender`` pipelines.

Read from elastic/integrations ``packages/windows/data_stream/applocker_*/`` and
``windows_defender/elasticsearch/ingest_pipeline/default.yml`` (copies in
``../shared/conformance/elastic-pipelines``); vigil's own code. The five pipelines share their
head (time, level, ``event.category: process``, ``event.type: start``, the user) and differ in
what they take from UserData.
"""

from __future__ import annotations

import re2

from vigil.events.pipelines.common import (
    Doc,
    put,
    split_user,
    stringify_ids,
    sub,
    time_and_level,
    to_long,
)

ECS_VERSION = "8.0.0"
DEFENDER_ECS_VERSION = "8.11.0"

# UserData lengths converted to numbers (a value that does not convert is removed).
_LENGTHS = ("FileHashLength", "FilePathLength", "FqbnLength", "FullFilePathLength",
            "PolicyNameLength", "RuleNameLength", "RuleSddlLength", "TargetProcessId")
# The grok of a signed file's Fqbn (publisher\product\file\version), in the pipeline's order
# of patterns; RE2, so a hostile Fqbn cannot make the greedy groups backtrack.
_FQBN_HEAD = r"O=(.*),\s*"
_FQBN_TAIL = r"C=([^\\]*)\\([^\\]*)\\([^\\]*)\\(.*)"
_FQBN_PATTERNS = (
    (re2.compile(_FQBN_HEAD + r"L=(.*),\s*S=(.*),\s*" + _FQBN_TAIL),
     ("organization", "locality", "state_or_province")),
    (re2.compile(_FQBN_HEAD + r"L=(.*),\s*" + _FQBN_TAIL), ("organization", "locality")),
    (re2.compile(_FQBN_HEAD + r"S=(.*),\s*" + _FQBN_TAIL),
     ("organization", "state_or_province")),
)
_FQBN_FILE = ("product", "original_file_name", "file_version")


def _head(doc: Doc, ecs_version: str) -> tuple[Doc, Doc]:
    winlog = sub(doc, "winlog")
    doc["ecs"] = {"version": ecs_version}
    time_and_level(doc, winlog, keep=True)
    event = sub(doc, "event")
    event["kind"] = "event"
    event["code"] = str(winlog.get("event_id", ""))
    event["category"] = "process"
    event["type"] = "start"
    stringify_ids(winlog)
    user_data = winlog.get("user_data")
    return winlog, user_data if isinstance(user_data, dict) else {}


def _user(doc: Doc, winlog: Doc) -> None:
    user = winlog.get("user")
    if isinstance(user, dict) and user.get("identifier") not in (None, ""):
        put(doc, "user.id", user["identifier"])
    data = winlog.get("event_data")
    if isinstance(data, dict):
        split_user(doc, data.get("User"))
    ecs_user = doc.get("user")
    if isinstance(user, dict) and "name" in user and not (
            isinstance(ecs_user, dict) and ecs_user.get("name") is not None):
        put(doc, "user.name", user.pop("name"))


def _lengths(user_data: Doc, keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in user_data:
            number = to_long(user_data[key])
            if number is None:
                del user_data[key]
            else:
                user_data[key] = number


def _file_name(doc: Doc, user_data: Doc) -> None:
    path = user_data.get("FullFilePath")
    if isinstance(path, str) and path != "-":
        put(doc, "file.name", path[path.rfind("\\") + 1:])
    digest = user_data.get("FileHash")
    if digest not in (None, "", "-"):
        put(doc, "file.hash.sha256", digest)


def ingest_applocker(doc: Doc) -> None:
    """The four AppLocker logs (EXE and DLL, MSI and Script, Packaged app-*), in place."""
    winlog, user_data = _head(doc, ECS_VERSION)
    _user(doc, winlog)
    _lengths(user_data, _LENGTHS)
    fqbn = user_data.get("Fqbn")
    if isinstance(fqbn, str) and fqbn != "-":
        for pattern, names in _FQBN_PATTERNS:
            match = pattern.fullmatch(fqbn)
            if match is None:
                continue
            groups = match.groups()
            for name, value in zip(names, groups, strict=False):
                put(doc, f"file.x509.subject.{name}", value)
            put(doc, "file.x509.subject.country", groups[len(names)])
            for name, value in zip(_FQBN_FILE, groups[len(names) + 1:], strict=True):
                put(doc, f"file.pe.{name}", value)
            break
    _file_name(doc, user_data)
    error = doc.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        error["code"] = str(error["code"])


def ingest_defender(doc: Doc) -> None:
    """The "Microsoft-Windows-Windows Defender/Operational" log, in place."""
    winlog, user_data = _head(doc, DEFENDER_ECS_VERSION)
    data = winlog.get("event_data")
    if isinstance(data, dict):
        winlog["event_data"] = {key.replace(" ", "_"): value for key, value in data.items()}
    _user(doc, winlog)
    _lengths(user_data, ("TargetProcessId",))
    _file_name(doc, user_data)
