"""Variant lookup and search, and cohort frequencies: ``/api/v1/variants``, ``/api/v1/frequencies``.

A lookup by key or rsID (``/api/v1/variants/{variant}``) is the hot path. It runs on the event
loop, not in the thread pool (a point lookup takes ~1 ms of CPU, less than a thread hand-off and
the GIL contention of many concurrent clients), finds the caller without FastAPI dependencies
(they took ~0.2 ms), and answers from the worker's cache of released answers of the current index
(``StorePool.answer``, per tier; serialized once). The budget is charged for every answer about a
rare allele, cached or not. With ``by`` the lookup runs in the thread pool and is not cached: it
reads the person table and records the groups in the token's cohort history.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from genoquery.errors import GenoqueryError
from genoquery.server.auth import Principal, Tier
from genoquery.server.context import Context, caller, context, page_bounds, rows_returned
from genoquery.server.limits import check_frequencies
from genoquery.server.models import ERRORS, VariantPage
from genoquery.server.problems import ApiError
from genoquery.server.release import AfRange, Answer, variant_answer, variant_page
from genoquery.server.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["variants"], responses=ERRORS)

Offset = Annotated[int, Query(ge=0, le=10**9, description="first row of the page")]
Limit = Annotated[int, Query(ge=1, le=Settings.max_page, description="rows per page (at most the page size)")]
By = Annotated[str | None, Query(max_length=64, description="statistics per group of this person-table column")]
Text = Annotated[str | None, Query(max_length=200)]


@router.get("/variants/{variant}", response_model=VariantPage, summary="One variant by key or rsID")
async def variant(
    request: Request,
    variant: Annotated[str, Path(max_length=200, description="chr20-1030-A-C or rs123")],
    by: Annotated[Literal["ancestry", "sex_at_birth"] | None, Query()] = None,
) -> Response:
    # the hot path (see the module docstring)
    principal, ctx = await caller(request), request.app.state.context
    try:
        if by is None:
            answer = ctx.pool.answer(
                (variant, principal.tier), lambda store: variant_answer(ctx, store, principal, variant, None)
            )
        else:
            answer = await run_in_threadpool(_breakdown, ctx, principal, variant, by)
    except GenoqueryError:
        ctx.budget.charge(principal)  # "not in this store" is an answer about a rare allele too
        raise
    if answer.charged:
        ctx.budget.charge(principal)
    rows_returned(request, answer.rows)
    return Response(answer.body, media_type="application/json")


def _breakdown(ctx: Context, principal: Principal, variant: str, by: str) -> Answer:
    """A lookup with ``by``, in the thread pool: checking the groups reads the person table."""
    with ctx.pool.store() as store:
        return variant_answer(ctx, store, principal, variant, by)


@router.get("/variants", response_model=VariantPage, summary="Variants of a region or gene, with filters")
def variants(
    request: Request,
    region: Text = None,
    gene: Text = None,
    af_min: Annotated[float | None, Query(ge=0, le=1)] = None,
    af_max: Annotated[float | None, Query(ge=0, le=1)] = None,
    pass_only: bool = False,
    type: Literal["snv", "indel", "other"] | None = None,
    by: Annotated[Literal["ancestry", "sex_at_birth"] | None, Query()] = None,
    offset: Offset = 0,
    limit: Limit = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    if (region is None) == (gene is None):
        raise ApiError(400, "give exactly one of region (CONTIG[:START[-END]]) or gene")
    offset, limit = page_bounds(ctx, offset, limit)
    exact = not principal.aggregate_only  # below the controlled tier AF filters act on released AF
    with ctx.pool.store() as store:
        table = store.lookup(
            region=region,
            gene=gene,
            af_min=af_min if exact else None,
            af_max=af_max if exact else None,
            pass_only=pass_only,
            variant_type=type,
            by=by,
        )
        answer = variant_page(
            ctx,
            store,
            principal,
            table,
            cohort_digest=ctx.everyone,
            within=None,
            by=by,
            offset=offset,
            limit=limit,
            af=None if exact else AfRange(af_min, af_max),
        )
    rows_returned(request, len(answer["items"]))
    return answer


@router.get("/frequencies", response_model=VariantPage, summary="Exact statistics of a cohort in a region")
def frequencies(
    request: Request,
    region: Annotated[str, Query(max_length=200)],
    cohort: Annotated[
        str | None,
        Query(max_length=4000, description="a cohort name or filter expression (registered tier); none: every sample"),
    ] = None,
    by: By = None,
    offset: Offset = 0,
    limit: Limit = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    offset, limit = page_bounds(ctx, offset, limit)
    if principal.tier == Tier.PUBLIC and (cohort is not None or by not in (None, "ancestry", "sex_at_birth")):
        raise ApiError(
            401, "cohorts and breakdowns by other columns need a registered token", {"WWW-Authenticate": "Bearer"}
        )
    with ctx.pool.store() as store:
        chosen = ctx.cohort(store, principal, cohort)
        ctx.check_grouping(store, principal, by)
        check_frequencies(ctx, store, principal, region, chosen.indexes, by)  # 413 over the cost limit
        table = store.frequencies(region, cohort=chosen.indexes, by=by)
        answer = variant_page(
            ctx,
            store,
            principal,
            table,
            cohort_digest=chosen.digest,
            within=chosen.indexes,
            by=by,
            offset=offset,
            limit=limit,
        )
    rows_returned(request, len(answer["items"]))
    return answer
