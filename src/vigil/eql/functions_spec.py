"""The names and arities of Elasticsearch EQL's functions (the parser's view).

Elasticsearch's EQL function reference: add, between, cidrMatch, concat, divide, endsWith,
indexOf, length, modulo, multiply, number, startsWith, string, stringContains, substring,
subtract. Names are case-insensitive; ``~`` asks for the case-insensitive variant where one
exists.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    min_args: int
    max_args: int | None  # None: unbounded
    tilde: bool  # has a case-insensitive ``~`` variant


FUNCTIONS: dict[str, FunctionSpec] = {
    spec.name.lower(): spec
    for spec in (
        FunctionSpec("add", 2, 2, False),
        FunctionSpec("between", 3, 4, True),
        FunctionSpec("cidrMatch", 2, None, False),
        FunctionSpec("concat", 1, None, False),
        FunctionSpec("divide", 2, 2, False),
        FunctionSpec("endsWith", 2, 2, True),
        FunctionSpec("indexOf", 2, 3, True),
        FunctionSpec("length", 1, 1, False),
        FunctionSpec("modulo", 2, 2, False),
        FunctionSpec("multiply", 2, 2, False),
        FunctionSpec("number", 1, 2, False),
        FunctionSpec("startsWith", 2, 2, True),
        FunctionSpec("string", 1, 1, False),
        FunctionSpec("stringContains", 2, 2, True),
        FunctionSpec("substring", 2, 3, False),
        FunctionSpec("subtract", 2, 2, False),
    )
}

# Functions of the eql (Endgame) dialect that Elasticsearch does not have.
ENDGAME_ONLY_FUNCTIONS = frozenset(
    name.lower()
    for name in (
        "arrayContains", "arrayCount", "arraySearch", "match", "matchLite", "safe", "wildcard",
        "cidrmatch_v4", "dateFormat",
    )
)
