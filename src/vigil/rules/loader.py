"""Loading rules: detection-rules TOML files and Kibana rule exports (JSON or NDJSON).

One broken rule never stops the others: ``load_rules`` returns what loaded, what was skipped
on purpose (rule types vigil does not run) and what failed, each failure a ``RuleError`` whose text
begins ``file:line:column:``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import tomli as tomllib  # tomllib is tomli; its compiled wheels read rule files 3x faster

from vigil.errors import QueryError, RuleError, caret_snippet
from vigil.rules.model import RULE_TYPES, FieldError, Rule, RuleSource
from vigil.rules.positions import DecodedString, json_query_strings, scan_toml

RULE_SUFFIXES = (".toml", ".json", ".ndjson", ".jsonl")


@dataclass(frozen=True, slots=True)
class SkippedRule:
    """A rule left out on purpose (a type vigil does not run): not an error."""

    path: str
    name: str
    rule_id: str
    reason: str
    line: int | None = None
    rule_type: str = ""

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: skipped {self.name or self.rule_id or 'rule'}: {self.reason}"


@dataclass(frozen=True, slots=True)
class LoadResult:
    rules: tuple[Rule, ...]
    skipped: tuple[SkippedRule, ...]
    errors: tuple[RuleError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


class RuleQueryError(RuleError):
    """An EQL error in a rule's query, placed at the file's line and column.

    The first line of ``str()`` is ``file:line:column: reason``; the next lines show the
    file's line with a caret, as ``vigil rules validate`` prints it.
    """

    def __init__(self, reason: str, path: str, line: int | None, column: int | None,
                 snippet: str = "") -> None:
        super().__init__(reason, path, line, column)
        self.snippet = snippet

    def __str__(self) -> str:
        head = super().__str__()
        return f"{head}\n{self.snippet}" if self.snippet else head


class _Collector:
    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.skipped: list[SkippedRule] = []
        self.errors: list[RuleError] = []
        self.seen: dict[str, Rule] = {}

    def add(self, rule: Rule) -> None:
        first = self.seen.get(rule.rule_id)
        if first is not None:
            where = _where(first.source)
            self.errors.append(RuleError(
                f"duplicate rule_id {rule.rule_id} ({rule.name!r}); already loaded from {where}",
                rule.source.path, rule.source.line))
            return
        self.seen[rule.rule_id] = rule
        self.rules.append(rule)

    def result(self) -> LoadResult:
        return LoadResult(tuple(self.rules), tuple(self.skipped), tuple(self.errors))


def _where(source: RuleSource) -> str:
    return source.path if source.line is None else f"{source.path}:{source.line}"


# ---------------------------------------------------------------- entry points


def load_rules(paths: Iterable[str | Path]) -> LoadResult:
    """Load every rule file under ``paths`` (files, or folders searched recursively)."""
    collector = _Collector()
    for path in _rule_files(paths, collector):
        _load_file(path, collector)
    return collector.result()


def load_rule_file(path: str | Path) -> LoadResult:
    collector = _Collector()
    _load_file(Path(path), collector)
    return collector.result()


def bundled_rules() -> tuple[Rule, ...]:
    """The rules shipped inside the package (the seed), loaded from package data."""
    collector = _Collector()
    folder = resources.files("vigil.rules").joinpath("bundled")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            text = entry.read_text(encoding="utf-8")
            _load_toml_text(text, f"<bundled>/{entry.name}", collector, bundled=True)
    if collector.errors:  # a packaging bug, not a user error: fail loudly
        raise collector.errors[0]
    return tuple(collector.rules)


def find_rule(rules: Iterable[Rule], key: str) -> Rule | None:
    """The rule ``key`` names (for ``vigil rules show`` and ``--rule``): its rule_id, a
    unique rule_id prefix of at least 4 characters, or its name (case-insensitive)."""
    candidates = list(rules)
    wanted = key.strip()
    for rule in candidates:
        if rule.rule_id == wanted:
            return rule
    by_name = [r for r in candidates if r.name.casefold() == wanted.casefold()]
    if len(by_name) == 1:
        return by_name[0]
    if len(wanted) >= 4:
        by_prefix = [r for r in candidates if r.rule_id.startswith(wanted)]
        if len(by_prefix) == 1:
            return by_prefix[0]
    return None


def validate(paths: Iterable[str | Path]) -> tuple[int, list[RuleError]]:
    """For ``vigil rules validate``: how many rules load, and every error."""
    result = load_rules(paths)
    return len(result.rules), list(result.errors)


def validation_summary(ok_count: int, errors: list[RuleError]) -> str:
    """The closing line of ``vigil rules validate``."""
    if not errors:
        return f"all {ok_count} rule{'s' if ok_count != 1 else ''} valid."
    total = ok_count + len(errors)
    return (f"{len(errors)} of {total} rules failed to load; "
            f"the other {ok_count} {'is' if ok_count == 1 else 'are'} valid.")


def _rule_files(paths: Iterable[str | Path], collector: _Collector) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in RULE_SUFFIXES)
            yield from found
        elif path.is_file():
            yield path
        else:
            collector.errors.append(RuleError("no such file or folder", str(path)))


def _load_file(path: Path, collector: _Collector) -> None:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        collector.errors.append(RuleError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                                          str(path)))
        return
    except OSError as exc:
        collector.errors.append(RuleError(f"cannot read: {exc.strerror or exc}", str(path)))
        return
    if path.suffix.lower() == ".toml":
        _load_toml_text(text, str(path), collector)
    else:
        _load_kibana_text(text, str(path), collector)


# ---------------------------------------------------------------- detection-rules TOML


def deepest_line(text: str) -> int:
    """The line where brackets and braces nest deepest (quotes not told apart: a hint for
    a file too deeply nested to parse)."""
    depth = best = 0
    best_line = line = 1
    for char in text:
        if char == "\n":
            line += 1
        elif char in "[{":
            depth += 1
            if depth > best:
                best, best_line = depth, line
        elif char in "]}":
            depth -= 1
    return best_line


def _load_toml_text(text: str, path: str, collector: _Collector, *,
                    bundled: bool = False) -> None:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason, line, column = _toml_error_position(str(exc))
        collector.errors.append(RuleError(f"not valid TOML: {reason}", path, line, column))
        return
    except RecursionError:
        collector.errors.append(RuleError("TOML nested too deeply to read (arrays or inline "
                                          "tables inside each other)", path,
                                          deepest_line(text)))
        return
    layout = scan_toml(text)
    rule_table = document.get("rule")
    if not isinstance(rule_table, dict):
        collector.errors.append(RuleError("no [rule] table (is this a detection-rules file?)",
                                          path, 1 if text else None))
        return
    rule_line = layout.table_lines.get("rule")
    metadata = document.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    if not runnable(rule_table):
        collector.skipped.append(_skip(rule_table, path, rule_line))
        return
    decoded = layout.strings.get(("rule", "query"))
    query_line = layout.key_lines.get(("rule", "query"))
    source = _source(path, "toml", rule_line, query_line, decoded,
                     rule_table.get("query"), bundled)
    try:
        rule = Rule.from_dict(rule_table, source=source, metadata=metadata)
    except FieldError as exc:
        line = layout.key_lines.get(("rule", exc.key or ""),
                                    layout.table_lines.get(f"rule.{exc.key}", rule_line))
        collector.errors.append(RuleError(exc.reason, path, line))
        return
    except QueryError as exc:
        collector.errors.append(_query_error(exc, source, str(rule_table.get("query")), text))
        return
    collector.add(rule)


def _toml_error_position(message: str) -> tuple[str, int | None, int | None]:
    # tomllib (3.11) only puts the position in the message: "... (at line 3, column 5)".
    marker = message.rfind(" (at line ")
    if marker < 0:
        return message, None, None
    try:
        line_part, column_part = message[marker + 10 : -1].split(", column ")
        return message[:marker], int(line_part), int(column_part)
    except ValueError:
        return message, None, None


# ---------------------------------------------------------------- Kibana export


def _is_rule_object(obj: Mapping[str, Any]) -> bool:
    """Kibana exports mix rules with other saved objects; only rules matter here."""
    if "exported_count" in obj or any(k.startswith(("exported_", "missing_")) for k in obj):
        return False  # the export summary line
    if "list_id" in obj and "rule_id" not in obj:
        return False  # exception lists and items exported with their rules
    # action connectors are saved objects with attributes and no rule_id
    return not ("attributes" in obj and "rule_id" not in obj)


def _load_kibana_text(text: str, path: str, collector: _Collector) -> None:
    stripped = text.strip()
    if not stripped:
        collector.errors.append(RuleError("empty file", path))
        return
    records: list[tuple[Any, int | None, list[DecodedString]]] = []
    try:
        whole = orjson.loads(stripped)
        multi_line = False
    except orjson.JSONDecodeError as exc:
        first = stripped.split("\n", 1)[0]
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError:
            # Neither one JSON document nor NDJSON: one error for the file, not one per line.
            collector.errors.append(RuleError(f"not JSON: {exc}", path))
            return
        multi_line = True
    if not multi_line and isinstance(whole, (dict, list)):
        candidates = json_query_strings(text)
        items = whole if isinstance(whole, list) else [whole]
        for item in items:
            records.append((item, None, candidates))
    else:
        for number, record in enumerate(text.split("\n"), start=1):
            if not record.strip():
                continue
            try:
                records.append((orjson.loads(record), number,
                                json_query_strings(record, number)))
            except orjson.JSONDecodeError as exc:
                collector.errors.append(RuleError(f"not JSON: {exc}", path, number))
    used: set[int] = set()
    for obj, line, candidates in records:
        if not isinstance(obj, dict):
            collector.errors.append(RuleError(
                f"expected a rule object, found {type(obj).__name__}", path, line))
            continue
        if not _is_rule_object(obj):
            continue
        _load_kibana_rule(obj, path, line, candidates, used, collector)


def _load_kibana_rule(obj: dict[str, Any], path: str, line: int | None,
                      candidates: list[DecodedString], used: set[int],
                      collector: _Collector) -> None:
    if not runnable(obj):
        collector.skipped.append(_skip(obj, path, line))
        return
    query = obj.get("query")
    decoded = None
    for decoded_candidate in candidates:
        if id(decoded_candidate) not in used and decoded_candidate.value == query:
            used.add(id(decoded_candidate))
            decoded = decoded_candidate
            break
    query_line = decoded.start[0] if decoded is not None else line
    if line is None and decoded is not None:
        line = decoded.start[0]
    source = _source(path, "kibana", line, query_line, decoded, query, False)
    try:
        rule = Rule.from_dict(obj, source=source)
    except FieldError as exc:
        name = obj.get("name") or obj.get("rule_id") or "rule"
        collector.errors.append(RuleError(f"{name}: {exc.reason}", path, line))
        return
    except QueryError as exc:
        collector.errors.append(_query_error(exc, source, str(query), None))
        return
    collector.add(rule)


# ---------------------------------------------------------------- shared helpers


def _source(path: str, fmt: str, line: int | None, query_line: int | None,
            decoded: DecodedString | None, query: Any, bundled: bool) -> RuleSource:
    trusted = decoded is not None and decoded.value == query
    positions = decoded.positions if trusted and decoded is not None else ()
    first = positions[0] if positions else (query_line, None)
    return RuleSource(path=path, format="toml" if fmt == "toml" else "kibana", line=line,
                      query_line=first[0], query_column=first[1],
                      query_positions=positions, bundled=bundled)


def _query_error(exc: QueryError, source: RuleSource, query: str,
                 file_text: str | None) -> RuleError:
    line, column = source.file_position(exc.line, exc.column, query)
    if file_text is not None and line is not None and column is not None:
        snippet = caret_snippet(file_text.replace("\r\n", "\n"), line, column)
    else:  # no file position for the column: show the query's own line
        snippet = caret_snippet(query, exc.line, exc.column)
        if line is not None and column is None:
            return RuleQueryError(f"query {exc.line}:{exc.column}: {exc.reason}",
                                  source.path, line, None, snippet)
    return RuleQueryError(exc.reason, source.path, line, column, snippet)


# Why a rule type does not run (the rule is skipped and counted, never dropped in silence).
SKIP_REASONS = {
    "esql": "ES|QL rules need Elasticsearch's ES|QL engine, which vigil does not have",
    "machine_learning": "machine learning rules read the anomalies of Elastic's ML jobs, "
                        "which do not run outside an Elastic cluster",
}


def runnable(obj: Mapping[str, Any]) -> bool:
    """A rule of a type and query language vigil runs (``rules.model.RULE_TYPES``)."""
    languages = RULE_TYPES.get(str(obj.get("type")))
    return languages is not None and obj.get("language") in (None, *languages)


def _skip(obj: Mapping[str, Any], path: str, line: int | None) -> SkippedRule:
    rule_type, language = obj.get("type"), obj.get("language")
    if rule_type in RULE_TYPES:
        reason = f"the {language} query language is not supported for {rule_type} rules"
        if language == "lucene":
            reason = "Lucene query syntax is not supported (KQL is)"
    else:
        reason = SKIP_REASONS.get(str(rule_type), f"rule type {rule_type!r} is not supported")
    name = obj.get("name")
    rule_id = obj.get("rule_id")
    return SkippedRule(path, name if isinstance(name, str) else "",
                       rule_id if isinstance(rule_id, str) else "", reason, line,
                       str(rule_type))


def rule_warnings(rules: Iterable[Rule]) -> list[str]:
    """One line per rule with fields vigil does not apply: ``file:line: name: ...``."""
    lines = []
    for rule in rules:
        if rule.warnings:
            where = _where(rule.source) if rule.source.path else rule.rule_id
            lines.append(f"{where}: {rule.name}: {'; '.join(rule.warnings)}")
    return lines


def skipped_summary(skipped: Iterable[SkippedRule]) -> list[str]:
    """One line per reason: how many rules were skipped and why."""
    counts: dict[tuple[str, str], int] = {}
    for rule in skipped:
        key = (rule.rule_type, rule.reason)
        counts[key] = counts.get(key, 0) + 1
    return [f"skipped {count:,} {rule_type} rule(s): {reason}"
            for (rule_type, reason), count in sorted(counts.items(), key=lambda kv: -kv[1])]
