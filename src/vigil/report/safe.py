"""Making attacker-controlled text safe to print, to put in a spreadsheet or in HTML."""

from __future__ import annotations

import html
import re

# C0 controls except tab, DEL, C1 controls, and the Unicode bidi overrides/isolates that can
# make a terminal line read differently from what it contains.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")

# Characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def terminal_text(value: object, *, keep_newlines: bool = False) -> str:
    """Text with escape sequences and control characters removed (shown as U+FFFD)."""
    text = value if isinstance(value, str) else str(value)
    text = _ANSI.sub("\ufffd", text)
    if keep_newlines:
        return "\n".join(_CONTROL.sub("\ufffd", line) for line in text.split("\n"))
    return _CONTROL.sub("\ufffd", text.replace("\n", " "))


def csv_cell(value: object) -> str:
    """A CSV cell that no spreadsheet will evaluate as a formula."""
    text = "" if value is None else (value if isinstance(value, str) else str(value))
    text = _CONTROL.sub("\ufffd", text.replace("\r\n", "\n"))
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def html_text(value: object) -> str:
    """Text escaped for HTML element content and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)
