"""The variant browser (``genoquery serve`` at ``/``) in a real browser: Debian's headless Chromium
driven by Playwright, against a running server on the fixture store.

Every expected value comes from the JSON API asked with the same token over httpx (for the
participant, from the Python API too), never from the page's own code. Every page runs with the
network blocked except loopback (:func:`browser_page`: a route that aborts any other host and
records it; each test ends by asserting that nothing was aborted). Screenshots of each page at
desktop and phone width go to ``$GENOQUERY_WEB_ARTIFACTS`` (default: a ``genoquery-web-artifacts``
folder in the system temporary directory).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlparse

import httpx
import pytest
from playwright.sync_api import sync_playwright

import genoquery
from conftest import skip_without_tool
from genoquery.server.auth import revoke_token
from test_server_support import Server, server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
ARTIFACTS = Path(os.environ.get("GENOQUERY_WEB_ARTIFACTS", Path(tempfile.gettempdir()) / "genoquery-web-artifacts"))
TOKEN_KEY = "genoquery.token"
PUBLIC_PAGES = ("", "gene", "region", "variant")  # first path segments of the pages with counts
WALK_TABS = 3  # pages loading at once in the public walk
WALK_CAP = 1_500  # pages the public walk may visit

pytestmark = skip_without_tool(
    "chromium", CHROMIUM.exists(), "apt-get install chromium chromium-driver; ./run.sh test does"
)


@pytest.fixture(scope="module")
def srv() -> Server:
    """A server of its own (a budget no other test module uses), so the cohorts this module's
    registered token asks about never meet another module's differencing checks."""
    return server(budget=50_000)


@pytest.fixture(scope="module")
def store(srv) -> Iterator[genoquery.Store]:
    with genoquery.open(srv.store) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Tab:
    """One browser context and page on the server, with outside traffic refused and recorded."""

    def __init__(self, browser, srv: Server, viewport: dict) -> None:
        self.srv, self.blocked, self.requests, self.errors = srv, [], [], []
        self.context = browser.new_context(viewport=viewport)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r))

    def _route(self, route) -> None:
        host = urlparse(route.request.url).hostname
        if host is None or host in LOOPBACK:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def open(self, path: str) -> None:
        self.page.goto(self.srv.url + path)
        self.ready()

    def ready(self) -> None:
        self.page.wait_for_selector("body[data-ready]", timeout=30_000)

    def sign_in(self, token: str) -> None:
        self.open("/signin")
        self.page.fill("#token", token)
        self.page.click("#signin button[type=submit]")
        self.page.wait_for_url(re.compile(r".*/(me)?$"))
        self.ready()

    def token(self) -> str | None:
        return self.page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        width = self.page.viewport_size["width"]
        path = ARTIFACTS / f"{name}-{'phone' if width < 600 else 'desktop'}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser, srv) -> Iterator[Tab]:
    t = Tab(browser, srv, DESKTOP)
    yield t
    t.close()
    assert t.blocked == [], f"the page asked for outside addresses: {t.blocked}"
    assert t.errors == [], f"script errors: {t.errors}"


def api(srv: Server, path: str, token: str | None = None, **params) -> dict:
    with srv.client(token) as c:
        r = c.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def shown_count(row: dict, field: str) -> str:
    """A released count as the pages show it: a withheld one (null, named in ``suppressed``) as
    "≤20", no value as "—", numbers with thousands commas."""
    if field in row.get("suppressed", ()):
        return "≤20"
    if row[field] is None:
        return "—"
    return f"{row[field]:,}"


def check_cells(cells: list[dict], row: dict) -> None:
    """Each count or AF cell of a rendered row equals the API row's value, as data and as text."""
    assert cells, row
    for cell in cells:
        field = cell["field"]
        assert cell["value"] == row[field], (field, cell, row)
        if cell["kind"] == "count":
            assert cell["text"] == shown_count(row, field), (field, cell, row)
        elif row[field] is None:
            assert cell["text"] == "—"
        else:
            assert float(cell["text"]) == pytest.approx(row[field], rel=5e-3), (field, cell, row)


READ_ROWS = """(root) => [...root.querySelectorAll('tr[data-group]')].map(tr => ({
    group: tr.dataset.group,
    cells: [...tr.querySelectorAll('[data-count],[data-af]')].map(td => ({
        kind: td.dataset.count ? 'count' : 'af', field: td.dataset.count || td.dataset.af,
        value: JSON.parse(td.dataset.value), text: td.textContent}))}))"""


