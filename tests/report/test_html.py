"""The HTML report: complete, linkable, and inert whatever the logs contain."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vigil.detect.run import run_detection
from vigil.events.logon import apply_intended_logon_id
from vigil.report.html import ReportAlert, render_report
from vigil.rules import bundled_rules
from vigil.synth import Generator

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'


def hostile_alerts() -> list[ReportAlert]:
    generator = Generator(seed=1)
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    logon = generator.logon(at, "WS01", target_id="0x1234")
    install = generator.service_install(at + timedelta(seconds=5), "WS01", "0x1234",
                                        HOSTILE, "C:\\x\\" + HOSTILE)
    apply_intended_logon_id(logon)
    alerts = run_detection(bundled_rules(), [logon, install]).alerts
    assert len(alerts) == 1
    return [ReportAlert(a.document, a.building_blocks) for a in alerts]


def test_report_escapes_log_content_and_links_every_alert() -> None:
    alerts = hostile_alerts()
    page = render_report(alerts, facts={"source": HOSTILE})
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "script-src" not in page and "default-src 'none'" in page  # CSP: no script at all
    assert f'id="alert-{alerts[0].id}"' in page
    assert f"href='#alert-{alerts[0].id}'" in page
    assert "Investigating Remote Windows Service Installed" in page  # the guide
    assert "T1543.003" in page and "https://attack.mitre.org/" in page
    # The event time, not the building block's creation time.
    assert "2024-05-01T12:00:05" in page


def test_guide_markdown_cannot_inject_html_or_script_links() -> None:
    alerts = hostile_alerts()
    doc: dict[str, Any] = dict(alerts[0].document)
    doc["kibana.alert.rule.note"] = ("# Guide\n<iframe src=x></iframe>\n"
                                     "[click](javascript:alert(1)) [ok](https://example.org)")
    page = render_report([ReportAlert(doc, alerts[0].building_blocks)])
    assert "<iframe" not in page and "&lt;iframe" in page
    assert 'href="javascript' not in page  # markdown-it refuses the link; it stays text
    assert '<a href="https://example.org">ok</a>' in page


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("VIGIL_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def test_a_real_browser_renders_the_report_without_running_anything(tmp_path: Path) -> None:
    browser = _chromium()
    page = tmp_path / "report.html"
    page.write_text(render_report(hostile_alerts()), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([str(browser), *flags, "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert "Remote Windows Service Installed" in dom
    assert "<script" not in dom and "<img" not in dom  # the hostile name stayed text
    assert HOSTILE.split(">")[0].replace("<", "&lt;") in dom
    shot = tmp_path / "report.png"
    subprocess.run([str(browser), *flags, f"--screenshot={shot}", "--window-size=1280,1600",
                    page.as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000  # a real rendering, not an empty page
