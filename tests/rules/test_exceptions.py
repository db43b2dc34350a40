"""Exceptions as Elastic applies them to EQL rules: a per-event filter before matching."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from vigil.eql import search
from vigil.rules import (
    ExceptionEntry,
    ExceptionFileError,
    ExceptionFilter,
    ExceptionItem,
    ExceptionSet,
    bundled_rules,
    load_exceptions,
    parse_exceptions_toml,
    parse_kibana_exceptions,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SEED_ID = "d33ea3bf-9a11-463e-bd46-f648f2a0f4b1"


def entry(field: str, kind: str, value: Any = None, operator: str = "included",
          entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"field": field, "type": kind, "operator": operator}
    if value is not None:
        out["value"] = value
    if entries is not None:
        out["entries"] = entries
        del out["operator"]
    return out


def compile_entries(*entries: dict[str, Any], os_types: tuple[str, ...] = (),
                    expire_time: datetime | None = None) -> ExceptionFilter:
    item = ExceptionItem(name="t", entries=tuple(ExceptionEntry.from_dict(e) for e in entries),
                         os_types=os_types, expire_time=expire_time)
    return ExceptionFilter.compile([item], NOW)


EVENT: dict[str, Any] = {
    "host": {"os": {"type": "windows", "name": "Windows Server 2019"}, "name": "DC01"},
    "source": {"ip": "10.0.0.5", "port": 50432},
    "user": {"name": "Admin", "roles": ["a", "b"]},
    "winlog": {"event_data": {"ServiceFileName": "C:\\Windows\\evil.exe"}, "event_id": "4697"},
    "event.code": 4697,
    "flag": True,
    "process": {"Ext": {"code_signature": [
        {"subject_name": "Microsoft", "trusted": True},
        {"subject_name": "Evil Corp", "trusted": False}]}},
}


@pytest.mark.parametrize(("entries", "excluded"), [
    ([entry("source.ip", "match", "10.0.0.5")], True),
    ([entry("source.ip", "match", "10.0.0.6")], False),
    ([entry("source.ip", "match", "10.0.0.0/8")], True),  # ip field: CIDR, as ES term query
    ([entry("user.name", "match", "admin")], False),  # keyword: case-sensitive
    ([entry("user.name", "match", "Admin")], True),
    ([entry("user.roles", "match", "b")], True),  # any value of a multi-valued field
    ([entry("event.code", "match", "4697")], True),  # numbers compared as numbers
    ([entry("winlog.event_id", "match", "4697")], True),
    ([entry("flag", "match", "true")], True),
    ([entry("missing.field", "match", "x")], False),
    ([entry("source.ip", "match", "10.0.0.5", "excluded")], False),
    ([entry("missing.field", "match", "x", "excluded")], True),  # must_not: missing satisfies
    ([entry("source.ip", "match_any", ["10.0.0.6", "10.0.0.5"])], True),
    ([entry("source.ip", "match_any", ["10.0.0.6", "10.0.0.7"])], False),
    ([entry("source.ip", "match_any", ["10.0.0.6", "10.0.0.7"], "excluded")], True),
    ([entry("winlog.event_data.ServiceFileName", "wildcard", "C:\\\\Windows\\\\*.exe")], True),
    # Lucene wildcard: a single backslash escapes the next character, so this cannot match
    ([entry("winlog.event_data.ServiceFileName", "wildcard", "C:\\Windows\\*.exe")], False),
    ([entry("winlog.event_data.ServiceFileName", "wildcard", "c:\\\\windows\\\\*.exe")], False),
    ([entry("winlog.event_data.ServiceFileName", "wildcard", "?:\\\\*\\\\evil.ex?")], True),
    ([entry("winlog.event_data.ServiceFileName", "wildcard", "*evil*", "excluded")], False),
    ([entry("source.ip", "exists")], True),
    ([entry("source.nat.ip", "exists")], False),
    ([entry("source.nat.ip", "exists", operator="excluded")], True),
    # AND inside an item
    ([entry("source.ip", "match", "10.0.0.5"), entry("user.name", "match", "Admin")], True),
    ([entry("source.ip", "match", "10.0.0.5"), entry("user.name", "match", "Guest")], False),
    # nested: one object of the array must satisfy every inner entry
    ([entry("process.Ext.code_signature", "nested", entries=[
        entry("subject_name", "match", "Evil Corp"), entry("trusted", "match", "false")])], True),
    ([entry("process.Ext.code_signature", "nested", entries=[
        entry("subject_name", "match", "Evil Corp"), entry("trusted", "match", "true")])], False),
    ([entry("process.Ext.code_signature", "nested", entries=[
        entry("subject_name", "match_any", ["Microsoft", "Other"]),
        entry("trusted", "match", "false", "excluded")])], True),
    ([entry("process.Ext.code_signature", "nested", entries=[
        entry("subject_name", "exists")])], True),
    ([entry("no.such.path", "nested", entries=[entry("x", "exists", operator="excluded")])],
     False),
])
def test_entry_types_and_operators(entries: list[dict[str, Any]], excluded: bool) -> None:
    assert compile_entries(*entries).excludes(EVENT) is excluded


def test_items_are_ored() -> None:
    items = [ExceptionItem("a", (ExceptionEntry("source.ip", "match", values=("1.1.1.1",)),)),
             ExceptionItem("b", (ExceptionEntry("user.name", "match", values=("Admin",)),))]
    assert ExceptionFilter.compile(items, NOW).excludes(EVENT)
    assert not ExceptionFilter.compile(items[:1], NOW).excludes(EVENT)
    assert not ExceptionFilter.compile([], NOW).excludes(EVENT)


def test_os_types_expand_on_host_os_type() -> None:
    ip = entry("source.ip", "match", "10.0.0.5")
    assert compile_entries(ip, os_types=("windows",)).excludes(EVENT)
    assert compile_entries(ip, os_types=("linux", "windows")).excludes(EVENT)
    assert not compile_entries(ip, os_types=("linux",)).excludes(EVENT)
    no_os = {k: v for k, v in EVENT.items() if k != "host"}
    assert not compile_entries(ip, os_types=("windows",)).excludes(no_os)
    # Endpoint-style host.os.name.caseless also counts, as Kibana ORs both fields
    caseless = {**no_os, "host.os.name.caseless": "windows"}
    assert compile_entries(ip, os_types=("windows",)).excludes(caseless)


def test_expire_time() -> None:
    ip = entry("source.ip", "match", "10.0.0.5")
    expired = compile_entries(ip, expire_time=datetime(2025, 5, 31, tzinfo=UTC))
    assert not expired.excludes(EVENT) and len(expired.expired) == 1
    live = compile_entries(ip, expire_time=datetime(2025, 6, 2, tzinfo=UTC))
    assert live.excludes(EVENT) and live.expired == ()


def _kibana_export(items: list[dict[str, Any]]) -> str:
    exception_list = {"_version": "WzEsMV0=", "id": "l1", "list_id": "admin-hosts",
                      "name": "Admin hosts", "type": "detection", "namespace_type": "single",
                      "os_types": [], "tags": [], "immutable": False, "version": 1}
    summary = {"exported_exception_list_count": 1,
               "exported_exception_list_item_count": len(items),
               "missing_exception_list_item_count": 0, "missing_exception_list_items": [],
               "missing_exception_lists": [], "missing_exception_lists_count": 0}
    return "\n".join(orjson.dumps(x).decode() for x in [exception_list, *items, summary]) + "\n"


def _kibana_item(name: str, entries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"_version": "WzIsMV0=", "comments": [], "description": "", "entries": entries,
            "id": f"id-{name}", "item_id": f"item-{name}", "list_id": "admin-hosts",
            "name": name, "namespace_type": "single", "os_types": [], "tags": [],
            "type": "simple", **extra}


def test_kibana_exception_export() -> None:
    text = _kibana_export([
        _kibana_item("jump host", [entry("source.ip", "match_any", ["10.0.0.5", "10.0.0.6"])],
                     os_types=["windows"]),
        _kibana_item("old", [entry("user.name", "match", "Admin")],
                     expire_time="2025-01-01T00:00:00.000Z"),
        _kibana_item("listed", [{"field": "source.ip", "operator": "included", "type": "list",
                                 "list": {"id": "ips.txt", "type": "ip"}}]),
    ])
    exceptions = parse_kibana_exceptions(text, "exceptions.ndjson")
    assert [item.name for item in exceptions.items] == ["jump host", "old", "listed"]
    assert [lst.list_id for lst in exceptions.lists] == ["admin-hosts"]
    assert exceptions.items[0].origin == "exceptions.ndjson:2"
    assert any("uses a value list" in w for w in exceptions.warnings)
    (seed,) = bundled_rules()
    compiled = exceptions.filter_for(seed, NOW)
    assert [i.name for i in compiled.items] == ["jump host"]
    assert [i.name for i in compiled.expired] == ["old"]
    assert [i.name for i in compiled.not_applied] == ["listed"]  # reported, not ignored
    assert compiled.warning() == ("The following exceptions won't be applied to rule "
                                  "execution: listed")
    assert compiled.excludes(EVENT)


def test_kibana_export_errors() -> None:
    bad = _kibana_export([_kibana_item("x", [entry("source.ip", "regex", "1")])])
    with pytest.raises(ExceptionFileError) as info:
        parse_kibana_exceptions(bad, "e.ndjson")
    assert str(info.value).startswith("e.ndjson:2: entry for source.ip: type 'regex'")
    with pytest.raises(ExceptionFileError, match=r"e.ndjson:1: not JSON"):
        parse_kibana_exceptions("{oops\n", "e.ndjson")
    no_operator = _kibana_export([_kibana_item("x", [{"field": "a", "type": "exists"}])])
    with pytest.raises(ExceptionFileError, match="operator None"):
        parse_kibana_exceptions(no_operator, "e.ndjson")


def test_kibana_lists_apply_to_rules_that_reference_them() -> None:
    from dataclasses import replace

    (seed,) = bundled_rules()
    text = _kibana_export([_kibana_item("jump host", [entry("source.ip", "match", "10.0.0.5")])])
    exceptions = parse_kibana_exceptions(text)
    other = replace(seed, rule_id="other", exceptions_list=(
        {"id": "l1", "list_id": "admin-hosts", "type": "detection", "namespace_type": "single"},))
    # referenced by another rule of the run: only that rule gets it
    assert exceptions.items_for(other, rules=[seed, other])
    assert not exceptions.items_for(seed, rules=[seed, other])
    # referenced by no rule of the run: the user gave it for this run, it applies to all
    assert exceptions.items_for(seed, rules=[seed])


TOML_FORM = """
[[exception]]
name = "Admin jump host"
rule_id = "d33ea3bf-9a11-463e-bd46-f648f2a0f4b1"
[[exception.entries]]
field = "source.ip"
type = "match_any"
value = ["10.0.0.5", "10.0.0.6"]

