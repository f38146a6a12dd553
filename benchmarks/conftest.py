"""Shared fixtures of the benchmark suite: one simulated cohort and its store per session."""

from __future__ import annotations

import os

import pytest

import genoquery
from genoquery.simulate import simulate_cohort

BENCH_SAMPLES = int(os.environ.get("GENOQUERY_BENCH_SAMPLES", "5000"))


@pytest.fixture(scope="session")
def cohort(tmp_path_factory):
    """A simulated 3-center cohort: GENOQUERY_BENCH_SAMPLES samples, 1 Mb of chr20 and of chrX."""
    out = tmp_path_factory.mktemp("cohort")
    return simulate_cohort(out, n_samples=BENCH_SAMPLES, n_centers=3, sequence_length=1_000_000, seed=11)


@pytest.fixture(scope="session")
def store(cohort, tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "bench.gq"
    return genoquery.ingest(path, cohort.joint_vcfs, persons=cohort.persons, progress=False)
