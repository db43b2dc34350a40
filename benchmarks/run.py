"""vigil's benchmark: every figure is a ratio against a baseline measured in the same run
(machines here are shared and noisy). Each measurement is a separate process under
``/usr/bin/time -v`` (wall time, peak RSS of the largest process: the main one or a worker);
with ``--repeat N`` a baseline and what is compared with it run alternately N times each and
the medians are compared.

    .venv/bin/python benchmarks/run.py --events 1000000 --rss-events 5000000 --all-rules \
        --repeat 3 --evtx-copies 20,100

vigil's modules are byte-compiled first (``compileall``), as a regular install does: an
editable install on a machine with PYTHONDONTWRITEBYTECODE set (these are) would otherwise
compile vigil's source again in every process, ~0.06 s.

Measures, on a generated file (benchmarks/generate.py):
  bare     a plain Python line read of the file (the baseline of the 40% target)
  seed     `vigil detect` (fast engine) with the bundled seed rule
  eql      the eql package's PythonEngine (eql==1.0.1, installed here into its own venv,
           never a vigil dependency) on the seed query, over the first --eql-events events
  windows  `vigil detect` with the 391 Windows prebuilt EQL rules (every EQL rule under
           rules/windows of the prebuilt corpus; the 57 Windows building blocks are not in it)
  evtx     EVTX -> alerts vs the bare `evtx` JSON parse, on the shared samples copied
           --evtx-copies times
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("VIGIL_SHARED", REPO.parent / "shared"))
PYTHON = sys.executable

sys.path.insert(0, str(HERE))
from generate import PLANTED_EVERY, generate  # noqa: E402


def timed(command: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) and stdout of a command."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} ... failed:\n{done.stderr[-1500:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    rss = int(found.group(1)) if found else 0
    return wall, rss, done.stdout


def alternated(commands: list[list[str]], repeat: int,
               ) -> list[tuple[float, int, str, list[float]]]:
    """Each command run ``repeat`` times, in turn (a, b, a, b, ...): per command the median
    wall time, the largest peak RSS, the last stdout and every wall time."""
    walls: list[list[float]] = [[] for _ in commands]
    rss = [0] * len(commands)
    out = [""] * len(commands)
    for _ in range(repeat):
        for n, command in enumerate(commands):
            wall, peak, out[n] = timed(command)
            walls[n].append(wall)
            rss[n] = max(rss[n], peak)
    return [(statistics.median(w), r, o, w) for w, r, o in zip(walls, rss, out, strict=True)]


def eql_python() -> str:
    venv = HERE / ".venv-eql"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "eql==1.0.1"], check=True)
    return str(python)


def evtx_copies(directory: Path, copies: int) -> tuple[Path, int]:
    target = directory / f"evtx-x{copies}"
    if not target.exists():
        sources = sorted((SHARED / "samples" / "evtx").rglob("*.evtx"))
        target.mkdir(parents=True)
        for n in range(copies):
            for i, source in enumerate(sources):
                shutil.copy(source, target / f"{n:03d}-{i:03d}-{source.name}")
    size = sum(p.stat().st_size for p in target.iterdir())
    return target, size


def line(name: str, wall: float, rss: int, events: int, size: int,
         walls: list[float] | None = None) -> dict[str, float]:
    row = {"wall": wall, "rss_mb": rss / 1024, "eps": events / wall, "mbps": size / wall / 1e6}
    runs = f"   runs: {', '.join(f'{w:.2f}' for w in walls)}" if walls and len(walls) > 1 else ""
    print(f"{name:<34} {wall:8.2f} s {row['eps']:>12,.0f} ev/s {row['mbps']:8.1f} MB/s "
          f"{row['rss_mb']:8.0f} MB RSS{runs}", flush=True)
    return row


def compile_vigil(say: Callable[[str], None]) -> None:
    source = REPO / "src" / "vigil"
    if not compileall.compile_dir(str(source), quiet=1):
        raise SystemExit(f"cannot byte-compile {source}")
    say(f"byte-compiled {source} (as an install does; PYTHONDONTWRITEBYTECODE="
        f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r} here)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/vigil-bench"))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rss-events", type=int, default=0, help="second size for flat RSS")
    parser.add_argument("--eql-events", type=int, default=200_000)
    parser.add_argument("--all-rules", action="store_true")
    parser.add_argument("--evtx-copies", default="20",
                        help="copies of the EVTX samples, e.g. 20 or 20,100 (0: none)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each measurement, alternated with its baseline (median)")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                .splitlines() if ln.startswith("model name")), "?")
    print(f"machine: nproc={os.cpu_count()}, {cpu}, Python {platform.python_version()}")
    compile_vigil(print)
    repeat = max(1, args.repeat)
    detect = [PYTHON, str(HERE / "_detect.py"), "fast"]
    path = generate(args.events, args.dir)
    size = path.stat().st_size
    (bare_wall, bare_rss, out, bare_walls), (seed_wall, seed_rss, _, seed_walls) = alternated(
        [[PYTHON, str(HERE / "_bare.py"), "lines", str(path)], [*detect, "seed", str(path)]],
        repeat)
    events = int(out)
    bare = line("bare line read", bare_wall, bare_rss, events, size, bare_walls)
    seed = line("vigil detect, seed rule", seed_wall, seed_rss, events, size, seed_walls)
    eql_n = min(args.eql_events, events)
    eql_wall, eql_rss, _ = timed([eql_python(), str(HERE / "_eql_engine.py"), str(path),
                                  str(eql_n)])
    eql = line(f"eql PythonEngine ({eql_n:,} events)", eql_wall, eql_rss, eql_n,
               size * eql_n // events)
    print(f"seed / eql events/s:        {seed['eps'] / eql['eps']:6.1f}x   (target >= 30x)")
    print(f"seed / bare line read:      {seed['eps'] / bare['eps']:6.1%}   (target >= 40%)")
    if args.all_rules:
        rules = SHARED / "rules" / "elastic-prebuilt" / "rules" / "windows"
        [(wall, rss, _, walls)] = alternated([[*detect, str(rules), str(path)]], repeat)
        windows = line("vigil detect, 391 Windows rules", wall, rss, events, size, walls)
        print(f"391 rules events/s:         {windows['eps']:,.0f}   (target >= 50,000)")
    if args.rss_events:
        # Twice: with findings in proportion to the input (a planted scenario every 5,000
        # events: the kept stage matches and the alerts grow with the file), and with the
        # findings of the smaller file (the same planted scenarios, more background).
        same = PLANTED_EVERY * args.rss_events // args.events
        for label, every in (("findings x size", PLANTED_EVERY), ("same findings", same)):
            big = generate(args.rss_events, args.dir, planted_every=every)
            big_size = big.stat().st_size
            big_events = args.rss_events  # background events; planted ones add ~0.06%
            large = line(f"vigil detect, seed, {args.rss_events:,}, {label}", *timed(
                [*detect, "seed", str(big)])[:2], big_events, big_size)
            print(f"peak RSS {args.rss_events:,} / {args.events:,}, {label}: "
                  f"{large['rss_mb'] / seed['rss_mb']:6.2f}   (target within 1.20)")
    for copies in (int(c) for c in str(args.evtx_copies).split(",") if int(c) > 0):
        folder, evtx_size = evtx_copies(args.dir, copies)
        files = [str(p) for p in sorted(folder.iterdir())]
        (bare_wall, bare_rss, out, bare_walls), (vigil_wall, vigil_rss, _, vigil_walls) = \
            alternated([[PYTHON, str(HERE / "_bare.py"), "evtx", *files],
                        [*detect, "seed", str(folder)]], repeat)
        records = int(out)
        bare_evtx = line(f"bare evtx JSON parse, x{copies}", bare_wall, bare_rss, records,
                         evtx_size, bare_walls)
        end_to_end = line(f"vigil detect, EVTX, seed, x{copies}", vigil_wall, vigil_rss,
                          records, evtx_size, vigil_walls)
        print(f"EVTX x{copies} end-to-end / bare parse: "
              f"{end_to_end['eps'] / bare_evtx['eps']:6.1%}   (target >= 80%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
