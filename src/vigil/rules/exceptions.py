"""Rule exceptions, applied as Elastic applies them to EQL rules (ELASTIC_ENGINE.md §4).

An exception removes *individual events* before the query runs: items are OR-ed, the entries
of an item AND-ed, and an event that matches any item is never seen by the rule. So for a
sequence, an exception matching one of its events kills the sequence, and an exception whose
entries name fields of two different events matches neither and suppresses nothing.

Sources: Kibana's exception-list export (NDJSON of lists, items and an export summary) and a
small hand-written TOML form::

    [[exception]]
    name = "Admin jump host"
    rule_id = "d33ea3bf-9a11-463e-bd46-f648f2a0f4b1"   # optional: all rules when absent
    [[exception.entries]]
    field = "source.ip"
    type = "match_any"
    value = ["10.0.0.5", "10.0.0.6"]

Matching follows the Query DSL Kibana builds: ``match``/``match_any`` are ``match_phrase`` on
keyword fields (exact, case-sensitive; numbers, booleans and IPs compared as Elasticsearch
compares them, CIDR values match IP fields), ``wildcard`` is Lucene's case-sensitive wildcard
(``*``, ``?``, backslash escapes the next character), ``exists`` is "has a value",
``nested`` needs one object of the array to satisfy all its entries, and ``excluded`` negates
an entry (a missing field satisfies it). Value-list entries (``list``) need Kibana's list
indices; items using them are not applied and are reported, as Elastic reports them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import re2
import tomli as tomllib  # tomllib is tomli; its compiled wheels read rule files 3x faster

from vigil.eql.patterns import compile_wildcards
from vigil.eql.schema import raw_getter
from vigil.errors import RuleError
from vigil.rules.model import Rule

EventPredicate = Callable[[Mapping[str, Any]], bool]
ValuePredicate = Callable[[Any], bool]

ENTRY_TYPES = ("match", "match_any", "wildcard", "exists", "nested", "list")
NESTED_ENTRY_TYPES = ("match", "match_any", "exists")
OPERATORS = ("included", "excluded")
OS_TYPES = ("windows", "linux", "macos")
ENDPOINT_LIST_ID = "endpoint_list"


class ExceptionFileError(RuleError):
    """An exception file that cannot be used (it would silently let alerts through)."""


# ---------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class ExceptionEntry:
    field: str
    type: str
    operator: str = "included"
    values: tuple[str, ...] = ()  # one for match and wildcard, several for match_any
    entries: tuple[ExceptionEntry, ...] = ()  # nested
    list_id: str | None = None  # list entries
    list_type: str | None = None

    @classmethod
    def from_dict(cls, data: Any, *, nested: bool = False, friendly: bool = False
                  ) -> ExceptionEntry:
        """One entry; ``friendly`` (the TOML form) defaults operator and infers type."""
        if not isinstance(data, Mapping):
            raise ValueError("an entry must be a table/object")
        name = data.get("field")
        if not isinstance(name, str) or not name:
            raise ValueError("an entry needs a 'field'")
        value = data.get("value")
        kind = data.get("type")
        if kind is None and friendly:
            kind = "match_any" if isinstance(value, list) else (
                "match" if value is not None else None)
        allowed = NESTED_ENTRY_TYPES if nested else ENTRY_TYPES
        if kind not in allowed:
            raise ValueError(f"entry for {name}: type {kind!r} is not one of "
                             f"{', '.join(allowed)}")
        operator = data.get("operator", "included" if friendly or kind == "nested" else None)
        if operator not in OPERATORS:
            raise ValueError(f"entry for {name}: operator {operator!r} is not included or "
                             "excluded")
        if kind in ("match", "wildcard"):
            return cls(name, kind, operator, (_scalar_text(value, name, friendly),))
        if kind == "match_any":
            if not isinstance(value, list) or not value:
                raise ValueError(f"entry for {name}: match_any needs a non-empty list value")
            return cls(name, kind, operator,
                       tuple(_scalar_text(v, name, friendly) for v in value))
        if kind == "exists":
            return cls(name, kind, operator)
        if kind == "list":
            ref = data.get("list")
            if not isinstance(ref, Mapping) or not isinstance(ref.get("id"), str):
                raise ValueError(f"entry for {name}: list entries need list.id and list.type")
            return cls(name, kind, operator, list_id=ref["id"], list_type=str(ref.get("type")))
        inner = data.get("entries")
        if not isinstance(inner, list) or not inner:
            raise ValueError(f"nested entry for {name} needs a non-empty 'entries' list")
        return cls(name, "nested", "included",
                   entries=tuple(cls.from_dict(e, nested=True, friendly=friendly)
                                 for e in inner))

    def uses_value_list(self) -> bool:
        return self.type == "list" or any(e.uses_value_list() for e in self.entries)


def _scalar_text(value: Any, name: str, friendly: bool) -> str:
    if isinstance(value, str) and value:
        return value
    if friendly and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"entry for {name}: value must be a non-empty string")


@dataclass(frozen=True, slots=True)
class ExceptionItem:
    name: str
    entries: tuple[ExceptionEntry, ...]
    item_id: str = ""
    list_id: str = ""
    description: str = ""
    os_types: tuple[str, ...] = ()
    expire_time: datetime | None = None
    rule_ids: tuple[str, ...] = ()  # hand-written form: the rules it is for; empty = all
    namespace_type: str = "single"
    origin: str = ""  # file:line, for messages

    def is_expired(self, now: datetime) -> bool:
        return self.expire_time is not None and self.expire_time < _aware(now)

    def uses_value_list(self) -> bool:
        return any(e.uses_value_list() for e in self.entries)


@dataclass(frozen=True, slots=True)
class ExceptionList:
    list_id: str
    name: str = ""
    type: str = "detection"
    namespace_type: str = "single"
    description: str = ""


@dataclass(frozen=True, slots=True)
class ExceptionSet:
    """Exceptions read from one or more files, not yet tied to a rule or a run time."""

    items: tuple[ExceptionItem, ...] = ()
    lists: tuple[ExceptionList, ...] = ()
    warnings: tuple[str, ...] = ()

    def merge(self, other: ExceptionSet) -> ExceptionSet:
        return ExceptionSet(self.items + other.items, self.lists + other.lists,
                            self.warnings + other.warnings)

    def items_for(self, rule: Rule, *, rules: Iterable[Rule] = ()) -> tuple[ExceptionItem, ...]:
        """The items that apply to ``rule`` among the ``rules`` of this run.

        Hand-written items name their rules (or none: all rules). A Kibana list applies to
        the rules whose ``exceptions_list`` references it; a list no rule of the run
        references applies to every rule, since the user gave the file for this run.
        """
        referenced = {ref.get("list_id") for r in (rule, *rules) for ref in r.exceptions_list}
        own = {ref.get("list_id") for ref in rule.exceptions_list}
        chosen: list[ExceptionItem] = []
        for item in self.items:
            if item.rule_ids:
                if rule.rule_id in item.rule_ids:
                    chosen.append(item)
            elif item.list_id and item.list_id in referenced:
                if item.list_id in own:
                    chosen.append(item)
            else:
                chosen.append(item)
        return tuple(chosen)

    def filter_for(self, rule: Rule, now: datetime, *, rules: Iterable[Rule] = ()
                   ) -> ExceptionFilter:
        return ExceptionFilter.compile(self.items_for(rule, rules=rules), now)


# ---------------------------------------------------------------- the compiled filter


@dataclass(frozen=True, slots=True)
class ExceptionFilter:
    """The per-event filter for one rule and one run time: ``excludes(event)``."""

    items: tuple[ExceptionItem, ...] = ()  # applied
    expired: tuple[ExceptionItem, ...] = ()
    not_applied: tuple[ExceptionItem, ...] = ()  # value-list items (unsupported)
    predicates: tuple[EventPredicate, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def compile(cls, items: Iterable[ExceptionItem], now: datetime) -> ExceptionFilter:
        applied: list[ExceptionItem] = []
        expired: list[ExceptionItem] = []
        not_applied: list[ExceptionItem] = []
        predicates: list[EventPredicate] = []
        for item in items:
            if item.is_expired(now):
                expired.append(item)
            elif item.uses_value_list():
                not_applied.append(item)
            else:
                applied.append(item)
                predicates.append(_compile_item(item))
        return cls(tuple(applied), tuple(expired), tuple(not_applied), tuple(predicates))

    def __bool__(self) -> bool:
        return bool(self.predicates)

    def excludes(self, event: Mapping[str, Any]) -> bool:
        """True when an exception item matches the event (the rule must not see it)."""
        # Plain loops, not any(): no generator per event on the hot path.
        for predicate in self.predicates:  # noqa: SIM110
            if predicate(event):
                return True
        return False

    def apply(self, events: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        """The events the rule sees."""
        if not self.predicates:
            yield from events
            return
        excludes = self.excludes
        for event in events:
            if not excludes(event):
                yield event

    def warning(self) -> str | None:
        """Elastic's warning text for items that are not applied, or None."""
        if not self.not_applied:
            return None
        names = ", ".join(item.name or item.item_id for item in self.not_applied)
        return f"The following exceptions won't be applied to rule execution: {names}"


