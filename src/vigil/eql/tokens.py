"""EQL lexer: query text -> tokens with positions.

Follows the token rules of Elasticsearch's EQL grammar (EqlBase.g4): lowercase keywords,
``@`` allowed to start an identifier, backquoted identifiers with doubled backquotes,
``name~`` as one token (case-insensitive function or operator), double-quoted strings with
escapes, triple-quoted raw strings, ``//`` and nested ``/* */`` comments.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from enum import Enum, auto

from vigil.errors import EqlSyntaxError


class T(Enum):
    """Token kinds."""

    IDENT = auto()
    TILDE_IDENT = auto()  # startsWith~ / in~ / like~ / regex~
    QUOTED_IDENT = auto()  # `field name`
    STRING = auto()
    INTEGER = auto()
    DECIMAL = auto()
    OP = auto()  # operators and punctuation
    EOF = auto()


KEYWORDS = frozenset(
    {
        "and", "any", "by", "false", "in", "like", "maxspan", "not", "null", "of", "or",
        "regex", "sample", "sequence", "true", "until", "where", "with",
    }
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: T
    text: str  # the token's source text (for STRING: the decoded value)
    offset: int  # 0-based offset of the first character
    end: int  # 0-based offset past the last character
    line: int  # 1-based
    column: int  # 1-based

    def is_op(self, *ops: str) -> bool:
        return self.kind is T.OP and self.text in ops

    def is_keyword(self, *words: str) -> bool:
        return self.kind is T.IDENT and self.text in words


_TOKEN_RE = re.compile(
    r"""
    [ \t\r\n]*
    (?:
    (?P<line_comment>//[^\r\n]*)
  | (?P<block_comment>/\*)
  | (?P<raw_string>\"\"\")
  | (?P<string>")
  | (?P<single_string>'|\?"|\?')
  | (?P<decimal>(?:\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+))
  | (?P<integer>\d+)
  | (?P<tilde_ident>[A-Za-z_][A-Za-z0-9_]*~)
  | (?P<ident>[A-Za-z_@][A-Za-z0-9_]*)
  | (?P<quoted_ident>`)
  | (?P<op>!\[|==|!=|<=|>=|!:|[<>:=+\-*/%.,\[\]()|?~!])
  | (?P<end>$)
    )
    """,
    re.VERBOSE,
)

_STRING_STOP = re.compile(r'["\\\r\n]')
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


_SIMPLE_KINDS = {
    "decimal": T.DECIMAL,
    "integer": T.INTEGER,
    "tilde_ident": T.TILDE_IDENT,
    "ident": T.IDENT,
    "op": T.OP,
}


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []
        # Offsets where lines start: a token's line is found by bisection, so the scan itself
        # never counts newlines (a 1 MB query tokenizes in a fraction of a second).
        self.line_starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1] + 1

    def error(self, reason: str, offset: int, width: int = 1) -> EqlSyntaxError:
        line, column = self.position(offset)
        return EqlSyntaxError(reason, self.text, line, column, width)

    def emit(self, kind: T, value: str, start: int, end: int) -> None:
        line, column = self.position(start)
        self.tokens.append(Token(kind, value, start, end, line, column))

    def run(self) -> list[Token]:
        text = self.text
        n = len(text)
        pos = 0
        match = _TOKEN_RE.match
        emit = self.emit
        simple = _SIMPLE_KINDS
        while True:
            m = match(text, pos)
            if m is None:
                bad = pos + len(text[pos:]) - len(text[pos:].lstrip(" \t\r\n"))
                raise self.error(f"unexpected character {text[bad]!r}", bad)
            kind = m.lastgroup or ""
            start = m.start(kind) if kind else m.end()
            end = m.end()
            token_kind = simple.get(kind)
            if token_kind is not None:
                emit(token_kind, m.group(kind), start, end)
                pos = end
            elif kind == "end":
                break
            elif kind == "line_comment":
                pos = end
            elif kind == "block_comment":
                pos = self._skip_block_comment(start)
            elif kind == "raw_string":
                close = text.find('"""', end)
                if close < 0:
                    raise self.error("unterminated string: missing closing \"\"\"", start, 3)
                # '"""a""""': the lexer takes the longest match, so extra quotes are content.
                while text.startswith('"', close + 3):
                    close += 1
                emit(T.STRING, text[end:close], start, close + 3)
                pos = close + 3
            elif kind == "string":
                value, pos = self._read_string(start)
                emit(T.STRING, value, start, pos)
            elif kind == "single_string":
                if m.group(kind) == "'":
                    raise self.error(
                        "single quotes are not supported for strings: use double quotes", start
                    )
                raise self.error(
                    "the ?\"...\" raw string syntax is not supported: use \"\"\"...\"\"\"", start, 2
                )
            elif kind == "quoted_ident":
                value, pos = self._read_quoted_ident(start)
                emit(T.QUOTED_IDENT, value, start, pos)
        emit(T.EOF, "", n, n)
        return self.tokens

    def _skip_block_comment(self, start: int) -> int:
        depth = 0
        i = start
        text = self.text
        while True:
            opening = text.find("/*", i)
            closing = text.find("*/", i)
            if closing < 0:
                raise self.error("unterminated comment: missing */", start, 2)
            if 0 <= opening < closing:
                depth += 1
                i = opening + 2
            else:
                depth -= 1
                i = closing + 2
                if depth == 0:
                    return i

    def _read_string(self, start: int) -> tuple[str, int]:
        text = self.text
        out: list[str] = []
        i = start + 1
        n = len(text)
        while True:
            # Copy the plain run up to the next quote, backslash or line end in one slice.
            stop = _STRING_STOP.search(text, i)
            j = stop.start() if stop else n
            out.append(text[i:j])
            if j >= n or text[j] in "\r\n":
                raise self.error("unterminated string: missing closing \"", start)
            if text[j] == '"':
                return "".join(out), j + 1
            # backslash escape
            if j + 1 >= n:
                raise self.error("unterminated string: missing closing \"", start)
            esc = text[j + 1]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                i = j + 2
            elif esc == "u" and text.startswith("{", j + 2):
                close = text.find("}", j + 3)
                digits = text[j + 3 : close] if close > 0 else ""
                if not digits or len(digits) > 8 or any(
                    c not in "0123456789abcdefABCDEF" for c in digits
                ):
                    raise self.error("invalid unicode escape: expected \\u{hex digits}", j, 2)
                code = int(digits, 16)
                if code > 0x10FFFF:
                    raise self.error("invalid unicode escape: code point out of range", j, 2)
                out.append(chr(code))
                i = close + 1
            else:
                raise self.error(f"illegal escape sequence \\{esc} in string", j, 2)

    def _read_quoted_ident(self, start: int) -> tuple[str, int]:
        text = self.text
        out: list[str] = []
        i = start + 1
        while True:
            j = text.find("`", i)
            if j < 0:
                raise self.error("unterminated quoted identifier: missing closing `", start)
            out.append(text[i:j])
            if text.startswith("`", j + 1):  # `` is an escaped backquote
                out.append("`")
                i = j + 2
                continue
            return "".join(out), j + 1


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; raises EqlSyntaxError with line and column."""
    return _Lexer(text).run()
