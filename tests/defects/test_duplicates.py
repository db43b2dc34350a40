"""The same evidence given twice is one alert per id, in every output (issue 13, item 6)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import shared_dir
from tests.test_cli import vigil

SERVICE = "evtx/mdecrevoisier_EVTX-to-MITRE-Attack/ID4688-4697 RDP hijack via service creation.evtx"


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_a_file_given_twice_gives_each_alert_once(tmp_path: Path, engine: str) -> None:
    folder = tmp_path / "evidence"
    folder.mkdir()
    sample = folder / "service.evtx"
    shutil.copy(shared_dir() / "samples" / SERVICE, sample)
    rules = shared_dir() / "rules" / "elastic-prebuilt" / "rules" / "windows"
    once = tmp_path / "once.ndjson"
    twice = tmp_path / "twice.ndjson"
    args = ["--rule", rules, "--format", "ndjson", "--engine", engine]
    assert vigil("detect", sample, *args, "--output", once).returncode == 0
    result = vigil("detect", folder, sample, *args, "--output", twice)
    assert result.returncode == 0, result.stderr
    ids_once = [json.loads(line)["kibana.alert.uuid"] for line in once.open()]
    ids_twice = [json.loads(line)["kibana.alert.uuid"] for line in twice.open()]
    assert ids_once, "the sample raises no alert: nothing is compared"
    assert ids_twice == ids_once
    assert len(set(ids_twice)) == len(ids_twice)
