"""Cohort allele frequencies over a whole store: genoquery in process beside ``plink2 --keep --freq``.

Issue 18's cohort-AF check, on a store and a PLINK 2 fileset made from the same VCF (for
genoquery's simulator's cohorts ``plink2 --vcf ... --vcf-half-call missing --make-pgen``)::

    python benchmarks/af_compare.py /tmp/sim5/sim5.gq /tmp/sim5/pl --rounds 3

For each round and each cohort fraction (1%, 10%, 50% by default; the same samples for both
tools, drawn with ``numpy.random.default_rng(3)`` from the store's sample IDs), genoquery runs
``Store.frequencies`` of the whole store in a child process of its own (median wall and CPU time of
``--repeat`` calls after 3 warm-ups: a warm process, as the server and the daemon are), then
``plink2 --pfile PFILE --keep K --freq --threads N`` runs 3 times (child processes: wall and
user + system time, median). Rounds alternate the tools so that a load from other jobs falls on
both; the load average is printed with each round. Ratios are genoquery's wall over plink2's in
the same round.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import genoquery

IN_PROCESS = r"""
import json, statistics, sys, time
import genoquery
store = genoquery.open(sys.argv[1])
repeat = int(sys.argv[2])
out = {}
for path in sys.argv[3:]:
    ids = open(path).read().split()
    def run():
        store.frequencies(cohort=ids)
    for _ in range(3):
        run()
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    out[path] = (statistics.median(walls), statistics.median(cpus))
print(json.dumps(out))
"""


def cohorts(store: Path, fractions: list[float], directory: Path) -> dict[float, Path]:
    """A file of sample IDs (one per line, also plink2's ``--keep`` format) per fraction."""
    ids = genoquery.open(store).samples()["sample_id"].to_numpy(zero_copy_only=False)
    files = {}
    for fraction in fractions:
        chosen = np.random.default_rng(3).choice(ids, int(len(ids) * fraction), replace=False)
        files[fraction] = directory / f"keep_{fraction}.txt"
        files[fraction].write_text("".join(f"{i}\n" for i in chosen))
    return files


def genoquery_times(store: Path, files: dict[float, Path], repeat: int) -> dict[float, tuple[float, float]]:
    """(median wall, median CPU) seconds of each cohort's frequencies, in one warm process."""
    command = [sys.executable, "-c", IN_PROCESS, str(store), str(repeat), *map(str, files.values())]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    times = json.loads(result.stdout)
    return {fraction: tuple(times[str(path)]) for fraction, path in files.items()}


def plink2_times(pfile: str, keep: Path, threads: int, out: Path) -> tuple[float, float]:
    """(median wall, median CPU) seconds of 3 runs of ``plink2 --keep --freq``."""
    walls, cpus = [], []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            ["plink2", "--pfile", pfile, "--keep", str(keep), "--freq", "--threads", str(threads), "--out", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path)
    parser.add_argument("pfile", help="plink2 fileset prefix (--make-pgen) of the same VCF")
    parser.add_argument("--fractions", default="0.01,0.1,0.5")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    fractions = [float(f) for f in args.fractions.split(",")]
    rows: dict[float, list[tuple]] = {f: [] for f in fractions}
    with tempfile.TemporaryDirectory() as scratch:
        files = cohorts(args.store, fractions, Path(scratch))
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}: load average {os.getloadavg()[0]:.2f}", flush=True)
            ours = genoquery_times(args.store, files, args.repeat)
            for fraction in fractions:
                theirs = plink2_times(args.pfile, files[fraction], args.threads, Path(scratch) / "freq")
                rows[fraction].append((*ours[fraction], *theirs))
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print("| cohort | genoquery wall (CPU), ms, per round | plink2 wall (CPU), ms, per round | ratio, per round |")
    print("|---|---|---|---|")
    for fraction, runs in rows.items():
        ours = ", ".join(f"{w * 1000:.0f} ({c * 1000:.0f})" for w, c, _, _ in runs)
        theirs = ", ".join(f"{w * 1000:.0f} ({c * 1000:.0f})" for _, _, w, c in runs)
        ratios = ", ".join(f"{w / pw:.2f}" for w, _, pw, _ in runs)
        print(f"| {fraction:.0%} | {ours} | {theirs} | {ratios} |")


if __name__ == "__main__":
    main()