def variants_to_check(store) -> list[str]:
    """A common chr20 variant, a rare one, and a chrX one with hemizygous calls."""
    rows = store.variants().to_pylist()
    common = next(r for r in rows if r["ac"] > 100 and r["contig"] == "chr20" and r["id"])
    rare = next(r for r in rows if 1 <= r["ac"] <= 5 and r["contig"] == "chr20")
    hemi = max((r for r in rows if r["contig"] == "chrX"), key=lambda r: r["n_hemi"])
    return [common["variant_key"], rare["variant_key"], hemi["variant_key"]]


# --------------------------------------------------------------------------- search


def test_search_by_gene_rsid_key_and_region(tab, srv, store):
    genes = store.sql("SELECT gene_name, contig FROM genes WHERE contig = 'chr20' ORDER BY gene_name", []).to_pylist()
    gene = genes[0]["gene_name"]
    common = next(r for r in store.variants().to_pylist() if r["ac"] > 50 and r["id"] and r["contig"] == "chr20")
    spelled = f"{common['contig'].removeprefix('chr')}:{common['pos']}:{common['ref']}:{common['alt']}"
    region = "chr20:1-20000"
    cases = [
        (gene, f"/gene/{gene}", f"Gene {gene}", api(srv, "/api/v1/variants", gene=gene, limit=1000)["total"]),
        (common["id"], f"/variant/{common['id']}", common["variant_key"], None),
        (spelled, f"/variant/{quote(spelled, safe=':')}", common["variant_key"], None),
        (common["variant_key"], f"/variant/{common['variant_key']}", common["variant_key"], None),
        (region, f"/region/{region}", f"Region {region}", api(srv, "/api/v1/variants", region=region)["total"]),
    ]
    for text, path, heading, total in cases:
        tab.open("/")
        tab.page.fill("#q", text)
        tab.page.press("#q", "Enter")
        tab.page.wait_for_url(srv.url + path)
        tab.ready()
        assert tab.page.inner_text("h1") == heading
        if total is not None:
            assert tab.page.get_attribute("[data-field=total]", "data-value") == str(total)
        else:
            assert tab.page.inner_text("[data-field=variant_key]") == common["variant_key"]

    tab.open("/")
    tab.page.fill("#q", "NOSUCHGENE")
    tab.page.press("#q", "Enter")
    tab.page.wait_for_url(srv.url + "/gene/NOSUCHGENE")
    tab.ready()
    assert "No match for “NOSUCHGENE”" in tab.page.inner_text("[role=alert]")
    tab.open("/variant/rs1")
    assert "No match for “rs1”" in tab.page.inner_text("[role=alert]")


def test_suggestions_as_you_type_and_keyboard(tab, srv, store):
    names = sorted(r["gene_name"] for r in store.sql("SELECT gene_name FROM genes", []).to_pylist())
    prefix = names[0][:2]
    tab.open("/")
    tab.page.focus("#q")
    tab.page.keyboard.type(prefix)
    tab.page.wait_for_selector("#q-list:not([hidden]) [role=option]")
    shown = tab.page.eval_on_selector_all("#q-list [role=option] span", "els => els.map(e => e.textContent)")
    assert shown == [n for n in names if n.upper().startswith(prefix.upper())][:10]
    assert tab.page.get_attribute("#q", "aria-expanded") == "true"
    tab.shot("suggestions")
    tab.page.keyboard.press("ArrowDown")
    assert tab.page.get_attribute("#q", "aria-activedescendant") == "q-opt-0"
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_url(srv.url + f"/gene/{names[0]}")
    tab.ready()

    # rsIDs: only those of variants above the suppression threshold (free to look up)
    rows = store.variants().to_pylist()
    common = sorted({r["id"] for r in rows if r["id"] and r["ac"] > 20})
    rare = sorted({r["id"] for r in rows if r["id"]} - set(common))
    for rsid, offered in ((common[0], True), (rare[0], False)):
        tab.open("/")
        tab.page.fill("#q", rsid)
        if offered:
            tab.page.wait_for_selector(f"#q-list [role=option][data-href='/variant/{rsid}']")
        else:
            answer = api(srv, "/api/v1/suggest", q=rsid)
            assert all(i["label"] != rsid for i in answer["items"])


