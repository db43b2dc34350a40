"""``vigil watch --once`` (the cron mode) alerts on what its pass read, for events without
``event.ingested`` (issue 13, item 1): the bundled example moved to the last minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from tests.test_cli import EXAMPLES, vigil
from vigil.eql.schema import parse_iso_ns


def _recent(tmp_path: Path) -> Path:
    docs = [orjson.loads(raw) for raw in
            (EXAMPLES / "windows-security.ndjson").read_bytes().splitlines()]
    last = max(parse_iso_ns(d["@timestamp"]) or 0 for d in docs)
    shift = (datetime.now(UTC) - timedelta(minutes=2)).timestamp() * 1e9 - last
    for doc in docs:
        ns = (parse_iso_ns(doc["@timestamp"]) or 0) + shift
        moment = datetime.fromtimestamp(ns / 1e9, tz=UTC)
        doc["@timestamp"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert "ingested" not in doc["event"]
    path = tmp_path / "recent.ndjson"
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    return path


def test_watch_once_alerts_on_what_it_read(tmp_path: Path) -> None:
    store = tmp_path / "alerts.db"
    result = vigil("watch", "--once", "--store", store, _recent(tmp_path))
    assert result.returncode == 0, result.stderr
    listed = vigil("alerts", "list", "--store", store)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("3 alert(s)"), listed.stdout