def _compile_item(item: ExceptionItem) -> EventPredicate:
    entries = _and([_compile_entry(e) for e in item.entries])
    if not item.os_types:
        return entries
    # Kibana ORs each OS type over host.os.type and host.os.name.caseless, ANDed with the
    # entries; checking the OS first makes non-matching hosts cheap.
    checks = [_compile_entry(ExceptionEntry(f, "match", "included", (os_type,)))
              for os_type in item.os_types
              for f in ("host.os.type", "host.os.name.caseless")]
    on_os = _or(checks)

    def with_os(event: Mapping[str, Any]) -> bool:
        return on_os(event) and entries(event)

    return with_os


def _and(predicates: list[EventPredicate]) -> EventPredicate:
    if len(predicates) == 1:
        return predicates[0]
    parts = tuple(predicates)

    def all_of(event: Mapping[str, Any]) -> bool:
        for predicate in parts:  # noqa: SIM110 (hot path: no generator)
            if not predicate(event):
                return False
        return True

    return all_of


def _or(predicates: list[EventPredicate]) -> EventPredicate:
    parts = tuple(predicates)

    def any_of(event: Mapping[str, Any]) -> bool:
        for predicate in parts:  # noqa: SIM110 (hot path: no generator)
            if predicate(event):
                return True
        return False

    return any_of