def test_gene_page_sorts_pages_and_filters_as_the_api(tab, srv):
    gene = "GQA1"
    tab.open(f"/gene/{gene}")
    rows = api(srv, "/api/v1/variants", gene=gene, limit=1000)["items"]
    read = "els => els.map(e => JSON.parse(e.dataset.value))"
    assert tab.page.eval_on_selector_all("main tbody [data-af=af]", read) == [r["af"] for r in rows][:25]
    tab.page.click("main th >> text=AF")  # ascending; withheld AFs (null) first
    tab.page.click("main th >> text=AF")  # descending
    assert tab.page.get_attribute("main th:has(button:text-is('AF'))", "aria-sort") == "descending"
    by_af = sorted(rows, key=lambda r: -1 if r["af"] is None else r["af"], reverse=True)
    assert tab.page.eval_on_selector_all("main tbody [data-af=af]", read) == [r["af"] for r in by_af][:25]
    tab.page.click(".pager button:has-text('Next')")
    assert tab.page.eval_on_selector_all("main tbody [data-af=af]", read) == [r["af"] for r in by_af][25:50]
    # filters go to the API as its parameters (applied there to released AF)
    tab.page.fill("#af_min", "0.5")
    tab.page.select_option("#type", "snv")
    tab.page.check("#pass")
    tab.page.click("form.filters button[type=submit]")
    tab.page.wait_for_url(re.compile(r".*af_min=0\.5.*"))
    tab.ready()
    filtered = api(srv, "/api/v1/variants", gene=gene, af_min=0.5, type="snv", pass_only=True, limit=1000)
    assert tab.page.get_attribute("[data-field=total]", "data-value") == str(filtered["total"])
    shown = tab.page.eval_on_selector_all("main tbody tr a", "els => els.map(e => e.textContent)")
    assert shown == [r["variant_key"] for r in filtered["items"]][:25]
    assert 0 < filtered["total"] < len(rows)
    tab.page.keyboard.press("Tab")  # the page is usable from the keyboard: focus moves to the skip link
    assert tab.page.evaluate("document.activeElement.className") == "skip"


# --------------------------------------------------------------------------- variant page


@pytest.mark.parametrize("who", [None, "reg", "ctl"])
def test_variant_page_numbers_are_the_apis(tab, srv, store, who):
    if who:
        tab.sign_in(srv.tokens[who])
    for key in variants_to_check(store):
        tab.open(f"/variant/{key}")
        (row,) = api(srv, f"/api/v1/variants/{key}", who)["items"]
        expected = {"all": row}
        for by in ("ancestry", "sex_at_birth"):
            for g in api(srv, f"/api/v1/variants/{key}", who, by=by)["items"]:
                expected[f"{by}={g[by]}"] = g
        shown = tab.page.eval_on_selector(f"table[data-variant='{key}']", READ_ROWS)
        assert [r["group"] for r in shown] == list(expected)
        for r in shown:
            check_cells(r["cells"], expected[r["group"]])
        assert tab.page.inner_text("[data-field=variant_key]") == row["variant_key"]
        assert tab.page.inner_text("[data-field=id]") == (row["id"] or "—")
        assert tab.page.inner_text("[data-field=alleles]") == f"{row['ref']} > {row['alt']}"
        assert tab.page.inner_text("[data-field=filter]") == (row["filter"] or "—")
        assert float(tab.page.inner_text("[data-field=qual]")) == pytest.approx(row["qual"], abs=0.05)
        beacon = api(
            srv,
            "/beacon/v2/g_variants",
            who,
            referenceName=row["contig"],
            start=row["pos"] - 1,
            referenceBases=row["ref"],
            alternateBases=row["alt"],
            requestedGranularity="count",
        )["responseSummary"]
        assert tab.page.inner_text("[data-beacon] [data-field=exists]") == (
            "exists" if beacon["exists"] else "does not exist"
        )
        assert tab.page.inner_text("[data-beacon] [data-field=numTotalResults]") == str(beacon["numTotalResults"])
        carriers_link = tab.page.locator("text=Individual-level data")
        assert carriers_link.count() == (1 if who == "ctl" else 0)
    if who == "ctl":  # exact, and the carriers the API gives
        truth = store.lookup(key).to_pylist()[0]
        assert tab.page.get_attribute("tr[data-group=all] [data-count=ac]", "data-value") == str(truth["ac"])
        tab.page.click("text=Show carriers")
        tab.page.wait_for_selector(".sortable table tbody tr")
        shown = tab.page.eval_on_selector_all(".sortable tbody tr td:first-child", "els => els.map(e => e.textContent)")
        carriers = api(srv, "/api/v1/carriers", "ctl", variant=key, limit=1000)["items"]
        assert shown == [c["sample_id"] for c in carriers][:25]


