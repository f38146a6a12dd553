"""Appending one batch to stores of different sizes: its time and bytes written must not grow
with the existing store.

    python benchmarks/append_batch.py --batch-samples 10000 --base-samples 10000 100000

simulates one cohort of ``max(base) + batch`` samples over 1 Mb of chr20 (cached in
``--workdir``), splits it with bcftools into the new batch's samples and, per base size,
the base store's samples, ingests each base store, then times ``genoquery ingest STORE
BATCH.vcf.gz --batch new`` in a child process. Reported per base size: wall time, peak
memory (``os.wait4``), bytes the child wrote (``wchar`` of ``/proc/self/io``, read by an
``atexit`` hook of the wrapper that runs the CLI), bytes added under ``batches/``, and the
index size (rewritten whole: it grows with sites, not samples).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pysam
import pysam.bcftools as bcftools

from genoquery.simulate import simulate_cohort
from peers import directory_size


def _cohort(workdir: Path, n_samples: int) -> Path:
    """A simulated joint chr20 VCF of ``n_samples`` (simulated once per size)."""
    out = workdir / f"sim{n_samples}"
    vcf = out / "cohort.chr20.vcf.gz"
    if not vcf.exists():
        simulate_cohort(out, n_samples=n_samples, n_centers=2, sequence_length=1_000_000, seed=5, progress=True)
    return vcf


def _subset(vcf: Path, samples: list[str], out: Path) -> Path:
    if not out.exists():
        listing = out.with_suffix(".txt")
        listing.write_text("".join(f"{s}\n" for s in samples))
        bcftools.view("-S", str(listing), "-Oz", "-o", str(out), str(vcf), catch_stdout=False)
    return out


# Runs the CLI, then writes the process's wchar (bytes passed to write calls) to argv[1].
WRAPPER = (
    "import atexit, runpy, sys; out = sys.argv.pop(1); "
    "atexit.register(lambda: open(out, 'w').write(next(l.split()[1] for l in open('/proc/self/io') "
    "if l.startswith('wchar')))); sys.argv[0] = 'genoquery'; runpy.run_module('genoquery', run_name='__main__')"
)


def _run(args: list[str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS bytes and bytes written (wchar) of ``genoquery ARGS`` in a child process."""
    io_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"gq-io-{os.getpid()}"
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, str(io_file), *args])
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"genoquery {' '.join(args)} failed")
    written = int(io_file.read_text().split()[0])
    io_file.unlink()
    return seconds, usage.ru_maxrss * 1024, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-samples", type=int, default=10_000)
    parser.add_argument("--base-samples", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/genoquery-append-bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    vcf = _cohort(args.workdir, max(args.base_samples) + args.batch_samples)
    ids = list(pysam.VariantFile(str(vcf)).header.samples)
    batch = _subset(vcf, ids[-args.batch_samples :], args.workdir / f"batch{args.batch_samples}.vcf.gz")
    rows = []
    for n in args.base_samples:
        base = _subset(vcf, ids[:n], args.workdir / f"base{n}.vcf.gz")
        store = args.workdir / f"base{n}.gq"
        shutil.rmtree(store, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "genoquery", "ingest", str(store), str(base), "--quiet"], check=True)
        before = directory_size(store / "batches")
        seconds, peak, written = _run(["ingest", str(store), str(batch), "--batch", "new", "--quiet"])
        added = directory_size(store / "batches") - before
        rows.append((n, seconds, peak, written, added, (store / "index.duckdb").stat().st_size))
    print(f"\nappending {args.batch_samples:,} samples ({batch.name}, {batch.stat().st_size / 1e6:.1f} MB)")
    print("| store before | append time s | peak memory MiB | bytes written MB | batch group MB | index MB |")
    print("|---|---|---|---|---|---|")
    for n, seconds, peak, written, added, index in rows:
        print(
            f"| {n:,} samples | {seconds:.1f} | {peak / 2**20:,.0f} | {written / 1e6:.1f} | {added / 1e6:.1f} | "
            f"{index / 1e6:.1f} |"
        )


if __name__ == "__main__":
    main()
