"""benchmarks/check.py, the CI latency checker, on synthetic pytest-benchmark JSON: it must pass
a run like its baseline or a uniformly slower machine, and fail a slowed query, a lost speed-up or
a grown store."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("bench_check", Path(__file__).parents[1] / "benchmarks" / "check.py")
check = sys.modules["bench_check"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(check)

LOOKUP = "benchmarks/test_bench_lookup.py::test_lookup_key"
EXPORT = "benchmarks/test_bench_genotypes.py::test_export_vcf_gz"
FREQ, BCFTOOLS = next((query, peer.name) for query, peer in check.PEERS.items() if "bcftools" in peer.name)
CARRIERS, ZARR = next((query, peer.name) for query, peer in check.PEERS.items() if "zarr" in peer.name)
INGEST = check.INGEST_BENCH


def run_json(
    times: dict[str, float],
    calibrations: dict[str, float],
    samples: int = 5000,
    uncalibrated: tuple[str, ...] = (),
    store_bytes: int = 300,
) -> dict:
    """A pytest-benchmark JSON document with these medians and calibrations (seconds); the ingest
    benchmark records a store of ``store_bytes`` from sources of 100 bytes."""
    run = {
        "machine_info": {"cpu": {"brand_raw": "test CPU"}},
        "benchmarks": [
            {
                "fullname": name,
                "name": name.split("::")[1],
                "stats": {"median": t},
                "extra_info": {} if name in uncalibrated else {"calibration_s": calibrations[name], "samples": samples},
            }
            for name, t in times.items()
        ],
    }
    for bench in run["benchmarks"]:
        if bench["fullname"] == INGEST:
            bench["extra_info"] |= {"store_bytes": store_bytes, "source_bytes": 100}
    return run


def normal() -> tuple[dict[str, float], dict[str, float]]:
    """Medians: a 1 ms lookup, a 0.2 s export, a 10 s ingest, every peer 20x slower than
    genoquery; calibrations of 0.1 s, 0.3 s for the export."""
    times = {LOOKUP: 0.001, EXPORT: 0.2, INGEST: 10.0}
    for query, peer in check.PEERS.items():
        times[query], times[peer.name] = 0.05, 1.0
    calibrations = dict.fromkeys(times, 0.1)
    calibrations[EXPORT] = 0.3
    return times, calibrations


@pytest.fixture
def baseline() -> dict:
    return check.make_baseline([run_json(*normal())], ["synthetic"])


def failures(run: dict, baseline: dict) -> list[tuple[str, str]]:
    return [(c.name, c.kind) for c in check.check(run, baseline) if not c.ok]


def test_baseline_holds_each_benchmarks_ratio_to_its_calibration_without_peers(baseline):
    assert baseline["samples"] == 5000
    assert baseline["ratios"][LOOKUP] == pytest.approx(0.001 / 0.1)
    assert baseline["ratios"][EXPORT] == pytest.approx(0.2 / 0.3)
    assert set(baseline["ratios"]) == {LOOKUP, EXPORT, INGEST, *check.PEERS}
    assert baseline["sizes"] == {INGEST: 3.0}


def test_a_baseline_of_several_runs_takes_each_benchmarks_median_ratio():
    times, calibrations = normal()
    slower = dict(times, **{LOOKUP: 0.004})
    runs = [run_json(times, calibrations), run_json(slower, calibrations), run_json(slower, calibrations)]
    assert check.make_baseline(runs, ["a", "b", "c"])["ratios"][LOOKUP] == pytest.approx(0.004 / 0.1)
    with pytest.raises(ValueError, match="different cohort sizes"):
        check.make_baseline([run_json(times, calibrations), run_json(times, calibrations, samples=500)], ["a", "b"])


def test_a_run_like_the_baseline_passes(baseline):
    checks = check.check(run_json(*normal()), baseline)
    assert {c.kind for c in checks} == {"latency", "peer", "size"}
    assert all(c.ok for c in checks)


def test_a_uniformly_slower_machine_passes(baseline):
    times, calibrations = normal()
    slow = run_json({k: t * 4 for k, t in times.items()}, {k: t * 4 for k, t in calibrations.items()})
    assert failures(slow, baseline) == []


def test_a_busy_spell_during_one_benchmark_passes(baseline):
    times, calibrations = normal()
    times[LOOKUP] *= 3
    calibrations[LOOKUP] *= 3
    assert failures(run_json(times, calibrations), baseline) == []


def test_a_slowed_query_fails(baseline):
    times, calibrations = normal()
    times[LOOKUP] *= check.BOUND * 1.5
    assert failures(run_json(times, calibrations), baseline) == [(LOOKUP, "latency")]


def test_a_query_slowed_within_the_bound_passes(baseline):
    times, calibrations = normal()
    times[LOOKUP] *= check.BOUND * 0.8
    assert failures(run_json(times, calibrations), baseline) == []


def test_a_lost_speedup_over_bcftools_fails(baseline):
    times, calibrations = normal()
    times[BCFTOOLS] = times[FREQ] * check.MIN_SPEEDUP * 0.5
    assert failures(run_json(times, calibrations), baseline) == [(FREQ, "peer")]


def test_lost_speedup_of_common_carriers_over_a_zarr_read_fails(baseline):
    times, calibrations = normal()
    times[ZARR] = times[CARRIERS] * check.MIN_ZARR_SPEEDUP * 0.9
    assert failures(run_json(times, calibrations), baseline) == [(CARRIERS, "peer")]


def test_a_store_grown_past_the_size_bound_fails_and_within_it_passes(baseline):
    grown = int(300 * check.SIZE_BOUND) + 2
    assert failures(run_json(*normal(), store_bytes=grown), baseline) == [(INGEST, "size")]
    assert failures(run_json(*normal(), store_bytes=int(300 * check.SIZE_BOUND)), baseline) == []
    assert failures(run_json(*normal(), store_bytes=200), baseline) == []


def test_a_missing_benchmark_fails(baseline):
    times, calibrations = normal()
    del times[LOOKUP]
    assert failures(run_json(times, calibrations), baseline) == [(LOOKUP, "missing")]


def test_a_benchmark_without_its_calibration_fails(baseline):
    assert failures(run_json(*normal(), uncalibrated=(EXPORT,)), baseline) == [(EXPORT, "missing")]


def test_another_cohort_size_fails_until_the_baseline_is_refreshed(baseline):
    assert failures(run_json(*normal(), samples=500), baseline) == [("run", "samples")]


def test_main_exit_status_and_update_baseline(tmp_path, capsys):
    base, good, bad = tmp_path / "baseline.json", tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(run_json(*normal())))
    times, calibrations = normal()
    times[LOOKUP] *= 10
    bad.write_text(json.dumps(run_json(times, calibrations)))
    assert check.main([str(good), "--baseline", str(base), "--update-baseline"]) == 0
    assert check.main([str(good), "--baseline", str(base)]) == 0
    assert check.main([str(bad), "--baseline", str(base)]) == 1
    failed = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]
    assert [line[:3] for line in failed] == [["FAIL", "latency", LOOKUP]]
