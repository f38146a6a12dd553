"""An ingest killed with SIGKILL partway leaves the target as it was; the next run completes.

The CLI ingests a generated VCF (2000 samples x 3000 sites, ~24 MB, a few
seconds of work) in a subprocess; it is SIGKILLed as soon as its staging
directory (in the store's parent) shows genotype chunks being written
("early") or the per-variant arrays that come after the genotypes ("late").
After the kill the target is either as before or, only if the signal landed
after the final rename, the complete new store. Expected genotypes of the generated file are the numpy array it was
written from (independent of genoquery).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

import checks
from genoquery.errors import StoreError
from genoquery.ingest.withdraw import withdraw
from genoquery.verify import verify

N_SAMPLES = 2000
N_SITES = 3000
CALLS = [b"0/0", b"0/1", b"1/1", b"./.", b"0|1", b"1|0"]
CALL_GT = np.array([[0, 0], [0, 1], [1, 1], [-1, -1], [0, 1], [1, 0]], dtype=np.int8)
CALL_PHASED = np.array([False, False, False, False, True, True])


def write_big_vcf(path: Path, n_samples: int, n_sites: int, seed: int = 1) -> np.ndarray:
    """Write a biallelic GT-only VCF built with numpy; returns the (sites, samples) call codes."""
    rng = np.random.default_rng(seed)
    codes = rng.choice(len(CALLS), size=(n_sites, n_samples), p=[0.6, 0.2, 0.1, 0.04, 0.03, 0.03])
    table = np.frombuffer(b"".join(c + b"\t" for c in CALLS), dtype=np.uint8).reshape(len(CALLS), 4)
    with open(path, "wb") as handle:
        handle.write(b"##fileformat=VCFv4.2\n##contig=<ID=chr1,length=100000000>\n")
        handle.write(b'##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        handle.write(
            (
                "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
                + "\t".join(f"S{i}" for i in range(n_samples))
                + "\n"
            ).encode()
        )
        for i in range(n_sites):
            row = table[codes[i]].reshape(-1).copy()
            row[-1] = ord("\n")
            handle.write(f"chr1\t{1000 + 10 * i}\t.\tA\tG\t.\tPASS\t.\tGT\t".encode())
            handle.write(row.tobytes())
    return codes


@pytest.fixture(scope="module")
def big_vcf(tmp_path_factory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("big") / "big.vcf"
    codes = write_big_vcf(path, N_SAMPLES, N_SITES)
    return path, codes


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, gq) -> Path:
    root = tmp_path_factory.mktemp("small")
    vcf = root / "small.vcf"
    vcf.write_text(
        checks.vcf_text(
            ["a", "b", "c"],
            [
                ["chr1", "5", "rs5", "A", "C,G", "20", "PASS", ".", "GT", "0/1", "2|2", "./1"],
                ["chr1", "9", ".", "T", "A", ".", ".", ".", "GT", "1", "0/0", "."],
            ],
        )
    )
    path = root / "store.gq"
    gq.ingest(path, [vcf])
    return path


def _ingest_cmd(store: Path, vcf: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "genoquery", "ingest", str(store), str(vcf), "--quiet", *extra]


def _staging_entries(parent: Path, name: str) -> list[str]:
    return [e for e in os.listdir(parent) if e.startswith(f".{name}.staging")]


def _chunks_written(staging: Path) -> bool:
    """Genotype chunks are being written (early in the build)."""
    arrays = list(staging.glob("batches/*/genotypes.vcz/call_genotype"))
    return any(p.is_file() and not p.name.startswith(".") for a in arrays for p in a.iterdir())


def _variant_arrays_started(staging: Path) -> bool:
    """Per-variant arrays exist: genotypes are done, the build is finishing (late)."""
    return any(staging.glob("batches/*/genotypes.vcz/variant_position/.zarray"))


PHASES = {"early": _chunks_written, "late": _variant_arrays_started}


def _kill_during(cmd: list[str], target: Path, phase: str) -> bool:
    """Start ``cmd`` and SIGKILL it as soon as its staging directory shows ``phase``.

    Returns False if the process ended before that was seen (it was not killed).
    """
    seen = PHASES[phase]
    return _kill_when(
        cmd, lambda: any(seen(target.parent / name) for name in _staging_entries(target.parent, target.name))
    )


SLICE_S = 0.001
"""How long the writer runs between two looks at its files (it is stopped while we look)."""


def _looks_reached(reached) -> bool:
    """``reached()``, with a directory the writer removed meanwhile counting as not reached."""
    try:
        return bool(reached())
    except FileNotFoundError:
        return False


def _kill_when(cmd: list[str], reached) -> bool:
    """Start ``cmd`` and SIGKILL it as soon as ``reached()`` is true; False if it ended first.

    The writer runs in slices of :data:`SLICE_S` and is stopped (SIGSTOP) while ``reached`` looks
    at its files, so no phase longer than a slice passes unseen and nothing moves during a look.
    """
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None:
            os.kill(proc.pid, signal.SIGSTOP)
            if _looks_reached(reached):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                assert proc.returncode == -signal.SIGKILL
                return True
            os.kill(proc.pid, signal.SIGCONT)
            if time.monotonic() > deadline:
                pytest.fail("the writer neither finished nor reached the kill point within 120 s")
            time.sleep(SLICE_S)
        assert proc.returncode == 0, proc.stderr.read().decode()
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def _check_big_store(gq, path: Path, codes: np.ndarray) -> None:
    store = gq.open(path)
    rows = store.variants().to_pylist()
    assert len(rows) == N_SITES
    _check_big_stats(rows, codes)
    gt = CALL_GT[codes]
    group = checks.open_genotypes(path)
    for i in (0, 1, N_SITES // 2, N_SITES - 1):
        got = np.asarray(group["call_genotype"][i])
        bad = np.flatnonzero((got != gt[i]).any(axis=1))
        assert len(bad) == 0, (
            f"site {i}: {len(bad)} samples differ, e.g. sample {bad[0]}: "
            f"{CALLS[codes[i, bad[0]]].decode()} stored as {got[bad[0]].tolist()}"
        )
        assert (np.asarray(group["call_genotype_phased"][i]) == CALL_PHASED[codes[i]]).all()


def _check_big_stats(rows: list[dict], codes: np.ndarray, missing_samples: int = 0) -> None:
    """AN and AC of the big VCF's sites; ``missing_samples`` of another batch lack them (missing)."""
    gt = CALL_GT[codes]
    called = (gt >= 0).sum(axis=(1, 2))
    alt = (gt == 1).sum(axis=(1, 2))
    assert [r["pos"] for r in rows] == [1000 + 10 * i for i in range(N_SITES)]
    assert [r["an"] for r in rows] == called.tolist()
    assert [r["ac"] for r in rows] == alt.tolist()
    assert [r["n_missing"] for r in rows] == ((gt < 0).any(axis=2).sum(axis=1) + missing_samples).tolist()


