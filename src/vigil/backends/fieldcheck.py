"""A cheap necessary condition of a stage, checked on a parsed event before the reference
predicate: every clause of the stage's field-tagged CNF must have an atom that holds for a
string value of its field.

The CNF (``field_cnf``) is derived like ``prefilter``'s byte literals, one step earlier: on
the values the reference evaluator reads, not on their JSON encoding. An atom is derived only
where the reference's answer *requires* a string value of the field that
(*exact*) equals its text, or (otherwise) contains it, case-sensitively or, for ``ci`` atoms,
after ``patterns.fold`` (Unicode simple case folding; ``str.lower`` on ASCII text):

* untyped fields (dynamic mapping: a string value is a keyword): ``f == "c"`` and ``f in
  ("c", ...)`` need a string value equal to ``c`` (number-like constants too: a *string*
  value is compared as text; a number is compared numerically, see below); ``in~`` and ``:``
  without wildcards need ``fold(value) == fold(c)``; ``:`` with wildcards and ``like``/
  ``like~`` need the longest verbatim run between wildcards (``prefilter.atom_for``);
* string-typed fields: ``prefilter``'s rules (verbatim runs of non-number-like constants);
* ``and`` concatenates, ``or`` unions one clause per branch, anything else (``not``, ``!=``,
  functions, regexes, typed fields) gives nothing; the stage's category is an exact atom on
  the category field.

Values are read with the schema's own getter, the one the compiled predicate reads. A value
that is not an ASCII string (a number, a boolean, text whose case folding may differ from
ASCII lowercasing) makes the field *opaque*: every clause on it holds. For ASCII text
``str.lower`` is ``fold``, and a verbatim run is ASCII, so the checks are exact there.

More atoms (``literals`` has the argument): ``regex``/``regex~`` give the strings every match
contains; ``startsWith``/``endsWith``/``stringContains`` (and ``~``) of a field and a string
constant give a ``prefix``/``suffix``/``contains`` atom of the constant (folded for ``~``:
for an ASCII value ``str.lower`` is ``fold``, so the test is the function's own); wildcard
text keeps non-ASCII characters that are caseless (or any, case-sensitively), and text
made only of such characters needs ``NON_ASCII``. ``(A1 and A2) or (B1 and B2)`` gives every
``Ai or Bj`` (when there are few), not only the best-looking pair.

Field values are read once per event and shared by every stage checked on it (``FieldCache``):
the point is that hundreds of rules read the same few fields. ``StageIndex`` dispatches the
candidate stages of a line by one clause each (``key_clause``: exact atoms on one field): a
stage none of whose key texts is a value of the field fails that clause, hence its check, so
it is dropped without being looked at; an opaque field keeps every stage keyed on it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vigil.backends.literals import NON_ASCII, best, needs_non_ascii, regex_cnf, safe_runs
from vigil.backends.prefilter import _number_like, atom_for
from vigil.eql import ast
from vigil.eql.patterns import fold, has_wildcards
from vigil.eql.schema import STRING_TYPES, Schema

Event = Mapping[str, Any]
Getter = Callable[[Event], Any]

# field, text, ci, mode. Modes: "exact" (a value equals text), "contains" (text is
# NUL-separated runs that all occur in one value; NUL alone: the field has a value), "prefix"
# and "suffix" (a value starts / ends with text).
FieldAtom = tuple[str, str, bool, str]
FieldClause = frozenset[FieldAtom]  # one atom holds; the empty clause never does
FieldCnf = tuple[FieldClause, ...]

# (opaque, values joined by NUL with a NUL either side, the same lowercased).
_Values = tuple[bool, str, str]
_NOTHING: _Values = (False, "", "")


def _field_score(clause: FieldClause) -> float:
    if not clause:
        return float("inf")
    return min(0 if text == "\0" else len(text) + (8 if mode == "exact" else 0)
               for _f, text, _c, mode in clause) - 0.01 * len(clause)


def _present(name: str) -> FieldAtom:
    """The field has a value (a missing field fails the comparison)."""
    return (name, "\0", False, "contains")


MAX_DISTRIBUTED = 16  # clauses an ``or`` may expand to

# The string-test functions whose constant argument a matching value must hold, and how.
_STRING_TESTS = {"startsWith": "prefix", "endsWith": "suffix", "stringContains": "contains"}


class _FieldDeriver:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def kind(self, node: ast.Expr) -> str | None:
        """"untyped", "text" (a string type) or None (typed otherwise, or not a field)."""
        if not isinstance(node, ast.Field):
            return None
        field_type = self.schema.field_type(node.name)
        if field_type is None:
            return "untyped"
        return "text" if field_type in STRING_TYPES else None

    def constant_atom(self, name: str, kind: str, value: object, ci: bool) -> FieldAtom | None:
        """The atom of an exact comparison (``==``, ``in``, ``in~``) with a constant."""
        if not isinstance(value, str):
            return None
        if kind == "untyped":
            return (name, fold(value) if ci else value, ci, "exact")
        if _number_like(value):
            return None
        atom = atom_for(value, ci)
        return None if atom is None else (name, atom.text.decode("ascii"), ci, "contains")

    def regex(self, name: str, patterns: Sequence[ast.Literal], ci: bool) -> list[FieldClause]:
        """Some pattern matches: one required string of some pattern (``literals``); the
        strings of the chosen clause of each pattern are alternatives."""
        if len(patterns) == 1 and isinstance(patterns[0].value, str):
            every = regex_cnf(patterns[0].value, ci)
            if every:
                return [frozenset({(name, text, ci, "contains") for text in clause})
                        for clause in every]
        union: set[FieldAtom] = set()
        for pattern in patterns:
            chosen = (best(regex_cnf(pattern.value, ci)) if isinstance(pattern.value, str)
                      else None)
            if chosen is None:
                return [frozenset({_present(name)})]  # when_missing=False
            union |= {(name, text, ci, "contains") for text in chosen}
        return [frozenset(union)]

    def cnf(self, node: ast.Expr) -> list[FieldClause]:
        match node:
            case ast.And(operands=ops):
                return [c for op in ops for c in self.cnf(op)]
            case ast.Or(operands=ops):
                # (A1 and A2) or (B1 and B2) implies every (Ai or Bj): all such unions when
                # they are few, else one clause per branch (the best-looking).
                branches = [self.cnf(op) for op in ops]
                if any(not clauses for clauses in branches):
                    return []
                if math.prod(len(c) for c in branches) <= MAX_DISTRIBUTED:
                    return list(dict.fromkeys(frozenset().union(*combo)
                                              for combo in itertools.product(*branches)))
                union: set[FieldAtom] = set()
                for clauses in branches:
                    best_clause: FieldClause = max(clauses, key=_field_score)
                    union |= best_clause
                return [frozenset(union)]
            case ast.Literal(value=value):
                return [] if value is True else [frozenset()]
            case ast.Comparison(op=op, left=left, right=right):
                field, constant = (left, right) if isinstance(right, ast.Literal) else (right, left)
                if not isinstance(field, ast.Field) or not isinstance(constant, ast.Literal):
                    return []
                if constant.value is None:  # f != null: a value; f == null: nothing
                    return [frozenset({_present(field.name)})] if op == "!=" else []
                if op == "!=":
                    return []
                # ==, <, <=, >, >= on a missing field are false (when_missing=False).
                kind = self.kind(field)
                atom = None
                if op == "==" and kind is not None:
                    atom = self.constant_atom(field.name, kind, constant.value, False)
                return [frozenset({atom or _present(field.name)})]
            case ast.Match(kind=match_kind, value=value, patterns=patterns, case_insensitive=ci):
                if not isinstance(value, ast.Field) or any(p.value is None for p in patterns):
                    return []
                kind = self.kind(value)
                if kind is None:
                    return [frozenset({_present(value.name)})]  # when_missing=False
                if match_kind == "regex":
                    return self.regex(value.name, patterns, ci)
                atoms: set[FieldAtom] = set()
                for pattern in patterns:
                    text = pattern.value
                    if not isinstance(text, str):
                        return []  # null matches a missing field; numbers compare as numbers
                    insensitive = True if match_kind == ":" else ci
                    if kind == "untyped" and match_kind == ":" and not has_wildcards(text):
                        atoms.add((value.name, fold(text), True, "exact"))
                        continue
                    if kind == "untyped":
                        # Every ASCII run between wildcards is in a matching value.
                        runs = tuple(sorted({r for piece in re.split(r"[*?]", text)
                                             for r in safe_runs(piece, insensitive)},
                                            key=len, reverse=True))
                        atoms.add((value.name, "\0".join(runs) if runs else "\0", insensitive,
                                   "contains"))
                        continue
                    run = atom_for(text, insensitive, wildcards=True)
                    if run is None:
                        # Only non-verbatim text: a non-ASCII character may still be needed.
                        marker = needs_non_ascii(re.sub(r"[*?]", "", text), insensitive)
                        if not marker:
                            return [frozenset({_present(value.name)})]
                        atoms.add((value.name, NON_ASCII, insensitive, "contains"))
                        continue
                    atoms.add((value.name, run.text.decode("ascii"), insensitive, "contains"))
                return [frozenset(atoms)]
            case ast.FunctionCall(name=name, args=(ast.Field() as value, ast.Literal() as arg),
                                  case_insensitive=ci) if name in _STRING_TESTS:
                # The script is true only if, for some value v of the field (each element of
                # a list in turn), fold(v) (or v) starts with / ends with / contains the
                # constant; a non-string v is read as its Java text (opaque here).
                if (self.kind(value) is None or not isinstance(arg.value, str) or not arg.value
                        or "\0" in arg.value):
                    return []
                needle = fold(arg.value) if ci else arg.value
                return [frozenset({(value.name, needle, ci, _STRING_TESTS[name])})]
            case ast.InSet(value=value, options=options, case_insensitive=ci, negated=False):
                if (not isinstance(value, ast.Field)
                        or not all(isinstance(o, ast.Literal) and o.value is not None
                                   for o in options)):
                    return []
                kind = self.kind(value)
                atoms = set()
                for option in options:
                    assert isinstance(option, ast.Literal)
                    found = (None if kind is None
                             else self.constant_atom(value.name, kind, option.value, ci))
                    if found is None:
                        return [frozenset({_present(value.name)})]  # when_missing=False
                    atoms.add(found)
                return [frozenset(atoms)]
        return []


def field_cnf(query: ast.EventQuery, schema: Schema, category_field: str) -> FieldCnf:
    """The field clauses one stage's events must satisfy (category included)."""
    clauses = _FieldDeriver(schema).cnf(query.condition)
    if query.category is not None:
        # Compared by ==, or contained in a list of values (StagePlan.matches).
        clauses.append(frozenset({(category_field, query.category, False, "exact")}))
    return tuple(dict.fromkeys(clauses))


