"""What ``vigil rules list`` and ``vigil rules show`` print: pure functions, no console.

Rule text comes from files anyone can write, so it goes through ``terminal_text`` before it
reaches a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from vigil.report.safe import terminal_text
from vigil.rules.model import Rule

LOGON_ID_FIELD = "winlog.logon.id"

LOGON_ID_NOTE = (
    "This rule joins events on `winlog.logon.id`. Elastic's ingest pipelines take the "
    "`winlog.logon.id` of a 4624 logon from **SubjectLogonId** (the session that requested "
    "the logon) instead of **TargetLogonId** (the new session), so the logon and what that "
    "session does afterwards never share a key and the rule cannot fire on Elastic-ingested "
    "data (elastic/integrations#20004). vigil takes TargetLogonId by default, which is what "
    "the rule means; `--logon-id elastic` reproduces Elastic's mapping."
)

_SEVERITY_STYLE = {"low": "blue", "medium": "yellow", "high": "red", "critical": "bold red"}


def rule_list_rows(rules: Iterable[Rule]) -> list[tuple[str, ...]]:
    """One row per rule: rule_id, name, version, severity, risk, kind, tactics, source."""
    rows: list[tuple[str, ...]] = []
    for rule in sorted(rules, key=lambda r: (r.name.lower(), r.rule_id)):
        tactics = ", ".join(dict.fromkeys(t.tactic.name for t in rule.threat))
        source = "bundled" if rule.source.bundled else rule.source.path
        rows.append(tuple(terminal_text(x) for x in (
            rule.rule_id, rule.name, str(rule.version), rule.severity, str(rule.risk_score),
            rule.kind + (" (building block)" if rule.is_building_block else ""),
            tactics, source)))
    return rows


def render_rule_list(rules: Iterable[Rule]) -> Table:
    """A rich table of rules (``vigil rules list``)."""
    table = Table(title=None, show_lines=False)
    for header, style in (("rule_id", "dim"), ("name", "bold"), ("version", ""),
                          ("severity", ""), ("risk", ""), ("query", ""), ("tactics", ""),
                          ("source", "dim")):
        table.add_column(header, style=style or None, overflow="fold")
    for row in rule_list_rows(rules):
        # Text, not strings: a rule name like "[red]x" must not be read as rich markup.
        cells = [Text(cell) for cell in row]
        cells[3].stylize(_SEVERITY_STYLE.get(row[3], ""))
        table.add_row(*cells)
    return table


def joins_on_logon_id(rule: Rule) -> bool:
    return LOGON_ID_FIELD in rule.join_fields()


def rule_markdown(rule: Rule) -> str:
    """The whole ``vigil rules show`` page as Markdown (already made terminal-safe)."""
    out: list[str] = [f"# {_one_line(rule.name)}", ""]
    kind = rule.kind + (", building block" if rule.is_building_block else "")
    out.append(f"`{rule.rule_id}` · version {rule.version} · severity **{rule.severity}** · "
               f"risk score {rule.risk_score} · {kind}")
    out += ["", rule.description.strip(), ""]

    out += ["## Schedule", ""]
    out.append(f"- Runs every **{rule.interval}**, searching from `{rule.from_}` to "
               f"`{rule.to}` ({_human(rule.look_back)} per run, "
               f"{_human(rule.additional_look_back)} additional look-back)")
    out.append(f"- Maximum alerts per run: {rule.max_signals}")
    timestamp = rule.timestamp_override or "@timestamp"
    out.append(f"- Window on `{timestamp}`; events ordered by "
               f"`{rule.timestamp_field or '@timestamp'}`"
               + (f", tiebreaker `{rule.tiebreaker_field}`" if rule.tiebreaker_field else ""))
    if rule.event_category_override:
        out.append(f"- Event category field: `{rule.event_category_override}`")
    out.append("")

    out += ["## Index patterns", ""]
    if rule.index:
        out += [f"- `{pattern}`" for pattern in rule.index]
    elif rule.data_view_id:
        out.append(f"- data view `{rule.data_view_id}`")
    else:
        out.append("- none given: every input")
    out.append("")

    if rule.threat:
        out += ["## MITRE ATT&CK", ""]
        for threat in rule.threat:
            out.append(f"- {_ref(threat.tactic.id, threat.tactic.name, threat.tactic.reference)}"
                       f" ({threat.framework})")
            for technique in threat.techniques:
                out.append(f"  - {_ref(technique.id, technique.name, technique.reference)}")
                for sub in technique.subtechniques:
                    out.append(f"    - {_ref(sub.id, sub.name, sub.reference)}")
        out.append("")

    if rule.tags:
        out += ["## Tags", "", ", ".join(rule.tags), ""]

    fence = "`" * max(3, _longest_backtick_run(rule.query) + 1)
    language = "eql" if rule.language == "eql" else "kql"
    out += ["## Query", "", f"{fence}{language}", rule.query.strip("\n"), fence, ""]

    if joins_on_logon_id(rule):
        out += ["## Note: the logon id join (vigil)", "", LOGON_ID_NOTE, ""]

    if rule.note.strip():
        out += ["## Investigation guide", "", rule.note.strip(), ""]
    if rule.setup.strip():
        out += ["## Setup", "", rule.setup.strip(), ""]
    if rule.false_positives:
        out += ["## False positives", ""] + [f"- {fp}" for fp in rule.false_positives] + [""]
    if rule.references:
        out += ["## References", ""] + [f"- <{ref}>" for ref in rule.references] + [""]

    about = []
    if rule.author:
        about.append(f"Author: {', '.join(rule.author)}")
    if rule.license:
        about.append(f"License: {rule.license}")
    about.append("Source: " + ("bundled with vigil" if rule.source.bundled
                               else rule.source.path or "(in memory)"))
    out += ["---", "", " · ".join(about), ""]
    return terminal_text("\n".join(out), keep_newlines=True)


def render_rule(rule: Rule) -> Markdown:
    """``vigil rules show``: metadata, ATT&CK, schedule, query and the guide, as rich Markdown."""
    return Markdown(rule_markdown(rule), code_theme="ansi_dark")


def _ref(ident: str, name: str, reference: str) -> str:
    label = f"{ident} {name}"
    return f"[{label}]({reference})" if reference else label


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
