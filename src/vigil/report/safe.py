"""Making attacker-controlled text safe to print, to put in a spreadsheet or in HTML; and
the one timestamp format vigil shows on screen."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from vigil.times import es_date

# C0 controls except tab, DEL and C1 controls: shown as U+FFFD.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Characters that make text read differently from what it holds, or hide part of it: bidi
# marks, embeddings, overrides and isolates (``invoice\u202efdp.exe`` shows as
# "invoiceexe.pdf"), zero-width characters, line and paragraph separators, the BOM. Shown as
# ``<U+202E>``: a person sees that they are there.
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064"
                        "\u2066-\u2069\ufeff]")


def _visible(match: re.Match[str]) -> str:
    return f"<U+{ord(match.group(0)):04X}>"


def reveal(text: str) -> str:
    """``text`` with the invisible characters of ``_INVISIBLE`` written as ``<U+XXXX>``."""
    return _INVISIBLE.sub(_visible, text)
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")

# Characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def terminal_text(value: object, *, keep_newlines: bool = False) -> str:
    """Text with escape sequences and control characters removed (shown as U+FFFD)."""
    text = value if isinstance(value, str) else str(value)
    text = reveal(_ANSI.sub("\ufffd", text))
    if keep_newlines:
        return "\n".join(_CONTROL.sub("\ufffd", line) for line in text.split("\n"))
    return _CONTROL.sub("\ufffd", text.replace("\n", " "))


def csv_cell(value: object) -> str:
    """A CSV cell that no spreadsheet will evaluate as a formula."""
    text = "" if value is None else (value if isinstance(value, str) else str(value))
    text = reveal(_CONTROL.sub("\ufffd", text.replace("\r\n", "\n")))
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def html_text(value: object) -> str:
    """Text escaped for HTML element content and attribute values."""
    return html.escape(reveal("" if value is None else str(value)), quote=True)


def display_time(value: object) -> str:
    """The one timestamp format of every screen (issue 14): ISO 8601 in UTC to the
    millisecond, ``2024-05-01T10:00:00.000Z``, Elasticsearch's own date output, so a time
    copied from vigil pastes into Kibana's search. A datetime without a zone is taken as UTC;
    text that is not a timestamp is shown as text (safely)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    text = str(value)
    shown = es_date(text.strip())
    return terminal_text(text) if shown is None else shown