# --------------------------------------------------------------------------- public pages


def test_no_count_of_1_to_20_on_any_public_page(browser, srv):
    """Walk every link reachable from the home page without a token (same origin, browser pages:
    home, genes, regions and their pager links, variants and their "nearby" regions), paging
    every table: no count cell shows (or holds) a number of 1..20. Each URL is visited once
    (percent-encoding and fragments aside), :data:`WALK_TABS` pages loading at a time; the
    fixture store's closure is ~700 pages, and a walk past :data:`WALK_CAP` fails rather than
    running on."""
    here = urlparse(srv.url).netloc
    seen, queue, kinds = {"/"}, ["/"], set()
    counts = {"checked": 0, "withheld": 0}
    tabs = [Tab(browser, srv, DESKTOP) for _ in range(WALK_TABS)]
    try:
        while queue:
            loading = [(t, queue.pop(0)) for t in tabs if queue]
            for t, path in loading:  # every tab loads while the first is read
                t.page.goto(srv.url + path, wait_until="commit")
            for t, path in loading:
                t.ready()
                kinds.add(path.split("/")[1])
                for link in _check_public_page(t, path, counts):
                    url = urlparse(urljoin(srv.url, link))
                    target = url.path + (f"?{url.query}" if url.query else "")
                    if url.netloc == here and url.path.split("/")[1] in PUBLIC_PAGES and unquote(target) not in seen:
                        seen.add(unquote(target))
                        queue.append(target)
                assert len(seen) <= WALK_CAP, f"over {WALK_CAP} public pages: a link loop, or a larger fixture"
        for t in tabs:
            assert t.blocked == [], f"the page asked for outside addresses: {t.blocked}"
            assert t.errors == [], f"script errors: {t.errors}"
    finally:
        for t in tabs:
            t.close()
    assert set(PUBLIC_PAGES) <= kinds, kinds
    assert len(seen) > 500, len(seen)  # the whole closure, not the first two levels (66 pages)
    assert counts["checked"] > 10_000, counts
    assert counts["withheld"] > 1_000, counts
    print(f"walked {len(seen)} public pages, {counts['checked']} count cells, {counts['withheld']} withheld")


# Every count cell and link of a page, table page by table page ("Next" redraws synchronously):
# one round trip per page (a Playwright call per table page cost the walk ~2 minutes of CPU).
READ_PAGE = """() => {
    const cells = [], links = [];
    for (;;) {
        for (const e of document.querySelectorAll('[data-count]')) cells.push([e.dataset.value, e.textContent]);
        for (const a of document.querySelectorAll('main a[href], nav a[href]')) links.push(a.href);
        const next = [...document.querySelectorAll('.pager button')].find(b => b.textContent === 'Next' && !b.disabled);
        if (!next) return {cells, links};
        next.click();
    }
}"""


def _check_public_page(t: Tab, path: str, counts: dict) -> list[str]:
    """Check every count cell of the loaded page, in every page of its tables; the hrefs of its links."""
    read = t.page.evaluate(READ_PAGE)
    for value, text in read["cells"]:
        counts["checked"] += 1
        counts["withheld"] += text == "≤20"
        assert not re.fullmatch(r"(1\d?|[2-9]|20)", text.replace(",", "")), (path, value, text)
        assert not (value.isdigit() and 1 <= int(value) <= 20), (path, value, text)
    return read["links"]


# --------------------------------------------------------------------------- tiers and sessions


