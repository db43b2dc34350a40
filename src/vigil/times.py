"""Elasticsearch's ``date`` output format, written once: the pipelines write their dates in it
and every screen of vigil shows times in it (``report/safe.display_time``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# ISO 8601 as the date processor reads it: date, time, a fraction of any length, a zone.
_ISO = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?"
                  r"(Z|[+-]\d{2}:?\d{2})?\Z")


def es_date(text: str) -> str | None:
    """An ISO 8601 time as Elasticsearch's ``date`` processor writes it (its default output
    format ``yyyy-MM-dd'T'HH:mm:ss.SSSXXX``: milliseconds, UTC as ``Z``)."""
    match = _ISO.match(text)
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    millis = (fraction or "").ljust(3, "0")[:3]
    if zone in (None, "Z", "+00:00", "-00:00", "+0000", "-0000"):
        return f"{day}T{clock}.{millis}Z"
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}.{millis}{zone}")
    except ValueError:
        return None
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def sort_key(value: object) -> tuple[int, str]:
    """A key that orders ISO 8601 times by the instant they name, whatever their precision
    or zone (as text, ``...00.008Z`` sorts after ``...00.0081Z``); anything else sorts last,
    in text order."""
    text = str(value) if value is not None else ""
    match = _ISO.match(text.strip())
    if match is None:
        return (1, text)
    day, clock, fraction, zone = match.groups()
    nanos = (fraction or "").ljust(9, "0")
    if zone in (None, "Z", "+00:00", "-00:00", "+0000", "-0000"):
        return (0, f"{day}T{clock}.{nanos}")
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}{zone}").astimezone(UTC)
    except ValueError:
        return (1, text)
    return (0, moment.strftime("%Y-%m-%dT%H:%M:%S.") + nanos)