def _compile_entry(entry: ExceptionEntry) -> EventPredicate:
    if entry.type == "nested":
        positive = _compile_nested(entry)
    elif entry.type == "exists":
        get = _getter(entry.field)

        def positive(event: Mapping[str, Any]) -> bool:
            return get(event) is not None
    else:
        get = _getter(entry.field)
        caseless = entry.field.endswith(".caseless")
        if entry.type == "wildcard":
            test = _lucene_wildcard(entry.values[0], case_insensitive=caseless)
            value_ok: ValuePredicate = lambda v: isinstance(v, str) and test(v)  # noqa: E731
        else:
            value_ok = _phrase_matcher(entry.values, caseless=caseless)
        positive = _any_value(get, value_ok)
    if entry.operator == "excluded":

        def negated(event: Mapping[str, Any]) -> bool:
            return not positive(event)

        return negated
    return positive


def _any_value(get: Callable[[Mapping[str, Any]], Any], ok: ValuePredicate) -> EventPredicate:
    def check(event: Mapping[str, Any]) -> bool:
        value = get(event)
        if value is None:
            return False
        if isinstance(value, list):
            for one in value:  # noqa: SIM110 (hot path: no generator)
                if ok(one):
                    return True
            return False
        return ok(value)

    return check


def _getter(name: str) -> Callable[[Mapping[str, Any]], Any]:
    get = raw_getter(name)
    if not name.endswith(".caseless"):
        return get
    # ``.caseless`` is a lowercase-normalised multi-field in Elastic's Endpoint mappings;
    # events read from files rarely carry it, so fall back to the field it normalises.
    base = raw_getter(name[: -len(".caseless")])

    def get_caseless(event: Mapping[str, Any]) -> Any:
        value = get(event)
        return base(event) if value is None else value

    return get_caseless


