"""Per-event overrides of a rule's severity, risk score and name (Kibana's mappings).

Kibana applies them to single-event alerts (query, new terms, threshold, EQL event queries),
never to an EQL sequence's shell or building blocks (``build_alert_group_from_sequence.ts``
passes ``applyOverrides: false``). ``kibana.alert.rule.severity`` and ``.risk_score`` keep the
rule's own values; ``kibana.alert.severity``, ``kibana.alert.risk_score`` and
``kibana.alert.rule.name`` get the override (``build_alert.ts``). Sources, in
security_solution ``detection_engine/rule_types/utils/mappings/``:

* ``build_severity_from_mapping.ts``: mappings sorted low → critical, every match overwrites,
  so the highest matching severity wins; an array matches when any element does. On
  ``event.severity`` the mapping value is ``Math.floor(Number(value))`` compared with integer
  event values (strings ignored); on any other field, integer or string event values are
  compared as text with the mapping value (floats and booleans ignored).
* ``build_risk_score_from_mapping.ts``: only the first mapping's field; each value (a string
  through JavaScript's ``Number()``) counts when finite and within 0..100, floats kept; the
  largest wins.
* ``build_rule_name_from_mapping.ts``: the field's value when it is a string.

Values are read as lodash's ``get`` reads the event source: a dotted key at the top, else the
path through objects (never through arrays).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
_MAX_SAFE = 2**53 - 1
_JS_SPACE = " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" \
            "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


@dataclass(frozen=True, slots=True)
class SeverityMapping:
    field: str
    value: str
    severity: str


def source_get(event: Mapping[str, Any], path: str) -> Any:
    """lodash ``get(path, source)``: the whole dotted key first, then the object path."""
    if path in event:
        return event[path]
    current: Any = event
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _safe_integer(value: Any) -> int | None:
    """JavaScript's ``Number.isSafeInteger``: 23 and 23.0 (one number in JSON) are."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and abs(value) <= _MAX_SAFE:
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_SAFE:
        return int(value)
    return None


def js_number(text: str) -> float:
    """JavaScript's ``Number(string)`` (NaN as ``math.nan``)."""
    body = text.strip(_JS_SPACE)
    if not body:
        return 0.0
    lowered = body.lower()
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if lowered.startswith(prefix):
            try:
                return float(int(body[2:], base)) if "_" not in body else math.nan
            except ValueError:
                return math.nan
    if body in ("Infinity", "+Infinity"):
        return math.inf
    if body == "-Infinity":
        return -math.inf
    if "_" in body or lowered.lstrip("+-") in ("inf", "infinity", "nan"):
        return math.nan
    try:
        return float(body)
    except ValueError:
        return math.nan


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def severity_for(mappings: tuple[SeverityMapping, ...], default: str,
                 event: Mapping[str, Any]) -> tuple[str, str | None]:
    """The alert's severity and the field that set it (None: the rule's own)."""
    match: SeverityMapping | None = None
    for mapping in sorted(mappings, key=lambda m: SEVERITY_RANK.get(m.severity, 0)):
        values = _values(source_get(event, mapping.field))
        if mapping.field == "event.severity":
            number = js_number(mapping.value)
            wanted: Any = math.floor(number) if math.isfinite(number) else None
            found: set[Any] = {i for i in map(_safe_integer, values) if i is not None}
        else:
            wanted = mapping.value
            found = set()
            for value in values:
                integer = _safe_integer(value)
                if integer is not None:
                    found.add(str(integer))
                elif isinstance(value, str):
                    found.add(value)
        if wanted is not None and wanted in found:
            match = mapping
    if match is not None and match.severity in SEVERITY_RANK:
        return match.severity, match.field
    return default, None


def risk_score_for(field: str | None, default: int,
                   event: Mapping[str, Any]) -> int | float:
    """The alert's risk score: the largest valid value of ``field``, else the rule's."""
    if field is None:
        return default
    best: float | None = None
    for value in _values(source_get(event, field)):
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            number = js_number(value)
        else:
            continue
        if math.isfinite(number) and 0 <= number <= 100 and (best is None or number > best):
            best = number
    if best is None:
        return default
    return int(best) if best.is_integer() else best


def name_for(field: str | None, default: str, event: Mapping[str, Any]) -> str:
    """The alert's rule name: the field's value when it is a string."""
    if field is None:
        return default
    value = source_get(event, field)
    return value if isinstance(value, str) else default
