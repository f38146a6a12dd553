"""Before and after a store-format change: two genoquery source trees on the same VCF, beside plink2.

    python benchmarks/format_compare.py --vcf /tmp/gq/sim1e5/cohort.chr20.vcf.gz \\
        --before /tmp/oldgq/src --workdir /tmp/gq/format --vcf2zarr-slice chr20:1-100000

For each genoquery tree (``--before``: a checkout's ``src`` of the earlier version; "after": the
installed one) and plink2 (``--make-pgen``): ingest wall time and peak memory (child processes,
``os.wait4``), bytes and files on disk. Then, for each genoquery store, in a child process running
that tree: medians of ``--repeat`` in-process calls of ``Store.frequencies`` over the whole file
for random 1%, 10% and 50% cohorts (the same seeded draw for both, and for ``plink2 --pfile --keep
--freq``, median of 3 child processes), ``Store.carriers`` of a rare
allele (the first with AC 1), of the allele nearest AF 0.05 and of the allele nearest AF 0.5,
and ``Store.lookup`` of that last key. vcf2zarr, far slower, converts the ``--vcf2zarr-slice``
region only, beside both genoquery versions' ingest of the same slice. Prints a Markdown table.
Each finished ingest is kept in WORKDIR/ingests.json and reused by a later run (``--fresh`` redoes them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pysam.bcftools

sys.path.insert(0, str(Path(__file__).parent))
from ingest_peers import ingest_commands, measure_ingest
from peers import tool_versions, warm_page_cache
from query_peers import wall

QUESTIONS = r"""
import json, statistics, sys, time
import numpy as np
import genoquery
store = genoquery.open(sys.argv[1])
repeat = int(sys.argv[2])
def median(f):
    f()
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return statistics.median(times)
v = store.variants()
af, ac, keys = (v[c].to_numpy(zero_copy_only=False) for c in ("af", "ac", "variant_key"))
samples = store.samples()["sample_id"].to_numpy(zero_copy_only=False)
rng = np.random.default_rng(1)
out = {}
for fraction in (0.01, 0.1, 0.5):
    cohort = sorted(rng.choice(samples, int(len(samples) * fraction), replace=False).tolist())
    with open(f"{sys.argv[3]}/keep-{fraction:.0%}.txt", "w") as keep:  # the same cohort for plink2
        keep.write("".join(f"{sample}\n" for sample in cohort))
    out[f"cohort AF {fraction:.0%}"] = median(lambda: store.frequencies(cohort=cohort))
for label, key in (
    ("carriers, rare (AC 1)", keys[np.flatnonzero(ac == 1)[0]]),
    ("carriers, AF ~0.05", keys[np.nanargmin(np.abs(af - 0.05))]),
    ("carriers, AF ~0.5", keys[np.nanargmin(np.abs(af - 0.5))]),
):
    out[f"{label} ({key})"] = median(lambda: store.carriers(key))
