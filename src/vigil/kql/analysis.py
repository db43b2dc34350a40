"""Elasticsearch's ``standard`` analyzer: how a ``text`` field's value becomes terms.

The standard analyzer is Lucene's ``StandardTokenizer`` (Unicode word boundaries, UAX #29)
followed by a lowercase filter; tokens longer than ``max_token_length`` (255) are split every
255 characters. A ``match`` query analyses its text the same way and matches when any term is
in the field; ``match_phrase`` needs the terms at consecutive positions of one value (the
values of an array are 100 positions apart, so a phrase never spans two of them).

The word-boundary rules kept here (UAX #29 §4.1.1) are those that decide tokens in logs:

* letters join letters and digits (WB5, WB9, WB10), digits join digits (WB8);
* a letter, ``:`` / ``.`` / ``'`` (MidLetter, MidNumLet, Single_Quote), a letter join (WB6, WB7):
  ``Reflection.Emit`` and ``a:b`` are one token each, ``C:\\Windows`` two (``c``, ``windows``);
* a digit, ``,`` / ``;`` / ``.`` / ``'`` (MidNum, MidNumLet), a digit join (WB11, WB12):
  ``192.168.1.1`` and ``3,14`` are one token;
* ``_`` and other connector punctuation (ExtendNumLet) join letters and digits (WB13a, WB13b);
* combining marks and format characters stay with what precedes them (WB4);
* each ideograph and each Hiragana character is a token of its own, Katakana runs one token.

Everything else (spaces, ``-``, ``\\``, ``/``, quotes, brackets...) separates tokens and is
not itself a token.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_TOKEN_LENGTH = 255

# Word_Break classes (only those the rules above use).
_OTHER, _LETTER, _NUMERIC, _KATAKANA, _EXTEND_NUM_LET, _MID_LETTER, _MID_NUM, \
    _MID_NUM_LET, _EXTEND, _SINGLE = range(10)

_MID_LETTER_CHARS = frozenset("\u003a\u00b7\u0387\u055f\u05f4\u2027\ufe13\ufe55\uff1a")
_MID_NUM_CHARS = frozenset("\u002c\u003b\u037e\u0589\u060c\u060d\u066c\u07f8\u2044\ufe10"
                           "\ufe14\ufe50\ufe54\uff0c\uff1b")
_MID_NUM_LET_CHARS = frozenset("\u002e\u2018\u2019\u2024\ufe52\uff07\uff0e\u0027")


def _is_single(code: int) -> bool:
    """Ideographs, Hiragana and emoji: one token per character."""
    return (0x3400 <= code <= 0x4DBF or 0x4E00 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x3FFFF or 0x3040 <= code <= 0x309F
            or 0x1F300 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF)


@lru_cache(maxsize=4096)
def _class(char: str) -> int:
    if char.isascii():
        if char.isalpha():
            return _LETTER
        if char.isdigit():
            return _NUMERIC
        if char == "_":
            return _EXTEND_NUM_LET
        if char == ":":
            return _MID_LETTER
        if char in ",;":
            return _MID_NUM
        if char in ".'":
            return _MID_NUM_LET
        return _OTHER
    code = ord(char)
    if _is_single(code):
        return _SINGLE
    if 0x30A0 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return _KATAKANA
    if char in _MID_LETTER_CHARS:
        return _MID_LETTER
    if char in _MID_NUM_CHARS:
        return _MID_NUM
    if char in _MID_NUM_LET_CHARS:
        return _MID_NUM_LET
    category = unicodedata.category(char)
    if category[0] == "L" or category == "Nl":
        return _LETTER
    if category == "Nd":
        return _NUMERIC
    if category == "Pc":
        return _EXTEND_NUM_LET
    if category in ("Mn", "Me", "Mc", "Cf"):
        return _EXTEND
    return _OTHER


_WORD = frozenset({_LETTER, _NUMERIC, _KATAKANA, _EXTEND_NUM_LET})


def _joins(left: int, right: int) -> bool:
    if left in (_LETTER, _NUMERIC):
        return right in (_LETTER, _NUMERIC, _EXTEND_NUM_LET)
    if left == _KATAKANA:
        return right in (_KATAKANA, _EXTEND_NUM_LET)
    if left == _EXTEND_NUM_LET:
        return right in _WORD
    return False


def _lower(token: str) -> str:
    """Java's ``Character.toLowerCase`` per code point (``İ`` → ``i``, not ``i̇``)."""
    lowered = token.lower()
    if len(lowered) == len(token) and "Σ" not in token:  # Python's final-sigma rule differs
        return lowered
    out = []
    for char in token:
        low = char.lower()
        out.append(low[0] if low else char)
    return "".join(out)


def _emit(segment: str, out: list[str]) -> None:
    if not any(_class(c) in (_LETTER, _NUMERIC, _KATAKANA) for c in segment):
        return  # connector punctuation alone is no token
    lowered = _lower(segment)
    for start in range(0, len(lowered), MAX_TOKEN_LENGTH):
        out.append(lowered[start : start + MAX_TOKEN_LENGTH])


# Elastic's windows integration analyses powershell.file.script_block_text with a pattern
# analyzer, ``[\W&&[^-]]+`` (powershell_operational manifest.yml): runs of ASCII word
# characters and ``-`` are the terms (Java's \W is ASCII), lowercased; no length limit.
_POWERSHELL_TERM = re.compile(r"[A-Za-z0-9_-]+")


@lru_cache(maxsize=512)
def analyze(text: str, analyzer: str = "standard") -> tuple[str, ...]:
    """The terms ``analyzer`` makes of ``text``, in position order."""
    if analyzer == "powershell":
        return tuple(term.lower() for term in _POWERSHELL_TERM.findall(text))
    return _standard(text)


def _standard(text: str) -> tuple[str, ...]:
    """The terms the standard analyzer makes of ``text``, in position order."""
    out: list[str] = []
    n = len(text)
    i = 0
    while i < n:
        kind = _class(text[i])
        if kind == _SINGLE:
            j = i + 1
            while j < n and _class(text[j]) == _EXTEND:
                j += 1
            out.append(_lower(text[i:j]))
            i = j
            continue
        if kind not in _WORD:
            i += 1
            continue
        start, last, j = i, kind, i + 1
        while j < n:
            current = _class(text[j])
            if current == _EXTEND:
                j += 1
                continue
            if _joins(last, current):
                last = current
                j += 1
                continue
            if current in (_MID_LETTER, _MID_NUM, _MID_NUM_LET):
                k = j + 1
                while k < n and _class(text[k]) == _EXTEND:
                    k += 1
                after = _class(text[k]) if k < n else _OTHER
                if (last == _LETTER and after == _LETTER and current != _MID_NUM) or (
                        last == _NUMERIC and after == _NUMERIC and current != _MID_LETTER):
                    last = after
                    j = k + 1
                    continue
            break
        _emit(text[start:j], out)
        i = j
    return tuple(out)


def contains_phrase(terms: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """True when ``phrase`` occurs at consecutive positions of ``terms``."""
    if not phrase:
        return False
    if len(phrase) == 1:
        return phrase[0] in terms
    first, width = phrase[0], len(phrase)
    for index, term in enumerate(terms):
        if term == first and terms[index : index + width] == phrase:
            return True
    return False

