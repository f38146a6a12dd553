"""The variant browser's pages on the benchmark store: server time of each page, and its weight.

Each page is loaded once in Debian's headless Chromium (Playwright), which records every request
the page makes: the page itself, its script and style, and the API calls its script sends. The
benchmark replays those requests in order over one keep-alive httpx connection (the bearer header
included), so its median is the server time of one first visit to the page (loopback round trips:
no browser rendering, no cache), and ``extra_info["server_cpu_ms"]`` the server's CPU time per
visit. "My variants" is also visited once by each of 24 participants
(``test_my_variants_first_visit``): a participant's first visit computes their view.
``extra_info`` records the page weight in kB (bodies of every response, uncompressed), the
assets' share of it, and the number of requests. The store gets one gene (``BENCH1``, over the
20 kb window of ``test_bench_server.py``) in a copy, so the gene page has something to show.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from playwright.sync_api import sync_playwright

from genoquery.index.genes import import_genes
from genoquery.server.auth import create_token
from peers import Server  # benchmarks/ is on the path, as for conftest

pytestmark = pytest.mark.benchmark(min_rounds=20, warmup=True, warmup_iterations=3)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
ARGS += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
WINDOW = ("chr20", 400_001, 420_000)
FIRST_VISITS = 24  # participants, each visiting "my variants" once (rounds + warm-up)
GENE = "BENCH1"


@pytest.fixture(scope="module")
def site(store, chr20, tmp_path_factory) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server on a copy of the benchmark store with one gene, and tokens of each tier."""
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    path = tmp_path_factory.mktemp("web") / "web.gq"
    shutil.copytree(store.path, path)
    bed = path.parent / "genes.bed"
    bed.write_text(f"{WINDOW[0]}\t{WINDOW[1] - 1}\t{WINDOW[2]}\t{GENE}\t0\t+\n")
    import_genes(path, bed)
    sample = store.sample_ids[0]
    tokens = {
        "registered": create_token(path, "registered", "web-bench-registered"),
        "controlled": create_token(path, "controlled", "web-bench-controlled"),
        "participant": create_token(path, "participant", "web-bench-participant", str(sample)),
    }
    others = store.sample_ids[1 :: max(1, len(store.sample_ids) // FIRST_VISITS)][:FIRST_VISITS]
    tokens |= {
        f"participant-{i}": create_token(path, "participant", f"web-bench-{i}", str(s)) for i, s in enumerate(others)
    }
    server = Server(path, "--budget", str(10**9))
    try:
        yield server, tokens
    finally:
        server.stop()


def _common_key(chr20) -> str:
    rows = chr20.filter(chr20["ac"].to_numpy() > 1000)
    return rows.column("variant_key")[rows.num_rows // 2].as_py()


def recorded(server: Server, token: str | None, path: str, act=None) -> list[str]:
    """The same-origin URLs a page requests while it loads (and while ``act(page)`` runs)."""
    urls: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            if token:  # signed in as the sign-in page does it: the token in sessionStorage
                page.goto(server.url + "/signin")
                page.evaluate("t => sessionStorage.setItem('genoquery.token', t)", token)
            page.on("request", lambda r: urls.append(r.url) if r.url.startswith(server.url) else None)
            page.goto(server.url + path)
            page.wait_for_selector("body[data-ready]", timeout=60_000)
            if act is not None:
                act(page)
        finally:
            browser.close()
    return [u.removeprefix(server.url) for u in urls if not u.endswith("/favicon.svg")]


def _cohort(page) -> None:
    page.click("#add")
    page.select_option("#col-0", "sex_at_birth")
    page.fill("#val-0", "Female")
    page.fill("#where", f"{WINDOW[0]}:{WINDOW[1]}-{WINDOW[2]}")
    page.click("#cohort-form button[type=submit]")
    page.wait_for_selector("#results table", timeout=60_000)


def _suggest(page) -> None:
    page.fill("#q", "BE")
    page.wait_for_selector("#q-list [role=option]")


PAGES = {
    "home": (None, "/", None),
    "suggestions": (None, "/", _suggest),
    "variant": (None, "/variant/{key}", None),
    "variant_controlled": ("controlled", "/variant/{key}", None),
    "gene": (None, f"/gene/{GENE}", None),
    "region": (None, f"/region/{WINDOW[0]}:{WINDOW[1]}-{WINDOW[2]}", None),
    "cohort": ("registered", "/cohort", _cohort),
    "my_variants": ("participant", "/me", None),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_page(benchmark, site, chr20, name):
    """One first visit to a page: every request it makes, replayed in order (see the module docstring)."""
    server, tokens = site
    tier, path, act = PAGES[name]
    token = tokens.get(tier) if tier else None
    urls = recorded(server, token, path.format(key=_common_key(chr20)), act)
    assert any(u.startswith("/api/v1/") for u in urls), urls
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    visits = []
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:

        def visit() -> list[httpx.Response]:
            visits.append(1)
            return [client.get(u) for u in urls]

        before = _cpu_seconds(server)
        responses = benchmark(visit)
        benchmark.extra_info["server_cpu_ms"] = round((_cpu_seconds(server) - before) / len(visits) * 1e3, 1)
    assert all(r.status_code == 200 for r in responses), [
        (u, r.status_code) for u, r in zip(urls, responses, strict=True)
    ]
    sizes = [len(r.content) for r in responses]
    assets = sum(n for u, n in zip(urls, sizes, strict=True) if not u.startswith(("/api/", "/beacon/")))
    benchmark.extra_info.update(
        page_kb=round(sum(sizes) / 1000, 1),
        assets_kb=round(assets / 1000, 1),
        requests=len(urls),
        urls=urls,
    )


def test_my_variants_first_visit(benchmark, site):
    """ "My variants" as each participant first sees it: every round is another participant, so
    the server computes and releases that person's view (test_page's replays hit its memo)."""
    server, tokens = site
    urls = recorded(server, tokens["participant"], "/me")
    visitors = iter([tokens[f"participant-{i}"] for i in range(FIRST_VISITS)])
    with httpx.Client(base_url=server.url, timeout=60) as client:

        def visit(token: str) -> list[httpx.Response]:
            return [client.get(u, headers={"Authorization": f"Bearer {token}"}) for u in urls]

        before = _cpu_seconds(server)
        responses = benchmark.pedantic(
            visit, setup=lambda: ((next(visitors),), {}), rounds=FIRST_VISITS - 1, warmup_rounds=1
        )
        spent = _cpu_seconds(server) - before
    assert all(r.status_code == 200 for r in responses)
    benchmark.extra_info.update(server_cpu_ms=round(spent / FIRST_VISITS * 1e3, 1), requests=len(urls), urls=urls)


def _cpu_seconds(server: Server) -> float:
    """CPU time the server process has used (user + system), less sensitive to a busy machine
    than the wall time of a visit."""
    used = psutil.Process(server.proc.pid).cpu_times()
    return used.user + used.system