APPEND_PHASES = {
    "early": lambda store: any(
        p.is_file()
        for g in store.glob("batches/.big.staging-*/genotypes.vcz/call_genotype")
        for p in g.iterdir()
        if not p.name.startswith(".")
    ),
    "late": lambda store: any(store.glob("batches/.big.staging-*/genotypes.vcz/variant_position/.zarray")),
}


@pytest.mark.parametrize("phase", ["early", "late"])
def test_killed_append_leaves_the_store_answering_as_before(gq, store_path, big_vcf, small_store, phase):
    vcf, codes = big_vcf
    shutil.copytree(small_store, store_path)
    answers = gq.open(store_path).variants().to_pylist()
    killed = _kill_when(_ingest_cmd(store_path, vcf, "--batch", "big"), lambda: APPEND_PHASES[phase](store_path))
    assert killed, "the append finished before the kill point was observed"
    with gq.open(store_path) as store:
        assert store.variants().to_pylist() == answers
        assert store.info["samples"] == 3
    gq.ingest(store_path, [vcf], batch="big").close()
    with gq.open(store_path) as store:
        rows = store.variants(region="chr1:1000-100000000").to_pylist()
        _check_big_stats(rows, codes, missing_samples=3)
        small = store.variants(region="chr1:1-999").to_pylist()
        assert [(r["ac"], r["an"], r["n_missing"]) for r in small] == [
            (r["ac"], r["an"], r["n_missing"] + N_SAMPLES) for r in answers
        ]
    leftovers = [p.name for p in [*store_path.glob(".*staging*"), *store_path.glob("batches/.*")]]
    assert leftovers == [], "the killed append's files remain after the next one"


@pytest.mark.parametrize("phase", ["early", "late"])
def test_killed_ingest_leaves_no_store(gq, store_path, big_vcf, phase):
    vcf, codes = big_vcf
    killed = _kill_during(_ingest_cmd(store_path, vcf), store_path, phase)
    if phase == "early":
        assert killed, "ingest finished before its first genotype chunk was seen; enlarge the test input"
    if killed and store_path.exists():
        # killed after the rename (between observing the staging directory and the signal):
        # then the store must be complete
        assert phase == "late", "a killed ingest left something at the target path"
        _check_big_store(gq, store_path, codes)
        return
    assert killed, "ingest finished before the late kill point was observed"
    assert not store_path.exists(), "a killed ingest left something at the target path"
    with pytest.raises(gq.GenoqueryError):
        gq.open(store_path)
    assert not store_path.exists()
    # a second run completes, and clears the dead run's staging directory
    gq.ingest(store_path, [vcf])
    _check_big_store(gq, store_path, codes)
    assert os.listdir(store_path.parent) == [store_path.name], "staging leftovers remain after the next ingest"


