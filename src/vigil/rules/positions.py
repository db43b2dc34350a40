"""Where a rule's query sits in its file, character by character.

tomllib and orjson give values, not positions. To report an EQL error inside
``query = '''...'''`` at the file's own line and column we re-read the query's string token
and record, for every character of its decoded value, the file position it came from.
The result is only trusted when it decodes to exactly the value the real parser returned;
otherwise callers fall back to the key's line.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

Position = tuple[int, int]  # 1-based line, column

_TOML_HEADER = re.compile(r"[ \t]*\[\[?[ \t]*([^\]\n]+?)[ \t]*\]\]?[ \t]*(?:#.*)?$", re.M)
_TOML_KEY = re.compile(r"[ \t]*([A-Za-z0-9_.-]+|\"[^\"\n]*\"|'[^'\n]*')[ \t]*=[ \t]*")
_JSON_QUERY_KEY = re.compile(r'"query"\s*:\s*"')
_TOML_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\",
                 "e": "\x1b"}
_JSON_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\",
                 "/": "/"}


class _Lines:
    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> Position:
        index = bisect.bisect_right(self.starts, offset) - 1
        return index + 1, offset - self.starts[index] + 1


class Positions(Sequence[Position]):
    """The file positions of a decoded string's characters, computed when asked for: only
    an error ever needs one, and a rule set has megabytes of queries. ``shift`` moves them
    down that many lines (an NDJSON record's own line in its file)."""

    __slots__ = ("_lines", "_offsets", "_shift")

    def __init__(self, lines: _Lines, offsets: Sequence[int], shift: int = 0) -> None:
        self._lines = lines
        self._offsets = offsets
        self._shift = shift

    def __len__(self) -> int:
        return len(self._offsets)

    @overload
    def __getitem__(self, index: int) -> Position: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Position]: ...

    def __getitem__(self, index: int | slice) -> Position | Sequence[Position]:
        if isinstance(index, slice):
            return Positions(self._lines, self._offsets[index], self._shift)
        line, column = self._lines.position(self._offsets[index])
        return line + self._shift, column

    def shifted(self, lines: int) -> Positions:
        return Positions(self._lines, self._offsets, self._shift + lines)


@dataclass(frozen=True, slots=True)
class DecodedString:
    value: str
    positions: Positions
    start: Position  # the opening quote
    end_offset: int  # just after the closing quote


@dataclass(frozen=True, slots=True)
class TomlLayout:
    """Key lines per table (``("rule", "query") -> 31``), table header lines, and the
    decoded string values of ``[rule]`` keys with their character positions."""

    key_lines: dict[tuple[str, str], int]
    table_lines: dict[str, int]
    strings: dict[tuple[str, str], DecodedString]


def scan_toml(text: str, wanted: frozenset[tuple[str, str]] = frozenset({("rule", "query")})
              ) -> TomlLayout:
    """Find key lines and ``[rule]`` string values without a full TOML parser.

    Multi-line strings are decoded and skipped as units, so a ``query =`` inside an
    investigation guide is never taken for the key.
    """
    text = text.replace("\r\n", "\n")  # tomllib normalises newlines the same way
    lines = _Lines(text)
    key_lines: dict[tuple[str, str], int] = {}
    table_lines: dict[str, int] = {}
    strings: dict[tuple[str, str], DecodedString] = {}
    table = ""
    pos = 0
    size = len(text)
    while pos < size:
        eol = text.find("\n", pos)
        eol = size if eol < 0 else eol
        line_no = lines.position(pos)[0]
        header = _TOML_HEADER.match(text, pos, eol)
        if header is not None and header.end() == eol:
            table = _normalise_key(header.group(1))
            table_lines.setdefault(table, line_no)
            pos = eol + 1
            continue
        key = _TOML_KEY.match(text, pos, eol)
        if key is not None:
            name = _normalise_key(key.group(1))
            key_lines.setdefault((table, name), line_no)
            value_at = key.end()
            if value_at < size and text[value_at] in "'\"":
                end: int | None
                if (table, name) in wanted and (table, name) not in strings:
                    decoded = decode_toml_string(text, value_at, lines)
                    end = None if decoded is None else decoded.end_offset
                    if decoded is not None:
                        strings[(table, name)] = decoded
                else:
                    end = skip_toml_string(text, value_at)
                if end is not None:
                    end_line_eol = text.find("\n", end)
                    pos = size if end_line_eol < 0 else end_line_eol + 1
                    continue
        pos = eol + 1
    return TomlLayout(key_lines, table_lines, strings)


def skip_toml_string(text: str, at: int) -> int | None:
    """The offset just after the TOML string starting at ``text[at]``, without decoding it."""
    quote = text[at]
    delimiter = quote * 3 if text.startswith(quote * 3, at) else quote
    i = at + len(delimiter)
    while True:
        found = text.find(delimiter, i)
        if found < 0:
            return None
        if quote == "'" or _even_backslashes(text, found):
            end = found + len(delimiter)
            if len(delimiter) == 3:  # up to two more quotes belong to the value
                extra = 0
                while extra < 2 and text.startswith(quote, end):
                    end += 1
                    extra += 1
            elif "\n" in text[at:found]:
                return None
            return end
        i = found + 1


