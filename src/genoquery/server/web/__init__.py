"""The variant browser at ``/`` and the offline API docs at ``/docs`` and ``/redoc``.

The browser is one static page (``static/index.html``, ``app.js``, ``app.css``, shipped in the
package) served for every browser path; its script reads the path and asks the JSON API for
everything it shows, with the signed-in token as a bearer header. So a page shows exactly what the
API releases to the caller's tier and nothing else: there is no second release path to keep in
step. Two small API routes exist for the browser (tag ``browser``): search suggestions (gene
names, and the rsIDs of variants the public tier may see at no budget cost) and the person-table
columns a cohort filter may use at the caller's tier (the whitelist the cohort resolver applies).

Swagger UI and ReDoc load their scripts from the ``fastapi-offline`` package's files (MIT), never
from a CDN. Every browser page is sent with a Content-Security-Policy that allows only this origin.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import fastapi_offline
import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from genoquery.index.genes import has_genes
from genoquery.query.store import Store
from genoquery.server.auth import Principal, Tier, require
from genoquery.server.context import PARTICIPANT_ONLY, Context, caller, context, rows_returned
from genoquery.server.models import ERRORS, Versioned
from genoquery.server.problems import ApiError

STATIC = Path(__file__).parent / "static"
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
PAGES = ("/", "/search", "/variant/{variant:path}", "/gene/{gene}", "/region/{region}", "/cohort", "/me", "/signin")
"""Browser paths: each is the same page, which renders itself from the path."""
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
DOCS_HEADERS = {
    # Swagger UI and ReDoc run inline scripts and ReDoc a blob: worker; still nothing from another origin
    "Content-Security-Policy": "default-src 'self' 'unsafe-inline' data: blob:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
MAX_SUGGESTIONS = 20
# ReDoc's sidebar always shows Redocly's logo from its CDN, which the docs' CSP refuses (a
# violation in the console, and nothing to show offline). This runs before ReDoc's script and
# gives that one image (its ``src`` property, which ReDoc's React sets) an empty SVG instead; the
# "API docs by Redocly" text stays.
REDOC_LOGO = b"""<script>
(() => {
  const logo = "https://cdn.redoc.ly/redoc/logo-mini.svg";
  const empty = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E";
  const src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    ...src, set(value) { src.set.call(this, value === logo ? empty : value); },
  });
})();
</script>
"""

router = APIRouter(prefix="/api/v1", tags=["browser"], responses=ERRORS)


class Suggestion(BaseModel):
    kind: Literal["gene", "rsid"]
    label: str = Field(description="a gene name (or ID) or an rsID")
    region: str | None = Field(description="a gene's extent, CONTIG:START-END (1-based, inclusive)")


class Suggestions(Versioned):
    items: list[Suggestion]


class PersonColumn(BaseModel):
    name: str
    type: Literal["text", "number", "yes/no", "date", "other"]
    groupable: bool = Field(description="a `by` breakdown may use it at your tier")


class PersonColumns(Versioned):
    items: list[PersonColumn]


@dataclass(frozen=True)
class Names:
    """What suggestions are drawn from, per index: genes sorted by upper-case name, and the rsIDs
    (lower case, sorted bytes) of variants with AC above the suppression threshold."""

    gene_keys: list[str]
    genes: list[tuple[str, str]]  # (name, region), in the order of gene_keys
    rsids: np.ndarray


def _names(store: Store, threshold: int) -> Names:
    genes: list[tuple[str, str, str]] = []
    if has_genes(store.connection):
        rows = store.sql(
            'SELECT coalesce(gene_name, gene_id) AS name, contig, start, "end" FROM genes ORDER BY upper(name), contig',
            [],
        ).to_pylist()
        genes = [(r["name"].upper(), r["name"], f"{r['contig']}:{r['start']}-{r['end']}") for r in rows]
    ids = store.sql(
        "SELECT DISTINCT lower(trim(i)) AS rsid FROM (SELECT unnest(string_split(id, ';')) AS i FROM variants "
        "WHERE id IS NOT NULL AND ac > ?) WHERE regexp_full_match(lower(trim(i)), 'rs[0-9]+') ORDER BY rsid",
        [threshold],
    )["rsid"]
    rsids = np.array(ids.cast(pa.string()).to_pylist(), dtype="S")
    return Names([g[0] for g in genes], [(g[1], g[2]) for g in genes], rsids)


def _prefixed(sorted_keys, prefix, limit: int) -> range:
    """Indexes of the ``limit`` keys from the first one not below ``prefix`` in a sorted sequence."""
    start = bisect.bisect_left(sorted_keys, prefix)
    return range(start, min(start + limit, len(sorted_keys)))


@router.get("/suggest", response_model=Suggestions, summary="Gene names and rsIDs starting with some text")
def suggest(
    request: Request,
    q: Annotated[str, Query(max_length=100, description="start of a gene name or rsID; empty: the first genes")] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_SUGGESTIONS)] = 10,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    """Suggestions for the search box. rsIDs are suggested only for variants whose AC is above the
    suppression threshold, which any tier may look up without spending budget."""
    if principal.tier == Tier.PARTICIPANT:
        raise ApiError(403, PARTICIPANT_ONLY)
    text = q.strip()
    with ctx.pool.store() as store:
        threshold = ctx.settings.max_suppressed
        names = ctx.pool.remember(("web-names", threshold), lambda: _names(store, threshold))
    items: list[dict] = []
    gene_keys, upper = names.gene_keys, text.upper()
    for i in _prefixed(gene_keys, upper, limit):
        if not gene_keys[i].startswith(upper):
            break
        items.append({"kind": "gene", "label": names.genes[i][0], "region": names.genes[i][1]})
    lower = text.lower().encode("ascii", "replace")
    if lower.startswith(b"rs"):
        for i in _prefixed(names.rsids, lower, limit - len(items)):
            rsid = bytes(names.rsids[i])
            if not rsid.startswith(lower):
                break
            items.append({"kind": "rsid", "label": rsid.decode(), "region": None})
    rows_returned(request, len(items))
    return {"items": items}


def _column_type(kind: pa.DataType) -> str:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "text"
    if pa.types.is_boolean(kind):
        return "yes/no"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    if pa.types.is_temporal(kind):
        return "date"
    return "other"


@router.get("/person-columns", response_model=PersonColumns, summary="Columns a cohort filter may use at your tier")
def person_columns(request: Request, principal: Principal = Depends(caller), ctx: Context = Depends(context)) -> dict:
    """The person-table columns a cohort filter expression may name: below the controlled tier,
    those that do not identify participants (the columns ``cohort`` refuses there are left out)."""
    require(principal, Tier.REGISTERED, "cohort filters")
    with ctx.pool.store() as store:
        schema = store.persons().schema
        facts = ctx.pool.facts()
    hidden = {c.lower() for c in facts.identifying} if principal.aggregate_only else set()
    items = [
        {
            "name": f.name,
            "type": _column_type(f.type),
            "groupable": not principal.aggregate_only or f.name.lower() in facts.groupable,
        }
        for f in schema
        if f.name.lower() not in hidden
    ]
    rows_returned(request, len(items))
    return {"items": items}


class Assets(StaticFiles):
    """Packaged files, revalidated on every use (``no-cache`` with their ETag), so a new release's
    script is never mixed with an old page."""

    def file_response(self, *args, **kwargs) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _shell() -> bytes:
    return (STATIC / "index.html").read_bytes()


def install(app: FastAPI) -> None:
    """Add the browser pages, their assets, the suggestion routes and the offline ``/docs`` and
    ``/redoc`` to ``app`` (created with ``docs_url=None, redoc_url=None``)."""
    shell = _shell()

    async def page() -> Response:
        return Response(shell, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    for path in PAGES:
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
    app.include_router(router)
    app.mount("/static", Assets(directory=STATIC), name="web-static")
    app.mount("/docs-assets", Assets(directory=DOCS_ASSETS), name="docs-assets")
    openapi = app.openapi_url or "/openapi.json"

    async def swagger() -> HTMLResponse:
        html = get_swagger_ui_html(
            openapi_url=openapi,
            title=f"{app.title} API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            swagger_ui_parameters={"validatorUrl": None},
        )
        html.headers.update(DOCS_HEADERS)
        return html

    async def redoc() -> HTMLResponse:
        html = get_redoc_html(
            openapi_url=openapi,
            title=f"{app.title} API",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/static/favicon.svg",
            with_google_fonts=False,
        )
        return HTMLResponse(html.body.replace(b"<redoc ", REDOC_LOGO + b"<redoc ", 1), headers=DOCS_HEADERS)

    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
