"""Cold starts of one query command, this tree against another, beside the imports' floor.

    python benchmarks/cold_start_compare.py --baseline OLD/src --rounds 7 -- query STORE participant S000011

Each round runs, as new processes, ``python -c "import numpy, duckdb, pyarrow"`` (what every query
command loads), then ``python -m genoquery ARGS...`` with ``PYTHONPATH`` at the baseline's ``src``
and at this tree's, alternated. One untimed run of each tree comes first, so bytecode and numba's
kernel cache exist, as for a user. Prints the medians of wall seconds and of CPU seconds (user +
system of the child): on a shared machine the CPU column compares better.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

THIS_TREE = Path(__file__).resolve().parents[1] / "src"
FLOOR = [sys.executable, "-c", "import numpy, duckdb, pyarrow"]


def timed(argv: list[str], src: Path | None) -> tuple[float, float]:
    """Wall and CPU seconds of running ``argv`` once (with ``src`` first on ``PYTHONPATH``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, check=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other tree's src directory")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("command", nargs="+", help="genoquery's arguments, after --")
    args = parser.parse_args()
    command = [sys.executable, "-m", "genoquery", *args.command]
    trees = {"baseline": args.baseline, "this tree": THIS_TREE}
    for src in trees.values():
        timed(command, src)
    runs: dict[str, list[tuple[float, float]]] = {"imports": [], **{name: [] for name in trees}}
    for _ in range(args.rounds):
        runs["imports"].append(timed(FLOOR, None))
        for name, src in trees.items():
            runs[name].append(timed(command, src))
    print(f"load average {os.getloadavg()[0]:.1f}: {' '.join(args.command)}")
    floor_cpu = statistics.median(c for _, c in runs["imports"])
    for name, times in runs.items():
        wall, cpu = statistics.median(w for w, _ in times), statistics.median(c for _, c in times)
        print(f"{name:10s} wall {wall:.3f} s  CPU {cpu:.3f} s  ({cpu / floor_cpu:.2f}x the imports' CPU)")


if __name__ == "__main__":
    main()
