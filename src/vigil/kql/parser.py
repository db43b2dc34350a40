"""KQL parser: text -> ``kql.syntax`` tree, following Kibana's grammar rule by rule.

Kibana's grammar (kbn-es-query ``kuery/grammar/grammar.peggy``) is a PEG: ordered choices with
backtracking. This is a hand-written recursive descent over the characters with the same
rules and the same order, so the same text gives the same tree, including Kibana's quirks:

* an unquoted value may hold spaces (``message: foo bar`` is one value ``foo bar``, trimmed),
  and ends at a special character ``\\():<>"*{}`` or a keyword: `` or ``/`` and `` between
  spaces, ``not`` followed by a space (anywhere: ``cannot be`` ends the value at ``can``);
* ``*`` in an unquoted value is a wildcard, ``\\*`` a star; in quotes, ``*`` is a star;
* escapes: ``\\t \\r \\n \\uXXXX`` everywhere; ``\\`` before a special character or a keyword
  in unquoted text; ``\\\\`` and ``\\"`` in quotes, where any other backslash is itself;
* ``or`` binds loosest, then ``and``, then ``not`` (which needs a space after it).

Errors carry the line and column of the furthest point the parser reached, with what it
expected there, as Kibana's (peggy's) messages do.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from vigil.eql.ast import Span
from vigil.errors import KqlSyntaxError
from vigil.kql import syntax as k

MAX_DEPTH = 100  # parentheses and braces inside each other
_SPACES = frozenset(" \t\r\n\u00a0")
_SPECIAL = frozenset('\\():<>"*{}')
_ESCAPED_WHITESPACE = {"t": "\t", "r": "\r", "n": "\n"}
# JavaScript's String.prototype.trim: WhiteSpace and LineTerminator code points.
_JS_SPACE = " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" \
            "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_HEX = frozenset("0123456789abcdefABCDEF")


class _Fail(Exception):
    """A choice failed; the caller backtracks."""


_FAIL = _Fail()


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.depth = 0
        self.furthest = 0
        self.expected: set[str] = set()
        self._line_starts: list[int] | None = None  # offsets where lines begin, when needed

    # ------------------------------------------------------------ helpers

    def expect(self, what: str, at: int | None = None) -> _Fail:
        at = self.pos if at is None else at
        if at > self.furthest:
            self.furthest, self.expected = at, {what}
        elif at == self.furthest:
            self.expected.add(what)
        return _FAIL

    def span(self, start: int) -> Span:
        if self._line_starts is None:
            self._line_starts = [0] + [i + 1 for i, c in enumerate(self.text) if c == "\n"]
        index = bisect.bisect_right(self._line_starts, start) - 1
        return Span(start, self.pos, index + 1, start - self._line_starts[index] + 1)

    def spaces(self) -> None:
        while self.pos < self.n and self.text[self.pos] in _SPACES:
            self.pos += 1

    def space_run(self) -> bool:
        """Space+ ; False (position kept) when there is none."""
        start = self.pos
        self.spaces()
        if self.pos == start:
            self.expect("whitespace")
            return False
        return True

    def word_at(self, at: int, word: str) -> bool:
        return self.text[at : at + len(word)].lower() == word

    def char(self, char: str, what: str | None = None) -> None:
        if self.pos < self.n and self.text[self.pos] == char:
            self.pos += 1
            return
        raise self.expect(what or f'"{char}"')

    def connective(self, word: str) -> bool:
        """``Or`` / ``And``: Space+ word Space+ (consumed only when all three are there)."""
        start = self.pos
        if not self.space_run():
            return False
        if not self.word_at(self.pos, word):
            self.expect(word.upper())
            self.pos = start
            return False
        self.pos += len(word)
        if not self.space_run():
            self.pos = start
            return False
        return True

    def not_keyword(self) -> bool:
        """``Not``: 'not' Space+."""
        start = self.pos
        if self.word_at(self.pos, "not"):
            self.pos += 3
            if self.space_run():
                return True
        self.expect("NOT", start)
        self.pos = start
        return False

    def keyword_at(self, at: int) -> bool:
        """The grammar's ``Keyword``: Space or Space / Space and Space / not Space."""
        text = self.text
        if text[at] in _SPACES:
            for word in ("or", "and"):
                end = at + 1 + len(word)
                if self.word_at(at + 1, word) and end < self.n and text[end] in _SPACES:
                    return True
        return self.word_at(at, "not") and at + 3 < self.n and text[at + 3] in _SPACES

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            here = self.span(self.pos)
            raise KqlSyntaxError(f"query nested more than {MAX_DEPTH} levels deep",
                                 self.text, here.line, here.column)

    # ------------------------------------------------------------ queries

    def start(self) -> k.Node:
        self.spaces()
        begin = self.pos
        query: k.Node = k.MatchAll(self.span(begin))
        try:
            query = self.or_query()
        except _Fail:
            self.pos = begin
        self.spaces()
        if self.pos != self.n:
            self.expect("end of input")
            raise self.error()
        return query

    def joined(self, word: str, operand: Callable[[], k.Node],
               build: Callable[[tuple[k.Node, ...], Span], k.Node]) -> k.Node:
        """``head:Operand tail:(Word Operand)+`` / ``Operand``: one n-ary node for a run."""
        start = self.pos
        nodes = [operand()]
        while True:
            before = self.pos
            if not self.connective(word):
                break
            try:
                nodes.append(operand())
            except _Fail:
                self.pos = before
                break
        return nodes[0] if len(nodes) == 1 else build(tuple(nodes), self.span(start))

    def or_query(self) -> k.Node:
        return self.joined("or", self.and_query, k.Or)

    def and_query(self) -> k.Node:
        return self.joined("and", self.not_query, k.And)

    def not_query(self) -> k.Node:
        start = self.pos
        if self.not_keyword():
            try:
                return k.Not(self.sub_query(), self.span(start))
            except _Fail:
                self.pos = start
        return self.sub_query()

    def sub_query(self) -> k.Node:
        start = self.pos
        if self.pos < self.n and self.text[self.pos] == "(":
            self.pos += 1
            self.enter()
            try:
                self.spaces()
                query = self.or_query()
                self.spaces()
                self.char(")")
                return query
            except _Fail:
                self.pos = start
            finally:
                self.depth -= 1
        else:
            self.expect('"("')
        return self.nested_query()

    def nested_query(self) -> k.Node:
        start = self.pos
        try:
            path = self.literal()
            self.spaces()
            self.char(":")
            self.spaces()
            self.char("{")
            self.enter()
            try:
                self.spaces()
                query = self.or_query()
                self.spaces()
                self.char("}")
            finally:
                self.depth -= 1
            return k.Nested(path, query, self.span(start))
        except _Fail:
            self.pos = start
        return self.expression()

    def expression(self) -> k.Node:
        start = self.pos
        try:
            return self.range_expression()
        except _Fail:
            self.pos = start
        try:
            return self.field_value_expression()
        except _Fail:
            self.pos = start
        value = self.value()
        return k.Is(None, value, self.span(start))

    def range_expression(self) -> k.Node:
        start = self.pos
        name = self.literal("field name")
        self.spaces()
        text = self.text
        op: k.RangeOp
        if text.startswith("<=", self.pos):
            op, width = "<=", 2
        elif text.startswith(">=", self.pos):
            op, width = ">=", 2
        elif text.startswith("<", self.pos):
            op, width = "<", 1
        elif text.startswith(">", self.pos):
            op, width = ">", 1
        else:
            raise self.expect("range operator")
        self.pos += width
        self.spaces()
        value = self.literal()
        return k.Range(name, op, value, self.span(start))

    def field_value_expression(self) -> k.Node:
        start = self.pos
        name = self.literal("field name")
        self.spaces()
        self.char(":")
        self.spaces()
        return self.list_of_values(name, start)

    # ------------------------------------------------------------ value lists

    def list_of_values(self, name: k.Value, start: int) -> k.Node:
        if self.pos < self.n and self.text[self.pos] == "(":
            begin = self.pos
            self.pos += 1
            self.enter()
            try:
                self.spaces()
                node = self.or_values(name)
                self.spaces()
                self.char(")")
                return node
            except _Fail:
                self.pos = begin
            finally:
                self.depth -= 1
        else:
            self.expect('"("')
        value = self.value()
        return k.Is(name, value, self.span(start))

    def or_values(self, name: k.Value) -> k.Node:
        return self.joined("or", lambda: self.and_values(name), k.Or)

    def and_values(self, name: k.Value) -> k.Node:
        return self.joined("and", lambda: self.not_values(name), k.And)

    def not_values(self, name: k.Value) -> k.Node:
        start = self.pos
        if self.not_keyword():
            try:
                return k.Not(self.list_of_values(name, self.pos), self.span(start))
            except _Fail:
                self.pos = start
        return self.list_of_values(name, self.pos)

    # ------------------------------------------------------------ literals

    def value(self) -> k.Value:
        return self.literal("value")

    def literal(self, what: str = "literal") -> k.Value:
        if self.pos < self.n and self.text[self.pos] == '"':
            return self.quoted()
        return self.unquoted(what)

    def quoted(self) -> k.Value:
        start = self.pos
        self.pos += 1
        text, n = self.text, self.n
        chars: list[str] = []
        while True:
            if self.pos >= n:
                raise self.expect('"\\""')
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return k.Value("".join(chars), True, None, self.span(start))
            if char == "\\" and self.pos + 1 < n:
                nxt = text[self.pos + 1]
                if nxt in _ESCAPED_WHITESPACE:
                    chars.append(_ESCAPED_WHITESPACE[nxt])
                    self.pos += 2
                    continue
                unicode = self.unicode_escape()
                if unicode is not None:
                    chars.append(unicode)
                    continue
                if nxt in '\\"':
                    chars.append(nxt)
                    self.pos += 2
                    continue
            chars.append(char)
            self.pos += 1

    def unicode_escape(self) -> str | None:
        """``\\uXXXX`` at the position (consumed), else None. Two escapes spelling a UTF-16
        surrogate pair are one character, as in Kibana's JavaScript strings."""
        code = self._hex4(self.pos)
        if code is None:
            return None
        self.pos += 6
        if 0xD800 <= code < 0xDC00:
            low = self._hex4(self.pos)
            if low is not None and 0xDC00 <= low < 0xE000:
                self.pos += 6
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
        return chr(code)

    def _hex4(self, at: int) -> int | None:
        digits = self.text[at + 2 : at + 6]
        if self.text.startswith("\\u", at) and len(digits) == 4 and all(c in _HEX
                                                                        for c in digits):
            return int(digits, 16)
        return None

    def unquoted(self, what: str) -> k.Value:
        start = self.pos
        text, n = self.text, self.n
        pieces: list[list[str]] = [[]]
        consumed = 0
        while self.pos < n:
            char = text[self.pos]
            if char == "\\" and self.pos + 1 < n:
                nxt = text[self.pos + 1]
                if nxt in _ESCAPED_WHITESPACE:
                    pieces[-1].append(_ESCAPED_WHITESPACE[nxt])
                    self.pos += 2
                    consumed += 1
                    continue
                if nxt in _SPECIAL:
                    pieces[-1].append(nxt)
                    self.pos += 2
                    consumed += 1
                    continue
                unicode = self.unicode_escape()
                if unicode is not None:
                    pieces[-1].append(unicode)
                    consumed += 1
                    continue
                for word in ("or", "and", "not"):
                    if self.word_at(self.pos + 1, word):
                        pieces[-1].append(text[self.pos + 1 : self.pos + 1 + len(word)])
                        self.pos += 1 + len(word)
                        consumed += 1
                        break
                else:
                    break
                continue
            if char == "*":
                pieces.append([])
                self.pos += 1
                consumed += 1
                continue
            if char in _SPECIAL or self.keyword_at(self.pos):
                break
            pieces[-1].append(char)
            self.pos += 1
            consumed += 1
        if consumed == 0:
            raise self.expect(what)
        strings = ["".join(p) for p in pieces]
        span = self.span(start)
        if len(strings) == 1:
            sequence = strings[0].strip(_JS_SPACE)
            if sequence == "null":
                return k.Value(None, False, None, span)
            if sequence in ("true", "false"):
                return k.Value(sequence == "true", False, None, span)
            return k.Value(sequence, False, None, span)
        strings[0] = strings[0].lstrip(_JS_SPACE)
        strings[-1] = strings[-1].rstrip(_JS_SPACE)
        return k.Value("*".join(strings), False, tuple(strings), span)

    # ------------------------------------------------------------ errors

    def error(self) -> KqlSyntaxError:
        at = self.furthest
        found = "end of input" if at >= self.n else repr(self.text[at])
        expected = ", ".join(sorted(self.expected)) or "a query"
        line = self.text.count("\n", 0, at) + 1
        column = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return KqlSyntaxError(f"expected {expected} but {found} found", self.text, line, column)


def parse_kql(text: str) -> k.Node:
    """Parse a KQL query; raises ``KqlSyntaxError`` with line, column and a caret."""
    if not isinstance(text, str):
        raise TypeError(f"a KQL query is a string, not {type(text).__name__}")
    parser = Parser(text)
    try:
        return parser.start()
    except _Fail:
        raise parser.error() from None
    except RecursionError:
        raise KqlSyntaxError("query nested too deeply", text) from None
