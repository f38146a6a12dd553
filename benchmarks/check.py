"""Latency checks of a benchmark run: pytest-benchmark's JSON against the committed baseline.

    python benchmarks/check.py RUN.json                     # exit 1 when a check fails
    python benchmarks/check.py RUN.json... --update-baseline  # the runs' median ratios become the baseline

Every check is a ratio of two medians measured in the same run, so the machine's speed and
load (which slow both sides) cancel to first order:

- **latency**: each genoquery benchmark's median divided by its calibration (a fixed numpy and
  DuckDB workload, ``calibration.py``, timed just before and just after that benchmark and
  recorded in its ``extra_info``) must stay within ``BOUND`` times the same ratio in
  ``baseline.json``;
- **peers**: cohort frequencies must stay at least ``MIN_SPEEDUP`` times faster than bcftools
  on the same cohort and region (``test_frequencies_bcftools``), the carriers of the commonest
  variant at least ``MIN_ZARR_SPEEDUP`` times faster than reading its ``call_genotype`` row with
  zarr-python (``test_carriers_common_variant_zarr``), and the cold start of ``genoquery query
  STORE variant KEY`` (and ``variant RSID``, ``region``, ``carriers`` of a rare variant) within
  ``MAX_COLD_START`` times the bare imports every query needs (``test_cold_start_imports``), and
  the same commands and ``frequencies`` and ``participant`` handed to a warm daemon within
  ``MAX_DAEMON_START`` times them;
- **size**: the store's bytes over its source VCFs' (``test_ingest``'s ``extra_info``), which do not
  depend on the machine, must stay within ``SIZE_BOUND`` times the baseline's.

Medians of runs at another cohort size than the baseline's are not comparable: such a run
fails until the baseline is refreshed at that size. See benchmarks/README.md for the bounds.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BASELINE = Path(__file__).parent / "baseline.json"
BOUND = 5.0
"""A genoquery median may grow to BOUND x its baseline ratio to the calibration (README: why 5)."""
MIN_SPEEDUP = 10.0
"""Cohort frequencies must beat bcftools view -S -r by this factor (README: measured 23-108x)."""
MIN_ZARR_SPEEDUP = 1.0
"""Carriers of the commonest variant must be no slower than a bare zarr-python read of its row
(README: measured 1.3-2.4x at 5,000 samples, 29x at 10^6; 0.2x before issue 18's changes)."""
SIZE_BOUND = 1.02
"""The store may grow to this times its baseline ratio to the sources (sizes are deterministic)."""
MAX_COLD_START = 2.0
"""``genoquery query STORE variant KEY`` (by rsID too), ``region`` and ``carriers`` of a rare variant
as a new process may each take this times ``python -c "import numpy, duckdb, pyarrow"`` in the same
run (README: quiet machine 1.42-1.47x, 1.54-1.72x before issue 22; a heavy import such as pandas,
numba or zarr at start adds 0.2-0.5 s, 2.4x and more)."""
MAX_DAEMON_START = 1.5
"""The same commands handed to a warm daemon (``test_daemon_start_*``: variant, frequencies,
participant, carriers of the commonest variant) may each take this times the imports (README:
quiet machine 0.5-0.97x at 10^4 samples; run cold, frequencies took 3.9x, participant 1.5x)."""
COHORT_BENCH = "benchmarks/test_bench_cohort.py"
CLI_BENCH = "benchmarks/test_bench_cli.py"
INGEST_BENCH = "benchmarks/test_bench_ingest.py::test_ingest"


@dataclass(frozen=True)
class Peer:
    """The benchmark a genoquery one is compared with, and how many times faster it must be."""

    name: str
    min_speedup: float
    label: str


PEERS = (
    {
        f"{COHORT_BENCH}::test_frequencies[{f}]": Peer(
            f"{COHORT_BENCH}::test_frequencies_bcftools[{f}]", MIN_SPEEDUP, "bcftools view -S -r"
        )
        for f in ("1%", "10%", "50%")
    }
    | {
        f"{COHORT_BENCH}::test_carriers_common_variant": Peer(
            f"{COHORT_BENCH}::test_carriers_common_variant_zarr", MIN_ZARR_SPEEDUP, "zarr-python's call_genotype row"
        ),
    }
    | {
        f"{CLI_BENCH}::test_cold_start_query_{command}": Peer(
            f"{CLI_BENCH}::test_cold_start_imports", 1 / MAX_COLD_START, "importing numpy, duckdb and pyarrow"
        )
        for command in ("variant", "rsid", "region", "carriers")
    }
    | {
        f"{CLI_BENCH}::test_daemon_start_query_{command}": Peer(
            f"{CLI_BENCH}::test_cold_start_imports", 1 / MAX_DAEMON_START, "importing numpy, duckdb and pyarrow"
        )
        for command in ("variant", "frequencies", "participant", "carriers_common")
    }
)
COMPARISONS = {"benchmarks/test_bench_lookup.py::test_lookup_key_in_memory_dict"}
"""Timings of designs genoquery does not use, kept for comparison and not checked (a 0.03-0.16 ms
dict lookup moves by 5x between runs of a loaded machine)."""


@dataclass(frozen=True)
class Check:
    name: str
    kind: str  # latency, peer, size, missing, samples
    value: float  # what was measured (normalised median, or speed-up over the peer)
    limit: float  # the bound it is held to
    ok: bool
    detail: str


def medians(run: dict) -> dict[str, float]:
    """Median seconds of each benchmark of a pytest-benchmark JSON, by full test name."""
    return {b["fullname"]: b["stats"]["median"] for b in run["benchmarks"]}


def run_samples(run: dict) -> int | None:
    """The cohort size of the run, recorded with each benchmark's calibration."""
    return next((b["extra_info"]["samples"] for b in run["benchmarks"] if "samples" in b["extra_info"]), None)


def normalised(run: dict) -> dict[str, float]:
    """Each genoquery benchmark's median over its calibration (peers, comparisons and uncalibrated
    ones left out)."""
    return {
        b["fullname"]: b["stats"]["median"] / b["extra_info"]["calibration_s"]
        for b in sorted(run["benchmarks"], key=lambda b: b["fullname"])
        if "calibration_s" in b["extra_info"] and b["fullname"] not in {*(p.name for p in PEERS.values()), *COMPARISONS}
    }


def store_sizes(run: dict) -> dict[str, float]:
    """Store bytes over source bytes of each benchmark that recorded both."""
    return {
        b["fullname"]: b["extra_info"]["store_bytes"] / b["extra_info"]["source_bytes"]
        for b in run["benchmarks"]
        if "store_bytes" in b["extra_info"]
    }


def make_baseline(runs: list[dict], sources: list[str]) -> dict:
    """The baseline of one or more runs at one cohort size: each genoquery benchmark's median over
    its calibration, the median over the runs (several runs make the baseline less noisy)."""
    sizes = {run_samples(run) for run in runs}
    if len(sizes) != 1:
        raise ValueError(f"runs at different cohort sizes: {sorted(map(str, sizes))}")
    ratios = [normalised(run) for run in runs]
    run_sizes = [store_sizes(run) for run in runs]
    cpu = runs[0].get("machine_info", {}).get("cpu", {}).get("brand_raw", "")
    return {
        "made": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "sources": sources,
        "machine": f"{platform.machine()} {cpu}".strip(),
        "samples": sizes.pop(),
        "ratios": {
            name: statistics.median(r[name] for r in ratios if name in r) for name in sorted(set().union(*ratios))
        },
        "sizes": {name: max(r[name] for r in run_sizes if name in r) for name in sorted(set().union(*run_sizes))},
    }


def check(run: dict, baseline: dict, bound: float = BOUND) -> list[Check]:
    """Every check of ``run`` against ``baseline``; a check with ``ok`` False fails the run."""
    times = medians(run)
    ratios = normalised(run)
    samples = run_samples(run)
    if samples != baseline["samples"]:
        return [
            Check(
                "run",
                "samples",
                float(samples or 0),
                float(baseline["samples"]),
                False,
                f"run at {samples} samples, baseline at {baseline['samples']}: set GENOQUERY_BENCH_SAMPLES "
                f"or refresh the baseline (--update-baseline)",
            )
        ]
    checks = []
    for name, ratio in baseline["ratios"].items():
        if name not in ratios:
            checks.append(
                Check(
                    name,
                    "missing",
                    float("nan"),
                    bound * ratio,
                    False,
                    "in the baseline, not in the run (or run without its calibration)",
                )
            )
            continue
        value = ratios[name]
        checks.append(
            Check(
                name,
                "latency",
                value,
                bound * ratio,
                value <= bound * ratio,
                f"{times[name] * 1e3:.2f} ms = {value / ratio:.2f} x baseline",
            )
        )
    for query, peer in PEERS.items():
        least = peer.min_speedup
        if query not in times or peer.name not in times:
            checks.append(Check(query, "missing", float("nan"), least, False, f"needs {query} and {peer.name}"))
            continue
        speedup = times[peer.name] / times[query]
        checks.append(
            Check(
                query,
                "peer",
                speedup,
                least,
                speedup >= least,
                f"{speedup:.1f}x faster than {peer.label} ({times[peer.name]:.4f} s vs {times[query]:.4f} s)",
            )
        )
    return checks + _size_checks(store_sizes(run), baseline.get("sizes", {}))


def _size_checks(run_sizes: dict[str, float], baseline_sizes: dict[str, float]) -> list[Check]:
    checks = []
    for name, ratio in baseline_sizes.items():
        if name not in run_sizes:
            checks.append(Check(name, "missing", float("nan"), ratio, False, "no store size recorded in the run"))
            continue
        value = run_sizes[name]
        detail = f"store {value:.3f} x its sources' bytes = {value / ratio:.3f} x baseline"
        checks.append(Check(name, "size", value, SIZE_BOUND * ratio, value <= SIZE_BOUND * ratio, detail))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "runs",
        type=Path,
        nargs="+",
        metavar="RUN",
        help="pytest-benchmark --benchmark-json output (several only with --update-baseline)",
    )
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument(
        "--update-baseline", action="store_true", help="write the runs' ratios (median over the runs) as the baseline"
    )
    args = parser.parse_args(argv)
    runs = [json.loads(path.read_text()) for path in args.runs]
    if args.update_baseline:
        baseline = make_baseline(runs, [path.name for path in args.runs])
        args.baseline.write_text(json.dumps(baseline, indent=1) + "\n")
        print(f"baseline written: {args.baseline}")
        return 0
    if len(runs) > 1:
        parser.error("check one run at a time")
    checks = check(runs[0], json.loads(args.baseline.read_text()))
    width = max(len(c.name) for c in checks)
    for c in checks:
        need = ">=" if c.kind == "peer" else "<="
        print(
            f"{'ok  ' if c.ok else 'FAIL'} {c.kind:8} {c.name:{width}} {c.value:10.4g} (needs {need} {c.limit:.4g}) "
            f"{c.detail}"
        )
    failed = [c for c in checks if not c.ok]
    print(
        f"\n{len(checks) - len(failed)} of {len(checks)} checks passed" + (f"; {len(failed)} failed" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
