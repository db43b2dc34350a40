"""Necessary literals: byte strings every raw JSON line of a matching event must contain.

From a compiled query we derive, per stage (positive, missing ``![...]`` and ``until`` stages
alike, category included), a conjunction of *clauses*; a clause is a set of *atoms* of which
at least one must occur in the line. A line that satisfies no stage of any rule cannot hold an
event the engine would look at, and is skipped without being parsed.

Why that cannot change a result:

* The engine only ever looks at events that match some stage: ``run_event_query`` yields
  matching events, ``SequenceRun.feed`` and ``MissingIndex`` do nothing with an event no plan
  matches, ``run_sample`` files events under the stages they match. Ordering is by
  (timestamp, tiebreaker, input position) and a stable sort keeps the relative order of the
  kept events; alert ids are hashes of the events' content, computed on the same parsed
  documents (the kept lines are re-read by the reference reader).
* An atom is derived only where the reference evaluator's answer *requires* a string value
  containing it: ``==`` (exact), ``:``/``like``/``like~`` (the longest literal run between
  wildcards), ``in``/``in~``, the stage's category; ``or`` unions one clause of each branch;
  ``not``, ``!=``, functions, regexes, scripts and typed fields (ip: ``::1`` equals
  ``0:0:0:0:0:0:0:1``) give no constraint.
* A string value appears in its JSON line encoded: only ASCII printable characters other than
  ``"``, ``\\`` and ``/`` are written verbatim by every JSON writer (``/`` may be ``\\/``), and
  any character may be ``\\uXXXX``. Atoms are runs of those characters only (so ``\\/`` and
  the other two-character escapes cannot hide one), and a line that contains ``\\u`` is
  *opaque*: always a candidate. Non-ASCII lines are opaque too
  (case-insensitive matching folds e.g. the Kelvin sign to ``k``). So a pattern (``:``,
  ``like``, ``regex``) that only matches values holding a non-ASCII character
  (``literals.needs_non_ascii``: a caseless one, or any when case-sensitive; a regex whose
  ``literals.regex_cnf`` requires ``NON_ASCII``) matches on opaque lines only: it adds no
  atom to its clause (an empty clause: only opaque lines). A non-string value is read as its
  Java/Python text, which holds non-ASCII characters only if the line does.
* Non-string values: an untyped number compares with a string constant numerically and is
  matched by ``:`` through its Java text (``1.0E10``), which need not occur in the line; atoms
  made only of characters a number's text can hold are dropped, and constants that parse as a
  number or boolean give no constraint for ``==``.
* The reader may build values that are not in the line: a flat NXLog/OTRF document is mapped
  to ECS (lines containing ``"EventID"`` are opaque); so is a raw winlog document
  (``jsonl.is_raw_winlog``: ``winlog`` with a channel and ``event_id``, no ``event.ingested``,
  no ``event.category``, nested or dotted), so a line holding a key ending in ``event_id``
  and none ending in ``ingested`` or ``category`` is opaque (``raw_winlog_line``). ``":``
  follows a string only when it is a key (inside a string value quotes are escaped), and the
  keys of raw documents of the channels with a pipeline are the winlog input's own and the
  EventData names of Microsoft's manifests, none of them ending so; the logon-id fix copies
  TargetLogonId, which is in the line.

The optional *key gate* (``gate_clause``) narrows the non-final stages of a sequence to lines
containing a join-key value of some event that matches the last positive stage: a partial
sequence of key k can only complete on a last-stage event of key k, events touch only the
partials of their own keys, missing-stage checks and ``until`` look only at those keys, so
events whose keys never reach the last stage change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import re2

from vigil.backends.literals import NON_ASCII, needs_non_ascii, regex_cnf
from vigil.eql import ast
from vigil.eql.schema import STRING_TYPES, Schema

# Characters every JSON writer emits as themselves (outside \uXXXX escapes).
_VERBATIM = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\", "/"}
# Characters of a number's text (Java or Python rendering): an atom made only of these could
# come from a number whose JSON spelling differs.
_NUMERIC = frozenset("0123456789.+-eEinfinityINFINITYNaN")
SEPARATE_SCANS = 6  # anchors scanned one literal at a time below this count
MIN_ATOM = 3  # shorter atoms filter nothing and cost a search
MEMO_SIZE = 1 << 16  # atom sets remembered by LineFilter.line_stages

# Opaque lines: escapes that may hide any character, non-ASCII text, NXLog documents that the
# reader maps to ECS (their ECS values are not in the line).
_OPAQUE = rb'\\u|[\x80-\xff]|EventID"'


# Without the opening quote: a flat document's keys are "winlog.event_id", "event.ingested".
_EVENT_ID_KEY = b'event_id":'
_NOT_RAW_KEYS = (b'ingested":', b'category":')


def raw_winlog_line(line: bytes) -> bool:
    """May ``line`` hold a raw winlog document, which the reader maps through an ingest
    pipeline (its ECS values are then not in the line)? See the module docstring."""
    return _EVENT_ID_KEY in line and not any(key in line for key in _NOT_RAW_KEYS)


def byte_options() -> re2.Options:
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1  # bytes in, byte offsets out
    options.max_mem = 256 << 20
    options.never_nl = False
    return options


@dataclass(frozen=True, slots=True)
class Atom:
    """A byte string the line must contain (lowercased when matched case-insensitively)."""

    text: bytes
    ci: bool

    def pattern(self) -> bytes:
        escaped: bytes = re2.escape(self.text)
        return b"(?i:" + escaped + b")" if self.ci else escaped


Clause = frozenset[Atom]  # at least one atom occurs; the empty clause is never satisfied
Cnf = tuple[Clause, ...]  # every clause holds; () is no constraint


def atom_for(text: str, ci: bool, *, wildcards: bool = False) -> Atom | None:
    """The longest verbatim run of ``text`` (between wildcards if ``wildcards``), or None."""
    best = ""
    run: list[str] = []
    for char in text + "\0":
        if char in _VERBATIM and not (wildcards and char in "*?"):
            run.append(char)
            continue
        candidate = "".join(run)
        if len(candidate) > len(best):
            best = candidate
        run.clear()
    if len(best) < MIN_ATOM or all(c in _NUMERIC for c in best):
        return None
    data = best.encode("ascii")
    return Atom(data.lower() if ci else data, ci)


def _number_like(text: str) -> bool:
    if text.strip().lower() in ("true", "false"):
        return True
    try:
        float(text)
    except ValueError:
        try:
            int(text, 0)
        except ValueError:
            return False
    return True


class _Deriver:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def text_field(self, node: ast.Expr) -> bool:
        """A field compared as text by the reference (untyped or a string type)."""
        if not isinstance(node, ast.Field):
            return False
        field_type = self.schema.field_type(node.name)
        return field_type is None or field_type in STRING_TYPES

    def cnf(self, node: ast.Expr) -> list[Clause]:
        match node:
            case ast.And(operands=ops):
                return [c for op in ops for c in self.cnf(op)]
            case ast.Or(operands=ops):
                union: set[Atom] = set()
                for op in ops:
                    clauses = self.cnf(op)
                    if not clauses:
                        return []
                    union |= best_clause(clauses)
                return [frozenset(union)]
            case ast.Literal(value=value):
                return [] if value is True else [frozenset()]
            case ast.Comparison(op="==", left=left, right=right):
                field, constant = (left, right) if isinstance(right, ast.Literal) else (right, left)
                if (self.text_field(field) and isinstance(constant, ast.Literal)
                        and isinstance(constant.value, str) and not _number_like(constant.value)):
                    atom = atom_for(constant.value, False)
                    return [frozenset({atom})] if atom else []
                return []
            case ast.Match(kind=kind, value=value, patterns=patterns, case_insensitive=ci):
                if not self.text_field(value):
                    return []
                atoms: set[Atom] = set()
                for pattern in patterns:
                    if not isinstance(pattern.value, str):
                        return []  # null matches a missing field; numbers compare as numbers
                    insensitive = True if kind == ":" else ci
                    if kind == "regex":
                        # Only the non-ASCII requirement (``literals``): a value holding a
                        # non-ASCII character is in an opaque line, whatever its JSON type.
                        if frozenset({NON_ASCII}) not in regex_cnf(pattern.value, ci):
                            return []
                        continue  # matches only on opaque lines: adds no atom
                    atom = atom_for(pattern.value, insensitive, wildcards=True)
                    if atom is None:
                        if needs_non_ascii(pattern.value.replace("*", "").replace("?", ""),
                                           insensitive):
                            continue  # needs a non-ASCII character: only opaque lines
                        return []
                    atoms.add(atom)
                return [frozenset(atoms)]
            case ast.InSet(value=value, options=options, case_insensitive=ci, negated=False):
                if not self.text_field(value):
                    return []
                atoms = set()
                for option in options:
                    if (not isinstance(option, ast.Literal) or not isinstance(option.value, str)
                            or _number_like(option.value)):
                        return []
                    atom = atom_for(option.value, ci)
                    if atom is None:
                        return []
                    atoms.add(atom)
                return [frozenset(atoms)]
        return []


def _score(clause: Clause) -> float:
    if not clause:
        return float("inf")  # never satisfied: the best filter there is
    return min(len(a.text) for a in clause) - 0.01 * len(clause)


def _frequencies(atoms: list[Atom], sample: bytes) -> list[int] | None:
    """How many lines of ``sample`` hold each atom (None without a sample)."""
    lines = sample.split(b"\n")[:-1][:2000]
    if not lines or not atoms:
        return None
    atom_set = re2.Set.SearchSet(byte_options())
    for atom in atoms:
        atom_set.Add(atom.pattern())
    atom_set.Compile()
    counts = [0] * len(atoms)
    for line in lines:
        for index in atom_set.Match(line) or ():
            counts[index] += 1
    return counts


def atom_frequencies(atoms: Iterable[Atom], sample: bytes) -> dict[Atom, int]:
    """How many of the first lines of ``sample`` hold each atom (empty without a sample)."""
    listed = list(dict.fromkeys(atoms))
    counts = _frequencies(listed, sample)
    return {} if counts is None else dict(zip(listed, counts, strict=True))


def _alternation(clause: Clause) -> bytes:
    atoms = sorted(clause, key=lambda a: (-len(a.text), a.text))
    return b"|".join(a.pattern() for a in atoms)


def best_clause(clauses: Sequence[Clause]) -> Clause:
    return max(clauses, key=_score)


def stage_cnf(query: ast.EventQuery, schema: Schema) -> Cnf:
    """The clauses one stage's events must satisfy (category included)."""
    clauses = _Deriver(schema).cnf(query.condition)
    if query.category is not None and not _number_like(query.category):
        atom = atom_for(query.category, False)
        if atom is not None:
            clauses.append(frozenset({atom}))
    return tuple(dict.fromkeys(clauses))


