"""pytest-benchmark timings of cohort questions on the session's simulated store.

Targets from issue 4 (read as medians, on a quiet machine): carriers of one rare
variant <= 5 ms p50; cohort AF over the 1 Mb region for a random 10% cohort at
least as fast as ``plink2 --keep --freq`` (side by side: ``query_peers.py``).
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def chr20(store):
    return store.variants(region="chr20")


@pytest.fixture(scope="module")
def tenth(store) -> list[str]:
    ids = np.array(store.samples()["sample_id"].to_pylist())
    return sorted(np.random.default_rng(3).choice(ids, size=len(ids) // 10, replace=False).tolist())


def test_frequencies_random_tenth_1mb(benchmark, store, tenth):
    """Exact AC/AN/AF of every allele of chr20's 1 Mb for a random 10% of the samples."""
    table = benchmark.pedantic(store.frequencies, args=("chr20",), kwargs={"cohort": tenth},
                               rounds=10, warmup_rounds=1)
    assert table.num_rows == store.variants("chr20").num_rows
    assert int(np.asarray(table["an"]).max()) <= 2 * len(tenth)


def test_frequencies_by_ancestry_in_cohort(benchmark, store, tenth):
    table = benchmark.pedantic(store.frequencies, args=("chr20",), kwargs={"cohort": tenth, "by": "ancestry"},
                               rounds=5, warmup_rounds=1)
    assert "ancestry" in table.column_names


def test_carriers_rare_variant(benchmark, store, chr20):
    """Carriers of one AC=1 variant: one listed-call chunk."""
    key = chr20.filter(np.asarray(chr20["ac"]) == 1)["variant_key"][0].as_py()
    table = benchmark.pedantic(store.carriers, args=(key,), rounds=200, warmup_rounds=5)
    assert table.num_rows == 1


def test_carriers_common_variant(benchmark, store, chr20):
    """Carriers of the most common variant: its dense 2-bit codes for every sample."""
    row = int(np.nanargmax(chr20["af"].to_numpy(zero_copy_only=False)))
    table = benchmark.pedantic(store.carriers, args=(chr20["variant_key"][row].as_py(),), rounds=50,
                               warmup_rounds=2)
    assert table.num_rows > 0


def test_participant(benchmark, store):
    """One participant's ALT alleles over the whole store, with frequencies."""
    sample = store.samples()["sample_id"][0].as_py()
    table = benchmark.pedantic(store.participant, args=(sample,), rounds=5, warmup_rounds=1)
    assert table.num_rows > 0
