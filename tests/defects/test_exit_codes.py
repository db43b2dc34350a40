"""vigil detect's exit codes and severity floor (issue 14): 0 done, 1 alerts raised with
--fail-on-alert, 2 usage or rule errors; --min-severity keeps the alerts at or above."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli import EXAMPLES, vigil


def test_fail_on_alert() -> None:
    assert vigil("detect", EXAMPLES).returncode == 0
    raised = vigil("detect", EXAMPLES, "--fail-on-alert")
    assert raised.returncode == 1 and "3 alert(s)" in raised.stderr
    quiet = vigil("detect", EXAMPLES, "--fail-on-alert", "--logon-id", "elastic")
    assert quiet.returncode == 0 and "0 alert(s)" in quiet.stderr  # no alert: success


def test_min_severity(tmp_path: Path) -> None:
    medium = vigil("detect", EXAMPLES, "--min-severity", "medium", "--fail-on-alert")
    assert medium.returncode == 1 and "ran 1 rule(s): 3 alert(s)" in medium.stderr
    high = vigil("detect", EXAMPLES, "--min-severity", "high", "--fail-on-alert")
    assert high.returncode == 0 and "ran 1 rule(s): 0 alert(s)" in high.stderr
    bad = vigil("detect", EXAMPLES, "--min-severity", "severe")
    assert bad.returncode == 2 and "--min-severity" in bad.stderr


def test_summary_counts_alerts_by_host() -> None:
    result = vigil("detect", EXAMPLES)
    assert "alerts by host: WS004.corp.local 1, WS007.corp.local 1, WS022.corp.local 1" in \
        result.stderr


def test_help_shows_choices_and_a_wrong_choice_is_a_usage_error() -> None:
    """Issue 14: --help names the choices (Literal types the CLI library renders and checks)."""
    shown = " ".join(vigil("detect", "--help").stdout.split())
    for choices in ("<table|ndjson|csv|html>", "<auto|fast|reference>", "<intended|elastic>"):
        assert choices in shown, choices
    wrong = vigil("detect", EXAMPLES, "--format", "xml")
    assert wrong.returncode == 2 and "'xml' is not one of" in wrong.stderr
