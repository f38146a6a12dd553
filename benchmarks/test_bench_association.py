"""pytest-benchmark timings of association (issue 6): a linear GWAS over chr20's 1 Mb and a
logistic one over its first 100 kb (Firth fits of rare alleles make 1 Mb take minutes, too long
for CI: see benchmarks/RESULTS.md).

Every ALT allele of the region is tested with age, sex and the four principal components as
covariates: LDL (quantitative, linear) and the planted condition E11 (cases from the event
table, logistic with Firth fallback). Run alone with
``.venv/bin/python -m pytest benchmarks/test_bench_association.py --benchmark-columns=min,median,max``.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import genoquery
from conftest import REGION
from genoquery.index.phenotypes import import_table

COVARIATES = ["age", "sex", "pcs"]


@pytest.fixture(scope="module")
def with_events(store, cohort, tmp_path_factory):
    """A copy of the session's store with the cohort's condition table imported."""
    path = tmp_path_factory.mktemp("assoc") / "events.gq"
    shutil.copytree(store.path, path)
    import_table(path, cohort.conditions)
    with genoquery.open(path) as opened:
        yield opened


def test_linear_gwas_1mb(benchmark, with_events):
    """OLS of LDL on each allele of 1 Mb: covariates projected out once, carriers-only sums."""
    table = benchmark.pedantic(
        with_events.associate,
        args=("ldl_mg_dl", COVARIATES),
        kwargs={"region": REGION, "min_mac": 1},  # every allele, as the baseline was measured (default: 20)
        rounds=3,
        warmup_rounds=1,
    )
    assert table.num_rows == with_events.variants(REGION).num_rows
    assert (np.asarray(table["status"]) == "ok").sum() > table.num_rows // 2


def test_logistic_gwas_100kb(benchmark, with_events):
    """Logistic regression of E11 on each allele of 100 kb: batched Newton steps, Firth where needed."""
    region = f"{REGION}:1-100000"
    table = benchmark.pedantic(
        with_events.associate,
        args=("E11", COVARIATES),
        kwargs={"region": region, "min_mac": 1},
        rounds=1,
        warmup_rounds=0,
    )
    assert table.num_rows == with_events.variants(region).num_rows
    assert (np.asarray(table["status"]) == "ok").sum() > 0
