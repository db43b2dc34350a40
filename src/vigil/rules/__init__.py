"""Elastic Security rules: the model, the loaders, exceptions and the bundled seed rule.

Rendering for people (``vigil rules list/show``) lives in ``vigil.rules.render``, imported only
where it is used: it pulls in a Markdown renderer that detection does not need.
"""

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
    Rule,
    RuleSource,
    Technique,
    Threat,
    parse_interval,
)
from vigil.times import DateMath

__all__ = [
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
    "load_exception_file",
    "load_exceptions",
    "load_rule_file",
    "load_rules",
    "parse_exceptions_toml",
    "parse_interval",
    "parse_kibana_exceptions",
    "validate",
    "validation_summary",
]
