"""The fast path equals the reference on every Windows channel vigil maps: the OTRF samples
(NXLog lines with Sysmon, Security, PowerShell and System events) as they are, and the same
events as raw Winlogbeat / Elastic Agent documents (the winlog input before any pipeline),
with all of Elastic's prebuilt Windows EQL rules. Read in place from ``../shared``."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import shared_dir
from vigil.backends import fast
from vigil.detect.run import DetectOptions, run_detection
from vigil.events import ReadOptions, ReadStats, read_events
from vigil.events.otrf import winevent_of_nxlog
from vigil.events.winlog import base_document
from vigil.rules import Rule, load_rules

NOW = "2024-06-01T00:00:00.000Z"
SAMPLE = "empire_psexec_dcerpc_tcp_svcctl.zip"


def _windows_rules() -> tuple[Rule, ...]:
    loaded = load_rules([shared_dir() / "rules" / "elastic-prebuilt" / "rules" / "windows"])
    return tuple(loaded.rules)


def _documents(result: Any) -> list[Any]:
    return [doc for alert in result.alerts for doc in alert.documents()]


def _flat(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, inner in value.items():
        if isinstance(inner, dict) and inner:
            out.update(_flat(inner, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = inner
    return out


def _raw_winlog(tmp_path: Path, flat: bool = False) -> Path:
    """The sample's events as the winlog input writes them (one JSON document a line), with
    nested or flat dotted keys."""
    source = shared_dir() / "samples" / "json" / "OTRF_Security-Datasets" / SAMPLE
    out = tmp_path / "winlogbeat.ndjson"
    with zipfile.ZipFile(source) as archive, out.open("wb") as handle:
        for info in archive.infolist():
            if not info.filename.endswith(".json"):
                continue
            for line in archive.read(info).splitlines():
                if not line.strip():
                    continue
                event = winevent_of_nxlog(orjson.loads(line))
                if isinstance(event, str):
                    continue
                doc = base_document(event)
                handle.write(orjson.dumps(_flat(doc) if flat else doc) + b"\n")
    return out


@pytest.mark.parametrize("kind", ["otrf", "raw-winlog", "raw-winlog-flat"])
def test_fast_path_equals_reference_on_every_channel(tmp_path: Path, kind: str) -> None:
    rules = _windows_rules()
    assert len(rules) > 300
    path = (shared_dir() / "samples" / "json" / "OTRF_Security-Datasets" / SAMPLE
            if kind == "otrf" else _raw_winlog(tmp_path, flat=kind.endswith("flat")))
    options = DetectOptions(now=NOW)
    events = list(read_events([path], ReadStats(), ReadOptions()))
    datasets = {e["data_stream"]["dataset"] for e in events}
    assert {"windows.sysmon_operational", "system.security"} <= datasets
    expected = run_detection(rules, events, options=options)
    got, _stats = fast.run_fast(rules, [path], ReadStats(), ReadOptions(), options, workers=2)
    assert _documents(expected), "the sample raises no alert: the comparison shows nothing"
    assert any(doc.get("kibana.alert.original_data_stream.dataset")
               == "windows.sysmon_operational" for doc in _documents(expected))
    assert _documents(got) == _documents(expected)
