"""A cheap necessary condition of a stage, checked on a parsed event before the reference
predicate: every clause of the stage's field-tagged CNF must have an atom that holds for a
string value of its field.

The CNF (``field_cnf``) is derived like ``prefilter``'s byte literals, one step earlier: on
the values the reference evaluator reads, not on their JSON encoding. An atom is derived only
where the reference's answer *requires* a string value of the field that
(*exact*) equals its text, or (otherwise) contains it, case-sensitively or, for ``ci`` atoms,
after ``patterns.fold`` (``str.lower``):

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

Field values are read once per event and shared by every stage checked on it (``FieldCache``):
the point is that hundreds of rules read the same few fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vigil.backends.prefilter import _number_like, atom_for
from vigil.eql import ast
from vigil.eql.patterns import fold, has_wildcards
from vigil.eql.schema import STRING_TYPES, Schema

Event = Mapping[str, Any]
Getter = Callable[[Event], Any]

# field, text, ci, exact. Not exact: text is NUL-separated runs that all occur (NUL alone:
# the field has a value).
FieldAtom = tuple[str, str, bool, bool]
FieldClause = frozenset[FieldAtom]  # one atom holds; the empty clause never does
FieldCnf = tuple[FieldClause, ...]

# (opaque, values joined by NUL with a NUL either side, the same lowercased).
_Values = tuple[bool, str, str]
_NOTHING: _Values = (False, "", "")


def _field_score(clause: FieldClause) -> float:
    if not clause:
        return float("inf")
    return min(0 if text == "\0" else len(text) + (8 if exact else 0)
               for _f, text, _c, exact in clause) - 0.01 * len(clause)


def _present(name: str) -> FieldAtom:
    """The field has a value (a missing field fails the comparison)."""
    return (name, "\0", False, False)


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
            return (name, fold(value) if ci else value, ci, True)
        if _number_like(value):
            return None
        atom = atom_for(value, ci)
        return None if atom is None else (name, atom.text.decode("ascii"), ci, False)

    def cnf(self, node: ast.Expr) -> list[FieldClause]:
        match node:
            case ast.And(operands=ops):
                return [c for op in ops for c in self.cnf(op)]
            case ast.Or(operands=ops):
                union: set[FieldAtom] = set()
                for op in ops:
                    clauses = self.cnf(op)
                    if not clauses:
                        return []
                    best: FieldClause = max(clauses, key=_field_score)
                    union |= best
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
                if match_kind == "regex" or kind is None:
                    return [frozenset({_present(value.name)})]  # when_missing=False
                atoms: set[FieldAtom] = set()
                for pattern in patterns:
                    text = pattern.value
                    if not isinstance(text, str):
                        return []  # null matches a missing field; numbers compare as numbers
                    insensitive = True if match_kind == ":" else ci
                    if kind == "untyped" and match_kind == ":" and not has_wildcards(text):
                        atoms.add((value.name, fold(text), True, True))
                        continue
                    if kind == "untyped":
                        # Every ASCII run between wildcards is in a matching value.
                        runs = tuple(sorted({r.lower() if insensitive else r
                                             for r in re.split(r"[*?]", text)
                                             if r and r.isascii()}, key=len, reverse=True))
                        atoms.add((value.name, "\0".join(runs) if runs else "\0", insensitive,
                                   False))
                        continue
                    run = atom_for(text, insensitive, wildcards=True)
                    if run is None:
                        return [frozenset({_present(value.name)})]
                    atoms.add((value.name, run.text.decode("ascii"), insensitive, False))
                return [frozenset(atoms)]
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
        clauses.append(frozenset({(category_field, query.category, False, True)}))
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
    common = any(name in _COMMON for name, _t, _c, _e in clause)
    return (1 if common else 0, -_field_score(clause))


class StageCheck:
    """The necessary condition of one stage (``build`` gives None when it has no clause)."""

    __slots__ = ("clauses",)

    def __init__(self, clauses: list[tuple[tuple[str, Getter, tuple[str, ...], bool], ...]],
                 ) -> None:
        self.clauses = clauses

    @classmethod
    def build(cls, cnf: FieldCnf, schema: Schema) -> StageCheck | None:
        if not cnf:
            return None
        built = []
        for clause in sorted(cnf, key=_clause_order):
            built.append(tuple(
                (name, schema.getter(name),
                 (f"\0{text}\0",) if exact else tuple(text.split("\0")) if text != "\0" else ("\0",),
                 ci)
                for name, text, ci, exact in sorted(clause)))
        return cls(built)

    def __call__(self, cache: FieldCache) -> bool:
        values = cache.values
        clauses = self.clauses
        for number, clause in enumerate(clauses):
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
        return True


def build_checks(cnfs: Sequence[FieldCnf], schema: Schema) -> list[StageCheck | None]:
    return [StageCheck.build(cnf, schema) for cnf in cnfs]


__all__ = ["FieldCache", "FieldCnf", "StageCheck", "build_checks", "field_cnf", "query_field_cnfs"]
