"""Generate the benchmark inputs (never committed): synthetic Windows ECS NDJSON with vigil's
own generator, ~30% network logons, planted attacks and near misses.

    .venv/bin/python benchmarks/generate.py --events 1000000 5000000 --dir /tmp/vigil-bench
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def generate(events: int, directory: Path, seed: int = 7) -> Path:
    path = directory / f"windows-{events}.ndjson"
    if not path.exists():
        subprocess.run([sys.executable, "-m", "vigil.synth", "--events", str(events), "--seed",
                        str(seed), "--network-logon-share", "0.3", "--output", str(path)],
                       check=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/vigil-bench"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for count in args.events:
        print(generate(count, args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
