"""replay's cost grows with events and the runs that see them, not with every scheduled run
(issue 13, item 16): consecutive runs with nothing in their windows are one execution row
(its message counts them) and are not executed one by one; the late-event check is one
sweep. Alerts are the same as a replay over a short range."""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.test_cli import EXAMPLES, vigil
from vigil.detect.executor import Timeline, late_events, to_ns
from vigil.detect.schedule import RunPlan, Window


def _alert_ids(store: Path) -> set[str]:
    with sqlite3.connect(store) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM alerts")}


def test_years_of_schedule_over_sparse_data(tmp_path: Path) -> None:
    short, long = tmp_path / "short.db", tmp_path / "long.db"
    assert vigil("replay", EXAMPLES, "--store", short, "--from", "2024-05-01T07:00Z",
                 "--to", "2024-05-01T10:00Z").returncode == 0
    began = time.monotonic()
    result = vigil("replay", EXAMPLES, "--store", long, "--from", "2022-01-01T00:00Z",
                   "--to", "2026-01-01T00:00Z")
    seconds = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    # Four years of 5-minute runs, both ends included.
    assert "420,769 execution(s)" in result.stderr
    assert _alert_ids(long) == _alert_ids(short) and len(_alert_ids(short)) == 9  # 3 x 3 docs
    with sqlite3.connect(long) as conn:
        rows = conn.execute("SELECT count(*) FROM executions").fetchone()[0]
        quiet = conn.execute("SELECT message FROM executions WHERE message LIKE "
                             "'%found no event in their windows' ORDER BY id").fetchall()
    assert rows < 100, rows  # one row per quiet stretch, not one per run
    # The first stretch: from 2022-01-01 to the example's events of 2024-05-01.
    assert quiet and int(quiet[0][0].split()[0].replace(",", "")) > 200_000
    assert seconds < 120  # not the hours it took to execute and store every run


def test_late_events_sweep_equals_the_definition() -> None:
    rng = random.Random(7)
    base = datetime(2024, 5, 1, tzinfo=UTC)
    events = []
    for n in range(400):
        ts = base + timedelta(seconds=rng.randint(0, 7200))
        ingested = ts + timedelta(seconds=rng.choice([0, 10, 400, 900, 3000]))
        events.append({"@timestamp": ts.isoformat().replace("+00:00", "Z"),
                       "event": {"ingested": ingested.isoformat().replace("+00:00", "Z")},
                       "n": n})
    timeline = Timeline.of(events)
    runs = []
    for k in range(0, 26):
        started = base + timedelta(minutes=5 * k)
        if k % 7 == 3:
            continue  # a missed run: some events are covered by fewer windows
        runs.append((started, RunPlan((Window(started - timedelta(minutes=9), started),),
                                      timedelta(0), None)))
    expected = []
    for i, (ts, arrival) in enumerate(zip(timeline.times, timeline.arrivals, strict=True)):
        covering = [to_ns(s) for s, plan in runs for w in plan.windows
                    if to_ns(w.start) <= ts <= to_ns(w.end)]
        if covering and all(run < arrival for run in covering):
            expected.append(i)
    assert late_events(timeline, runs) == expected
    assert 0 < len(expected) < len(events)


def test_replay_counts_alerts_not_documents(tmp_path: Path) -> None:
    """Issue 14: three sequence alerts are 3 alerts (9 documents with their building blocks)."""
    result = vigil("replay", EXAMPLES, "--store", tmp_path / "a.db", "--from",
                   "2024-05-01T07:00Z", "--to", "2024-05-01T10:00Z")
    assert result.returncode == 0 and ": 3 new alert(s)" in result.stderr, result.stderr


def test_alerts_show_json_is_one_json_document(tmp_path: Path) -> None:
    import json

    store = tmp_path / "a.db"
    vigil("replay", EXAMPLES, "--store", store, "--from", "2024-05-01T07:00Z",
          "--to", "2024-05-01T10:00Z")
    with sqlite3.connect(store) as conn:
        shell = conn.execute("SELECT id FROM alerts WHERE id = group_id LIMIT 1").fetchone()[0]
    shown = vigil("alerts", "show", "--store", store, "--json", shell)
    assert shown.returncode == 0, shown.stderr
    documents = json.loads(shown.stdout)
    assert [d["kibana.alert.uuid"] for d in documents][-1] == shell and len(documents) == 3


def test_runs_list_and_show(tmp_path: Path) -> None:
    """Issue 14: the run-by-run history a replay stored can be seen."""
    store = tmp_path / "a.db"
    vigil("replay", EXAMPLES, "--store", store, "--from", "2024-05-01T07:00Z",
          "--to", "2024-05-01T10:00Z")
    listed = vigil("runs", "list", "--store", store)
    assert listed.returncode == 0 and "execution(s)" in listed.stdout, listed.stderr
    with sqlite3.connect(store) as conn:
        busy = conn.execute("SELECT id FROM executions WHERE alerts_created > 0").fetchone()[0]
    shown = vigil("runs", "show", "--store", store, str(busy))
    assert shown.returncode == 0, shown.stderr
    assert "status      succeeded" in shown.stdout and "3 new (9 documents" in shown.stdout
    assert shown.stdout.count("Remote Windows Service Installed") == 3
    assert vigil("runs", "show", "--store", store, "99999").returncode == 2


def test_alerts_rule_takes_the_forms_detect_takes(tmp_path: Path) -> None:
    """Issue 14: --rule is a rule_id, a prefix of 4 or more characters, or the name in any
    case, in alerts as in detect."""
    store = tmp_path / "a.db"
    vigil("replay", EXAMPLES, "--store", store, "--from", "2024-05-01T07:00Z",
          "--to", "2024-05-01T10:00Z")
    for form in ("d33ea3bf-9a11-463e-bd46-f648f2a0f4b1", "d33e",
                 "remote windows service INSTALLED"):
        listed = vigil("alerts", "list", "--store", store, "--rule", form)
        assert listed.stdout.startswith("3 alert(s)"), (form, listed.stdout[:80])
    assert vigil("alerts", "list", "--store", store, "--rule", "d3").stdout.startswith(
        "no alerts match")


def test_replay_of_years_with_every_windows_rule_equals_detect(tmp_path: Path) -> None:
    """All 391 Windows rules scheduled every 5 minutes (or as each says) from 2016 to 2024
    over the samples: about 368 million runs, executed only where events are, and the
    alerts are exactly ``vigil detect``'s (same ids), in well under a minute."""
    import json

    from tests.conftest import shared_dir

    samples = shared_dir() / "samples"
    rules = shared_dir() / "rules" / "elastic-prebuilt" / "rules" / "windows"
    store, out = tmp_path / "r.db", tmp_path / "d.ndjson"
    began = time.monotonic()
    replay = vigil("replay", samples, "--store", store, "--rule", rules,
                   "--from", "2016-01-01T00:00Z", "--to", "2024-12-31T00:00Z")
    seconds = time.monotonic() - began
    assert replay.returncode == 0, replay.stderr
    detect = vigil("detect", samples, "--rule", rules, "--format", "ndjson", "--output", out)
    assert detect.returncode == 0, detect.stderr
    detected = {json.loads(line)["kibana.alert.uuid"] for line in out.open()}
    assert len(detected) > 50 and _alert_ids(store) == detected
    assert seconds < 150