def _phrase_matcher(values: tuple[str, ...], *, caseless: bool) -> ValuePredicate:
    """``match_phrase`` against a keyword, numeric, boolean or ip field: any of ``values``."""
    exact = frozenset(v.lower() for v in values) if caseless else frozenset(values)
    numbers: set[float] = set()
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for text in values:
        with contextlib.suppress(ValueError):
            numbers.add(float(text))
        with contextlib.suppress(ValueError):
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
    booleans = {v for v in ("true", "false") if v in exact}
    # Parsing addresses is the slow part: only needed for CIDR values, or for IPv6 (whose
    # text has many spellings); dotted IPv4 hosts already matched as exact strings.
    has_cidr = any(net.prefixlen < net.max_prefixlen for net in networks)
    has_v6 = any(net.version == 6 for net in networks)
    seen: dict[str, bool] = {}

    def in_networks(text: str) -> bool:
        hit = seen.get(text)
        if hit is None:
            try:
                address = ipaddress.ip_address(text.strip())
                hit = any(address.version == net.version and address in net
                          for net in networks)
            except ValueError:
                hit = False
            if len(seen) > 4096:  # bounded: log values are unbounded
                seen.clear()
            seen[text] = hit
        return hit

    def ok(value: Any) -> bool:
        if isinstance(value, str):
            if (value.lower() if caseless else value) in exact:
                return True
            if (has_cidr or (has_v6 and ":" in value)) and value:
                return in_networks(value)
            return False
        if isinstance(value, bool):
            return ("true" if value else "false") in booleans
        if isinstance(value, (int, float)):
            return float(value) in numbers
        return False

    return ok


def _compile_nested(entry: ExceptionEntry) -> EventPredicate:
    parts = tuple(entry.field.split("."))
    inner = _and([_compile_entry(e) for e in entry.entries])

    def check(event: Mapping[str, Any]) -> bool:
        objects: list[Mapping[str, Any]] = []
        _objects_at(event, parts, 0, objects)
        return any(inner(obj) for obj in objects)

    return check


def _objects_at(obj: Any, parts: tuple[str, ...], start: int,
                out: list[Mapping[str, Any]]) -> None:
    """Every object at ``parts[start:]`` below ``obj`` (dotted keys and arrays, like
    ``raw_getter``, but collecting the objects a nested query iterates)."""
    if isinstance(obj, list):
        for one in obj:
            _objects_at(one, parts, start, out)
        return
    if not isinstance(obj, Mapping):
        return
    if start == len(parts):
        out.append(obj)
        return
    for end in range(len(parts), start, -1):
        key = ".".join(parts[start:end])
        if key in obj:
            _objects_at(obj[key], parts, end, out)


_RE2_META = frozenset("\\.+*?()|[]{}^$")