def _even_backslashes(text: str, at: int) -> bool:
    count = 0
    while at - count - 1 >= 0 and text[at - count - 1] == "\\":
        count += 1
    return count % 2 == 0


def _normalise_key(raw: str) -> str:
    parts = [p.strip().strip("\"'") for p in raw.split(".")]
    return ".".join(parts)


def decode_toml_string(text: str, at: int, lines: _Lines | None = None
                       ) -> DecodedString | None:
    """Decode the TOML string starting at ``text[at]`` (any of the four kinds)."""
    lines = lines or _Lines(text)
    quote = text[at]
    multi = text.startswith(quote * 3, at)
    start = at + (3 if multi else 1)
    if multi and text.startswith("\n", start):
        start += 1  # TOML drops a newline right after the opening delimiter
    if quote == "'":
        # A literal string has no escapes: its value is its text (with the up to two quotes
        # just before a closing delimiter), each character at its own offset.
        end = skip_toml_string(text, at)
        if end is None:
            return None
        stop = end - (3 if multi else 1)
        return DecodedString(text[start:stop], Positions(lines, range(start, stop)),
                             lines.position(at), end)
    chars: list[str] = []
    offsets: list[int] = []
    i = start
    size = len(text)
    while i < size:
        char = text[i]
        if multi and text.startswith(quote * 3, i):
            extra = 0  # up to two quotes just before the delimiter belong to the value
            while extra < 2 and text.startswith(quote, i + 3 + extra):
                extra += 1
            for k in range(extra):
                chars.append(quote)
                offsets.append(i + k)
            end = i + 3 + extra
            break
        if not multi and char == quote:
            end = i + 1
            break
        if not multi and char == "\n":
            return None
        if quote == '"' and char == "\\":
            nxt = text[i + 1] if i + 1 < size else ""
            if multi and nxt in " \t\n":
                j = i + 1
                while j < size and text[j] in " \t":
                    j += 1
                if j < size and text[j] == "\n":  # line-ending backslash: trim the gap
                    while j < size and text[j] in " \t\n":
                        j += 1
                    i = j
                    continue
                return None
            if nxt in _TOML_ESCAPES:
                chars.append(_TOML_ESCAPES[nxt])
                offsets.append(i)
                i += 2
                continue
            width = {"u": 4, "U": 8}.get(nxt)
            if width is None:
                return None
            try:
                chars.append(chr(int(text[i + 2 : i + 2 + width], 16)))
            except ValueError:
                return None
            offsets.append(i)
            i += 2 + width
            continue
        chars.append(char)
        offsets.append(i)
        i += 1
    else:
        return None
    return DecodedString("".join(chars), Positions(lines, offsets), lines.position(at), end)


def json_query_strings(text: str, first_line: int = 1) -> list[DecodedString]:
    """Every ``"query": "<string>"`` in a JSON text, in order, with character positions.

    ``first_line`` is the file line ``text`` starts on (for one NDJSON record).
    """
    lines = _Lines(text)
    found: list[DecodedString] = []
    for key in _JSON_QUERY_KEY.finditer(text):
        decoded = _decode_json_string(text, key.end() - 1, lines)
        if decoded is None:
            continue
        if first_line != 1:
            shift = first_line - 1
            decoded = DecodedString(
                decoded.value, decoded.positions.shifted(shift),
                (decoded.start[0] + shift, decoded.start[1]), decoded.end_offset)
        found.append(decoded)
    return found


def _decode_json_string(text: str, at: int, lines: _Lines) -> DecodedString | None:
    chars: list[str] = []
    offsets: list[int] = []
    i = at + 1
    size = len(text)
    while i < size:
        char = text[i]
        if char == '"':
            return DecodedString("".join(chars), Positions(lines, offsets),
                                 lines.position(at), i + 1)
        if char == "\\":
            nxt = text[i + 1] if i + 1 < size else ""
            if nxt in _JSON_ESCAPES:
                chars.append(_JSON_ESCAPES[nxt])
                offsets.append(i)
                i += 2
                continue
            if nxt != "u":
                return None
            try:
                code = int(text[i + 2 : i + 6], 16)
            except ValueError:
                return None
            step = 6
            low = text[i + 6 : i + 12]
            if 0xD800 <= code < 0xDC00 and low.startswith("\\u"):
                try:
                    second = int(low[2:], 16)
                except ValueError:
                    second = 0
                if 0xDC00 <= second < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (second - 0xDC00)
                    step = 12
            chars.append(chr(code))
            offsets.append(i)
            i += step
            continue
        chars.append(char)
        offsets.append(i)
        i += 1
    return None
