"""pytest-benchmark timings of ingest and whole-cohort variant lookup (not asserted here: see README)."""

from __future__ import annotations

import itertools

import genoquery

_runs = itertools.count()


def test_ingest(benchmark, cohort, tmp_path):
    """Ingest the joint chr20 + chrX files with the person table."""

    def run():
        return genoquery.ingest(
            tmp_path / f"s{next(_runs)}.gq", cohort.joint_vcfs, persons=cohort.persons, progress=False
        )

    store = benchmark.pedantic(run, rounds=3, iterations=1)
    assert store.info["samples"] > 0
    # the store's size beside its sources' (benchmarks/check.py holds it to the baseline's ratio)
    benchmark.extra_info["store_bytes"] = sum(f.stat().st_size for f in store.path.rglob("*") if f.is_file())
    benchmark.extra_info["source_bytes"] = sum(p.stat().st_size for p in cohort.joint_vcfs)


def test_variants_region(benchmark, store):
    """Whole-cohort statistics of a 100 kb window from the index."""
    table = benchmark(store.variants, region="chr20:400000-500000")
    assert table.num_rows > 0


def test_variants_region_by_ancestry(benchmark, store):
    table = benchmark(store.variants, region="chr20:400000-500000", by="ancestry")
    assert table.num_rows > 0
