"""pytest-benchmark timings of cohort questions on the session's simulated store.

Targets from issue 4 (read as medians, on a quiet machine): carriers of one rare
variant <= 5 ms p50; cohort AF over the 1 Mb region for a random 10% cohort at
least as fast as ``plink2 --keep --freq`` (side by side: ``query_peers.py``).
``test_frequencies_bcftools`` asks bcftools (pysam's, in-process) the same question
for the same cohorts: ``benchmarks/check.py`` requires genoquery to stay faster by a
margin (see README).
"""

from __future__ import annotations

import os

import numpy as np
import pysam.bcftools
import zarr

from conftest import REGION
from genoquery.storage.format import VCF_GROUP


def test_frequencies(benchmark, store, chr20, random_cohort):
    """Exact AC/AN/AF of every allele of chr20's 1 Mb for a random 1%, 10% or 50% of the samples."""
    table = benchmark.pedantic(
        store.frequencies, args=(REGION,), kwargs={"cohort": random_cohort}, rounds=7, warmup_rounds=1
    )
    assert table.num_rows == chr20.num_rows
    assert int(np.asarray(table["an"]).max()) <= 2 * len(random_cohort)


def test_frequencies_bcftools(benchmark, cohort, random_cohort, tmp_path):
    """The same cohort and region with ``bcftools view -S -r``, which recomputes INFO/AC and AN
    for the kept samples (AF is their ratio: ``+fill-tags`` would add a division per allele)."""
    keep = tmp_path / "cohort.txt"
    keep.write_text("".join(f"{s}\n" for s in random_cohort))
    chr20_vcf = next(str(p) for p in cohort.joint_vcfs if p.name == f"cohort.{REGION}.vcf.gz")
    benchmark.pedantic(
        pysam.bcftools.view,
        args=("-S", str(keep), "-r", REGION, "-Ou", "-o", os.devnull, chr20_vcf),
        rounds=2,
        iterations=1,
    )


def test_frequencies_by_ancestry_in_cohort(benchmark, store, random_cohort):
    table = benchmark.pedantic(
        store.frequencies, args=(REGION,), kwargs={"cohort": random_cohort, "by": "ancestry"}, rounds=5, warmup_rounds=1
    )
    assert "ancestry" in table.column_names


def test_carriers_rare_variant(benchmark, store, chr20):
    """Carriers of one AC=1 variant: one listed-call chunk."""
    key = chr20.filter(np.asarray(chr20["ac"]) == 1)["variant_key"][0].as_py()
    table = benchmark.pedantic(store.carriers, args=(key,), rounds=200, warmup_rounds=5)
    assert table.num_rows == 1


def test_carriers_common_variant(benchmark, store, chr20):
    """Carriers of the most common variant: its dense 2-bit codes for every sample."""
    row = int(np.nanargmax(chr20["af"].to_numpy(zero_copy_only=False)))
    table = benchmark.pedantic(store.carriers, args=(chr20["variant_key"][row].as_py(),), rounds=50, warmup_rounds=2)
    assert table.num_rows > 0


def test_carriers_common_variant_zarr(benchmark, store, chr20):
    """The same carriers as a VCF Zarr user finds them: the variant's ``call_genotype`` row read with
    zarr-python from its batch, and the samples holding the allele (``benchmarks/check.py`` requires
    genoquery's answer, a table with IDs and GT text, to stay faster than this bare read)."""
    variant = chr20.slice(int(np.nanargmax(chr20["af"].to_numpy(zero_copy_only=False))), 1).to_pylist()[0]
    # fetchall: a DuckDB result left unfinished by fetchone blocks the connection's next query
    ((batch_row,),) = store.connection.execute(
        "SELECT batch_row FROM batch_sites WHERE site_row = ?", [variant["site_row"]]
    ).fetchall()
    group = zarr.open_group(store.batches[0].path / VCF_GROUP, mode="r")

    def carriers():
        gt = group["call_genotype"][batch_row]
        return group["sample_id"][...][np.flatnonzero((gt == variant["allele"]).any(axis=1))]

    ids = benchmark.pedantic(carriers, rounds=20, warmup_rounds=2)
    assert len(store.batches) == 1
    assert sorted(ids.tolist()) == sorted(store.carriers(variant["variant_key"])["sample_id"].to_pylist())


def test_participant(benchmark, store):
    """One participant's ALT alleles over the whole store, with frequencies."""
    sample = store.samples()["sample_id"][0].as_py()
    table = benchmark.pedantic(store.participant, args=(sample,), rounds=5, warmup_rounds=1)
    assert table.num_rows > 0
