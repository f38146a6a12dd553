"""A plain msprime cohort for benchmarks: data genoquery's simulator did not shape.

One panmictic population (Ne 10,000), human-like recombination and mutation rates
(1e-8 per base per generation), diploid samples, every call phased and present (no
missing calls, no errors), chr20 positions 1-based. Written as bgzipped VCF with its
tabix index by tskit's own writer::

    python benchmarks/msprime_cohort.py --samples 1000000 --length 1000000 --out /tmp/gq/ms1e6
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import msprime
import pysam


def simulate(samples: int, length: int, seed: int):
    """The tree sequence: ``samples`` diploid individuals over ``length`` bases, with mutations."""
    ts = msprime.sim_ancestry(
        samples=samples, sequence_length=length, recombination_rate=1e-8, population_size=10_000, random_seed=seed
    )
    return msprime.sim_mutations(ts, rate=1e-8, random_seed=seed, discrete_genome=True)


def write_vcf(ts, out: Path) -> Path:
    """``out/cohort.chr20.vcf.gz`` and its ``.tbi``; sample IDs ``M0000001``..."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "cohort.chr20.vcf.gz"
    names = [f"M{i + 1:07d}" for i in range(ts.num_individuals)]
    with io.TextIOWrapper(pysam.libcbgzf.BGZFile(str(path), "wb")) as f:
        ts.write_vcf(f, contig_id="chr20", individual_names=names, position_transform=lambda p: [int(x) + 1 for x in p])
    pysam.tabix_index(str(path), preset="vcf", force=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, required=True)
    parser.add_argument("--length", type=int, default=1_000_000, help="bases of chr20")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    start = time.perf_counter()
    ts = simulate(args.samples, args.length, args.seed)
    print(f"msprime: {ts.num_sites} sites, {time.perf_counter() - start:.1f} s", flush=True)
    path = write_vcf(ts, args.out)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
