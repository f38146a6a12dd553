"""Side-by-side cohort queries: genoquery vs plink2 vs bcftools on the same cohort and region.

    python benchmarks/query_peers.py --store S.gq --vcf chr20.vcf.gz --pfile chr20 --region chr20:1-1000000

Questions, each for a random cohort of ``--fraction`` of the samples (seeded):

- allele frequencies over the region: ``Store.frequencies`` (in-process median of
  ``--repeat`` runs, and ``genoquery query frequencies`` as a child process, start-up
  included) vs ``plink2 --pfile --keep --freq`` vs
  ``bcftools view -S -r | bcftools +fill-tags -t AC,AN,AF``;
- carriers of one rare and one common biallelic variant (in-process median) vs
  ``bcftools query -r POS -i 'GT="alt"'`` listing the carriers.

plink2 and bcftools run as child processes (their start-up is part of what a user
waits for); the store, the .pgen and the indexed VCF are prepared beforehand. The
machines are shared: read the ratios of one run, not absolute times. ``benchmarks/scale.py``
runs the same functions at three cohort sizes, after the ingests.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import genoquery

sys.path.insert(0, str(Path(__file__).parent))
from peers import PeerFailedError, run_measured


def wall(cmd: list[str], repeat: int, timeout: float | None = None) -> tuple[float, int]:
    """Median wall seconds and largest peak resident bytes of running ``cmd`` ``repeat`` times
    (output discarded; :class:`peers.TimedOutError` past ``timeout`` seconds per run)."""
    runs = [run_measured(cmd, timeout) for _ in range(repeat)]
    return statistics.median(s for s, _ in runs), max(p for _, p in runs)


def in_process(call, repeat: int) -> float:
    call()  # warm: first use opens arrays and compiles nothing (numba caches on disk)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def draw_cohort(store: genoquery.Store, fraction: float, seed: int) -> list[str]:
    """A random ``fraction`` of the store's sample IDs (at least one), sorted."""
    ids = np.asarray(store.sample_ids)
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(ids, size=max(1, int(len(ids) * fraction)), replace=False).tolist())


def frequency_commands(
    store_path: Path, region: str, keep: Path, vcf: Path, pfile: str | None, out: Path
) -> dict[str, list[str]]:
    """The child-process ways to get the cohort in ``keep``'s AC/AN/AF over ``region``: genoquery's
    CLI, then plink2 and bcftools when installed (plink2 only with a ``pfile``)."""
    bindir = Path(sys.executable).parent
    commands = {
        "genoquery query frequencies (CLI)": [
            str(bindir / "genoquery"),
            "query",
            str(store_path),
            "frequencies",
            region,
            "--cohort",
            f"@{keep}",
        ]
    }
    if pfile and shutil.which("plink2"):
        commands["plink2 --keep --freq"] = [
            "plink2",
            "--pfile",
            pfile,
            "--keep",
            str(keep),
            "--freq",
            "--threads",
            "2",
            "--out",
            str(out / "freq"),
        ]
    if shutil.which("bcftools"):
        pipeline = f"bcftools view -S {keep} -r {region} -Ou {vcf} | bcftools +fill-tags -Ou -- -t AC,AN,AF > /dev/null"
        commands["bcftools view -S -r | +fill-tags"] = ["bash", "-o", "pipefail", "-c", pipeline]
    return commands


def carrier_probes(store: genoquery.Store, region: str) -> dict[str, dict]:
    """One rare (AC=1) and the commonest variant of ``region`` among biallelic sites, as rows of
    :meth:`Store.variants` (biallelic so that a VCF-level query selects the same allele)."""
    variants = store.variants(region)
    site_row = np.asarray(variants["site_row"])
    rows, counts = np.unique(site_row, return_counts=True)
    biallelic = np.isin(site_row, rows[counts == 1])
    ac = np.asarray(variants["ac"])
    af = np.where(biallelic, variants["af"].to_numpy(zero_copy_only=False), np.nan)
    rare = int(np.flatnonzero(biallelic & (ac == 1))[0])
    common = int(np.nanargmax(af))
    return {
        "rare (AC=1)": variants.slice(rare, 1).to_pylist()[0],
        "most common": variants.slice(common, 1).to_pylist()[0],
    }


def carrier_command(vcf: Path, variant: dict) -> list[str]:
    """bcftools listing the samples that carry ``variant`` (a biallelic site)."""
    where = f'REF="{variant["ref"]}" && ALT="{variant["alt"]}" && GT="alt"'
    return [
        "bcftools",
        "query",
        "-r",
        f"{variant['contig']}:{variant['pos']}",
        "-i",
        where,
        "-f",
        "[%SAMPLE\\t%GT\\n]",
        str(vcf),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--vcf", type=Path, required=True, help="the indexed VCF the store was ingested from")
    parser.add_argument("--pfile", help="plink2 fileset prefix made from the same VCF (--make-pgen)")
    parser.add_argument("--region", required=True, help="CONTIG:START-END, 1-based inclusive")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each peer run may take")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gq-query-peers-"))
    store = genoquery.open(args.store)
    cohort = draw_cohort(store, args.fraction, args.seed)
    keep = work / "cohort.txt"
    keep.write_text("".join(f"{s}\n" for s in cohort))
    print(f"{store.info['samples']} samples, cohort {len(cohort)}, region {args.region}")
    rows = {"genoquery (in-process)": in_process(lambda: store.frequencies(args.region, cohort=cohort), args.repeat)}
    for name, cmd in frequency_commands(args.store, args.region, keep, args.vcf, args.pfile, work).items():
        try:
            rows[name] = wall(cmd, 1 if name.startswith("bcftools") else args.repeat, args.timeout)[0]
        except PeerFailedError as failure:
            print(f"{name}: {failure}")
    base = rows["genoquery (in-process)"]
    print("\n| cohort AF over the region | median s | ratio to genoquery in-process |\n|---|---|---|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.3f} | {seconds / base:.1f} |")
    print("\n| carriers of one variant | genoquery median ms | bcftools query s |\n|---|---|---|")
    for label, variant in carrier_probes(store, args.region).items():
        ms = in_process(lambda: store.carriers(variant["variant_key"]), max(args.repeat, 50)) * 1e3  # noqa: B023 - called at once, in this iteration
        peer = f"{wall(carrier_command(args.vcf, variant), 3)[0]:.3f}" if shutil.which("bcftools") else "absent"
        print(f"| {label} {variant['variant_key']} | {ms:.2f} | {peer} |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
