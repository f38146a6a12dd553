"""pytest-benchmark timings of ``genoquery serve`` answering one client on loopback.

A real server process (uvicorn, one worker) on the benchmark store, asked over one keep-alive
httpx connection: the median is one request's round trip, HTTP and JSON included. Throughput
under 32 concurrent clients is ``load_server.py``'s job (benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from genoquery.server.auth import create_token
from peers import Server  # benchmarks/ is on the path, as for conftest

pytestmark = pytest.mark.benchmark(min_rounds=200, warmup=True, warmup_iterations=20)

COHORT = "sex_at_birth = 'Female'"
WINDOW = "chr20:400001-420000"


@pytest.fixture(scope="module")
def served(store) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """(public client, registered-tier client) of a server on the benchmark store."""
    token = create_token(store.path, "registered", "bench")
    server = Server(store.path, "--budget", str(10**9))
    try:
        with (
            httpx.Client(base_url=server.url) as public,
            httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as registered,
        ):
            yield public, registered
    finally:
        server.stop()


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
    assert [v["variant_key"] for v in page["items"]] == store.frequencies(region=WINDOW, cohort=COHORT).column(
        "variant_key"
    ).to_pylist()[: page["limit"]]
