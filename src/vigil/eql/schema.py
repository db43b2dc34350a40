"""Field access and field types: how an event's values look to Elasticsearch.

Events are plain dicts, nested (``{"process": {"name": ...}}``), dotted
(``{"process.name": ...}``) or both. An Elasticsearch mapping, when given, types the fields as
Elasticsearch would index them (keyword, long, ip, date with its format, version, boolean,
``null_value``, aliases). Without a mapping a value keeps its JSON type, which is what
Elasticsearch's dynamic mapping does (strings become keywords, numbers longs or doubles), and
the timestamp field is always a date.

A field's value is ``None`` (missing or null), one scalar, or a list of two or more scalars
(a multi-valued field; nulls inside arrays are dropped, as indexing drops them).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

Value = Any  # None | str | int | float | bool | list[...]
Getter = Callable[[Mapping[str, Any]], Value]

STRING_TYPES = frozenset({"keyword", "wildcard", "constant_keyword", "text", "match_only_text"})
INTEGER_TYPES = frozenset({"long", "integer", "short", "byte", "unsigned_long"})
FLOAT_TYPES = frozenset({"double", "float", "half_float", "scaled_float"})
DATE_TYPES = frozenset({"date", "date_nanos"})


@dataclass(frozen=True, slots=True)
class FieldDef:
    type: str
    format: str | None = None
    null_value: Any = None
    path: str | None = None  # alias target


# ------------------------------------------------------------------ raw access


def _collect(obj: Any, parts: tuple[str, ...], start: int, out: list[Any]) -> None:
    """Append every value at ``parts[start:]`` below ``obj`` (dotted keys, nesting, arrays)."""
    if start == len(parts):
        if isinstance(obj, list):
            for item in obj:
                _flatten_into(item, out)
        elif obj is not None:
            out.append(obj)
        return
    if isinstance(obj, list):
        for item in obj:
            _collect(item, parts, start, out)
        return
    if not isinstance(obj, dict):
        return
    # Try the longest dotted key first: {"a.b": {"c": 1}} and {"a": {"b.c": 1}} both work.
    for end in range(len(parts), start, -1):
        key = parts[start] if end == start + 1 else ".".join(parts[start:end])
        if key in obj:
            _collect(obj[key], parts, end, out)


def _flatten_into(value: Any, out: list[Any]) -> None:
    if isinstance(value, list):
        for item in value:
            _flatten_into(item, out)
    elif value is not None:
        out.append(value)


def raw_getter(name: str) -> Getter:
    """A function returning the raw value(s) of ``name`` in an event (None when missing)."""
    parts = tuple(name.split("."))
    first = parts[0]
    if len(parts) == 1:

        def get_top(event: Mapping[str, Any]) -> Value:
            value = event.get(first)
            if isinstance(value, list):
                return _normalize_list(value)
            return value

        return get_top

    def get(event: Mapping[str, Any]) -> Value:
        # Fast path: plain nesting without arrays, or the whole dotted key at the top.
        value: Any = event.get(name)
        if value is None:
            value = event
            for part in parts:
                if type(value) is dict:
                    value = value.get(part)
                else:
                    value = None
                    break
            if value is None:
                out: list[Any] = []
                _collect(event, parts, 0, out)
                return out[0] if len(out) == 1 else (out or None)
        if isinstance(value, list):
            return _normalize_list(value)
        if isinstance(value, dict):
            return None  # an object, not a value
        return value

    return get


def _normalize_list(values: list[Any]) -> Value:
    out: list[Any] = []
    _flatten_into(values, out)
    if not out:
        return None
    return out[0] if len(out) == 1 else out


# ------------------------------------------------------------------ typing values

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_iso_ns(text: str) -> int | None:
    """An ISO-8601 date-time as integer nanoseconds since the epoch (UTC when no zone)."""
    # Fast path (a C function): at most microsecond precision, which is what nearly every
    # log writes. Longer fractions (nanoseconds) take the exact path below.
    dot = text.find(".")
    if len(text) <= 32 and (dot < 0 or not text[dot + 1 : dot + 8].isdigit()):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            delta = moment - _EPOCH
            return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + (
                delta.microseconds * 1_000)
    m = _ISO_RE.match(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                          int(second or 0), tzinfo=UTC)
    except ValueError:
        return None
    seconds = int((moment - _EPOCH).total_seconds())
    nanos = int((fraction or "").ljust(9, "0")[:9] or 0)
    offset = 0
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
    return (seconds - offset) * 1_000_000_000 + nanos


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Java DateTimeFormatter letters -> strptime directives, for the mapping formats in use.
_JAVA_FORMAT_TOKENS = {
    "yyyy": "%Y", "uuuu": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M",
    "ss": "%S", "SSS": "%f",
}
_JAVA_TOKEN_RE = re.compile(r"yyyy|uuuu|yy|MM|dd|HH|mm|ss|SSS|'[^']*'|.")


def _java_to_strptime(fmt: str) -> str:
    out = []
    for token in _JAVA_TOKEN_RE.findall(fmt):
        if token in _JAVA_FORMAT_TOKENS:
            out.append(_JAVA_FORMAT_TOKENS[token])
        elif token.startswith("'"):
            out.append(token[1:-1].replace("%", "%%"))
        else:
            out.append(token.replace("%", "%%"))
    return "".join(out)


def to_date_ns(value: Any, fmt: str | None = None) -> int | None:
    """A date value (ISO string, epoch millis number or string, or a mapped format) in ns."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * 1_000_000
    if isinstance(value, float):
        return int(value * 1_000_000)
    if not isinstance(value, str):
        return None
    if fmt and fmt not in ("strict_date_optional_time", "date_optional_time",
                           "strict_date_optional_time_nanos", "epoch_millis"):
        for option in fmt.split("||"):
            if option in ("epoch_millis", "strict_date_optional_time", "date_optional_time"):
                parsed = to_date_ns(value)
            else:
                try:
                    moment = datetime.strptime(value, _java_to_strptime(option))
                except ValueError:
                    continue
                parsed = int((moment.replace(tzinfo=UTC) - _EPOCH).total_seconds()) * 10**9
            if parsed is not None:
                return parsed
        return None
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text) * 1_000_000
    return parse_iso_ns(text)