def query_field_cnfs(query: ast.Query, schema: Schema, category_field: str) -> list[FieldCnf]:
    """One field CNF per filter of the query, in ``Compiled.stage_nodes`` order."""
    return [field_cnf(q, schema, category_field) for q in query.event_queries()]


class FieldCache:
    """The values of the fields read so far for one event."""

    __slots__ = ("event", "values")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.values: dict[str, _Values] = {}

    def get(self, name: str, getter: Getter) -> _Values:
        found = self.values.get(name)
        if found is not None:
            return found
        value = getter(self.event)
        if value is None:
            found = _NOTHING
        else:
            items = value if isinstance(value, list) else (value,)
            texts: list[str] = []
            opaque = False
            for item in items:
                if isinstance(item, str) and item.isascii():
                    texts.append(item)
                else:
                    opaque = True
            joined = "\0" + "\0".join(texts) + "\0"
            found = (opaque, joined, joined.lower())
        self.values[name] = found
        return found


_COMMON = frozenset({"host.os.type", "event.type", "event.category", "event.kind",
                     "event.outcome"})


def _clause_order(clause: FieldClause) -> tuple[int, float]:
    """Clauses likely to fail first: not on the fields every event of a kind shares."""
    common = any(name in _COMMON for name, _t, _c, _m in clause)
    return (1 if common else 0, -_field_score(clause))


