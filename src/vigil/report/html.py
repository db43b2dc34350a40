"""A self-contained HTML report an incident responder can hand on.

One file, no script, no external resource: the alerts in time order with anchors
(``#alert-<id>``, the link webhooks send), each with its reason, the fields that matter,
the events of the sequence, MITRE ATT&CK mapping, and each rule's investigation guide.

Everything shown comes from logs an attacker may control: every value is HTML-escaped, the
investigation guide's Markdown is rendered with raw HTML disabled and unsafe links refused,
and a Content-Security-Policy forbids scripts should anything slip through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markdown_it import MarkdownIt

from vigil.eql.schema import raw_getter
from vigil.report.safe import html_text

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_SEVERITY_COLORS = {"critical": "#7b1fa2", "high": "#c62828", "medium": "#ef6c00",
                    "low": "#2e7d32"}
EVENT_COLUMNS = (
    # A building block's @timestamp is when the alert was made; the event's is kept here.
    ("time", ("kibana.alert.original_time", "@timestamp")),
    ("code", ("event.code", "winlog.event_id")),
    ("action", ("event.action",)),
    ("host", ("host.name", "winlog.computer_name")),
    ("user", ("user.name",)),
    ("source", ("source.ip",)),
    ("logon id", ("winlog.logon.id",)),
    ("details", ("winlog.event_data.ServiceFileName", "process.command_line", "file.path",
                 "winlog.event_data.ServiceName", "message")),
)
_EVENT_GETTERS = tuple((label, tuple(raw_getter(f) for f in fields))
                       for label, fields in EVENT_COLUMNS)
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


@dataclass(frozen=True, slots=True)
class ReportAlert:
    """A shell (or single-event) alert document and its building blocks, in stage order."""

    document: Mapping[str, Any]
    building_blocks: Sequence[Mapping[str, Any]] = ()

    @property
    def id(self) -> str:
        return str(self.document.get("kibana.alert.uuid", ""))

    @property
    def events(self) -> Sequence[Mapping[str, Any]]:
        return self.building_blocks or (self.document,)


def _value(event: Mapping[str, Any], getters: Sequence[Any]) -> str:
    for get in getters:
        value = get(event)
        if value not in (None, "", []):
            return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return ""


def _safe_url(url: object) -> str | None:
    text = str(url)
    return text if text.startswith(("https://", "http://")) else None


def _link(text: str, url: object) -> str:
    href = _safe_url(url)
    if href is None:
        return html_text(text)
    return f'<a href="{html_text(href)}" rel="noreferrer noopener">{html_text(text)}</a>'


def _threat(doc: Mapping[str, Any]) -> str:
    items = []
    for threat in doc.get("kibana.alert.rule.threat") or []:
        tactic = threat.get("tactic") or {}
        techniques = []
        for technique in threat.get("technique") or []:
            subs = ", ".join(_link(f"{s.get('id')} {s.get('name')}", s.get("reference"))
                             for s in technique.get("subtechnique") or [])
            label = _link(f"{technique.get('id')} {technique.get('name')}",
                          technique.get("reference"))
            techniques.append(label + (f" ({subs})" if subs else ""))
        tactic_link = _link(f"{tactic.get('id')} {tactic.get('name')}", tactic.get("reference"))
        listed = f": {'; '.join(techniques)}" if techniques else ""
        items.append(f"<li>{tactic_link}{listed}</li>")
    return f"<ul class='threat'>{''.join(items)}</ul>" if items else ""


def _badge(severity: str) -> str:
    color = _SEVERITY_COLORS.get(severity, "#546e7a")
    return f'<span class="badge" style="background:{color}">{html_text(severity)}</span>'


def _summary_table(summary: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html_text(key.replace('_', ' '))}</th><td>{html_text(value)}</td></tr>"
        for key, value in summary.items())
    return f"<table class='kv'>{rows}</table>" if rows else ""


def _events_table(events: Sequence[Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{html_text(label)}</th>" for label, _ in EVENT_COLUMNS)
    rows = []
    for event in events:
        cells = "".join(f"<td>{html_text(_value(event, getters))}</td>"
                        for _label, getters in _EVENT_GETTERS)
        rows.append(f"<tr>{cells}</tr>")
    return f"<table class='events'><tr>{head}</tr>{''.join(rows)}</table>"


def _alert_section(alert: ReportAlert) -> str:
    doc = alert.document
    severity = str(doc.get("kibana.alert.severity", ""))
    rule_id = str(doc.get("kibana.alert.rule.rule_id", ""))
    summary = doc.get("vigil.summary")
    if not isinstance(summary, Mapping):
        from vigil.detect.alerts import summary as summarize

        summary = summarize(list(alert.events))
    return f"""