def test_sign_in_with_each_tier(tab, srv, store):
    tab.open("/")
    assert tab.page.inner_text("#who") == "Not signed in · public tier"
    assert not tab.page.is_visible("text=Cohort frequencies")
    tab.open("/cohort")
    assert "need a registered or controlled token" in tab.page.inner_text("main")
    for name, tier, landing, menu in (
        ("reg", "registered", "/", "Cohort frequencies"),
        ("ctl", "controlled", "/", "Cohort frequencies"),
        ("me", "participant", "/me", "My variants"),
    ):
        tab.sign_in(srv.tokens[name])
        assert urlparse(tab.page.url).path == landing
        assert tab.page.inner_text("#who") == f"Signed in · {tier} tier"
        assert tab.page.is_visible(f"nav >> text={menu}")
        assert tab.token() == srv.tokens[name]
        tab.page.click("#signout")
        tab.page.wait_for_url(srv.url + "/")
        tab.ready()
        assert tab.token() is None
        assert tab.page.inner_text("#who") == "Not signed in · public tier"
    assert not any(t in r.url for r in tab.requests for t in srv.tokens.values()), "a token went into a URL"
    api_calls = [r for r in tab.requests if "/api/v1/info" in r.url]
    assert any(r.headers.get("authorization") == f"Bearer {srv.tokens['ctl']}" for r in api_calls)


def test_registered_cohort_builder(tab, srv, store):
    token = srv.new_token("registered", "web-cohort")
    tab.sign_in(srv.tokens[token])
    tab.open("/cohort")
    columns = api(srv, "/api/v1/person-columns", token)["items"]
    tab.page.click("#add")
    offered = tab.page.eval_on_selector_all("#col-0 option", "els => els.map(e => e.value)")
    assert offered == [c["name"] for c in columns if c["type"] in ("text", "number", "date", "yes/no")]
    assert "sample_id" not in offered  # identifying: the API refuses it in a filter below controlled
    tab.page.select_option("#col-0", "sex_at_birth")
    tab.page.fill("#val-0", "Female")
    tab.page.click("#add")
    tab.page.select_option("#col-1", "birth_year")
    tab.page.select_option("#op-1", ">=")
    tab.page.fill("#val-1", "1950")
    expression = "sex_at_birth = 'Female' AND birth_year >= 1950"
    assert tab.page.inner_text("#expr") == expression
    tab.page.fill("#where", "chr20:1-20000")
    tab.page.click("#cohort-form button[type=submit]")
    tab.page.wait_for_selector("#results table")
    answer = api(srv, "/api/v1/frequencies", token, region="chr20:1-20000", cohort=expression, limit=1000)
    assert tab.page.get_attribute("[data-count=cohort_size]", "data-value") == str(answer["cohort_size"])
    shown = tab.page.eval_on_selector_all(
        "#results tbody tr", "rows => rows.map(r => r.querySelector('a').textContent)"
    )
    assert shown == [r["variant_key"] for r in answer["items"]][:25]
    cells = tab.page.eval_on_selector_all(
        "#results tbody tr [data-count=ac]", "els => els.map(e => JSON.parse(e.dataset.value))"
    )
    assert cells == [r["ac"] for r in answer["items"]][:25]
    tab.shot("cohort")


def test_participant_sees_only_their_own_data(tab, srv, store):
    tab.sign_in(srv.tokens["me"])
    assert urlparse(tab.page.url).path == "/me"
    mine = api(srv, "/api/v1/me", "me", limit=1000)
    assert tab.page.inner_text("[data-field=sample_id]").startswith(f"Participant {mine['sample_id']}:")
    truth = {r["variant_key"] for r in store.participant("S000001").to_pylist()}
    assert mine["sample_id"] == "S000001"
    assert {r["variant_key"] for r in mine["items"]} == truth
    rows = []
    while True:
        rows += tab.page.eval_on_selector_all(
            "main tbody tr",
            """trs => trs.map(tr => ({key: tr.querySelector('code').textContent,
                af: JSON.parse(tr.querySelector('[data-af=af]').dataset.value),
                ac: JSON.parse(tr.querySelector('[data-count=ac]').dataset.value),
                ancestry_af: JSON.parse(tr.querySelector('[data-af=ancestry_af]').dataset.value)}))""",
        )
        nexts = tab.page.locator(".pager button:has-text('Next'):not([disabled])")
        if not nexts.count():
            break
        nexts.first.click()
    by_key = {r["variant_key"]: r for r in mine["items"]}
    assert sorted(r["key"] for r in rows) == sorted(by_key)
    for r in rows:
        api_row = by_key[r["key"]]
        assert (r["af"], r["ac"], r["ancestry_af"]) == (api_row["af"], api_row["ac"], api_row["ancestry_af"])
    afs = [-1 if r["af"] is None else r["af"] for r in rows]
    assert afs == sorted(afs), "rarest first"
    assert "How to read this page" in tab.page.inner_text("main")
    # nothing about anyone else: other pages show no counts, and the search box is gone
    assert not tab.page.is_visible("#q")
    other = next(r["variant_key"] for r in store.variants().to_pylist() if r["variant_key"] not in truth)
    for path in (f"/variant/{other}", "/gene/GQA1", "/region/chr20:1-20000", "/cohort"):
        tab.open(path)
        assert tab.page.locator("main [data-count], main [data-af]").count() == 0, path
    tab.open(f"/variant/{other}")
    assert "A participant token sees only its own data" in tab.page.inner_text("[role=alert]")