SET_CLAUSE = 8  # exact atoms on one field from which a clause is tested by set look-ups

# A clause as tested: (name, getter, exact texts, folded texts) when it is made of exact
# atoms on one field (``SET_CLAUSE`` or more), else None; a screen for other big clauses
# on one field (``_screen``), else None; and its atoms as (name, getter, needles, ci).
_Screen = tuple[str, Getter, "re.Pattern[str] | None", "re.Pattern[str] | None"]
_Built = tuple[tuple[str, Getter, frozenset[str], frozenset[str]] | None, _Screen | None,
               tuple[tuple[str, Getter, tuple[str, ...], bool], ...]]


def _screen(clause: FieldClause, schema: Schema) -> _Screen | None:
    """For a big clause on one field (``SET_CLAUSE`` atoms or more, e.g. 65 path fragments
    of ``process.executable``): one regex per case mode, an alternation of the longest
    needle of each atom. An atom holds only if all its needles are in the (lowercased)
    joined values, so a clause none of whose alternations matches fails; one that matches
    is decided by the atoms themselves. Python's ``re`` runs a literal alternation over a
    short value in C, ~40x faster than the needle loop."""
    names = {name for name, _t, _c, _m in clause}
    if len(clause) < SET_CLAUSE or len(names) != 1:
        return None
    patterns: dict[bool, list[str]] = {False: [], True: []}
    for _n, text, ci, mode in clause:
        patterns[ci].append(re.escape(max(_needles(text, mode), key=len)))
    name = next(iter(names))

    def compiled(parts: list[str]) -> re.Pattern[str] | None:
        return re.compile("|".join(sorted(set(parts), key=lambda p: (-len(p), p)))) if parts else None

    return (name, schema.getter(name), compiled(patterns[False]), compiled(patterns[True]))


