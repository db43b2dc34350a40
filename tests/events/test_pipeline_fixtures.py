"""Elastic's own ingest-pipeline test fixtures, run through vigil's pipelines.

``../shared/conformance/elastic-pipelines`` holds, for the ``windows`` and ``system``
packages, the documents as the Elastic Agent's winlog input emits them (``test-X.json``) and
the same documents after the data stream's ingest pipeline (``test-X.json-expected.json``),
read in place. Every document is run through ``vigil.events.pipelines.ingest`` for the data
stream of its folder and compared with Elastic's, field by field, ignoring only what Elastic's
own test runner ignores (``event.ingested`` and the ``dynamic_fields`` of a
``test-*-config.yml``) and the short list of named exceptions below.

The fixtures were written by different versions of the pipelines (their ``ecs.version``
says which); vigil implements one version per data stream, so ``ecs.version`` is an
exception everywhere, and a fixture older or newer than vigil's version names the fields in
which the versions differ.
"""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import shared_dir
from vigil.events.pipelines import ingest

ALWAYS_IGNORED = frozenset({"event.ingested", "ecs.version"})

# Why a fixture's field differs (each a pipeline version vigil does not reproduce).
_SECURITY_NEWER = (
    "written by a newer standard.yml than ECS_MAPPING.md's (its description tables, tags and "
    "renames are not reproduced yet)"
)
_SCHEDULED_TASK = (
    "security_scheduled_task.yml (TaskContent XML -> winlog.scheduled_task.*) is not in "
    "../shared and not reproduced"
)
_GROUP_MEMBERSHIP = (
    "4627's user/group split of the newer standard.yml is not reproduced "
    "(user.target/effective are)"
)
_APPLOCKER_NEWER = (
    "written by a newer applocker pipeline (ecs 8.9/8.17: CN= publishers, arrays, "
    "process.pid) than the one in ../shared (ecs 8.0.0), which vigil reproduces"
)
_POWERSHELL_8_0 = (
    "written by the ecs 8.0.0 pipeline, which set scalars; vigil follows the current one in "
    "_dev/shared (ecs 8.17.0), which sets arrays"
)
_OPERATIONAL_8_0 = (
    "written by the ecs 8.0.0 pipeline; the current one "
    "(_dev/shared/powershell_operational.yml) copies winlog.process.pid and the winlog user, "
    "so the connected user no longer moves a user to destination.user"
)

