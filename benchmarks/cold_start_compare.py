"""Cold starts of one query command, this tree against another, and through a warm daemon, beside
the imports' floor.

    python benchmarks/cold_start_compare.py --baseline OLD/src --rounds 7 -- query STORE participant S000011
    python benchmarks/cold_start_compare.py --daemon --rounds 7 -- query STORE frequencies chr20 --cohort @ten.txt

Each round runs, as new processes, ``python -c "import numpy, duckdb, pyarrow"`` (what every query
command loads), then ``python -m genoquery ARGS...`` with ``PYTHONPATH`` at the baseline's ``src``
(``--baseline``) and at this tree's, in a process of its own (``GENOQUERY_DAEMON=0``), and with
``--daemon`` handed to this tree's daemon (genoquery.daemon; its own directory, started and used
twice before the rounds, stopped after), alternated. One untimed run of each comes first, so
bytecode and numba's kernel cache exist, as for a user. Prints the medians of wall seconds and of
CPU seconds (user + system of the child): on a shared machine the CPU column compares better,
except for the daemon's, whose CPU is spent in the daemon: its CPU column is the client's alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THIS_TREE = Path(__file__).resolve().parents[1] / "src"
FLOOR = [sys.executable, "-c", "import numpy, duckdb, pyarrow"]


def timed(argv: list[str], src: Path | None, daemon_dir: str | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of running ``argv`` once (with ``src`` first on ``PYTHONPATH``), in a
    process of its own or, with ``daemon_dir``, handed to the daemon there."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["GENOQUERY_DAEMON"] = "0" if daemon_dir is None else "1"
    if daemon_dir is not None:
        env["GENOQUERY_DAEMON_DIR"] = daemon_dir
    if src is not None:
        env["PYTHONPATH"] = str(src)
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, check=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, help="the other tree's src directory")
    parser.add_argument("--daemon", action="store_true", help="also time this tree's command through its daemon")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("command", nargs="+", help="genoquery's arguments, after --")
    args = parser.parse_args()
    command = [sys.executable, "-m", "genoquery", *args.command]
    with tempfile.TemporaryDirectory(prefix="genoquery-daemons-") as daemon_dir:
        variants = {"baseline": (args.baseline, None)} if args.baseline else {}
        variants["this tree"] = (THIS_TREE, None)
        if args.daemon:
            variants["daemon"] = (THIS_TREE, daemon_dir)
            timed(command, THIS_TREE, daemon_dir)  # starts it
            _wait_for_daemon(daemon_dir)
        try:
            runs = _rounds(command, variants, args.rounds)
        finally:
            if args.daemon:
                subprocess.run([*command[:3], "daemon", "stop"], env={**os.environ, "GENOQUERY_DAEMON_DIR": daemon_dir})
    print(f"load average {os.getloadavg()[0]:.1f}: {' '.join(args.command)}")
    floor_cpu = statistics.median(c for _, c in runs["imports"])
    for name, times in runs.items():
        wall, cpu = statistics.median(w for w, _ in times), statistics.median(c for _, c in times)
        print(f"{name:10s} wall {wall:.3f} s  CPU {cpu:.3f} s  ({cpu / floor_cpu:.2f}x the imports' CPU)")


def _rounds(command: list[str], variants: dict, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Each variant's (wall, CPU) per round, beside the imports' floor; one untimed run each first."""
    for src, daemon_dir in variants.values():
        timed(command, src, daemon_dir)
    runs: dict[str, list[tuple[float, float]]] = {"imports": [], **{name: [] for name in variants}}
    for _ in range(rounds):
        runs["imports"].append(timed(FLOOR, None))
        for name, (src, daemon_dir) in variants.items():
            runs[name].append(timed(command, src, daemon_dir))
    return runs


def _wait_for_daemon(directory: str, timeout_s: float = 120.0) -> None:
    """Until a daemon's socket in ``directory`` answers."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for address in Path(directory).glob("*.sock"):
            with socket.socket(socket.AF_UNIX) as probe:
                if probe.connect_ex(str(address)) == 0:
                    return
        time.sleep(0.2)
    raise SystemExit(f"no daemon answered in {directory} within {timeout_s} s")


if __name__ == "__main__":
    main()
