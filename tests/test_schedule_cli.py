"""`vigil replay` and `vigil watch` as processes: schedule, store, gaps, crashes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import REPO
from vigil.detect.run import run_detection
from vigil.events import ReadStats, read_events
from vigil.rules import bundled_rules
from vigil.store import AlertFilter, open_store
from vigil.synth import Generator


def vigil(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vigil.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def shells(db: Path) -> list[Any]:
    with open_store(db) as store:
        return store.list_alerts(AlertFilter())


def test_replay_fills_a_planted_outage_that_elastic_reports_as_a_gap(tmp_path: Path) -> None:
    generator = Generator(seed=21, events_per_second=0.25)
    logs = tmp_path / "day.ndjson"
    with logs.open("wb") as out:
        for doc in generator.events(int(18 * 3600 * 0.25), planted_every=250):
            out.write(orjson.dumps(doc) + b"\n")
    events = list(read_events([logs], ReadStats()))
    one_shot = {a.id for a in run_detection(bundled_rules(), events).alerts}
    assert len(one_shot) == sum(p.fires for p in generator.planted) > 3
    window = ["--from", "2024-05-01T08:00:00Z", "--to", "2024-05-02T03:00:00Z",
              "--down", "2024-05-01T12:00:00Z..2024-05-01T14:30:00Z"]
    complete = vigil("replay", logs, "--store", tmp_path / "complete.db", *window)
    assert complete.returncode == 0, complete.stderr
    elastic = vigil("replay", logs, "--store", tmp_path / "elastic.db", *window,
                    "--gap-mode", "elastic")
    assert "were not queried between this rule execution and the last execution" in \
        elastic.stderr
    complete_ids = [a.id for a in shells(tmp_path / "complete.db")]
    elastic_ids = [a.id for a in shells(tmp_path / "elastic.db")]
    assert sorted(complete_ids) == sorted(one_shot)  # no window skipped, no duplicate
    assert len(set(elastic_ids)) == len(elastic_ids) and set(elastic_ids) < one_shot
    with open_store(tmp_path / "elastic.db") as store:
        failed = store.list_executions(status="failed")
    assert len(failed) == 1 and failed[0].gap is not None
    again = vigil("replay", logs, "--store", tmp_path / "complete.db", *window)
    assert "0 new alert(s)" in again.stderr


def _append_pairs(path: Path, count: int, stop: threading.Event,
                  planted: list[str]) -> None:
    generator = Generator(seed=99)
    rng = random.Random(7)
    with path.open("ab", buffering=0) as out:
        for _ in range(count):
            if stop.is_set():
                return
            now = datetime.now(UTC)
            host = generator.host()
            session = generator.logon_id()
            logon = generator.logon(now, host, target_id=session)
            install = generator.service_install(now + timedelta(milliseconds=300), host,
                                                session, "updsvc", "C:\\Users\\Public\\u.exe")
            noise = generator.process(now, generator.host())
            for doc in (logon, noise, install):
                out.write(orjson.dumps(doc) + b"\n")
                time.sleep(rng.uniform(0.01, 0.08))
            planted.append(session)


def _start(folder: Path, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vigil.cli", "watch", folder, "--store", db,
                             "--interval", "1s", "--poll", "0.2"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_watch_killed_at_random_moments_alerts_every_sequence_exactly_once(
        tmp_path: Path) -> None:
    folder = tmp_path / "live"
    folder.mkdir()
    logs = folder / "security.ndjson"
    logs.touch()
    db = tmp_path / "watch.db"
    planted: list[str] = []
    stop = threading.Event()
    writer = threading.Thread(target=_append_pairs, args=(logs, 40, stop, planted))
    rng = random.Random(int(os.environ.get("VIGIL_TEST_SEED", "1")))
    watcher = _start(folder, db)
    writer.start()
    kills = 0
    try:
        while writer.is_alive() and kills < 4:
            time.sleep(rng.uniform(0.8, 2.5))
            watcher.send_signal(signal.SIGKILL)
            watcher.wait(timeout=30)
            kills += 1
            watcher = _start(folder, db)
        writer.join(timeout=120)
        time.sleep(4)  # a few more scheduled runs over the last events
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(timeout=60) == 0  # SIGTERM: finish the run, exit cleanly
    finally:
        stop.set()
        if watcher.poll() is None:
            watcher.kill()
    assert kills >= 2 and len(planted) == 40
    alerts = shells(db)
    sessions = [a.document["vigil.summary"]["logon_id"] for a in alerts]
    assert sorted(sessions) == sorted(planted)  # every planted sequence, exactly once


def test_a_restarted_watcher_seeks_to_the_first_block_a_window_needs(tmp_path: Path) -> None:
    from vigil.commands.schedule import _Tail
    from vigil.events import ReadOptions

    logs = tmp_path / "grow.ndjson"
    generator = Generator(seed=4, events_per_second=0.1)
    docs = list(generator.events(3_000, planted_every=0))  # about 8 hours
    with open_store(tmp_path / "index.db") as store:
        first = _Tail(logs, store)
        for part in range(6):  # the file grows in six appends, read after each
            with logs.open("ab") as out:
                for doc in docs[part * 500:(part + 1) * 500]:
                    out.write(orjson.dumps(doc) + b"\n")
            assert len(first.read_new(ReadStats(), ReadOptions())) == 500
        blocks = store.file_blocks(str(logs), logs.stat().st_ino)
        assert len(blocks) == 6
        needed = blocks[3].min_ts
        assert needed is not None
        restarted = _Tail(logs, store, needed_from=needed)
        events = restarted.read_new(ReadStats(), ReadOptions())
    assert len(events) == 1_500  # blocks 3..5 only: the first 1,500 lines were never read
    assert events[0]["winlog"]["record_id"] == docs[1_500]["winlog"]["record_id"]


def _suppressed_rule(folder: Path, duration: str) -> Path:
    path = folder / "suppressed.toml"
    path.write_text(f"""[rule]