def _set_form(clause: FieldClause, schema: Schema,
              ) -> tuple[str, Getter, frozenset[str], frozenset[str]] | None:
    """A big clause of exact atoms on one field, as the sets of its texts: it holds iff the
    field is opaque or one of its values (a NUL-free stretch of the joined values, what the
    needle ``\0text\0`` finds) is an exact text or, lowercased, a folded one."""
    names = {name for name, _t, _c, _m in clause}
    if (len(clause) < SET_CLAUSE or len(names) != 1
            or any(mode != "exact" or "\0" in text for _n, text, _c, mode in clause)):
        return None
    name = next(iter(names))
    return (name, schema.getter(name), frozenset(t for _n, t, ci, _m in clause if not ci),
            frozenset(t for _n, t, ci, _m in clause if ci))


class StageCheck:
    """The necessary condition of one stage (``build`` gives None when it has no clause)."""

    __slots__ = ("clauses",)

    def __init__(self, clauses: list[_Built]) -> None:
        self.clauses = clauses

    @classmethod
    def build(cls, cnf: FieldCnf, schema: Schema) -> StageCheck | None:
        if not cnf:
            return None
        built: list[_Built] = []
        for clause in sorted(cnf, key=_clause_order):
            keyed = _set_form(clause, schema)
            built.append((keyed, None if keyed is not None else _screen(clause, schema), tuple(
                (name, schema.getter(name),
                 _needles(text, mode), ci)
                for name, text, ci, mode in sorted(clause))))
        return cls(built)

    def __call__(self, cache: FieldCache) -> bool:
        values = cache.values
        clauses = self.clauses
        for number, (keyed, screen, clause) in enumerate(clauses):
            if screen is not None:
                name, getter, plain, folded_re = screen
                found = values.get(name)
                opaque, joined, lowered = found if found is not None else cache.get(name, getter)
                if not opaque and not (
                        (plain is not None and plain.search(joined) is not None)
                        or (folded_re is not None and folded_re.search(lowered) is not None)):
                    if number:
                        clauses.insert(0, clauses.pop(number))
                    return False
            if keyed is not None:
                name, getter, exact, folded = keyed
                found = values.get(name)
                opaque, joined, lowered = found if found is not None else cache.get(name, getter)
                if opaque or (joined and (
                        (exact and not exact.isdisjoint(joined[1:-1].split("\0")))
                        or (folded and not folded.isdisjoint(lowered[1:-1].split("\0"))))):
                    continue
            else:
                for name, getter, needles, ci in clause:
                    found = values.get(name)
                    opaque, joined, lowered = found if found is not None else cache.get(name, getter)
                    if opaque:
                        break
                    hay = lowered if ci else joined
                    for needle in needles:
                        if needle not in hay:
                            break
                    else:
                        break
                else:
                    if number:  # move to front: the clause that fails is tried first next time
                        clauses.insert(0, clauses.pop(number))
                    return False
                continue
            if number:
                clauses.insert(0, clauses.pop(number))
            return False
        return True


