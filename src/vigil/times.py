"""Elasticsearch's ``date`` output format, written once: the pipelines write their dates in it
and every screen of vigil shows times in it (``report/safe.display_time``)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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


MAX_DATE_MATH = timedelta(days=100 * 366)  # how far from now a rule's window may reach
_DATE_MATH_OP = re.compile(r"([+-])(\d{1,12})([yMwdhHms])")
_DATE_MATH_ROUND = re.compile(r"/([yMwdhHms])$")
_FIXED_UNITS = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}


@dataclass(frozen=True, slots=True)
class DateMath:
    """Elasticsearch date math anchored on ``now``: ``now-9m``, ``now``, ``now-1d/d``."""

    text: str
    ops: tuple[tuple[int, str], ...] = ()  # signed amount, unit
    rounding: str | None = None

    @classmethod
    def parse(cls, text: str) -> DateMath:
        body = text.strip()
        if not body.startswith("now"):
            raise ValueError(f"date math {text!r} must start with 'now' (e.g. now-9m)")
        rest = body[3:]
        rounding = None
        found = _DATE_MATH_ROUND.search(rest)
        if found:
            rounding = found.group(1)
            rest = rest[: found.start()]
        ops: list[tuple[int, str]] = []
        pos = 0
        while pos < len(rest):
            op = _DATE_MATH_OP.match(rest, pos)
            if op is None:
                raise ValueError(f"date math {text!r} is not of the form now-<n><unit>, "
                                 "unit one of y M w d h m s")
            amount = int(op.group(2))
            ops.append((amount if op.group(1) == "+" else -amount, op.group(3)))
            pos = op.end()
        reach = sum(abs(amount) * (_FIXED_UNITS.get(unit) or (31 * 86400 if unit == "M"
                                                                else 366 * 86400))
                    for amount, unit in ops)
        if reach > MAX_DATE_MATH.total_seconds():
            raise ValueError(f"date math {text!r} reaches more than "
                             f"{MAX_DATE_MATH.days // 366} years from now")
        return cls(text=text, ops=tuple(ops), rounding=rounding)

    def resolve(self, now: datetime) -> datetime:
        """The instant this expression names for a run started at ``now``."""
        moment = now
        for amount, unit in self.ops:
            if unit in _FIXED_UNITS:
                moment = moment + timedelta(seconds=amount * _FIXED_UNITS[unit])
            else:
                months = amount * (12 if unit == "y" else 1)
                moment = _add_months(moment, months)
        if self.rounding is not None:
            moment = _round_down(moment, self.rounding)
        return moment

    @property
    def offset(self) -> timedelta:
        """Signed offset from ``now`` (``now-9m`` → -9 min). Months count as 30 days, years
        as 365, and rounding is ignored: exact instants come from ``resolve``."""
        seconds = 0
        for amount, unit in self.ops:
            per = _FIXED_UNITS.get(unit) or (365 * 86400 if unit == "y" else 30 * 86400)
            seconds += amount * per
        return timedelta(seconds=seconds)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _round_down(moment: datetime, unit: str) -> datetime:
    if unit == "y":
        return moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        start = moment - timedelta(days=moment.weekday())
        return start.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in ("h", "H"):
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)


