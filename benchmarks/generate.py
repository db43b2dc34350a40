"""Generate the benchmark inputs (never committed): synthetic Windows ECS NDJSON with vigil's
own generator, ~30% network logons, planted attacks and near misses.

    .venv/bin/python benchmarks/generate.py --events 1000000 5000000 --dir /tmp/vigil-bench
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

PLANTED_EVERY = 5_000  # vigil.synth's default: one planted scenario per 5,000 events


def generate(events: int, directory: Path, seed: int = 7,
             planted_every: int = PLANTED_EVERY) -> Path:
    """The file (made once): ``events`` background events, a planted scenario (a true
    attack or a near miss) every ``planted_every`` of them."""
    suffix = "" if planted_every == PLANTED_EVERY else f"-planted-every-{planted_every}"
    path = directory / f"windows-{events}{suffix}.ndjson"
    if not path.exists():
        subprocess.run([sys.executable, "-m", "vigil.synth", "--events", str(events), "--seed",
                        str(seed), "--network-logon-share", "0.3", "--planted-every",
                        str(planted_every), "--output", str(path)], check=True)
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
