"""Shared fixtures of the benchmark suite: one simulated cohort (cached on disk) and its store per session.

The cohort is simulated once per parameter set and simulator version and kept in
``$GENOQUERY_BENCH_CACHE`` (default ``~/.cache/genoquery-bench``), so a second run skips the
simulation; the store is ingested per session (the ingest under test may have changed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import genoquery
from calibration import timed_runs
from genoquery.simulate import CohortFiles, simulate_cohort

BENCH_SAMPLES = int(os.environ.get("GENOQUERY_BENCH_SAMPLES", "5000"))
COHORT = {"n_samples": BENCH_SAMPLES, "n_centers": 3, "sequence_length": 1_000_000, "seed": 11}
CACHE = Path(os.environ.get("GENOQUERY_BENCH_CACHE", Path.home() / ".cache" / "genoquery-bench"))
FRACTIONS = (0.01, 0.1, 0.5)
REGION = "chr20"  # the simulated 1 Mb of chr20, whole
# Commands run in a process of their own, as when no daemon runs: the tests of the daemon itself
# (tests/test_daemon.py) turn it on with a private directory; others must not leave daemons behind.
os.environ["GENOQUERY_DAEMON"] = "0"

# zarr 3 warns about consolidated metadata on every open; it is not what is measured.
warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)


def _simulator_digest() -> str:
    """Hash of the simulator's sources: a changed simulator makes a new cache entry."""
    package = Path(genoquery.__file__).parent
    digest = hashlib.sha256()
    for source in sorted([*(package / "simulate").glob("*.py"), package / "bgzf.py"]):
        digest.update(source.name.encode() + source.read_bytes())
    return digest.hexdigest()[:12]


def cached_cohort(params: dict, cache: Path) -> CohortFiles:
    """The cohort simulated with ``params``, from ``cache`` or simulated into it (atomically)."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    target = cache / f"cohort-{params['n_samples']}-{key}-{_simulator_digest()}"
    if not (target / "truth.json").exists():  # truth.json is written last
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
        simulate_cohort(staging, **params)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return CohortFiles(
        target,
        tuple(sorted(target.glob("center*.vcf.gz"))),
        tuple(sorted(target.glob("cohort.*.vcf.gz"))),
        target / "persons.tsv",
        target / "conditions.tsv",
        target / "truth.json",
    )


@pytest.fixture(autouse=True)
def calibration(request):
    """Time the calibration workload just before and just after each benchmark; record the median of
    those runs and the cohort size in the benchmark's extra_info (read by benchmarks/check.py)."""
    if "benchmark" not in request.fixturenames:
        yield
        return
    before = timed_runs()
    yield
    extra = request.node.funcargs["benchmark"].extra_info
    extra["calibration_s"] = statistics.median(before + timed_runs())
    extra["samples"] = BENCH_SAMPLES


@pytest.fixture(scope="session")
def cohort() -> CohortFiles:
    """A simulated 3-center cohort: GENOQUERY_BENCH_SAMPLES samples, 1 Mb of chr20 and of chrX."""
    return cached_cohort(COHORT, CACHE)


@pytest.fixture(scope="session")
def store(cohort, tmp_path_factory):
    """The cohort ingested with its persons; or, with ``GENOQUERY_BENCH_STORE``, that store (one
    ingested earlier from the same cohort: a 10^5-sample ingest takes ~7 minutes here)."""
    if given := os.environ.get("GENOQUERY_BENCH_STORE"):
        return genoquery.open(given)
    path = tmp_path_factory.mktemp("store") / "bench.gq"
    return genoquery.ingest(path, cohort.joint_vcfs, persons=cohort.persons, progress=False)


@pytest.fixture(scope="session")
def chr20(store):
    """Whole-cohort statistics of every ALT allele of chr20."""
    return store.variants(region=REGION)


@pytest.fixture(scope="session", params=FRACTIONS, ids=lambda f: f"{f:.0%}")
def random_cohort(request, store) -> list[str]:
    """Sorted sample IDs of a random 1%, 10% or 50% of the store's samples (seeded)."""
    ids = np.asarray(store.sample_ids)
    size = max(1, round(len(ids) * request.param))
    return sorted(np.random.default_rng(3).choice(ids, size=size, replace=False).tolist())