<section class="alert" id="alert-{html_text(alert.id)}">
  <h3>{_badge(severity)} {html_text(doc.get("kibana.alert.rule.name", ""))}
      <span class="muted">risk {html_text(doc.get("kibana.alert.risk_score", ""))} ·
      {html_text(doc.get("kibana.alert.original_time", ""))}</span></h3>
  <p class="reason">{html_text(doc.get("kibana.alert.reason", ""))}</p>
  {_summary_table(summary)}
  {_events_table(alert.events)}
  <p class="muted">alert id {html_text(alert.id)} · status
     {html_text(doc.get("kibana.alert.workflow_status", "open"))} ·
     <a href="#rule-{html_text(rule_id)}">investigation guide</a></p>
</section>"""


def _rule_section(doc: Mapping[str, Any]) -> str:
    rule_id = str(doc.get("kibana.alert.rule.rule_id", ""))
    note = str(doc.get("kibana.alert.rule.note") or "")
    guide = _markdown.render(note) if note else "<p class='muted'>No investigation guide.</p>"
    return f"""
<section class="rule" id="rule-{html_text(rule_id)}">
  <h3>{html_text(doc.get("kibana.alert.rule.name", ""))}
      <span class="muted">{html_text(rule_id)} · version
      {html_text(doc.get("kibana.alert.rule.version", ""))}</span></h3>
  <p>{html_text(doc.get("kibana.alert.rule.description", ""))}</p>
  {_threat(doc)}
  <div class="guide">{guide}</div>
</section>"""


def render_report(alerts: Sequence[ReportAlert], *, title: str = "vigil report",
                  facts: Mapping[str, Any] | None = None,
                  generated: datetime | None = None) -> str:
    ordered = sorted(alerts, key=lambda a: str(a.document.get("kibana.alert.original_time")))
    moment = (generated or datetime.now(UTC)).isoformat(timespec="seconds")
    fact_rows = "".join(f"<tr><th>{html_text(k)}</th><td>{html_text(v)}</td></tr>"
                        for k, v in (facts or {}).items())
    index_rows = []
    for alert in ordered:
        doc = alert.document
        found = doc.get("vigil.summary")
        summary: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        index_rows.append(
            f"<tr><td><a href='#alert-{html_text(alert.id)}'>"
            f"{html_text(doc.get('kibana.alert.original_time', ''))}</a></td>"
            f"<td>{html_text(doc.get('kibana.alert.rule.name', ''))}</td>"
            f"<td>{_badge(str(doc.get('kibana.alert.severity', '')))}</td>"
            f"<td>{html_text(summary.get('host', ''))}</td>"
            f"<td>{html_text(summary.get('user', ''))}</td>"
            f"<td>{html_text(summary.get('source_ip', ''))}</td></tr>")
    rules: dict[str, Mapping[str, Any]] = {}
    for alert in ordered:
        rules.setdefault(str(alert.document.get("kibana.alert.rule.rule_id")), alert.document)
    body_alerts = "".join(_alert_section(a) for a in ordered) or "<p>No alerts.</p>"
    body_rules = "".join(_rule_section(doc) for doc in rules.values())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html_text(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1c2833;
       padding: 0 1rem; }}
h1 {{ margin-bottom: .2rem; }} h2 {{ border-bottom: 2px solid #d5dbdb; margin-top: 2.5rem; }}
table {{ border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }}
th, td {{ border: 1px solid #d5dbdb; padding: .25rem .5rem; text-align: left;
          vertical-align: top; overflow-wrap: anywhere; }}
th {{ background: #f4f6f6; }} table.kv th {{ width: 10rem; }}
.badge {{ color: #fff; border-radius: .3rem; padding: .05rem .45rem; font-size: .8rem; }}
.muted {{ color: #707b7c; font-size: .85rem; font-weight: normal; }}
section.alert, section.rule {{ border: 1px solid #d5dbdb; border-radius: .4rem;
                               padding: .4rem 1rem; margin: 1rem 0; }}
section.alert:target {{ outline: 3px solid #f5b041; }}
.reason {{ font-family: ui-monospace, monospace; font-size: .85rem; }}
.guide {{ font-size: .92rem; }}
@media print {{ section {{ break-inside: avoid; }} a {{ color: inherit; }} }}
</style></head><body>
<h1>{html_text(title)}</h1>
<p class="muted">generated {html_text(moment)} by vigil · {len(ordered)} alert(s)</p>
{f"<table class='kv'>{fact_rows}</table>" if fact_rows else ""}
<h2>Alerts</h2>
<table class="index"><tr><th>time</th><th>rule</th><th>severity</th><th>host</th><th>user</th>
<th>source</th></tr>{"".join(index_rows)}</table>
{body_alerts}
<h2>Rules and investigation guides</h2>
{body_rules or "<p>No rule fired.</p>"}
</body></html>
"""
