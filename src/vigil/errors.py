"""One error hierarchy for the whole project: every error is a value with a position."""

from __future__ import annotations


class VigilError(Exception):
    """Base of every error vigil raises on purpose."""


def caret_snippet(text: str, line: int, column: int, width: int = 1) -> str:
    """The offending line of ``text`` with a caret under ``column`` (both 1-based)."""
    lines = text.splitlines() or [""]
    if not 1 <= line <= len(lines):
        return ""
    source_line = lines[line - 1].expandtabs(1)
    # Keep very long lines readable: show a window around the column.
    start = 0
    if len(source_line) > 120:
        start = max(0, column - 60)
        source_line = source_line[start : start + 120]
    pad = " " * (column - 1 - start)
    return f"  {source_line}\n  {pad}{'^' * max(1, min(width, 80))}"


class QueryError(VigilError, ValueError):
    """A query (EQL or KQL) that cannot be run; carries the 1-based line and column."""

    def __init__(self, reason: str, text: str = "", line: int = 1, column: int = 1,
                 width: int = 1) -> None:
        self.reason = reason
        self.text = text
        self.line = line
        self.column = column
        snippet = caret_snippet(text, line, column, width) if text else ""
        message = f"{line}:{column}: {reason}"
        if snippet:
            message = f"{message}\n{snippet}"
        super().__init__(message)


class EqlError(QueryError):
    """An EQL query that cannot be run."""


class KqlError(QueryError):
    """A KQL query that cannot be run."""


class KqlSyntaxError(KqlError):
    """The text is not valid KQL as Kibana's grammar reads it."""


class EqlSyntaxError(EqlError):
    """The query is not valid Elasticsearch EQL (or uses a construct Elasticsearch rejects)."""


class EqlSemanticError(EqlSyntaxError):
    """The query parses but is not meaningful (wrong function arity, bad argument type, ...).

    A subclass of ``EqlSyntaxError`` so callers that only know the contract's error
    catch it too.
    """


class RuleError(VigilError):
    """A rule file that cannot be loaded: carries the file and the line."""

    def __init__(self, reason: str, path: str = "", line: int | None = None,
                 column: int | None = None) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.column = column
        where = path
        if line is not None:
            where = f"{where}:{line}"
            if column is not None:
                where = f"{where}:{column}"
        super().__init__(f"{where}: {reason}" if where else reason)


class InputError(VigilError):
    """A bad input file or record: carries the file and the position."""

    def __init__(self, reason: str, path: str = "", position: str = "") -> None:
        self.reason = reason
        self.path = path
        self.position = position
        where = ":".join(p for p in (path, position) if p)
        super().__init__(f"{where}: {reason}" if where else reason)