author = ["me"]
description = "d"
name = "Suppressed by host"
risk_score = 21
rule_id = "00000000-0000-4000-8000-0000000005b{len(duration)}"
severity = "low"
type = "query"
language = "kuery"
query = "event.code: 4688"
from = "now-6m"
interval = "5m"
[rule.alert_suppression]
group_by = ["host.name"]
{duration}
""", encoding="utf-8")
    return path


def test_replay_suppression_with_a_duration_folds_later_runs_into_the_first_alert(
        tmp_path: Path) -> None:
    # Kibana's bulkCreateWithSuppression: within the duration, a later execution updates
    # the existing alert (end, docs_count + n + 1, last_detected) instead of writing one
    logs = tmp_path / "p.ndjson"
    base = datetime(2024, 5, 1, 10, 0, 30, tzinfo=UTC)
    with logs.open("wb") as out:
        for n in range(4):  # one process start every 5 minutes on WS1
            out.write(orjson.dumps({"@timestamp": (base + timedelta(minutes=5 * n)).isoformat(),
                                    "_id": f"p{n}", "event": {"code": "4688"},
                                    "host": {"name": "WS1"}}) + b"\n")
    window = ["--from", "2024-05-01T10:00:00Z", "--to", "2024-05-01T10:30:00Z"]
    rule = _suppressed_rule(tmp_path, '[rule.alert_suppression.duration]\nvalue = 1\nunit = "h"')
    held = vigil("replay", logs, "--store", tmp_path / "held.db", "--rule", rule, *window)
    assert held.returncode == 0, held.stderr
    (alert,) = shells(tmp_path / "held.db")
    assert alert.document["kibana.alert.suppression.docs_count"] == 3
    assert alert.document["kibana.alert.suppression.end"].startswith("2024-05-01T10:15:30")
    # without a duration, a group lasts one execution: one alert per run
    per_run = _suppressed_rule(tmp_path, "")
    apart = vigil("replay", logs, "--store", tmp_path / "apart.db", "--rule", per_run, *window)
    assert apart.returncode == 0, apart.stderr
    assert len(shells(tmp_path / "apart.db")) == 4


def test_suppression_leaves_out_what_an_overlapping_window_already_counted(
        tmp_path: Path) -> None:
    # buildBucketHistoryFilter: E1 (00:09) was counted by the run at 00:10; the run at 00:15
    # (window 00:06..00:15) sees E1 again but counts only E2
    logs = tmp_path / "l.ndjson"
    logs.write_text("".join(
        orjson.dumps({"@timestamp": f"2024-05-01T00:{m}:00.000Z", "_id": f"e{m}",
                      "event": {"code": "4688"}, "host": {"name": "WS1"}}).decode() + "\n"
        for m in ("09", "12")), encoding="utf-8")
    window = ["--from", "2024-05-01T00:10:00Z", "--to", "2024-05-01T00:15:00Z"]
    for duration, expected in (("", [("00:09", 0), ("00:12", 0)]),
                               ('[rule.alert_suppression.duration]\nvalue = 1\nunit = "h"',
                                [("00:12", 1)])):
        rule = _suppressed_rule(tmp_path, duration.replace('"now-6m"', '"now-9m"'))
        text = rule.read_text(encoding="utf-8").replace('from = "now-6m"', 'from = "now-9m"')
        rule.write_text(text, encoding="utf-8")
        db = tmp_path / f"s{len(duration)}.db"
        run = vigil("replay", logs, "--store", db, "--rule", rule, *window)
        assert run.returncode == 0, run.stderr
        got = sorted((a.document["kibana.alert.suppression.end"][11:16],
                      a.document["kibana.alert.suppression.docs_count"]) for a in shells(db))
        assert got == expected, (duration, got)


def test_watch_keeps_a_new_terms_rules_history(tmp_path: Path) -> None:
    # A watcher trimming its events to the look-back would forget that bob logged on two
    # hours ago and call his logon a minute ago new; Kibana's history window (now-7d) knows
    logs = tmp_path / "logs"
    logs.mkdir()
    now = datetime.now(UTC)
    rule = tmp_path / "nt.toml"
    rule.write_text("""[rule]
author = ["me"]
description = "d"
name = "New user"
risk_score = 21
rule_id = "00000000-0000-4000-8000-0000000005c1"
severity = "low"
type = "new_terms"
language = "kuery"
query = "event.category: authentication"
from = "now-9m"
new_terms_fields = ["user.name"]
history_window_start = "now-7d"
""", encoding="utf-8")

    def logon(at: datetime, user: str) -> bytes:
        return orjson.dumps({"@timestamp": at.isoformat(), "event": {
            "category": "authentication"}, "user": {"name": user}}) + b"\n"

    (logs / "a.ndjson").write_bytes(logon(now - timedelta(hours=2), "bob")
                                    + logon(now - timedelta(minutes=1), "bob")
                                    + logon(now - timedelta(minutes=1), "eve"))
    run = vigil("watch", logs, "--store", tmp_path / "w.db", "--rule", rule, "--once")
    assert run.returncode == 0, run.stderr
    assert [a.document["kibana.alert.new_terms"] for a in shells(tmp_path / "w.db")] == \
        [["eve"]]
