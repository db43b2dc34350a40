"""Linear-time text matching: EQL wildcards and Lucene regular expressions on RE2.

Log content and rules are both untrusted: no pattern is ever handed to a backtracking engine.
Wildcards (``:``, ``like``, ``like~``) have ``*`` (any run, empty included) and ``?`` (exactly
one character); a backslash is an ordinary character, as in Elasticsearch EQL, so Windows paths
such as ``"C:\\\\Windows\\\\*.exe"`` work unescaped. Regexes (``regex``, ``regex~``) follow
Lucene's RegExp syntax, translated to RE2 and always anchored at both ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import re2

from vigil.errors import EqlSemanticError

StrPredicate = Callable[[str], bool]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 64 << 20  # room for long alternations of patterns
_RE2_OPTIONS.dot_nl = True  # Lucene's '.' and EQL's '?' match any character, newline too

_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def _re2_literal(text: str) -> str:
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in text)


def wildcard_to_re2(pattern: str) -> str:
    """An EQL wildcard pattern as an (unanchored) RE2 expression."""
    out: list[str] = []
    literal: list[str] = []
    last_star = False
    for char in pattern:
        if char == "*":
            if not last_star:  # a run of stars is one star: keeps hostile patterns small
                out.append(_re2_literal("".join(literal)))
                literal.clear()
                out.append(".*")
            last_star = True
            continue
        last_star = False
        if char == "?":
            out.append(_re2_literal("".join(literal)))
            literal.clear()
            out.append(".")
        else:
            literal.append(char)
    out.append(_re2_literal("".join(literal)))
    return "".join(out)


def has_wildcards(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def fold(text: str) -> str:
    """Unicode *simple* case folding, one code point to one code point (CaseFolding.txt
    statuses C and S, no full or Turkic mappings): how ``:``, ``in~``, ``like~``,
    ``regex~`` and the ``~`` string functions compare. It is Lucene's ``CaseFolding`` (the
    case-insensitive term, prefix, wildcard and regexp queries Elasticsearch builds for them
    fold it since elastic/elasticsearch#153513; 8.x folded ASCII letters only, so there
    ``É`` and ``é`` differ) and RE2's ``(?i)``, so the plain shapes below and the RE2 path
    agree: the Kelvin sign, ``k`` and ``K`` are one letter, as are ``ſ``/``s`` and ``ς``/``σ``/``Σ``;
    ``İ`` and ``ı`` fold to themselves."""
    if text.isascii():
        return text.lower()
    return text.translate(_SIMPLE_FOLD)


class _SimpleFolding(dict[int, str]):
    """Code point -> its simple case folding, worked out on first use (``str.translate``
    asks a dict subclass's ``__missing__``): Python's ``casefold`` is the full folding, so a
    code point it expands keeps ``lower`` when that is one code point (the S mapping, e.g.
    ``ẞ`` -> ``ß``), else itself, but for the three S mappings ``lower`` does not give."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        folded = char.casefold()
        if len(folded) != 1:
            folded = _SIMPLE_ONLY.get(char) or (char.lower() if len(char.lower()) == 1
                                               else char)
        self[code] = folded
        return folded


# CaseFolding.txt S mappings between two characters that full folding expands alike.
_SIMPLE_ONLY = {"\u1fd3": "\u0390", "\u1fe3": "\u03b0", "\ufb05": "\ufb06"}
_SIMPLE_FOLD = _SimpleFolding()


@dataclass(frozen=True, slots=True)
class _Plain:
    """A wildcard pattern simple enough for str methods (the common shapes in rules)."""

    prefix: str
    suffix: str
    middle: str | None  # *middle*
    exact: str | None


def _plain_shape(pattern: str) -> _Plain | None:
    if "?" in pattern:
        return None
    if "*" not in pattern:
        return _Plain("", "", None, pattern)
    stripped = pattern.strip("*")
    if "*" in stripped:
        return None
    if pattern.startswith("*") and pattern.endswith("*") and len(pattern) >= 2 and stripped:
        return _Plain("", "", stripped, None)
    if pattern.startswith("*") and not pattern.endswith("*"):
        return _Plain("", stripped, None, None)
    if pattern.endswith("*") and not pattern.startswith("*"):
        return _Plain(stripped, "", None, None)
    if not stripped:  # '*' or '**': anything
        return _Plain("", "", "", None)
    return None


def compile_wildcards(patterns: Sequence[str], *, case_insensitive: bool) -> StrPredicate:
    """One predicate matching a string against any of the wildcard patterns."""
    exact: set[str] = set()
    prefixes: list[str] = []
    suffixes: list[str] = []
    middles: list[str] = []
    complex_patterns: list[str] = []
    for pattern in patterns:
        key = fold(pattern) if case_insensitive else pattern
        shape = _plain_shape(key)  # folding keeps lengths: the shapes compare folded text
        if shape is None:
            complex_patterns.append(pattern)
        elif shape.exact is not None:
            exact.add(shape.exact)
        elif shape.middle is not None:
            middles.append(shape.middle)
        elif shape.prefix:
            prefixes.append(shape.prefix)
        else:
            suffixes.append(shape.suffix)
    regexes = _compile_alternations([wildcard_to_re2(p) for p in complex_patterns],
                                    case_insensitive, "wildcard pattern")
    prefix_tuple = tuple(prefixes)
    suffix_tuple = tuple(suffixes)
    middle_tuple = tuple(middles)
    any_string = "" in middle_tuple

    def matches(value: str) -> bool:
        if any_string:
            return True
        text = fold(value) if case_insensitive else value
        if text in exact:
            return True
        if prefix_tuple and text.startswith(prefix_tuple):
            return True
        if suffix_tuple and text.endswith(suffix_tuple):
            return True
        for middle in middle_tuple:
            if middle in text:
                return True
        return any(regex.fullmatch(value) is not None for regex in regexes)

    return matches


def compile_pieces(pieces: Sequence[str]) -> StrPredicate:
    """Whole-string match of literal ``pieces`` with any run between them (KQL's ``*``, where
    ``?`` and an escaped ``*`` are plain characters); case-sensitive."""
    if len(pieces) == 1:
        only = pieces[0]
        return lambda value: value == only
    if len(pieces) == 2 and not pieces[1]:
        prefix = pieces[0]
        return lambda value: value.startswith(prefix)
    if len(pieces) == 2 and not pieces[0]:
        suffix = pieces[1]
        return lambda value: value.endswith(suffix)
    if len(pieces) == 3 and not pieces[0] and not pieces[2]:
        middle = pieces[1]
        return lambda value: middle in value
    regex = _compile_re2(".*".join(_re2_literal(p) for p in pieces), False, "wildcard")
    return lambda value: regex.fullmatch(value) is not None


# Patterns per compiled alternation: one RE2 program for a rule's list of patterns is fast,
# but thousands in one program exhaust RE2's DFA memory (it then falls back to a slow path).
_ALTERNATION_CHUNK = 256


def _compile_alternations(bodies: Sequence[str], case_insensitive: bool,
                          what: str) -> list[re2._Regexp]:
    return [
        _compile_re2("|".join(f"(?:{b})" for b in bodies[i : i + _ALTERNATION_CHUNK]),
                     case_insensitive, what)
        for i in range(0, len(bodies), _ALTERNATION_CHUNK)
    ]


def _compile_re2(body: str, case_insensitive: bool, what: str) -> re2._Regexp:
    options = _RE2_OPTIONS
    if case_insensitive:
        options = re2.Options()
        options.max_mem = _RE2_OPTIONS.max_mem
        options.dot_nl = True
        options.case_sensitive = False
    try:
        return re2.compile(f"(?:{body})", options)
    except re2.error as exc:
        raise EqlSemanticError(f"cannot compile {what}: {exc}") from exc


# ------------------------------------------------------------------ Lucene regex


class LuceneRegexError(ValueError):
    pass


def lucene_to_re2(pattern: str) -> str:
    """Translate a Lucene RegExp (Elasticsearch's ``regexp`` syntax) to RE2 syntax.

    Lucene differs from RE2 in a few ways that matter: a backslash escapes any character
    (``\\d \\s \\w`` and their negations are classes), ``"..."`` quotes a literal string,
    ``@`` is any string, ``#`` the empty language, and ``^``/``$`` are plain characters
    (matches are always whole-string). Intersection ``&``, complement ``~`` and numeric
    intervals ``<n-m>`` have no RE2 counterpart and are refused.
    """
    out: list[str] = []
    i = 0
    n = len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise LuceneRegexError("the regex ends with a lone backslash")
            nxt = pattern[i + 1]
            out.append("\\" + nxt if nxt in "dDsSwW" else _re2_class_literal(nxt, in_class))
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
                out.append(c)
            elif c == "[":
                out.append("\\[")
            else:
                out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            if pattern.startswith("^", i + 1):
                out.append("^")
                i += 1
            # a ']' right after '[' or '[^' is literal in Lucene
            if pattern.startswith("]", i + 1):
                out.append("\\]")
                i += 1
        elif c == '"':
            close = pattern.find('"', i + 1)
            if close < 0:
                raise LuceneRegexError('unterminated "quoted" string in the regex')
            out.append(_re2_literal(pattern[i + 1 : close]))
            i = close
        elif c == "@":
            out.append(".*")
        elif c == "#":
            out.append("[^\\x00-\\x{10FFFF}]")
        elif c in "^$":
            out.append("\\" + c)
        elif c == "&":
            raise LuceneRegexError("intersection '&' is not supported in regex patterns")
        elif c == "~":
            raise LuceneRegexError("complement '~' is not supported in regex patterns")
        elif c == "<":
            raise LuceneRegexError("numeric intervals '<n-m>' are not supported in regex "
                                   "patterns")
        else:
            out.append(c)
        i += 1
    if in_class:
        raise LuceneRegexError("unterminated character class '[' in the regex")
    return "".join(out)


def _re2_class_literal(char: str, in_class: bool) -> str:
    if char.isalnum():
        return char
    return "\\" + char


def compile_regexes(patterns: Sequence[str], *, case_insensitive: bool) -> StrPredicate:
    """One predicate matching a string against any of the Lucene regexes (whole string)."""
    parts: list[str] = []
    for pattern in patterns:
        try:
            parts.append(lucene_to_re2(pattern))
        except LuceneRegexError as exc:
            raise EqlSemanticError(f"invalid regex {pattern!r}: {exc}") from exc
    regexes = _compile_alternations(parts, case_insensitive, "regex")

    def matches(value: str) -> bool:
        return any(regex.fullmatch(value) is not None for regex in regexes)

    return matches
