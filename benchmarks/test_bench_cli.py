"""Cold start of the query commands: ``genoquery query STORE ...`` as a new process, as a bcftools
or plink2 user runs many small commands (issue 22: <= 0.3 s each on the 10^4-sample store, on a
quiet machine).

Each command runs once untimed first, so Python's bytecode and numba's kernel cache are written
(``PYTHONDONTWRITEBYTECODE`` is dropped from the child's environment: a user's install caches its
bytecode), then is timed as a whole process. ``test_cold_start_imports`` times what every query
must load, ``python -c "import numpy, duckdb, pyarrow"``, in the same run: ``benchmarks/check.py``
holds ``query variant`` (by key and by rsID), ``query region`` and ``query carriers`` of a rare
variant within ``MAX_COLD_START`` times it, a ratio a busy machine slows on both sides (README: why
2). ``query frequencies`` and ``query participant`` are timed but not held to it: they load numba
and zarr (README).

The same commands handed to a warm daemon (genoquery.daemon, what a user's second command gets),
``test_daemon_start_*``, are held to ``MAX_DAEMON_START`` times the imports, every one of them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REGION

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(argv: list[str], env: dict | None = None) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, env=env or ENV).stdout


def _timed(benchmark, argv: list[str], env: dict | None = None) -> str:
    return benchmark.pedantic(_run, args=(argv, env), rounds=9, iterations=1, warmup_rounds=1)


def _genoquery(*args: str) -> list[str]:
    return [sys.executable, "-m", "genoquery", *map(str, args)]


def test_cold_start_imports(benchmark):
    """The floor of any query command: Python with numpy, DuckDB and pyarrow imported."""
    _timed(benchmark, [sys.executable, "-c", "import numpy, duckdb, pyarrow"])


def test_cold_start_query_variant(benchmark, store, chr20):
    key = chr20["variant_key"][int(np.argmax(np.asarray(chr20["ac"])))].as_py()
    out = _timed(benchmark, _genoquery("query", store.path, "variant", key))
    assert out.splitlines()[1].split("\t")[-2] == key  # variant_key, allele: the public columns' last two


def test_cold_start_query_rsid(benchmark, store, chr20):
    ids = chr20.filter(chr20["id"].is_valid())
    rsid = ids["id"][int(np.argmax(np.asarray(ids["ac"])))].as_py()
    out = _timed(benchmark, _genoquery("query", store.path, "variant", rsid))
    assert rsid in out.splitlines()[1].split("\t")


def test_cold_start_query_region(benchmark, store, chr20):
    start = chr20["pos"][0].as_py()
    region = f"{REGION}:{start}-{start + 100_000}"
    out = _timed(benchmark, _genoquery("query", store.path, "region", region))
    assert len(out.splitlines()) - 1 == int((np.asarray(chr20["pos"]) <= start + 100_000).sum())


def test_cold_start_query_participant(benchmark, store):
    sample = str(store.sample_ids[len(store.sample_ids) // 2])
    out = _timed(benchmark, _genoquery("query", store.path, "participant", sample))
    assert len(out.splitlines()) > 1


@pytest.fixture(scope="module")
def ten_percent(store, tmp_path_factory) -> str:
    """@FILE of a random 10% of the samples (seeded)."""
    ids = np.asarray(store.sample_ids)
    chosen = sorted(np.random.default_rng(3).choice(ids, size=max(1, len(ids) // 10), replace=False).tolist())
    path = tmp_path_factory.mktemp("cli") / "ten.txt"
    path.write_text("".join(f"{s}\n" for s in chosen))
    return f"@{path}"


def test_cold_start_query_frequencies(benchmark, store, chr20, ten_percent):
    out = _timed(benchmark, _genoquery("query", store.path, "frequencies", REGION, "--cohort", ten_percent))
    assert len(out.splitlines()) == chr20.num_rows + 1


def test_cold_start_query_carriers(benchmark, store, chr20):
    key = chr20.filter(np.asarray(chr20["ac"]) == 1)["variant_key"][0].as_py()
    out = _timed(benchmark, _genoquery("query", store.path, "carriers", key))
    assert len(out.splitlines()) == 2


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> dict:
    """The environment of commands handed to one daemon (its own directory), started and ready."""
    directory = tmp_path_factory.mktemp("daemon") / "d"
    env = {**ENV, "GENOQUERY_DAEMON": "1", "GENOQUERY_DAEMON_DIR": str(directory)}
    _run(_genoquery("query", "--help"), env)  # starts it
    end = time.monotonic() + 120
    while not any(_answers(address) for address in directory.glob("*.sock")):
        assert time.monotonic() < end, "no daemon answered within 120 s"
        time.sleep(0.2)
    yield env
    _run(_genoquery("daemon", "stop"), env)


def _answers(address: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        return probe.connect_ex(str(address)) == 0


def test_daemon_start_query_variant(benchmark, store, chr20, daemon):
    key = chr20["variant_key"][int(np.argmax(np.asarray(chr20["ac"])))].as_py()
    out = _timed(benchmark, _genoquery("query", store.path, "variant", key), daemon)
    assert out.splitlines()[1].split("\t")[-2] == key


def test_daemon_start_query_frequencies(benchmark, store, chr20, ten_percent, daemon):
    out = _timed(benchmark, _genoquery("query", store.path, "frequencies", REGION, "--cohort", ten_percent), daemon)
    assert len(out.splitlines()) == chr20.num_rows + 1


def test_daemon_start_query_participant(benchmark, store, daemon):
    sample = str(store.sample_ids[len(store.sample_ids) // 2])
    out = _timed(benchmark, _genoquery("query", store.path, "participant", sample), daemon)
    assert len(out.splitlines()) > 1


def test_daemon_start_query_carriers_common(benchmark, store, chr20, daemon):
    key = chr20["variant_key"][int(np.argmax(np.asarray(chr20["ac"])))].as_py()
    out = _timed(benchmark, _genoquery("query", store.path, "carriers", key), daemon)
    assert len(out.splitlines()) > 2
