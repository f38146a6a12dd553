"""The in-run calibration: a fixed numpy and DuckDB workload, independent of genoquery's code.

``conftest.py`` times it just before and just after every benchmark and records the median in
the benchmark's ``extra_info["calibration_s"]``; ``benchmarks/check.py`` divides the benchmark's
median by it, so that a slower or busier machine (which slows both) does not fail the latency
checks while a slower query does.
"""

from __future__ import annotations

import time

import duckdb
import numpy as np

RUNS = 3
"""Timed runs before and after each benchmark."""


def workload() -> int:
    """Sort and histogram a million integers (numpy), group a million rows (DuckDB)."""
    values = np.random.default_rng(0).integers(0, 1 << 20, 1_000_000, dtype=np.int32)
    np.sort(values)
    counts = np.bincount(values & 0xFFFF)
    groups = duckdb.sql("SELECT i % 1000 AS k, count(*), sum(i) FROM range(1000000) t(i) GROUP BY k").fetchall()
    return int(counts.sum()) + len(groups)


def timed_runs(n: int = RUNS) -> list[float]:
    """Seconds of ``n`` runs of the workload."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        workload()
        times.append(time.perf_counter() - start)
    return times
