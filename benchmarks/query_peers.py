"""Side-by-side cohort queries: genoquery vs plink2 vs bcftools on the same cohort and region.

    python benchmarks/query_peers.py --store S.gq --vcf chr20.vcf.gz --pfile chr20 --region chr20:1-1000000

Questions, each for a random cohort of ``--fraction`` of the samples (seeded):

- allele frequencies over the region: ``Store.frequencies`` (in-process median of
  ``--repeat`` runs, and ``genoquery query frequencies`` as a child process, start-up
  included) vs ``plink2 --pfile --keep --freq`` vs
  ``bcftools view -S -r | bcftools +fill-tags -t AC,AN,AF``;
- carriers of one rare and one common variant (in-process median) vs
  ``bcftools view -r POS -i GT="alt"`` listing carriers.

plink2 and bcftools run as child processes (their start-up is part of what a user
waits for); the store, the .pgen and the indexed VCF are prepared beforehand. The
machines are shared: read the ratios of one run, not absolute times.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import genoquery


def wall(cmd: list[str], repeat: int) -> float:
    """Median wall seconds of running ``cmd`` ``repeat`` times (output discarded)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(call, repeat: int) -> float:
    call()  # warm: first use opens arrays and compiles nothing (numba caches on disk)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--vcf", type=Path, required=True, help="the indexed VCF the store was ingested from")
    parser.add_argument("--pfile", help="plink2 fileset prefix made from the same VCF (--make-pgen)")
    parser.add_argument("--region", required=True, help="CONTIG:START-END, 1-based inclusive")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gq-query-peers-"))
    store = genoquery.open(args.store)
    ids = np.array(store.samples()["sample_id"].to_pylist())
    rng = np.random.default_rng(args.seed)
    cohort = sorted(rng.choice(ids, size=max(1, int(len(ids) * args.fraction)), replace=False).tolist())
    keep = work / "cohort.txt"
    keep.write_text("".join(f"{s}\n" for s in cohort))
    bindir = Path(sys.executable).parent
    print(f"{len(ids)} samples, cohort {len(cohort)}, region {args.region}")
    rows = {"genoquery (in-process)": in_process(lambda: store.frequencies(args.region, cohort=cohort), args.repeat),
            "genoquery query frequencies (CLI)": wall(
                [str(bindir / "genoquery"), "query", str(args.store), "frequencies", args.region,
                 "--cohort", f"@{keep}"], args.repeat)}
    if args.pfile and shutil.which("plink2"):
        rows["plink2 --keep --freq"] = wall(
            ["plink2", "--pfile", args.pfile, "--keep", str(keep), "--freq", "--threads", "2",
             "--out", str(work / "freq")], args.repeat)
    if shutil.which("bcftools"):
        pipeline = (f"bcftools view -S {keep} -r {args.region} -Ou {args.vcf} | "
                    f"bcftools +fill-tags -Ou -- -t AC,AN,AF > /dev/null")
        rows["bcftools view -S -r | +fill-tags"] = wall(["bash", "-o", "pipefail", "-c", pipeline], 1)
    base = rows["genoquery (in-process)"]
    print("\n| cohort AF over the region | median s | ratio to genoquery in-process |\n|---|---|---|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.3f} | {seconds / base:.1f} |")
    variants = store.variants(args.region)
    rare = variants.filter(np.asarray(variants["ac"]) == 1).slice(0, 1)["variant_key"][0].as_py()
    common = variants["variant_key"][int(np.nanargmax(variants["af"].to_numpy(zero_copy_only=False)))].as_py()
    print("\n| carriers of one variant | median ms |\n|---|---|")
    for label, key in (("rare (AC=1)", rare), ("most common", common)):
        ms = in_process(lambda: store.carriers(key), max(args.repeat, 50)) * 1e3
        print(f"| {label} {key} | {ms:.2f} |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
