"""The runtime of Elasticsearch EQL's functions and arithmetic (script semantics).

Every function is null-propagating as Elasticsearch's function processors are: a null input
gives null. Strings render as Java would (``true``/``false``, ``1.5``), lengths and indexes
count UTF-16 code units as Java's ``String`` does.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Sequence
from typing import Any

from vigil.eql.patterns import fold


def java_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e7:
            return f"{value:.1f}"
        return repr(value).replace("e+", "E").replace("e-", "E-")
    return str(value)


def _utf16_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(2 if ord(c) > 0xFFFF else 1 for c in text)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _str_args(*values: Any) -> list[str] | None:
    if any(v is None for v in values):
        return None
    return [v if isinstance(v, str) else java_string(v) for v in values]


# ------------------------------------------------------------------ arithmetic


def arithmetic(op: str, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if not (_is_number(left) and _is_number(right)):
        return None
    integers = isinstance(left, int) and isinstance(right, int)
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        return None  # Elasticsearch fails the query; a detection engine must not crash
    if op == "/":
        if integers:
            quotient = abs(left) // abs(right)  # Java truncates toward zero
            return quotient if (left >= 0) == (right >= 0) else -quotient
        return left / right
    # '%': Java's remainder takes the dividend's sign
    if integers:
        remainder = abs(left) % abs(right)
        return remainder if left >= 0 else -remainder
    return math.fmod(left, right)


def negate(value: Any) -> Any:
    if value is None or not _is_number(value):
        return None
    return -value


# ------------------------------------------------------------------ string functions


def fn_between(source: Any, left: Any, right: Any, greedy: Any = False,
               insensitive: bool = False) -> Any:
    """Elasticsearch's ``between`` (BetweenUtils): the text between ``left`` and ``right``;
    "" when either bound is not found; the input itself when it or a bound is empty."""
    args = _str_args(source, left, right)
    if args is None:
        return None
    text, lo, hi = args
    if not text or not lo or not hi:
        return text
    greedy = bool(greedy) if greedy is not None else False
    haystack = text.lower() if insensitive else text
    if insensitive:
        lo, hi = lo.lower(), hi.lower()
    start = haystack.find(lo)
    if start < 0:
        return ""
    start += len(lo)
    end = haystack.rfind(hi) if greedy else haystack.find(hi, start)
    if end < start:
        return ""
    return text[start:end]


def fn_cidr_match(address: Any, *cidrs: Any) -> Any:
    if address is None:
        return None
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        return False
    for cidr in cidrs:
        if cidr is None:
            continue
        try:
            network = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            continue
        if ip.version == network.version and ip in network:
            return True
    return False


def fn_concat(*values: Any) -> Any:
    parts = _str_args(*values)
    return None if parts is None else "".join(parts)


def _text_test(test: Callable[[str, str], bool]) -> Callable[..., Any]:
    """endsWith / startsWith / stringContains: null in, null out; ``~`` folds case."""

    def apply(source: Any, other: Any, insensitive: bool = False) -> Any:
        args = _str_args(source, other)
        if args is None:
            return None
        text, part = args
        if insensitive:
            text, part = fold(text), fold(part)
        return test(text, part)

    return apply


fn_ends_with = _text_test(str.endswith)
fn_starts_with = _text_test(str.startswith)
fn_string_contains = _text_test(lambda text, part: part in text)


def fn_index_of(source: Any, needle: Any, start: Any = None, insensitive: bool = False) -> Any:
    args = _str_args(source, needle)
    if args is None:
        return None
    text, part = args
    if start is None:
        begin = 0
    elif _is_number(start):
        begin = max(0, int(start))
    else:
        return None
    if insensitive:  # Elasticsearch lowers both (Java toLowerCase), positions in the result
        text, part = text.lower(), part.lower()
    found = text.find(part, begin)
    return None if found < 0 else found


def fn_length(source: Any) -> Any:
    if source is None:
        return None
    return _utf16_len(source if isinstance(source, str) else java_string(source))


def fn_number(source: Any, base: Any = None) -> Any:
    if source is None:
        return None
    text = (source if isinstance(source, str) else java_string(source)).strip()
    radix = 10 if base is None else base
    if not isinstance(radix, int) or isinstance(radix, bool) or not 2 <= radix <= 36:
        return None
    try:
        if radix == 10:
            if text.lower().startswith(("0x", "-0x", "+0x")):
                return int(text, 16)
            try:
                return int(text, 10)
            except ValueError:
                value = float(text)
                return None if math.isnan(value) or math.isinf(value) else value
        return int(text, radix)
    except ValueError:
        return None


def fn_string(source: Any) -> Any:
    if source is None:
        return None
    return source if isinstance(source, str) else java_string(source)


def fn_substring(source: Any, start: Any = None, end: Any = None) -> Any:
    if source is None:
        return None
    text = source if isinstance(source, str) else java_string(source)
    if (start is not None and not _is_number(start)) or (end is not None and not _is_number(end)):
        return None
    begin = None if start is None else int(start)
    stop = None if end is None else int(end)
    return text[begin:stop]


def _math(op: str) -> Callable[..., Any]:
    def apply(left: Any, right: Any) -> Any:
        return arithmetic(op, left, right)

    return apply


# name -> (implementation, takes the case-insensitive flag)
FUNCTION_IMPLS: dict[str, tuple[Callable[..., Any], bool]] = {
    "add": (_math("+"), False),
    "between": (fn_between, True),
    "cidrMatch": (fn_cidr_match, False),
    "concat": (fn_concat, False),
    "divide": (_math("/"), False),
    "endsWith": (fn_ends_with, True),
    "indexOf": (fn_index_of, True),
    "length": (fn_length, False),
    "modulo": (_math("%"), False),
    "multiply": (_math("*"), False),
    "number": (fn_number, False),
    "startsWith": (fn_starts_with, True),
    "string": (fn_string, False),
    "stringContains": (fn_string_contains, True),
    "substring": (fn_substring, False),
    "subtract": (_math("-"), False),
}


def call(name: str, args: Sequence[Any], insensitive: bool) -> Any:
    impl, takes_flag = FUNCTION_IMPLS[name]
    if takes_flag:
        return impl(*args, insensitive=insensitive)
    return impl(*args)