out["lookup by key"] = median(lambda: store.lookup(keys[np.nanargmin(np.abs(af - 0.5))]))
print(json.dumps(out))
"""


def files_and_bytes(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def genoquery_ingest(src: Path | None, vcf: Path, out: Path) -> dict:
    """Ingest with the tree at ``src`` (None: the installed genoquery) in a child process."""
    cmd = [sys.executable, "-m", "genoquery", "ingest", str(out), str(vcf), "--quiet"]
    if src is not None:
        os.environ["PYTHONPATH"] = str(src)
    try:
        return measure_ingest("genoquery", cmd, out)
    finally:
        os.environ.pop("PYTHONPATH", None)


def ask(src: Path | None, store: Path, repeat: int, cohorts: Path) -> dict:
    """The questions' medians (seconds) on ``store`` with the tree at ``src``; the cohorts' IDs
    are written to ``cohorts/keep-N%.txt``."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", **({"PYTHONPATH": str(src)} if src else {}))
    run = subprocess.run(
        [sys.executable, "-c", QUESTIONS, str(store), str(repeat), str(cohorts)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout.splitlines()[-1])


def plink2_frequencies(pfile: Path, cohorts: Path, threads: int, repeat: int) -> dict[str, float]:
    """Median wall seconds of ``plink2 --keep --freq`` (a child process, start-up included) for
    each cohort ``ask`` wrote, by the same question names."""
    out = {}
    for keep in sorted(cohorts.glob("keep-*.txt")):
        fraction = keep.stem.removeprefix("keep-")
        cmd = ["plink2", "--pfile", str(pfile), "--keep", str(keep), "--freq", "--threads", str(threads)]
        out[f"cohort AF {fraction}"] = wall([*cmd, "--out", str(cohorts / "freq")], repeat)[0]
    return out


def slice_vcf(vcf: Path, region: str, out: Path) -> Path:
    pysam.bcftools.view("-r", region, "-Oz", "-o", str(out), str(vcf), catch_stdout=False)
    pysam.tabix_index(str(out), preset="vcf", force=True)
    return out


def measured(cache: Path, name: str, output: Path, fresh: bool, run) -> dict:
    """``run()``'s ingest result into ``output``, or the one ``cache`` kept from an earlier run."""
    known = json.loads(cache.read_text()) if cache.exists() and not fresh else {}
    if name not in known or not output.exists():
        known[name] = run()
        cache.write_text(json.dumps(known, indent=1))
    return {**known[name], "output": output}


def row(name: str, result: dict) -> str:
    if "error" in result:
        return f"| {name} | {result['error'].splitlines()[0]} | | | |"
    files, size = files_and_bytes(result["output"])
    return f"| {name} | {result['seconds']:.1f} | {result['peak'] / 2**20:,.0f} | {size / 1e6:.1f} | {files:,} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vcf", type=Path, required=True)
    parser.add_argument("--before", type=Path, required=True, help="src directory of the earlier genoquery")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--vcf2zarr-slice", help="region of --vcf that vcf2zarr converts (it is slow)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--fresh", action="store_true", help="ingest again what WORKDIR/ingests.json holds")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    warm_page_cache(args.vcf)
    cache = args.workdir / "ingests.json"
    trees = (("genoquery before", args.before), ("genoquery after", None))
    ingests = {}
    for name, src in trees:
        out = args.workdir / name.replace(" ", "_")
        ingests[name] = measured(cache, name, out, args.fresh, lambda s=src, o=out: genoquery_ingest(s, args.vcf, o))
    plink_cmd, plink_out = ingest_commands(args.vcf, args.workdir, args.threads)["plink2"]
    ingests["plink2 --make-pgen"] = measured(
        cache, "plink2", plink_out, args.fresh, lambda: measure_ingest("plink2", plink_cmd, plink_out)
    )
    print(f"input: {args.vcf} ({args.vcf.stat().st_size / 1e6:.1f} MB), {args.threads} threads\n")
    print("| ingest | wall s | peak MiB | MB on disk | files |\n|---|---|---|---|---|")
    for name, result in ingests.items():
        print(row(name, result))
    if args.vcf2zarr_slice:
        part = args.workdir / "slice.vcf.gz"
        if args.fresh or not part.exists():
            slice_vcf(args.vcf, args.vcf2zarr_slice, part)
        print(f"\nslice {args.vcf2zarr_slice}: {part.stat().st_size / 1e6:.1f} MB\n")
        print("| ingest of the slice | wall s | peak MiB | MB on disk | files |\n|---|---|---|---|---|")
        for name, src in trees:
            out = args.workdir / f"slice_{name.replace(' ', '_')}"
            print(
                row(
                    name,
                    measured(
                        cache, f"slice {name}", out, args.fresh, lambda s=src, o=out: genoquery_ingest(s, part, o)
                    ),
                )
            )
        vz_cmd, vz_out = ingest_commands(part, args.workdir, args.threads)["vcf2zarr"]
        print(
            row(
                "vcf2zarr convert",
                measured(
                    cache, "slice vcf2zarr", vz_out, args.fresh, lambda: measure_ingest("vcf2zarr", vz_cmd, vz_out)
                ),
            )
        )
    answers = {name: ask(src, args.workdir / name.replace(" ", "_"), args.repeat, args.workdir) for name, src in trees}
    plinked = "error" not in ingests["plink2 --make-pgen"]
    plink = plink2_frequencies(plink_out / "out", args.workdir, args.threads, 3) if plinked else {}
    print(
        "\n| question (in process, median) | before | after | after / before | plink2 (median of 3) | after / plink2 |"
        "\n|---|---|---|---|---|---|"
    )
    for question, before in answers["genoquery before"].items():
        after = answers["genoquery after"][question]
        peer = f"{plink[question] * 1e3:.0f} ms | {after / plink[question]:.2f}" if question in plink else "| "
        print(f"| {question} | {before * 1e3:.2f} ms | {after * 1e3:.2f} ms | {after / before:.2f} | {peer} |")
    print("\n" + "; ".join(f"{k} {v}" for k, v in tool_versions().items()))


if __name__ == "__main__":
    main()