def _lucene_wildcard(pattern: str, *, case_insensitive: bool) -> Callable[[str], bool]:
    """Lucene's wildcard syntax: ``*``, ``?``, and ``\\`` escaping the next character."""
    pieces: list[tuple[str, bool]] = []  # (char, is_wildcard)
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            pieces.append((pattern[i + 1], False))
            i += 2
            continue
        pieces.append((char, char in "*?"))
        i += 1
    if not any(c in "*?" and not wild for c, wild in pieces):
        # No literal star or question mark: the shared linear-time matcher does it all.
        plain = "".join(c for c, _ in pieces)
        return compile_wildcards([plain], case_insensitive=case_insensitive)
    body = "".join(
        (".*" if c == "*" else ".") if wild else ("\\" + c if c in _RE2_META else c)
        for c, wild in pieces)
    options = re2.Options()
    options.dot_nl = True
    options.case_sensitive = not case_insensitive
    regex = re2.compile(body, options)

    def matches(value: str) -> bool:
        return regex.fullmatch(value) is not None

    return matches


# ---------------------------------------------------------------- reading files


def load_exceptions(paths: Iterable[str | Path]) -> ExceptionSet:
    """Read exception files (Kibana NDJSON export, JSON, or the TOML form); raises
    ``ExceptionFileError`` on the first problem, since a half-read exception file would
    change which alerts are raised without saying so."""
    result = ExceptionSet()
    for path in paths:
        result = result.merge(load_exception_file(path))
    return result


def load_exception_file(path: str | Path) -> ExceptionSet:
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExceptionFileError(f"cannot read exceptions: {exc}", where) from None
    if str(path).lower().endswith(".toml"):
        return parse_exceptions_toml(text, where)
    return parse_kibana_exceptions(text, where)


def parse_kibana_exceptions(text: str, path: str = "<exceptions>") -> ExceptionSet:
    """Kibana's exception-list export: NDJSON of list objects, items and a summary line.

    A JSON array (or one object) of the same objects is accepted too, and rule objects
    (a rule export carries its exceptions) are passed over.
    """
    records: list[tuple[Any, int]] = []
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            records = [(obj, 1) for obj in orjson.loads(stripped)]
        except orjson.JSONDecodeError as exc:
            raise ExceptionFileError(f"not JSON: {exc}", path) from None
    else:
        for number, record in enumerate(text.split("\n"), start=1):
            if record.strip():
                try:
                    records.append((orjson.loads(record), number))
                except orjson.JSONDecodeError as exc:
                    raise ExceptionFileError(f"not JSON: {exc}", path, number) from None
    lists: list[ExceptionList] = []
    items: list[ExceptionItem] = []
    warnings: list[str] = []
    for obj, line in records:
        origin = f"{path}:{line}"
        if not isinstance(obj, dict):
            raise ExceptionFileError("expected an exception list or item object", path, line)
        if any(k.startswith(("exported_", "missing_")) for k in obj) or "rule_id" in obj:
            continue  # export summary, or a rule exported alongside its exceptions
        if "entries" in obj:
            try:
                item = _kibana_item(obj, origin)
            except ValueError as exc:
                raise ExceptionFileError(str(exc), path, line) from None
            if item.list_id == ENDPOINT_LIST_ID:
                # Kibana leaves Endpoint exceptions out of rule execution; say so.
                warnings.append(f"{origin}: Endpoint exception {item.name!r} applies to "
                                "Elastic Defend alerts only; not applied to rules")
                continue
            items.append(item)
            warnings.extend(_wildcard_warnings(item))
        elif "list_id" in obj:
            lists.append(ExceptionList(
                list_id=str(obj["list_id"]), name=str(obj.get("name", "")),
                type=str(obj.get("type", "detection")),
                namespace_type=str(obj.get("namespace_type", "single")),
                description=str(obj.get("description", ""))))
        else:
            raise ExceptionFileError("neither an exception list nor an exception item",
                                     path, line)
    warnings.extend(_value_list_warnings(items))
    return ExceptionSet(tuple(items), tuple(lists), tuple(warnings))