@pytest.mark.parametrize("phase", ["early", "late"])
def test_killed_overwrite_keeps_existing_store(gq, store_path, big_vcf, small_store, phase):
    vcf, codes = big_vcf
    shutil.copytree(small_store, store_path)
    before = checks.tree_digest(store_path)
    answers = gq.open(store_path).variants().to_pylist()
    assert checks.tree_digest(store_path) == before, "opening a store changed its files"
    killed = _kill_during(_ingest_cmd(store_path, vcf, "--overwrite"), store_path, phase)
    if phase == "early":
        assert killed, "ingest finished before its first genotype chunk was seen; enlarge the test input"
    assert killed, "ingest finished before the late kill point was observed"
    if checks.tree_digest(store_path) != before:
        # only acceptable if the kill landed after the replacement: then it is the complete new store
        assert phase == "late", "a killed --overwrite ingest changed the existing store"
        _check_big_store(gq, store_path, codes)
        return
    assert gq.open(store_path).variants().to_pylist() == answers
    gq.ingest(store_path, [vcf], overwrite=True)
    _check_big_store(gq, store_path, codes)
    assert os.listdir(store_path.parent) == [store_path.name], "staging leftovers remain after the next ingest"


WRITES = {  # operation -> (command after the store path, kill points)
    "withdraw": (
        ["withdraw", "{store}", "S3", "S4", "--reason", "test"],
        {
            "index copied": lambda s: any(s.glob(".index.duckdb.staging-*")),
            "recounting": lambda s: any(s.glob(".index.duckdb.staging-*.wal")),
        },
    ),
    "compact": (
        ["compact", "{store}"],
        {
            "group half written": lambda s: any(
                p.is_file() for g in s.glob("batches/.*staging*") for p in g.glob("genotypes.vcz/call_genotype/[0-9]*")
            ),
            "group renamed": lambda s: (s / "batches" / "big.v1").exists(),
        },
    ),
}


@pytest.fixture(scope="module")
def big_store(tmp_path_factory, gq, big_vcf) -> Path:
    path = tmp_path_factory.mktemp("bigstore") / "big.gq"
    gq.ingest(path, [big_vcf[0]], batch="big").close()

    withdraw(path, ["S1", "S2"], "test")  # for compact to erase
    return path


@pytest.mark.parametrize(
    ("operation", "point"), [(op, point) for op, (_, points) in WRITES.items() for point in points]
)
def test_killed_withdraw_or_compact_leaves_a_consistent_store(gq, store_path, big_store, operation, point):

    shutil.copytree(big_store, store_path)
    with gq.open(store_path) as store:
        before = store.variants()
    args, points = WRITES[operation]
    cmd = [sys.executable, "-m", "genoquery", *(a.format(store=store_path) for a in args)]
    assert _kill_when(cmd, lambda: points[point](store_path)), f"{operation} finished before '{point}' was observed"
    with gq.open(store_path) as store:
        committed = not store.variants().equals(before) or store.batches[0].path.name == "big.v1"
    report = verify(store_path)
    assert report.ok, report.problems
    if not committed:
        with gq.open(store_path) as store:
            assert store.variants().equals(before)
    subprocess.run(cmd, check=True, capture_output=True)
    assert verify(store_path).ok
    leftovers = [p.name for p in [*store_path.glob(".*staging*"), *store_path.glob("batches/.*")]]
    assert leftovers == [], leftovers


UPGRADE_POINTS = {
    "group half written": lambda s: any(s.glob("batches/.*staging*/genotypes.vcz/call_genotype/[0-9]*")),
    "first group renamed": lambda s: (s / "batches" / "center1.v1").exists(),
    "last group renamed": lambda s: (s / "batches" / "center3").exists(),
}


@pytest.mark.parametrize("point", list(UPGRADE_POINTS))
def test_killed_upgrade_leaves_a_store_that_answers_or_asks_for_the_upgrade_again(gq, tmp_path, point):
    with tarfile.open(Path(__file__).parent / "data" / "format2_store.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    store_path = tmp_path / "format2.gq"
    cmd = [sys.executable, "-m", "genoquery", "upgrade", str(store_path)]
    assert _kill_when(cmd, lambda: UPGRADE_POINTS[point](store_path)), f"upgrade finished before '{point}'"
    if json.loads((store_path / "genoquery.json").read_text())["format_version"] == 2:
        with pytest.raises(StoreError, match=f"`genoquery upgrade {store_path}`"):
            gq.open(store_path)
    else:  # killed after the marker changed: the store answers already
        gq.open(store_path).close()
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    report = verify(store_path)
    assert report.ok, report.problems
    assert sorted(p.name for p in (store_path / "batches").iterdir()) == ["center1.v1", "center2", "center3"]
    with gq.open(store_path) as store:
        assert store.variants().num_rows == 322