# (data stream, fixture file) -> [(why, the fields it explains)]; every field named must still
# differ (test_exceptions_are_needed).
EXCEPTIONS: dict[tuple[str, str], list[tuple[str, tuple[str, ...]]]] = {
    ("system.security", "test-4627.json"): [
        (_GROUP_MEMBERSHIP, (
            "group.domain", "group.id", "group.name", "user.domain", "user.name",
        )),
        (_SECURITY_NEWER, (
            "tags", "winlog.event_data.EventCountTotal", "winlog.event_data.EventIdx",
        )),
    ],
    ("system.security", "test-4658.json"): [
        (_SECURITY_NEWER, (
            "tags",
        )),
    ],
    ("system.security", "test-4659.json"): [
        (_SECURITY_NEWER, (
            "tags", "winlog.event_data.AccessList", "winlog.event_data.AccessListDescription",
            "winlog.event_data.AccessMask", "winlog.event_data.AccessMaskDescription",
        )),
    ],
    ("system.security", "test-4660.json"): [
        (_SECURITY_NEWER, (
            "tags",
        )),
    ],
    ("system.security", "test-4663.json"): [
        (_SECURITY_NEWER, (
            "winlog.event_data.AccessListDescription", "winlog.event_data.AccessMaskDescription",
        )),
    ],
    ("system.security", "test-4675.json"): [
        (_SECURITY_NEWER, (
            "user.domain", "user.id", "user.name", "winlog.event_data.SidList",
            "winlog.event_data.SidListDesc", "winlog.trustAttribute", "winlog.trustDirection",
            "winlog.trustType",
        )),
    ],
    ("system.security", "test-4691.json"): [
        (_SECURITY_NEWER, (
            "tags", "winlog.event_data.AccessList", "winlog.event_data.AccessListDescription",
            "winlog.event_data.AccessMask", "winlog.event_data.AccessMaskDescription",
        )),
    ],
    ("system.security", "test-4692.json"): [
        (_SECURITY_NEWER, (
            "winlog.event_data.FailureReason", "winlog.event_data.FailureReasons",
            "winlog.event_data.FailureReasonsOutcome", "winlog.logon.failure.reason",
        )),
    ],
    ("system.security", "test-4695.json"): [
        (_SECURITY_NEWER, (
            "winlog.event_data.FailureReason", "winlog.event_data.FailureReasons",
            "winlog.event_data.FailureReasonsOutcome", "winlog.logon.failure.reason",
        )),
    ],
    ("system.security", "test-4698-scheduled-task-created.json"): [
        (_SCHEDULED_TASK, (
            "winlog.scheduled_task.actions", "winlog.scheduled_task.principals",
            "winlog.scheduled_task.settings.enabled", "winlog.scheduled_task.settings.hidden",
            "winlog.scheduled_task.triggers", "winlog.scheduled_task.uri",
        )),
    ],
    ("windows.applocker_exe_and_dll", "test-events-applocker-exe-8003-common-name.json"): [
        (_APPLOCKER_NEWER, (
            "event.category", "event.type", "file.pe.file_version",
            "file.pe.original_file_name", "file.pe.product", "file.x509.subject.common_name",
            "file.x509.subject.country", "file.x509.subject.organization",
            "file.x509.subject.state_or_province", "process.pid",
        )),
    ],
    ("windows.applocker_packaged_app_deployment", "test-events-microsoft-windows-applocker-packaged-app-deployment.json"): [
        (_APPLOCKER_NEWER, (
            "file.pe.file_version", "file.pe.original_file_name", "file.pe.product",
            "file.x509.subject.common_name", "file.x509.subject.country",
            "file.x509.subject.locality", "file.x509.subject.organization",
            "file.x509.subject.state_or_province",
        )),
    ],
    ("windows.applocker_packaged_app_execution", "test-events-microsoft-windows-applocker-packaged-app-execution.json"): [
        (_APPLOCKER_NEWER, (
            "file.pe.file_version", "file.pe.original_file_name", "file.pe.product",
            "file.x509.subject.common_name", "file.x509.subject.country",
            "file.x509.subject.locality", "file.x509.subject.organization",
            "file.x509.subject.state_or_province",
        )),
    ],
    ("windows.powershell", "test-events.json"): [
        (_POWERSHELL_8_0, (
            "event.category", "event.type",
        )),
    ],
    ("windows.powershell_operational", "test-events.json"): [
        (_OPERATIONAL_8_0, (
            "destination.user.domain", "destination.user.name", "process.pid",
        )),
        (_POWERSHELL_8_0, (
            "event.category", "event.type",
        )),
    ],
}


def _root() -> Path:
    return shared_dir() / "conformance" / "elastic-pipelines" / "packages"


def _dynamic_fields(folder: Path) -> set[str]:
    """``dynamic_fields`` keys of the folder's test configs (a flat YAML mapping)."""
    names: set[str] = set()
    for config in folder.glob("test-*config.yml"):
        inside = False
        for line in config.read_text(encoding="utf-8").splitlines():
            if line.startswith("dynamic_fields:"):
                inside = True
                continue
            if inside and line.startswith((" ", "\t")) and ":" in line:
                names.add(line.strip().split(":", 1)[0].strip("'\""))
            elif inside and line.strip():
                inside = False
    return names


def fixture_pairs() -> list[tuple[str, Path, Path]]:
    pairs = []
    for expected in sorted(_root().glob("*/data_stream/*/_dev/test/pipeline/*-expected.json")):
        source = expected.with_name(expected.name[: -len("-expected.json")])
        package = expected.parts[-7]
        stream = expected.parts[-5]
        pairs.append((f"{package}.{stream}", source, expected))
    return pairs


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else key, out)
    else:
        out[prefix] = value


def _ignored(path: str, ignored: set[str]) -> bool:
    return any(path == name or path.startswith(name + ".") for name in ignored)


