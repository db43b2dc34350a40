"""Issue 14: ``detect`` shows a progress bar on a terminal (tested under a real
pseudo-terminal), never when stderr is a pipe or a file, never with ``--quiet``; the summary
prints in every case."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_dir
from vigil.report.progress import TerminalProgress

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="pseudo-terminals (the pty module) are POSIX only")

ENV = {**os.environ, "VIGIL_PROGRESS_DELAY": "0", "COLUMNS": "160", "TERM": "xterm"}


def _on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run vigil with stderr on a pseudo-terminal; its exit code, stdout and what the
    terminal received."""
    import pty

    master, slave = pty.openpty()
    try:
        child = subprocess.Popen([sys.executable, "-m", "vigil.cli", *args], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                                 env=ENV)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        out, _ = child.communicate(timeout=300)
    finally:
        os.close(master)
    return child.returncode, out.decode(), b"".join(chunks).decode("utf-8", "replace")


def _evtx_samples() -> Path:
    return shared_dir() / "samples" / "evtx"


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_progress_on_a_terminal(engine: str) -> None:
    samples = _evtx_samples()
    files = len(list(samples.rglob("*.evtx")))
    code, out, terminal = _on_a_terminal("detect", str(samples), "--engine", engine)
    assert code == 0, terminal
    assert f"/{files} files" in terminal and " events" in terminal
    assert "running 1 rule(s) on" in terminal  # the step after the reading is named too
    assert "alert(s)" in terminal  # the summary still comes, after the bar
    assert "Remote Windows Service Installed" in out


def test_no_progress_when_quiet_or_not_a_terminal() -> None:
    samples = _evtx_samples()
    code, _out, terminal = _on_a_terminal("detect", str(samples), "--quiet")
    assert code == 0 and "alert(s)" in terminal
    assert " files" not in terminal and "running 1 rule(s)" not in terminal
    piped = subprocess.run([sys.executable, "-m", "vigil.cli", "detect", str(samples)],
                           cwd=REPO, capture_output=True, text=True, env=ENV, timeout=300)
    assert piped.returncode == 0 and "alert(s)" in piped.stderr
    assert " files" not in piped.stderr and "\x1b[" not in piped.stderr


def test_wanted_and_delay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with (tmp_path / "log").open("w") as handle:
        assert not TerminalProgress.wanted(handle)  # a file is no terminal
    monkeypatch.setenv("VIGIL_PROGRESS_DELAY", "3600")
    with (tmp_path / "log").open("w") as handle:
        bar = TerminalProgress(handle)
        bar.begin(1, 100, "reading")
        bar.read("a.evtx", 100, 5)
        bar.close()
    assert (tmp_path / "log").read_text() == ""  # a short run draws nothing
