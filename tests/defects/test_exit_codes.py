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


def test_the_table_fits_80_columns_and_keeps_the_time_whole() -> None:
    """Issue 14: at 80 columns the summary folds, the event time never does."""
    import io

    from rich.console import Console

    import vigil
    from vigil.backends.fast import run_fast
    from vigil.detect.run import DetectOptions
    from vigil.events import ReadOptions, ReadStats
    from vigil.report.outputs import print_table

    result, _fast = run_fast(vigil.load_rules(), [EXAMPLES], ReadStats(), ReadOptions(),
                             DetectOptions())
    out = io.StringIO()
    print_table(result.alerts, Console(file=out, width=80, highlight=False))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    for alert in result.alerts:
        stamp = str(alert.document["kibana.alert.original_time"])
        assert any(stamp in line for line in lines), stamp