def differences(actual: dict[str, Any], expected: dict[str, Any],
                ignored: set[str]) -> list[str]:
    """Field paths (leaf level) whose values differ, with both values."""
    left: dict[str, Any] = {}
    right: dict[str, Any] = {}
    _flatten(actual, "", left)
    _flatten(expected, "", right)
    out = []
    for path in sorted(left.keys() | right.keys()):
        if _ignored(path, ignored):
            continue
        a, b = left.get(path, "<absent>"), right.get(path, "<absent>")
        if a != b or type(a) is not type(b):
            out.append(f"{path}: vigil {a!r} / Elastic {b!r}")
    return out


def _cases() -> list[Any]:
    try:
        pairs = fixture_pairs()
    except pytest.skip.Exception:
        return [pytest.param(None, None, None, id="shared-missing")]
    return [pytest.param(stream, source, expected, id=f"{stream}/{source.name}")
            for stream, source, expected in pairs]


def run_fixture(stream: str, source: Path, expected: Path) -> list[list[str]]:
    """The differences of each document of one fixture pair (exceptions applied)."""
    inputs = orjson.loads(source.read_bytes())["events"]
    outputs = orjson.loads(expected.read_bytes())["expected"]
    assert len(inputs) == len(outputs), f"{source.name}: {len(inputs)} in, {len(outputs)} out"
    ignored = set(ALWAYS_IGNORED) | _dynamic_fields(source.parent)
    ignored |= {path for _why, paths in EXCEPTIONS.get((stream, source.name), [])
                for path in paths}
    results = []
    for doc, want in zip(inputs, outputs, strict=True):
        mapped = copy.deepcopy(doc)
        ingest(mapped, stream)
        results.append(differences(mapped, want, ignored))
    return results


@pytest.mark.parametrize(("stream", "source", "expected"), _cases())
def test_fixture(stream: str | None, source: Path | None, expected: Path | None) -> None:
    if stream is None:
        shared_dir()  # skips with the reason, or fails when shared is required
        return
    assert source is not None and expected is not None
    results = run_fixture(stream, source, expected)
    failures = [(index, diff) for index, diff in enumerate(results) if diff]
    assert not failures, "\n".join(f"document {i}: " + "\n  ".join(d) for i, d in failures)


def test_pass_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """Every data stream of the fixtures is covered; the counts per stream are printed."""
    counts: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    exact: Counter[str] = Counter()
    for stream, source, expected in fixture_pairs():
        for diff in run_fixture(stream, source, expected):
            counts[stream] += 1
            passed[stream] += not diff
        inputs = orjson.loads(source.read_bytes())["events"]
        outputs = orjson.loads(expected.read_bytes())["expected"]
        for doc, want in zip(inputs, outputs, strict=True):
            mapped = copy.deepcopy(doc)
            ingest(mapped, stream)
            exact[stream] += not differences(mapped, want, set(ALWAYS_IGNORED)
                                             | _dynamic_fields(source.parent))
    assert {"system.security", "windows.sysmon_operational", "windows.powershell",
            "windows.powershell_operational", "windows.windows_defender"} <= counts.keys()
    with capsys.disabled():
        print("\nElastic pipeline fixtures reproduced, per data stream "
              "(named exceptions aside; in brackets: with no exception at all):")
        for stream in sorted(counts):
            print(f"  {stream}: {passed[stream]}/{counts[stream]} "
                  f"({exact[stream]}/{counts[stream]})")
    assert passed == counts


def test_exceptions_are_needed() -> None:
    """Each named exception hides a real difference (none is left over from a fix)."""
    pairs = {(stream, source.name): (source, expected)
             for stream, source, expected in fixture_pairs()}
    for (stream, name), entries in EXCEPTIONS.items():
        source, expected = pairs[(stream, name)]
        inputs = orjson.loads(source.read_bytes())["events"]
        outputs = orjson.loads(expected.read_bytes())["expected"]
        differing: set[str] = set()
        for doc, want in zip(inputs, outputs, strict=True):
            mapped = copy.deepcopy(doc)
            ingest(mapped, stream)
            differing |= {line.split(":", 1)[0]
                          for line in differences(mapped, want, set(ALWAYS_IGNORED))}
        for why, paths in entries:
            assert why
            for path in paths:
                assert any(found == path or found.startswith(path + ".")
                           for found in differing), f"{stream} {name}: {path} hides nothing"