def query_cnfs(query: ast.Query, schema: Schema) -> list[Cnf]:
    """One CNF per filter of the query, in ``Compiled.stage_nodes`` order (until last)."""
    return [stage_cnf(q, schema) for q in query.event_queries()]


def gate_clause(values: Iterable[object]) -> Clause | None:
    """A clause of join-key values (case-sensitive), or None when some value cannot be
    searched for in the raw line (not a string, or nothing verbatim in it)."""
    atoms: set[Atom] = set()
    for value in values:
        if not isinstance(value, str):
            return None
        atom = atom_for(value, False)
        if atom is None:
            return None
        atoms.add(atom)
    return frozenset(atoms)


def line_spans(block: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each line of ``block`` (``end`` excludes the newline)."""
    start = 0
    size = len(block)
    while start < size:
        end = block.find(b"\n", start)
        if end < 0:
            end = size
        yield start, end
        start = end + 1


class LineFilter:
    """Finds, in a block of NDJSON lines, the lines that may match each stage.

    Stages are numbered by the caller. A stage with no constraint makes every line a
    candidate for it. The hot path: one RE2 scan of the block for the anchor atoms (the
    best clause of each stage) and for opaque lines, then, per hit line, one RE2 set match
    giving every atom present, against which the stages' clauses are checked.
    """

    def __init__(self, stages: Sequence[Cnf], anchors: Sequence[Clause | None] = (),
                 *, opaque: bool = True, sample: bytes = b"", mapped: bool = False) -> None:
        """``anchors``: per stage, a clause known to be selective (a key gate) to scan for
        instead of the best-looking literal clause. ``opaque=False``: opaque lines are not
        sought (the caller judged them already). ``sample``: some lines of the input, to
        choose as anchor the clause that hits the fewest of them (``host.os.type ==
        "windows"`` is in every rule and every line)."""
        self.stages = list(stages)
        self.always = [i for i, cnf in enumerate(stages) if not cnf]
        atoms: dict[Atom, int] = {}
        for cnf in stages:
            for clause in cnf:
                for atom in clause:
                    atoms.setdefault(atom, len(atoms))
        frequency = _frequencies(list(atoms), sample)
        self.anchor_of: list[Clause] = []
        for number, cnf in enumerate(stages):
            chosen = anchors[number] if number < len(anchors) else None
            if chosen is None and cnf:
                chosen = (best_clause(cnf) if frequency is None else min(
                    cnf, key=lambda c: (sum(frequency[atoms[a]] for a in c), -_score(c))))
            self.anchor_of.append(chosen or frozenset())
        self.atoms = list(atoms)
        self.atom_index = atoms
        # Stage clauses as sets of atom ids, for the per-line check.
        self.stage_ids: list[list[frozenset[int]]] = [
            [frozenset(atoms[a] for a in clause) for clause in cnf] for cnf in stages
        ]
        clauses = sorted({c for c in self.anchor_of if c}, key=lambda c: sorted((a.text, a.ci) for a in c))
        # RE2 searches one literal at memchr speed but an alternation at DFA speed (~5x
        # slower): a few anchor clauses are scanned one by one, many in one alternation.
        opaque_parts = [rb"\\u", rb'EventID"'] if opaque else []
        if len(clauses) <= SEPARATE_SCANS:
            patterns = opaque_parts + [_alternation(c) for c in clauses]
        else:
            patterns = [*opaque_parts, _alternation(frozenset().union(*clauses))]
        self.scans = [re2.compile(p, byte_options()) for p in patterns]
        self.check_opaque = opaque
        # Lines of events already mapped (``mapped``: written by vigil from a mapped event)
        # hold their ECS values: a raw-winlog-looking one is not opaque.
        self.check_raw = opaque and not mapped
        self.non_ascii = re2.compile(rb"[\x80-\xff]", byte_options())
        self.opaque = re2.compile(_OPAQUE, byte_options())
        self.atom_set: re2.Set | None = None
        # The opaque test rides in the atom set (one pass over the line): its id follows
        # the atoms'.
        self.opaque_id = len(self.atoms) if opaque else -1
        if self.atoms or opaque:
            atom_set = re2.Set.SearchSet(byte_options())
            for atom in self.atoms:
                atom_set.Add(atom.pattern())
            if opaque:
                atom_set.Add(_OPAQUE)
            atom_set.Compile()
            self.atom_set = atom_set
        self.all_stages = list(range(len(stages)))
        self._memo: dict[frozenset[int], list[int]] = {}
        # Per anchor atom, the stages anchored on it: a line is checked against those only.
        self.by_anchor: dict[int, list[int]] = {}
        for number, clause in enumerate(self.anchor_of):
            for atom in clause:
                self.by_anchor.setdefault(atoms[atom], []).append(number)

    @property
    def every_line(self) -> bool:
        return bool(self.always)

    def line_stages(self, line: bytes) -> list[int]:
        """The stages a line may match (all of them for an opaque line)."""
        present = frozenset(self.atom_set.Match(line) or ()) if self.atom_set is not None else frozenset()
        if self.opaque_id in present or (self.check_raw and raw_winlog_line(line)):
            return self.all_stages
        # The answer depends on the atoms present only: lines of one shape share it.
        known = self._memo.get(present)
        if known is not None:
            return known
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        stages = set(self.always)
        for atom in present:
            stages.update(self.by_anchor.get(atom, ()))
        ids = self.stage_ids
        found = [i for i in sorted(stages)
                 if all(not clause.isdisjoint(present) for clause in ids[i])]
        self._memo[present] = found
        return found

    def candidates(self, block: bytes, extra: Iterable[int] = ()
                   ) -> Iterator[tuple[int, int, list[int]]]:
        """``(start, end, stages)`` of the candidate lines of ``block`` (which holds whole
        lines; ``end`` excludes the newline), in block order. ``extra``: starts of lines that
        are candidates for every stage whatever they hold."""
        forced = set(extra)
        if self.always:
            for start, end in line_spans(block):
                yield start, end, self.line_stages(block[start:end])
            return
        size = len(block)
        starts: set[int] = set(forced)
        scans = self.scans
        if self.check_opaque and not block.isascii():
            scans = [*scans, self.non_ascii]
        for scan in scans:
            search = scan.search
            position = 0
            while position < size:
                match = search(block, position)
                if match is None:
                    break
                hit = match.start()
                starts.add(block.rfind(b"\n", 0, hit) + 1)
                end = block.find(b"\n", hit)
                position = size if end < 0 else end + 1
        if self.check_raw:
            position = 0
            while (hit := block.find(_EVENT_ID_KEY, position)) >= 0:
                start = block.rfind(b"\n", 0, hit) + 1
                end = block.find(b"\n", hit)
                end = size if end < 0 else end
                if raw_winlog_line(block[start:end]):
                    forced.add(start)
                    starts.add(start)
                position = end + 1
        for start in sorted(starts):
            end = block.find(b"\n", start)
            if end < 0:
                end = size
            stages = self.all_stages if start in forced else self.line_stages(block[start:end])
            if stages:
                yield start, end, stages