def test_revoked_token_is_signed_out(tab, srv):
    name = srv.new_token("registered", "web-revoked")
    tab.sign_in(srv.tokens[name])
    assert tab.page.inner_text("#who") == "Signed in · registered tier"
    revoke_token(srv.store, name)
    time.sleep(1.2)  # the server's token cache (token_cache_s = 1 s)
    tab.page.reload()
    tab.page.wait_for_url(srv.url + "/")
    tab.ready()
    assert tab.token() is None
    assert "You were signed out" in tab.page.inner_text("#flash")
    assert tab.page.inner_text("#who") == "Not signed in · public tier"


# --------------------------------------------------------------------------- API docs offline


def test_api_docs_render_offline(tab, srv):
    operations = sum(
        1
        for methods in api(srv, "/openapi.json")["paths"].values()
        for method in methods
        if method in ("get", "post", "put", "delete", "patch")
    )
    tab.page.goto(srv.url + "/docs")
    tab.page.wait_for_selector(".opblock", timeout=30_000)
    assert tab.page.locator(".opblock").count() == operations
    tab.shot("docs")
    tab.page.goto(srv.url + "/redoc")
    tab.page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
    assert tab.page.locator("[data-section-id^='operation/']").count() == operations
    tab.page.wait_for_load_state("networkidle")
    # ReDoc's sidebar logo (from Redocly's CDN, which the CSP refuses) is replaced before it loads
    assert tab.page.get_attribute("img[alt='redocly logo']", "src").startswith("data:image/svg+xml,")
    outside = [r.url for r in tab.requests if urlparse(r.url).hostname not in LOOPBACK | {None}]
    assert outside == []


# --------------------------------------------------------------------------- screenshots, phone width


def test_every_page_at_desktop_and_phone_width(browser, srv, store):
    """Each page renders without script errors or outside requests at both widths, fits a phone's
    width (tables scroll inside their box), and is saved as a screenshot."""
    key = variants_to_check(store)[0]
    pages = {
        "home": (None, "/"),
        "variant": (None, f"/variant/{key}"),
        "gene": (None, "/gene/GQA1"),
        "region": (None, "/region/chr20:1-20000"),
        "signin": (None, "/signin"),
        "cohort": ("reg", "/cohort"),
        "variant-controlled": ("ctl", f"/variant/{key}"),
        "my-variants": ("me", "/me"),
    }
    written = []
    for viewport in (DESKTOP, PHONE):
        for name, (who, path) in pages.items():
            t = Tab(browser, srv, viewport)
            try:
                if who:
                    t.sign_in(srv.tokens[who])
                t.open(path)
                width = t.page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], (name, width)
                written.append(t.shot(name))
                assert t.blocked == [], (name, t.blocked)
                assert t.errors == [], (name, t.errors)
            finally:
                t.close()
    assert len(set(written)) == 2 * len(pages)
    assert all(p.stat().st_size > 10_000 for p in written), written


@pytest.fixture(scope="module", autouse=True)
def _loopback_only_server(srv):
    """The server under test answers on loopback only; its pages allow nothing from another origin,
    and its static files are revalidated on every use."""
    assert urlparse(srv.url).hostname in LOOPBACK
    assert httpx.get(srv.url + "/", timeout=10).headers["content-security-policy"].startswith("default-src 'self'")
    assert httpx.get(srv.url + "/static/app.js", timeout=10).headers["cache-control"] == "no-cache"
