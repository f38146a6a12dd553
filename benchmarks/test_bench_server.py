"""pytest-benchmark timings of ``genoquery serve`` answering one client on loopback.

A real server process (uvicorn, one worker) on the benchmark store, asked over one keep-alive
httpx connection: the median is one request's round trip, HTTP and JSON included. Throughput
under 32 concurrent clients is ``load_server.py``'s job (benchmarks/README.md).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from genoquery.server.auth import create_token

pytestmark = pytest.mark.benchmark(min_rounds=200, warmup=True, warmup_iterations=20)

COHORT = "sex_at_birth = 'Female'"
WINDOW = "chr20:400001-420000"


@pytest.fixture(scope="module")
def served(store) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """(public client, registered-tier client) of a server on the benchmark store."""
    token = create_token(store.path, "registered", "bench")
    with httpx.Client() as probe:
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "genoquery", "serve", str(store.path), "--port", str(port),
                                 "--budget", str(10**9)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(probe, url, proc)
            with httpx.Client(base_url=url) as public, \
                    httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as registered:
                yield public, registered
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(client: httpx.Client, url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if client.get(url + "/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"genoquery serve did not start: {proc.stderr.read() if proc.poll() is not None else 'timeout'}")


def test_server_lookup(benchmark, served, chr20):
    """A public variant lookup by key: GET /api/v1/variants/{key}."""
    public, _ = served
    key = chr20.column("variant_key")[chr20.num_rows // 2].as_py()
    response = benchmark(public.get, f"/api/v1/variants/{key}")
    assert response.status_code == 200
    assert [v["variant_key"] for v in response.json()["items"]] == [key]


def test_server_cohort_frequencies(benchmark, served, store):
    """A registered-tier cohort's exact frequencies over 20 kb: GET /api/v1/frequencies."""
    _, registered = served
    response = benchmark(registered.get, f"/api/v1/frequencies?region={WINDOW}&cohort={quote(COHORT)}")
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == store.frequencies(region=WINDOW, cohort=COHORT).num_rows
    assert [v["variant_key"] for v in page["items"]] == \
        store.frequencies(region=WINDOW, cohort=COHORT).column("variant_key").to_pylist()[:page["limit"]]