def format_date_ns(ns: int) -> str:
    """Elasticsearch's rendering of a date: ISO-8601 UTC with milliseconds."""
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1_000_000:03d}Z"


def normalize_ip(value: Any) -> str | None:
    text = str(value).strip()
    # Addresses are short; a long value (no address) is not kept alive in the cache.
    return _normalize_ip_text(text) if len(text) <= 64 else _normalize_ip_text.__wrapped__(text)


@lru_cache(maxsize=4096)  # addresses repeat in logs; parsing one takes microseconds
def _normalize_ip_text(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def version_key(text: str) -> tuple[Any, ...] | None:
    """Ordering key of a semantic version; None for an invalid version (compares by equality)."""
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?", text)
    if m is None:
        return None
    major, minor, patch, pre = m.groups()
    base = (int(major), int(minor), int(patch))
    if pre is None:
        return (*base, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*base, 0, ids)


def _java_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _to_long(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number == number and abs(number) != float("inf") else None


def _to_double(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    return None


def converter(field: FieldDef) -> Callable[[Any], Any] | None:
    """How Elasticsearch turns a source value of this field type into an indexed value."""
    kind = field.type
    if kind in STRING_TYPES:
        return _java_string
    if kind in INTEGER_TYPES:
        return _to_long
    if kind in FLOAT_TYPES:
        return _to_double
    if kind == "boolean":
        return _to_bool
    if kind == "ip":
        return normalize_ip
    if kind in DATE_TYPES:
        fmt = field.format

        def date(value: Any) -> int | None:
            return to_date_ns(value, fmt)

        return date
    if kind == "version":
        return _java_string
    return None


# ------------------------------------------------------------------ the schema


class Schema:
    """Field types and getters for one index (one mapping, or none)."""

    def __init__(self, fields: Mapping[str, FieldDef] | None = None,
                 timestamp_field: str = "@timestamp", *, closed: bool | None = None) -> None:
        self.fields: dict[str, FieldDef] = dict(fields or {})
        self.timestamp_field = timestamp_field
        # A closed schema is a whole index mapping: an optional field it lacks is null.
        # An open one only types some fields (vigil's ECS defaults) and says nothing of others.
        self.closed = bool(self.fields) if closed is None else closed
        self._getters: dict[str, Getter] = {}

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None,
                     timestamp_field: str = "@timestamp") -> Schema:
        fields: dict[str, FieldDef] = {}
        if mapping:
            root = mapping.get("mappings", mapping)
            _flatten_properties(root.get("properties", {}), "", fields)
        return cls(fields, timestamp_field)

    @property
    def has_mapping(self) -> bool:
        return bool(self.fields)

    def learn(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Map the fields the events carry that the mapping lacks, as Elasticsearch's dynamic
        mapping would when indexing them (strings: keyword, or date when they look like one;
        whole numbers: long; others: double; booleans: boolean)."""
        for event in events:
            for name, value in _leaf_fields(event, ""):
                if name in self.fields or name.startswith("_"):
                    continue
                kind = _dynamic_type(value)
                if kind is not None:
                    self.fields[name] = FieldDef(kind)
                    self._getters.pop(name, None)

    def resolve(self, name: str) -> str:
        """Follow aliases to the concrete field name."""
        seen = set()
        while True:
            field = self.fields.get(name)
            if field is None or field.type != "alias" or field.path is None or name in seen:
                return name
            seen.add(name)
            name = field.path

    def field_type(self, name: str) -> str | None:
        name = self.resolve(name)
        field = self.fields.get(name)
        if field is None:
            if name == self.timestamp_field:
                return "date"
            return None
        return field.type

    def is_mapped(self, name: str) -> bool:
        return self.resolve(name) in self.fields

    def field_def(self, name: str) -> FieldDef | None:
        return self.fields.get(self.resolve(name))

    def getter(self, name: str) -> Getter:
        """A function giving the field's indexed value(s) in an event, typed by the mapping."""
        cached = self._getters.get(name)
        if cached is not None:
            return cached
        target = self.resolve(name)
        raw = raw_getter(target)
        field = self.fields.get(target)
        if field is None and target == self.timestamp_field:
            field = FieldDef("date")
        convert = converter(field) if field is not None else None
        null_value = field.null_value if field is not None else None
        getter: Getter
        if convert is None and null_value is None:
            getter = raw
        else:
            conv = convert or (lambda v: v)

            def typed(event: Mapping[str, Any]) -> Value:
                value = raw(event)
                if value is None:
                    if null_value is not None and _has_explicit_null(event, target):
                        return conv(null_value)
                    return None
                if isinstance(value, list):
                    converted = [c for c in (conv(v) for v in value) if c is not None]
                    if not converted:
                        return None
                    return converted[0] if len(converted) == 1 else converted
                return conv(value)

            getter = typed
        self._getters[name] = getter
        return getter


def field_names(event: Mapping[str, Any]) -> list[str]:
    """The dotted names of the event's fields that hold a value, each once."""
    return list(dict.fromkeys(name for name, _value in _leaf_fields(event, "")))


def _leaf_fields(obj: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaf_fields(value, f"{name}.")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from _leaf_fields(item, f"{name}.")
                elif item is not None:
                    yield name, item
                    break
        elif value is not None:
            yield name, value


_DYNAMIC_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")


def _dynamic_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "date" if _DYNAMIC_DATE.match(value) else "keyword"
    return None


def _has_explicit_null(event: Mapping[str, Any], name: str) -> bool:
    """True when the event holds the key with a JSON null (what ``null_value`` replaces)."""
    if name in event:
        return event[name] is None
    parts = name.split(".")
    current: Any = event
    for part in parts[:-1]:
        if not isinstance(current, dict) or part not in current:
            return False
        current = current[part]
    return isinstance(current, dict) and parts[-1] in current and current[parts[-1]] is None


def _flatten_properties(properties: Mapping[str, Any], prefix: str,
                        out: dict[str, FieldDef]) -> None:
    for key, spec in properties.items():
        name = f"{prefix}{key}"
        if not isinstance(spec, dict):
            continue
        if "properties" in spec and "type" not in spec:
            _flatten_properties(spec["properties"], f"{name}.", out)
            continue
        kind = str(spec.get("type", "object"))
        if kind in ("object", "nested") and "properties" in spec:
            _flatten_properties(spec["properties"], f"{name}.", out)
            continue
        out[name] = FieldDef(kind, spec.get("format"), spec.get("null_value"), spec.get("path"))


def open_schema(timestamp_field: str) -> Schema:
    """No mapping, only the timestamp field: what ``vigil query`` compiles against (a
    module-level function, so the fast path's spawned workers can rebuild it)."""
    return Schema.from_mapping(None, timestamp_field)
