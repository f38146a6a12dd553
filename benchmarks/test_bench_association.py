"""pytest-benchmark timings of association (issue 6): linear and logistic GWAS over chr20's 1 Mb.

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
    table = benchmark.pedantic(with_events.associate, args=("ldl_mg_dl", COVARIATES), kwargs={"region": REGION},
                               rounds=3, warmup_rounds=1)
    assert table.num_rows == with_events.variants(REGION).num_rows
    assert (np.asarray(table["status"]) == "ok").sum() > table.num_rows // 2


def test_logistic_gwas_1mb(benchmark, with_events):
    """Logistic regression of E11 on each allele of 1 Mb: batched Newton steps, Firth where needed."""
    table = benchmark.pedantic(with_events.associate, args=("E11", COVARIATES), kwargs={"region": REGION},
                               rounds=1, warmup_rounds=0)
    status = np.asarray(table["status"])
    assert (status == "ok").sum() > 0 and not (status == "not_converged").any()
