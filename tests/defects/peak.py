"""Run a vigil command in a fresh process and read its own peak memory.

VmHWM, not ru_maxrss: Linux carries a forking parent's peak into the child's ru_maxrss
across exec, while VmHWM belongs to the new process's own memory (so Linux only)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from tests.conftest import REPO

_CODE = ("import sys\n"
         "from vigil.cli import app\n"
         "try:\n"
         "    app(sys.argv[1:], prog_name='vigil')\n"
         "except SystemExit:\n"
         "    pass\n"
         "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
         "print('peak', hwm.split()[1], file=sys.stderr)\n")


def vigil_with_peak(*args: Any, **env: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """The finished command and its peak resident memory in KB."""
    result = subprocess.run([sys.executable, "-c", _CODE, *map(str, args)], cwd=REPO,
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, **env))
    assert "peak" in result.stderr, result.stderr
    return result, int(result.stderr.rsplit("peak", 1)[1])
