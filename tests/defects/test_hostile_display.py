"""Log content is never markup and never hides itself (issue 13, items 10 and 21).

The bundled example with hostile values written into every service install: a service name
that is rich markup (``[/x]`` crashed the table), a host name hiding a terminal hyperlink, and
a bidi override that makes ``invoice<U+202E>fdp.exe`` read as "invoiceexe.pdf".
"""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.test_cli import EXAMPLES, vigil

SERVICE = "[/x][bold]evil invoice\u202efdp.exe\u200b"
HOST = "[link=https://evil.example]WS004.corp.local[/link]"


def _hostile(tmp_path: Path) -> Path:
    out = tmp_path / "hostile.ndjson"
    lines = []
    for raw in (EXAMPLES / "windows-security.ndjson").read_bytes().splitlines():
        doc = orjson.loads(raw)
        if doc["event"]["code"] == "4697":
            doc["winlog"]["event_data"]["ServiceName"] = SERVICE
            doc.setdefault("service", {})["name"] = SERVICE
        if doc["host"]["name"] == "WS004.corp.local":
            doc["host"]["name"] = HOST
        lines.append(orjson.dumps(doc))
    out.write_bytes(b"\n".join(lines) + b"\n")
    return out


def test_table_prints_hostile_values_as_text(tmp_path: Path) -> None:
    result = vigil("detect", _hostile(tmp_path))
    assert result.returncode == 0, result.stderr
    shown = " ".join(result.stdout.split())  # the table may fold long cells
    assert "[/x][bold]evil" in shown  # literally, not as markup
    assert "\u202e" not in result.stdout and "\u200b" not in result.stdout
    assert "<U+202E>" in shown and "<U+200B>" in shown
    assert "\x1b]8;" not in result.stdout  # no terminal hyperlink
    assert "[link=https://evil.example]" in shown


def test_html_and_csv_make_invisible_characters_visible(tmp_path: Path) -> None:
    path = _hostile(tmp_path)
    report = tmp_path / "report.html"
    result = vigil("detect", path, "--format", "html", "--output", report)
    assert result.returncode == 0, result.stderr
    html = report.read_text(encoding="utf-8")
    assert "\u202e" not in html and "\u200b" not in html
    assert "invoice&lt;U+202E&gt;fdp.exe" in html
    timeline = tmp_path / "timeline.csv"
    result = vigil("detect", path, "--format", "csv", "--output", timeline)
    assert result.returncode == 0, result.stderr
    text = timeline.read_text(encoding="utf-8")
    assert "\u202e" not in text and "invoice<U+202E>fdp.exe" in text