def _needles(text: str, mode: str) -> tuple[str, ...]:
    """What the NUL-joined values (``FieldCache``) must contain: a value is a maximal
    NUL-free stretch between two NULs, so ``\0text`` is a value's start, ``text\0`` its end."""
    if mode == "exact":
        return (f"\0{text}\0",)
    if mode == "prefix":
        return (f"\0{text}",)
    if mode == "suffix":
        return (f"{text}\0",)
    return tuple(text.split("\0")) if text != "\0" else ("\0",)


def build_checks(cnfs: Sequence[FieldCnf], schema: Schema) -> list[StageCheck | None]:
    return [StageCheck.build(cnf, schema) for cnf in cnfs]




# ------------------------------------------------------------------ dispatch by value

# A key clause: (field, case-sensitive texts, case-insensitive texts (folded)); some value
# of the field equals one of the first, or folds to one of the second.
KeyClause = tuple[str, frozenset[str], frozenset[str]]


def key_clause(cnf: FieldCnf) -> KeyClause | None:
    """A clause of ``cnf`` made only of ``exact`` atoms on one field (texts without NUL), for
    dispatch: the stage cannot match an event none of whose values of that field is one of
    the texts (the clause is necessary, see the module docstring). Fields that most events
    share (``_COMMON``) are used only when nothing else is."""
    found: list[tuple[int, int, KeyClause]] = []
    for clause in cnf:
        names = {name for name, _t, _c, _m in clause}
        if (len(names) != 1 or not clause
                or any(mode != "exact" or "\0" in text for _n, text, _c, mode in clause)):
            continue
        name = next(iter(names))
        key = (name, frozenset(t for _n, t, ci, _m in clause if not ci),
               frozenset(t for _n, t, ci, _m in clause if ci))
        found.append((1 if name in _COMMON else 0, len(clause), key))
    return min(found, key=lambda f: (f[0], f[1]))[2] if found else None


class StageIndex:
    """Of a list of candidate stages, the ones whose key clause some value satisfies (and
    those without one), found by one dictionary look-up per value of each key field."""

    __slots__ = ("fields", "free")

    def __init__(self, stages: Sequence[int], keys: Sequence[KeyClause | None],
                 getters: Mapping[str, Getter]) -> None:
        self.free = [s for s, k in zip(stages, keys, strict=True) if k is None]
        by_field: dict[str, tuple[dict[str, list[int]], dict[str, list[int]], list[int]]] = {}
        for stage, key in zip(stages, keys, strict=True):
            if key is None:
                continue
            name, exact, folded = key
            entry = by_field.setdefault(name, ({}, {}, []))
            for text in exact:
                entry[0].setdefault(text, []).append(stage)
            for text in folded:
                entry[1].setdefault(text, []).append(stage)
            entry[2].append(stage)
        self.fields = [(name, getters[name], *entry) for name, entry in by_field.items()]

    def passing(self, cache: FieldCache) -> list[int]:
        out = list(self.free)
        values = cache.values
        for name, getter, exact, folded, every in self.fields:
            found = values.get(name)
            opaque, joined, lowered = found if found is not None else cache.get(name, getter)
            if opaque:
                out.extend(every)
                continue
            if not joined:
                continue
            if exact:
                for value in joined[1:-1].split("\0"):
                    hit = exact.get(value)
                    if hit is not None:
                        out.extend(hit)
            if folded:
                for value in lowered[1:-1].split("\0"):
                    hit = folded.get(value)
                    if hit is not None:
                        out.extend(hit)
        if len(out) > 1:
            out = sorted(set(out))
        return out


__all__ = ["FieldCache", "FieldCnf", "KeyClause", "StageCheck", "StageIndex", "build_checks", "field_cnf",
           "key_clause", "query_field_cnfs"]
