"""pytest-benchmark timings of genotype access: a slice as arrays, and VCF export."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

SLICE = "chr20:400000-500000"
_runs = itertools.count()


@pytest.fixture(scope="module")
def hundred(store) -> list[str]:
    """100 random sample IDs, in random order (the slice returns them in the order asked)."""
    return np.random.default_rng(5).choice(np.asarray(store.sample_ids), size=100, replace=False).tolist()


def test_genotype_slice(benchmark, store, hundred):
    """The genotype matrix of 100 kb for 100 random samples (Zarr call_genotype chunks)."""
    g = benchmark.pedantic(store.genotypes, args=(SLICE,), kwargs={"samples": hundred}, rounds=10, warmup_rounds=1)
    assert g.gt.shape[1:] == (100, 2)


def test_export_vcf_gz(benchmark, store, tmp_path):
    """100 kb of every sample's genotypes written as bgzipped VCF."""

    def run():
        return store.export_vcf(tmp_path / f"slice{next(_runs)}.vcf.gz", region=SLICE)

    path = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    assert path.stat().st_size > 0