def _kibana_item(obj: Mapping[str, Any], origin: str) -> ExceptionItem:
    entries = obj.get("entries")
    if not isinstance(entries, list) or not entries:
        raise ValueError("an exception item needs a non-empty 'entries' list")
    name = obj.get("name")
    return ExceptionItem(
        name=name if isinstance(name, str) else "",
        entries=tuple(ExceptionEntry.from_dict(e) for e in entries),
        item_id=str(obj.get("item_id", "")),
        list_id=str(obj.get("list_id", "")),
        description=str(obj.get("description", "")),
        os_types=_os_types(obj.get("os_types")),
        expire_time=_expire_time(obj.get("expire_time")),
        namespace_type=str(obj.get("namespace_type", "single")),
        origin=origin,
    )


def parse_exceptions_toml(text: str, path: str = "<exceptions>") -> ExceptionSet:
    """The hand-written form: ``[[exception]]`` tables with ``[[exception.entries]]``."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExceptionFileError(f"not valid TOML: {exc}", path) from None
    except RecursionError:
        raise ExceptionFileError("TOML nested too deeply to read", path) from None
    tables = document.get("exception")
    if not isinstance(tables, list) or not tables:
        raise ExceptionFileError("no [[exception]] tables", path, 1)
    header_lines = [n for n, line in enumerate(text.splitlines(), start=1)
                    if re.match(r"\s*\[\[\s*exception\s*\]\]", line)]
    items: list[ExceptionItem] = []
    for index, table in enumerate(tables):
        line = header_lines[index] if index < len(header_lines) else None
        origin = f"{path}:{line}" if line else path
        try:
            items.append(_toml_item(table, index, origin))
        except ValueError as exc:
            raise ExceptionFileError(f"exception #{index + 1}: {exc}", path, line) from None
    warnings = [w for item in items for w in _wildcard_warnings(item)]
    warnings.extend(_value_list_warnings(items))
    return ExceptionSet(tuple(items), (), tuple(warnings))


def _toml_item(table: Any, index: int, origin: str) -> ExceptionItem:
    if not isinstance(table, dict):
        raise ValueError("must be a table")
    entries = table.get("entries")
    if not isinstance(entries, list) or not entries:
        raise ValueError("needs at least one [[exception.entries]]")
    rule_ids: Any = table.get("rule_ids", ())
    if "rule_id" in table:
        rule_ids = [table["rule_id"]]
    if not isinstance(rule_ids, (list, tuple)) or not all(isinstance(r, str) for r in rule_ids):
        raise ValueError("rule_id must be a string (rule_ids a list of strings)")
    name = table.get("name", f"exception #{index + 1}")
    return ExceptionItem(
        name=str(name),
        entries=tuple(ExceptionEntry.from_dict(e, friendly=True) for e in entries),
        item_id=str(table.get("item_id", "")),
        description=str(table.get("description", table.get("comment", ""))),
        os_types=_os_types(table.get("os_types")),
        expire_time=_expire_time(table.get("expire_time")),
        rule_ids=tuple(rule_ids),
        origin=origin,
    )


def _os_types(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or any(v not in OS_TYPES for v in value):
        raise ValueError(f"os_types must be a list of {', '.join(OS_TYPES)}")
    return tuple(value)


def _expire_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, str):
        try:
            return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(f"expire_time {value!r} is not an ISO-8601 date and time")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _wildcard_warnings(item: ExceptionItem) -> list[str]:
    out: list[str] = []
    for entry in item.entries:
        if entry.type != "wildcard":
            continue
        value = entry.values[0]
        if re.search(r"\\[^\\*?]", value):
            out.append(
                f"{item.origin}: exception {item.name!r}: in {entry.field} wildcard "
                f"{value!r} a backslash escapes the next character (Elastic's wildcard "
                "syntax); to match a Windows path write each backslash twice")
    return out


def _value_list_warnings(items: Iterable[ExceptionItem]) -> list[str]:
    return [f"{item.origin}: exception {item.name!r} uses a value list, which vigil cannot "
            "read; it will not be applied" for item in items if item.uses_value_list()]
