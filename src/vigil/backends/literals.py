"""Strings a matching value must contain, from Lucene regexes and non-ASCII pattern text.

``regex_cnf(pattern, ci)`` gives clauses (sets of strings, one of which occurs in the value)
that every string the reference's ``compile_regexes`` accepts satisfies, or ``[]`` when it
knows nothing. The argument, node by node of Lucene's RegExp syntax (as ``lucene_to_re2``
reads it; the match is always of the whole value, but only containment is claimed here):

* an ordinary character, ``\\x`` (x not one of ``dDsSwW``) and ``"quoted"`` text match
  themselves, so a run of them concatenated occurs verbatim in the value;
* a concatenation needs every part's clauses and every maximal run of adjacent literals;
* ``A|B`` needs, of each branch, one of its strings: a clause is the union of one clause per
  branch (no clause if some branch has none);
* ``X+`` and ``X{n,...}`` with n >= 1 need X's clauses (one copy of X occurs), but X is no
  longer a fixed literal (it does not join the runs around it); ``X*``, ``X?``, ``X{0,...}``
  need nothing; a group is its content; ``.``, ``@``, ``#``, classes and ``\\d``-style
  escapes need nothing, except a non-negated class whose members are all non-ASCII (and
  caseless, when matched case-insensitively), which needs ``NON_ASCII``;
* anything unexpected (``{`` not forming a repeat, ``&``, ``~``, ``<``, ``>``, unbalanced
  parentheses) gives up: ``[]``.

Case: ``regex~`` is RE2 with Unicode case folding, under which an ASCII letter may match a
non-ASCII one (``k`` matches the Kelvin sign). Strings are lowered for ``ci``; a string
keeps non-ASCII characters only when they are *caseless* (``caseless``: no case mapping to
or from any other character), so that a value holding a match holds the character itself.
Consumers treat values with non-ASCII text as opaque (always passing), so an ASCII needle
compared with an ASCII value by ``str.lower`` is exact.

``NON_ASCII`` is a marker string: the value holds a non-ASCII character. No ASCII text
contains it, and values with non-ASCII text are opaque to every consumer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

NON_ASCII = "\x80"  # a marker: some character of the value is not ASCII
MAX_CLASS = 4096  # class members enumerated at most (else: no constraint)
_SPECIAL_ESCAPES = frozenset("dDsSwW")
_REPEAT = re.compile(r"\{(\d+)(,\d*)?\}")

Clauses = list[frozenset[str]]


def caseless(char: str) -> bool:
    """No case mapping touches ``char``: it maps to itself, and no other character maps to
    it (checked over every code point in the tests), in any case-insensitive comparison of
    ``patterns.fold`` or RE2 (both follow Unicode's case tables, which only pair cased
    letters and a few marks, all of which have mappings of their own)."""
    if char.isascii():
        return not char.isalpha()
    if char.lower() != char or char.upper() != char or char.casefold() != char:
        return False
    if char.title() != char:
        return False
    category = unicodedata.category(char)
    return category[0] not in "LM"


def safe_runs(text: str, ci: bool) -> list[str]:
    """Maximal runs of ``text`` (lowered when ``ci``) whose characters are ASCII, or
    non-ASCII and (case-sensitive or caseless)."""
    runs: list[str] = []
    run: list[str] = []
    for char in text + "\0":
        if char != "\0" and (char.isascii() or not ci or caseless(char)):
            run.append(char.lower() if ci and char.isascii() else char)
            continue
        if run:
            runs.append("".join(run))
        run = []
    return runs


def needs_non_ascii(text: str, ci: bool) -> bool:
    """Some character every match must contain itself is non-ASCII (``text``: the parts of a
    pattern that occur verbatim in a matching value)."""
    return any(not c.isascii() and (not ci or caseless(c)) for c in text)


class _GiveUp(Exception):
    pass


class _Node:
    """What a regex part requires: ``literal`` when it matches exactly that text."""

    __slots__ = ("clauses", "literal")

    def __init__(self, clauses: Clauses, literal: str | None = None) -> None:
        self.clauses = clauses
        self.literal = literal


class _Parser:
    def __init__(self, pattern: str, ci: bool) -> None:
        self.text = pattern
        self.at = 0
        self.ci = ci

    def parse(self) -> Clauses:
        node = self.alternation()
        if self.at != len(self.text):
            raise _GiveUp
        return node.clauses

    def alternation(self) -> _Node:
        branches = [self.concatenation()]
        while self.at < len(self.text) and self.text[self.at] == "|":
            self.at += 1
            branches.append(self.concatenation())
        if len(branches) == 1:
            return branches[0]
        union: set[str] = set()
        for branch in branches:
            if not branch.clauses:
                return _Node([])
            union |= max(branch.clauses, key=lambda c: min(len(s) for s in c))
        return _Node([frozenset(union)])

    def concatenation(self) -> _Node:
        parts: list[_Node] = []
        while self.at < len(self.text) and self.text[self.at] not in "|)":
            parts.append(self.repeat(self.atom()))
        clauses: Clauses = []
        run: list[str] = []
        literal_only = True

        def close() -> None:
            if run:
                for piece in safe_runs("".join(run), self.ci):
                    clauses.append(frozenset({piece}))
                run.clear()

        for part in parts:
            if part.literal is not None:
                run.append(part.literal)
            else:
                literal_only = False
                close()
                clauses.extend(part.clauses)
        whole = "".join(run) if literal_only else None
        close()
        return _Node(clauses, whole)

    def repeat(self, node: _Node) -> _Node:
        while self.at < len(self.text):
            char = self.text[self.at]
            if char in "*?":
                self.at += 1
                node = _Node([])
            elif char == "+":
                self.at += 1
                node = _Node(node.clauses)
            elif char == "{":
                found = _REPEAT.match(self.text, self.at)
                if found is None:
                    raise _GiveUp
                self.at = found.end()
                node = _Node(node.clauses if int(found.group(1)) >= 1 else [])
            else:
                break
        return node

    def atom(self) -> _Node:
        char = self.text[self.at]
        self.at += 1
        if char == "\\":
            if self.at >= len(self.text):
                raise _GiveUp
            escaped = self.text[self.at]
            self.at += 1
            return _Node([]) if escaped in _SPECIAL_ESCAPES else self.literal(escaped)
        if char == "(":
            inner = self.alternation()
            if self.at >= len(self.text) or self.text[self.at] != ")":
                raise _GiveUp
            self.at += 1
            return _Node(inner.clauses, inner.literal)
        if char == "[":
            return self.char_class()
        if char == '"':
            close = self.text.find('"', self.at)
            if close < 0:
                raise _GiveUp
            quoted = self.text[self.at : close]
            self.at = close + 1
            return self.literal(quoted)
        if char in ".@#":
            return _Node([])
        if char in "&~<>{}])+*?|":
            raise _GiveUp
        return self.literal(char)

    def literal(self, text: str) -> _Node:
        if not text:
            return _Node([], "")
        clauses = [frozenset({p}) for p in safe_runs(text, self.ci)]
        return _Node(clauses, text)

    def char_class(self) -> _Node:
        """``[...]`` as ``lucene_to_re2`` reads it; needs NON_ASCII if every member does."""
        negated = self.text.startswith("^", self.at)
        if negated:
            self.at += 1
        members: list[tuple[str, bool]] = []  # (character, escaped)
        first = True
        while True:
            if self.at >= len(self.text):
                raise _GiveUp
            char = self.text[self.at]
            if char == "]" and not first:
                self.at += 1
                break
            first = False
            escaped = char == "\\"
            if escaped:
                if self.at + 1 >= len(self.text):
                    raise _GiveUp
                char = self.text[self.at + 1]
                self.at += 2
                if char in _SPECIAL_ESCAPES:
                    members.append(("a", True))  # \d, \w, \s ... hold ASCII members
                    continue
            else:
                self.at += 1
            members.append((char, escaped))
        # Ranges a-b (an unescaped "-" between two members) are expanded.
        expanded: list[str] = []
        i = 0
        while i < len(members):
            if i + 2 < len(members) and members[i + 1] == ("-", False):
                low, high = ord(members[i][0]), ord(members[i + 2][0])
                if high < low or high - low > MAX_CLASS:
                    return _Node([])
                expanded.extend(chr(c) for c in range(low, high + 1))
                i += 3
            else:
                expanded.append(members[i][0])
                i += 1
        if negated or not expanded:
            return _Node([])
        if all(needs_non_ascii(c, self.ci) for c in expanded):
            return _Node([frozenset({NON_ASCII})])
        return _Node([])


def regex_cnf(pattern: str, ci: bool) -> Clauses:
    """Clauses every value matching the Lucene regex satisfies (``[]``: nothing known)."""
    try:
        clauses = _Parser(pattern, ci).parse()
    except (_GiveUp, RecursionError):
        return []
    return list(dict.fromkeys(c for c in clauses if c and all(c)))


def best(clauses: Iterable[frozenset[str]]) -> frozenset[str] | None:
    """The clause whose shortest string is longest (NON_ASCII counts as long)."""
    def score(clause: frozenset[str]) -> int:
        return min(100 if s == NON_ASCII else len(s) for s in clause)
    listed = list(clauses)
    return max(listed, key=score) if listed else None


__all__ = ["NON_ASCII", "best", "caseless", "needs_non_ascii", "regex_cnf", "safe_runs"]
