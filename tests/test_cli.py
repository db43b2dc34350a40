"""The command line as a user runs it: a real process, real files, exit codes and output."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_dir

EXAMPLES = REPO / "examples"


def vigil(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vigil.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_detect_on_the_bundled_example_raises_alerts_only_with_the_fix() -> None:
    result = vigil("detect", EXAMPLES)
    assert result.returncode == 0, result.stderr
    assert "Remote Windows Service Installed" in result.stdout
    assert "ran 1 rule(s): 3 alert(s)" in result.stderr
    elastic = vigil("detect", EXAMPLES, "--logon-id", "elastic")
    assert elastic.returncode == 0
    assert "ran 1 rule(s): 0 alert(s)" in elastic.stderr


def test_detect_ndjson_writes_building_blocks_and_shells(tmp_path: Path) -> None:
    out = tmp_path / "alerts.ndjson"
    result = vigil("detect", EXAMPLES, "--format", "ndjson", "--output", out)
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    shells = [d for d in docs if "kibana.alert.group.index" not in d]
    blocks = [d for d in docs if "kibana.alert.group.index" in d]
    assert len(shells) == 3 and len(blocks) == 6
    again = tmp_path / "again.ndjson"
    vigil("detect", EXAMPLES, "--format", "ndjson", "--output", again)
    ids = [json.loads(line)["kibana.alert.uuid"] for line in again.read_text().splitlines()]
    assert ids == [d["kibana.alert.uuid"] for d in docs]


def test_detect_csv_timeline(tmp_path: Path) -> None:
    result = vigil("detect", EXAMPLES, "--format", "csv")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("datetime,timestamp_desc,message,rule")
    assert len(lines) == 1 + 6


def test_bad_input_is_counted_with_its_place_and_the_run_goes_on(tmp_path: Path) -> None:
    good = (EXAMPLES / "windows-security.ndjson").read_bytes()
    bad = tmp_path / "evidence"
    bad.mkdir()
    lines = good.splitlines(keepends=True)
    broken = [*lines[:3], b'{"@timestamp": "2024-05-01T08:00:00Z", "event": \n', b"\xff\xfe\n",
              b"[1, 2]\n", b"42\n", b'{"event": {"category": "process"}}\n',
              b'{"@timestamp": "yesterday"}\n', *lines[3:]]
    (bad / "export.ndjson").write_bytes(b"".join(broken))
    with gzip.open(bad / "cut.ndjson.gz", "wb") as handle:
        handle.write(good)
    data = (bad / "cut.ndjson.gz").read_bytes()
    (bad / "cut.ndjson.gz").write_bytes(data[: len(data) // 2])
    result = vigil("detect", bad)
    assert result.returncode == 0, result.stderr
    assert "3 alert(s)" in result.stderr  # every good event of export.ndjson was still read
    for line_number in (4, 5, 6, 7, 8, 9):
        assert f"export.ndjson:{line_number}:" in result.stderr
    assert "cut.ndjson.gz" in result.stderr
    assert "skipped 7 bad record(s)" in result.stderr


def test_rules_validate_points_at_file_line_and_column(tmp_path: Path) -> None:
    seed = (REPO / "src/vigil/rules/bundled/lateral_movement_remote_service_installed_winlog"
            ".toml").read_text(encoding="utf-8")
    (tmp_path / "good.toml").write_text(seed, encoding="utf-8")
    broken = seed.replace('[iam where event.action == "service-installed" and',
                          '[iam where event.action == and')
    (tmp_path / "bad.toml").write_text(broken, encoding="utf-8")
    result = vigil("rules", "validate", tmp_path)
    assert result.returncode == 2
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if "== and" in text)
    column = broken.splitlines()[line - 1].index("and", broken.splitlines()[line - 1].index("==")) + 1
    assert f"bad.toml:{line}:{column}:" in result.stderr
    assert "^" in result.stderr
    assert "1 of 2 rules failed to load" in result.stdout


def test_rules_validate_accepts_the_prebuilt_corpus() -> None:
    folder = shared_dir() / "rules" / "elastic-prebuilt"
    result = vigil("rules", "validate", folder)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "all 1024 rules valid" in result.stdout


def test_rules_show_renders_the_investigation_guide() -> None:
    result = vigil("rules", "show", "d33ea3bf")
    assert result.returncode == 0
    assert "Investigating Remote Windows Service Installed" in result.stdout
    assert "TargetLogonId" in result.stdout  # the logon-id note


def test_query_errors_show_a_caret_and_exit_2() -> None:
    result = vigil("query", "process where (", EXAMPLES)
    assert result.returncode == 2
    assert "1:16" in result.stderr and "^" in result.stderr


def test_convert_writes_ecs_documents_and_bulk_actions(tmp_path: Path) -> None:
    sample = next((shared_dir() / "samples" / "evtx").rglob("ID7045-4697*.evtx"))
    out = tmp_path / "bulk.ndjson"
    result = vigil("convert", sample, "--to", "bulk", "--output", out)
    assert result.returncode == 0, result.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) % 2 == 0 and lines
    action, doc = json.loads(lines[0]), json.loads(lines[1])
    assert action["create"]["_index"].startswith("logs-system.")
    assert "@timestamp" in doc and "_index" not in doc


@pytest.mark.parametrize("command", ["detect", "query", "convert", "rules"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = vigil(command, "--help")
    assert result.returncode == 0
    if command != "rules":
        assert "Example" in result.stdout


def test_query_hunts_with_sequences_and_sizes() -> None:
    query = ('sequence by winlog.computer_name with maxspan=1m '
             '[authentication where winlog.logon.type : "network"] '
             '[iam where event.action == "service-installed"]')
    result = vigil("query", query, EXAMPLES, "--format", "ndjson")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines and {line["stage"] for line in lines} == {0, 1}
    assert all(line["join_keys"] for line in lines)
    limited = vigil("query", "any where true", EXAMPLES, "--format", "ndjson", "--size", "3")
    assert len(limited.stdout.splitlines()) == 3
    table = vigil("query", 'iam where event.action == "service-installed"', EXAMPLES)
    installs = (EXAMPLES / "windows-security.ndjson").read_text().count(
        '"action":"service-installed"')
    assert installs > 0 and f"; {installs} match(es)" in table.stderr


def test_detect_html_report_links_every_alert(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = vigil("detect", EXAMPLES, "--format", "html", "--output", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    ndjson = vigil("detect", EXAMPLES, "--format", "ndjson").stdout.splitlines()
    shells = [json.loads(line) for line in ndjson if "kibana.alert.group.index" not in line]
    assert len(shells) == 3
    for shell in shells:
        assert f'id="alert-{shell["kibana.alert.uuid"]}"' in page
    assert "Investigating Remote Windows Service Installed" in page


def test_exceptions_remove_events_before_matching(tmp_path: Path) -> None:
    ndjson = vigil("detect", EXAMPLES, "--format", "ndjson").stdout.splitlines()
    shells = [json.loads(line) for line in ndjson if "kibana.alert.group.index" not in line]
    excluded_ip = shells[0]["vigil.summary"]["source_ip"]
    rules = tmp_path / "exceptions.toml"
    rules.write_text('[[exception]]\nname = "Admin jump host"\n[[exception.entries]]\n'
                     f'field = "source.ip"\ntype = "match_any"\nvalue = ["{excluded_ip}"]\n',
                     encoding="utf-8")
    result = vigil("detect", EXAMPLES, "--exceptions", rules, "--format", "ndjson")
    assert result.returncode == 0, result.stderr
    left = [json.loads(line) for line in result.stdout.splitlines()
            if "kibana.alert.group.index" not in line]
    assert len(left) == len(shells) - 1
    assert excluded_ip not in {s["vigil.summary"]["source_ip"] for s in left}
    assert "1 event(s) removed by exceptions" in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text('[[exception]]\nname = "x"\n[[exception.entries]]\nfield = "a"\n'
                      'type = "bogus"\n', encoding="utf-8")
    failed = vigil("detect", EXAMPLES, "--exceptions", broken)
    assert failed.returncode == 2 and "broken.toml:" in failed.stderr


def test_query_engines_print_the_same_matches() -> None:
    query = ('sequence by winlog.logon.id with maxspan=1m '
             '[authentication where event.action == "logged-in"] '
             '[iam where event.action == "service-installed"]')
    fast = vigil("query", query, EXAMPLES, "--format", "ndjson")
    reference = vigil("query", query, EXAMPLES, "--format", "ndjson", "--engine", "reference")
    assert fast.returncode == 0 and reference.returncode == 0, fast.stderr + reference.stderr
    assert fast.stdout == reference.stdout and fast.stdout
    assert "424 events" in fast.stderr and "424 events" in reference.stderr
    assert "skipped unparsed" in fast.stderr and "skipped unparsed" not in reference.stderr
    wrong = vigil("query", query, EXAMPLES, "--engine", "fastest")
    assert wrong.returncode == 2 and "--engine" in wrong.stderr
