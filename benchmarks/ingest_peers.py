"""Side-by-side ingest: genoquery vs plink2 --make-pgen vs vcf2zarr convert, same file, same cores.

    python benchmarks/ingest_peers.py --samples 100000            # simulates the cohort first
    python benchmarks/ingest_peers.py --vcf path/to/file.vcf.gz

Each tool runs as a child process; wall time comes from a monotonic clock and
peak memory from the child's own rusage (os.wait4). Sizes are bytes on disk of
each tool's output. Peers missing from the machine are reported as such
(plink2 is Debian's package, vcf2zarr is PyPI's bio2zarr); a tool still running
at ``--timeout`` seconds is killed and reported as not finished.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from genoquery.simulate import simulate_cohort
from peers import PeerFailedError, directory_size, run_measured, tool_versions, warm_page_cache


def ingest_commands(
    vcf: Path, work: Path, threads: int, persons: Path | None = None
) -> dict[str, tuple[list[str], Path] | None]:
    """Each tool's command and the output it writes, or None when the tool is absent."""
    bindir = Path(sys.executable).parent
    vcf2zarr = bindir / "vcf2zarr"
    plink2 = shutil.which("plink2")
    genoquery = [str(bindir / "genoquery"), "ingest", str(work / "gq"), str(vcf), "--quiet"]
    return {
        "genoquery": (genoquery + (["--persons", str(persons)] if persons else []), work / "gq"),
        "plink2": (
            [
                plink2,
                "--vcf",
                str(vcf),
                "--make-pgen",
                "--threads",
                str(threads),
                "--allow-extra-chr",
                "--vcf-half-call",
                "missing",
                "--out",
                str(work / "pl" / "out"),
            ],
            work / "pl",
        )
        if plink2
        else None,
        "vcf2zarr": (
            [str(vcf2zarr), "convert", "-p", str(threads), "--force", str(vcf), str(work / "vz.zarr")],
            work / "vz.zarr",
        )
        if vcf2zarr.exists()
        else None,
    }


def measure_ingest(name: str, cmd: list[str], output: Path, timeout: float | None = None) -> dict:
    """Run one tool's ingest into a fresh ``output``: {"seconds", "peak", "bytes"} or {"error"}."""
    shutil.rmtree(output, ignore_errors=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    if name == "plink2":  # writes OUTPUT/out.{pgen,pvar,psam} into an existing directory
        output.mkdir()
    try:
        seconds, peak = run_measured(cmd, timeout)
    except PeerFailedError as failure:
        return {"error": str(failure)}
    return {"seconds": seconds, "peak": peak, "bytes": directory_size(output)}


def simulate(samples: int, length: int, out: Path) -> Path:

    files = simulate_cohort(out, n_samples=samples, n_centers=1, sequence_length=length, seed=7, progress=True)
    return Path(files.joint_vcfs[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vcf", type=Path)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each tool may take")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "genoquery-bench")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    vcf = args.vcf or simulate(args.samples, args.length, args.workdir / f"cohort-{args.samples}")
    print(f"input: {vcf} ({vcf.stat().st_size / 1e6:.1f} MB), {args.threads} threads")
    warm_page_cache(vcf)
    results = {}
    for name, spec in ingest_commands(vcf, args.workdir, args.threads).items():
        if spec is None:
            print(f"{name}: not installed, skipped")
            continue
        results[name] = result = measure_ingest(name, *spec, args.timeout)
        if "error" in result:
            print(f"{name}: {result['error']}")
        else:
            print(
                f"{name}: {result['seconds']:.1f} s, peak {result['peak'] / 2**20:.0f} MiB, "
                f"{result['bytes'] / 1e6:.1f} MB on disk"
            )
    base = results["genoquery"].get("seconds")
    print("\n| tool | wall s | ratio to genoquery | peak MiB | MB on disk |\n|---|---|---|---|---|")
    for name, r in results.items():
        if "error" in r:
            print(f"| {name} | {r['error'].splitlines()[0]} | | | |")
        else:
            ratio = f"{r['seconds'] / base:.2f}" if base else ""
            print(f"| {name} | {r['seconds']:.1f} | {ratio} | {r['peak'] / 2**20:.0f} | {r['bytes'] / 1e6:.1f} |")
    print("\n" + "; ".join(f"{k} {v}" for k, v in tool_versions().items()))


if __name__ == "__main__":
    main()
