"""Side-by-side ingest: genoquery vs plink2 --make-pgen vs vcf2zarr convert, same file, same cores.

    python benchmarks/ingest_peers.py --samples 100000            # simulates the cohort first
    python benchmarks/ingest_peers.py --vcf path/to/file.vcf.gz

Each tool runs as a child process; wall time comes from a monotonic clock and
peak memory from the child's own rusage (os.wait4). Sizes are bytes on disk of
each tool's output. Peers missing from the machine are reported as such
(plink2 is Debian's package, vcf2zarr is PyPI's bio2zarr).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peers import directory_size, tool_versions  # noqa: E402


def run_measured(cmd: list[str]) -> tuple[float, int]:
    """Run ``cmd``; return (wall seconds, peak resident memory in bytes)."""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: progress bars would fill a pipe and stall
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.monotonic() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"{cmd[0]} failed: {errors.read().decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024


def ingest_commands(vcf: Path, work: Path, threads: int) -> dict[str, tuple[list[str], Path] | None]:
    """Each tool's command and the output it writes, or None when the tool is absent."""
    bindir = Path(sys.executable).parent
    vcf2zarr = bindir / "vcf2zarr"
    plink2 = shutil.which("plink2")
    return {
        "genoquery": ([str(bindir / "genoquery"), "ingest", str(work / "gq"), str(vcf), "--quiet"], work / "gq"),
        "plink2": ([plink2, "--vcf", str(vcf), "--make-pgen", "--threads", str(threads),
                    "--allow-extra-chr", "--vcf-half-call", "missing", "--out", str(work / "pl" / "out")], work / "pl") if plink2 else None,
        "vcf2zarr": ([str(vcf2zarr), "convert", "-p", str(threads), "--force", str(vcf), str(work / "vz.zarr")],
                     work / "vz.zarr") if vcf2zarr.exists() else None,
    }


def simulate(samples: int, length: int, out: Path) -> Path:
    from genoquery.simulate import simulate_cohort

    files = simulate_cohort(out, n_samples=samples, n_centers=1, sequence_length=length, seed=7, progress=True)
    return Path(files.joint_vcfs[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vcf", type=Path)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "genoquery-bench")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    vcf = args.vcf or simulate(args.samples, args.length, args.workdir / f"cohort-{args.samples}")
    print(f"input: {vcf} ({vcf.stat().st_size / 1e6:.1f} MB), {args.threads} threads")
    vcf.read_bytes()  # into the page cache, so the first tool timed is not the only one reading from disk
    results = {}
    for name, spec in ingest_commands(vcf, args.workdir, args.threads).items():
        if spec is None:
            print(f"{name}: not installed, skipped")
            continue
        cmd, output = spec
        shutil.rmtree(output, ignore_errors=True)
        output.parent.mkdir(parents=True, exist_ok=True)
        if name == "plink2":
            output.mkdir(parents=True, exist_ok=True)
        seconds, peak = run_measured(cmd)
        results[name] = (seconds, peak, directory_size(output))
        print(f"{name}: {seconds:.1f} s, peak {peak / 2**20:.0f} MiB, {results[name][2] / 1e6:.1f} MB on disk")
    base = results["genoquery"][0]
    print("\n| tool | wall s | ratio to genoquery | peak MiB | MB on disk |\n|---|---|---|---|---|")
    for name, (seconds, peak, size) in results.items():
        print(f"| {name} | {seconds:.1f} | {seconds / base:.2f} | {peak / 2**20:.0f} | {size / 1e6:.1f} |")
    print("\n" + "; ".join(f"{k} {v}" for k, v in tool_versions().items()))


if __name__ == "__main__":
    main()
