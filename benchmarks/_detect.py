"""`vigil detect` as the command runs it (run_detect), for the benchmark's subprocesses:
    _detect.py ENGINE RULES|seed PATH...   (alerts written as NDJSON to /dev/null)"""

from __future__ import annotations

import sys
from pathlib import Path

from vigil.commands.detect import DetectRequest, run_detect

engine, rules, *paths = sys.argv[1:]
request = DetectRequest(paths=[Path(p) for p in paths], rules=() if rules == "seed" else (rules,),
                        output_format="ndjson", output=Path("/dev/null"), engine=engine)
sys.exit(run_detect(request))