[[exception]]
name = "Deployment tool"
os_types = ["windows"]
expire_time = 2030-01-01T00:00:00Z
[[exception.entries]]
field = "winlog.event_data.ServiceFileName"
type = "wildcard"
value = 'C:\\\\Windows\\\\AdminTool\\\\*.exe'
[[exception.entries]]
field = "user.name"
value = "svc_deploy"

[[exception]]
name = "Other rule only"
rule_ids = ["11111111-0000-4000-8000-000000000001"]
[[exception.entries]]
field = "host.name"
value = "DC01"
"""


def test_toml_form(tmp_path: Path) -> None:
    path = tmp_path / "exceptions.toml"
    path.write_text(TOML_FORM)
    exceptions = load_exceptions([path])
    assert [i.name for i in exceptions.items] == ["Admin jump host", "Deployment tool",
                                                  "Other rule only"]
    tool = exceptions.items[1]
    assert tool.entries[0].values == ("C:\\\\Windows\\\\AdminTool\\\\*.exe",)
    assert tool.entries[1].type == "match" and tool.entries[1].operator == "included"
    assert tool.expire_time == datetime(2030, 1, 1, tzinfo=UTC)
    assert tool.origin == f"{path}:10"
    (seed,) = bundled_rules()
    assert [i.name for i in exceptions.items_for(seed)] == ["Admin jump host",
                                                            "Deployment tool"]
    compiled = exceptions.filter_for(seed, NOW)
    deploy = {"host": {"os": {"type": "windows"}}, "user": {"name": "svc_deploy"},
              "winlog": {"event_data": {"ServiceFileName": "C:\\Windows\\AdminTool\\x.exe"}}}
    assert compiled.excludes(deploy)
    assert not compiled.excludes({**deploy, "user": {"name": "mallory"}})
    assert compiled.excludes({"source": {"ip": "10.0.0.6"}})


def test_toml_form_errors_and_warnings() -> None:
    with pytest.raises(ExceptionFileError, match=r"x.toml:3: exception #1: needs at least one"):
        parse_exceptions_toml('\n\n[[exception]]\nname = "empty"\n', "x.toml")
    with pytest.raises(ExceptionFileError, match="no \\[\\[exception\\]\\] tables"):
        parse_exceptions_toml('name = "x"\n', "x.toml")
    single_backslash = parse_exceptions_toml(
        '[[exception]]\n[[exception.entries]]\nfield = "file.path"\ntype = "wildcard"\n'
        "value = 'C:\\Windows\\*.exe'\n", "x.toml")
    assert any("backslash escapes the next character" in w for w in single_backslash.warnings)


# ---------------------------------------------------------------- end to end with the seed


def _seed_events() -> list[dict[str, Any]]:
    logon = {"@timestamp": "2025-06-01T11:58:00.000Z", "_index": "logs-system.security-default",
             "event": {"category": ["authentication"], "action": "logged-in",
                       "outcome": "success", "code": "4624"},
             "host": {"os": {"type": "windows"}, "name": "srv01"},
             "source": {"ip": "10.0.0.5"}, "user": {"name": "admin"},
             "winlog": {"computer_name": "srv01.corp", "logon": {"id": "0x8badf00d",
                                                                 "type": "Network"},
                        "event_data": {"TargetLogonId": "0x8badf00d"}}}
    install = {"@timestamp": "2025-06-01T11:58:20.000Z",
               "_index": "logs-system.security-default",
               "event": {"category": ["iam"], "action": "service-installed", "code": "4697"},
               "host": {"os": {"type": "windows"}, "name": "srv01"}, "user": {"name": "admin"},
               "winlog": {"computer_name": "srv01.corp", "logon": {"id": "0x8badf00d"},
                          "event_data": {"SubjectLogonId": "0x8badf00d",
                                         "ServiceName": "evilsvc",
                                         "ServiceFileName": "C:\\Users\\Public\\evil.exe"}}}
    return [logon, install]


def _run(exceptions: ExceptionSet) -> int:
    (seed,) = bundled_rules()
    events = list(exceptions.filter_for(seed, NOW).apply(_seed_events()))
    return len(search(seed.eql, events))


def _toml(entries: str) -> ExceptionSet:
    return parse_exceptions_toml(f"[[exception]]\nname = 'x'\n{entries}", "e.toml")


def test_seed_sequence_and_exceptions_end_to_end() -> None:
    assert _run(ExceptionSet()) == 1
    # An exception matching the logon event removes it: the sequence cannot complete.
    logon_ip = _toml('[[exception.entries]]\nfield = "source.ip"\nvalue = "10.0.0.5"\n')
    assert _run(logon_ip) == 0
    # Matching the service-install event kills it as well.
    service = _toml('[[exception.entries]]\nfield = "winlog.event_data.ServiceFileName"\n'
                    "type = 'wildcard'\nvalue = 'C:\\\\Users\\\\Public\\\\*'\n")
    assert _run(service) == 0
    # Entries spanning fields of the two different events match neither event (§4.2).
    spanning = _toml('[[exception.entries]]\nfield = "source.ip"\nvalue = "10.0.0.5"\n'
                     '[[exception.entries]]\nfield = "winlog.event_data.ServiceFileName"\n'
                     "type = 'wildcard'\nvalue = 'C:\\\\Users\\\\Public\\\\*'\n")
    assert _run(spanning) == 1
    # Scoped to another rule: nothing happens to the seed.
    other = parse_exceptions_toml(
        "[[exception]]\nrule_id = 'someone-else'\n[[exception.entries]]\n"
        'field = "source.ip"\nvalue = "10.0.0.5"\n', "e.toml")
    assert _run(other) == 1
    assert _run(logon_ip.merge(other)) == 0
    assert SEED_ID in bundled_rules()[0].rule_id


def test_ip_values_ipv6_and_cache() -> None:
    flt = compile_entries(entry("source.ip", "match_any", ["2001:db8::1", "192.168.0.0/16"]))
    assert flt.excludes({"source": {"ip": "2001:0db8:0000:0000:0000:0000:0000:0001"}})
    assert flt.excludes({"source": {"ip": "192.168.4.2"}})
    assert flt.excludes({"source": {"ip": "192.168.4.2"}})  # cached answer
    assert not flt.excludes({"source": {"ip": "10.0.0.1"}})
    assert not flt.excludes({"source": {"ip": "not an ip"}})
