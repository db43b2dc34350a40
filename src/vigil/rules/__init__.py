"""Elastic Security rules: the model, the loaders, exceptions and the bundled seed rule."""

from __future__ import annotations

from vigil.rules.exceptions import (
    ExceptionEntry,
    ExceptionFileError,
    ExceptionFilter,
    ExceptionItem,
    ExceptionList,
    ExceptionSet,
    load_exception_file,
    load_exceptions,
    parse_exceptions_toml,
    parse_kibana_exceptions,
)
from vigil.rules.loader import (
    LoadResult,
    RuleQueryError,
    SkippedRule,
    bundled_rules,
    find_rule,
    load_rule_file,
    load_rules,
    validate,
    validation_summary,
)
from vigil.rules.model import (
    AttackRef,
    DateMath,
    Rule,
    RuleSource,
    Technique,
    Threat,
    parse_interval,
)
from vigil.rules.render import (
    LOGON_ID_NOTE,
    joins_on_logon_id,
    render_rule,
    render_rule_list,
    rule_list_rows,
    rule_markdown,
)

__all__ = [
    "LOGON_ID_NOTE",
    "AttackRef",
    "DateMath",
    "ExceptionEntry",
    "ExceptionFileError",
    "ExceptionFilter",
    "ExceptionItem",
    "ExceptionList",
    "ExceptionSet",
    "LoadResult",
    "Rule",
    "RuleQueryError",
    "RuleSource",
    "SkippedRule",
    "Technique",
    "Threat",
    "bundled_rules",
    "find_rule",
    "joins_on_logon_id",
    "load_exception_file",
    "load_exceptions",
    "load_rule_file",
    "load_rules",
    "parse_exceptions_toml",
    "parse_interval",
    "parse_kibana_exceptions",
    "render_rule",
    "render_rule_list",
    "rule_list_rows",
    "rule_markdown",
    "validate",
    "validation_summary",
]
