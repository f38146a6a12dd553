"""Association, PheWAS and carrier tables (registered tier: released by disclosure control)."""

from __future__ import annotations

from typing import Annotated, Literal

import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request

from genoquery.server.auth import Principal, Tier, require
from genoquery.server.context import Context, caller, comma_separated, context, page_bounds, rows_returned
from genoquery.server.limits import check_carriers, check_cost
from genoquery.server.models import ERRORS, TableAnswer
from genoquery.server.problems import ApiError
from genoquery.server.release import AfRange, keys_within_af, released_tests
from genoquery.server.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["association"], responses=ERRORS)

Offset = Annotated[int, Query(ge=0, le=10**9)]
Limit = Annotated[int, Query(ge=1, le=Settings.max_page, description="rows per page (at most the page size)")]
Text = Annotated[str | None, Query(max_length=200)]
Cohort = Annotated[str | None, Query(max_length=4000, description="cohort name or filter expression")]
Names = Annotated[str | None, Query(max_length=2000, description="comma-separated")]


def _answer(request: Request, ctx: Context, principal: Principal, table: pa.Table, cohort, ident: str, **page) -> dict:
    answer = released_tests(ctx, principal, table, cohort_digest=cohort.digest, ident=ident, **page)
    rows_returned(request, len(answer["items"]))
    return answer


@router.get("/association", response_model=TableAnswer, summary="Test variants for association with a phenotype")
def association(
    request: Request,
    phenotype: Annotated[
        str, Query(max_length=200, description="person-table column, or condition code(s) comma-separated")
    ],
    covariates: Names = None,
    region: Text = None,
    gene: Text = None,
    variants: Names = None,
    cohort: Cohort = None,
    model: Literal["linear", "logistic"] | None = None,
    min_mac: Annotated[
        int,
        Query(
            ge=1, le=10**6, description="fewest minor-allele copies to test (below the controlled tier: released MAC)"
        ),
    ] = 1,
    offset: Offset = 0,
    limit: Limit = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    require(principal, Tier.REGISTERED, "association")
    offset, limit = page_bounds(ctx, offset, limit)
    codes = comma_separated(phenotype)
    with ctx.pool.store() as store:
        chosen = ctx.cohort(store, principal, cohort)
        check_cost(ctx, store, principal, chosen.indexes, "association", region, gene, variants, tests=True)
        table = store.associate(
            codes[0] if len(codes) == 1 else codes,
            comma_separated(covariates),
            region=region,
            variants=comma_separated(variants) or None,
            gene=gene,
            cohort=chosen.indexes,
            model=model,
            # below the controlled tier the exact MAC decides nothing: rows of MAC <= 20 are withheld
            # whatever they say, and min_mac is applied to the released MAC by released_tests
            min_mac=ctx.settings.max_suppressed + 1 if principal.aggregate_only else min_mac,
            progress=False,  # not in the server's terminal
        )
    return _answer(
        request,
        ctx,
        principal,
        table,
        chosen,
        "variant_key",
        offset=offset,
        limit=limit,
        min_mac=min_mac if principal.aggregate_only else None,
    )


@router.get("/phewas", response_model=TableAnswer, summary="One variant against many phenotypes")
def phewas(
    request: Request,
    variant: Annotated[str, Query(max_length=200)],
    phenotypes: Names = None,
    covariates: Names = None,
    cohort: Cohort = None,
    min_cases: Annotated[
        int | None,
        Query(
            ge=1,
            le=10**6,
            description="fewest cases of a condition to test it (default 20; below the "
            "controlled tier at least, and by default, one more than the suppression threshold)",
        ),
    ] = None,
    offset: Offset = 0,
    limit: Limit = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    require(principal, Tier.REGISTERED, "PheWAS")
    offset, limit = page_bounds(ctx, offset, limit)
    floor = ctx.settings.max_suppressed + 1 if principal.aggregate_only else 1
    if min_cases is None:
        min_cases = max(floor, 20)
    if min_cases < floor:
        raise ApiError(403, f"min_cases must be at least {floor} below the controlled tier")
    with ctx.pool.store() as store:
        chosen = ctx.cohort(store, principal, cohort)
        table = store.phewas(
            variant,
            comma_separated(phenotypes) or None,
            covariates=comma_separated(covariates),
            cohort=chosen.indexes,
            min_cases=min_cases,
        )
    return _answer(request, ctx, principal, table, chosen, "phenotype", offset=offset, limit=limit)


@router.get("/carrier-table", response_model=TableAnswer, summary="Carriers against cases: 2x2 counts, OR, Fisher p")
def carrier_table(
    request: Request,
    condition: Annotated[str, Query(max_length=200, description="condition code(s), comma-separated: cases have any")],
    variant: Text = None,
    gene: Text = None,
    region: Text = None,
    af_max: Annotated[float | None, Query(ge=0, le=1)] = None,
    pass_only: bool = False,
    type: Literal["snv", "indel", "other"] | None = None,
    cohort: Cohort = None,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    require(principal, Tier.REGISTERED, "carrier tables")
    if (variant is None) == (gene is None and region is None):
        raise ApiError(400, "give a variant (key or rsID), or a gene or region with optional filters")
    with ctx.pool.store() as store:
        chosen = ctx.cohort(store, principal, cohort)
        check_cost(ctx, store, principal, chosen.indexes, "a carrier table", region, gene, variant)
        check_carriers(ctx, store, principal, chosen.indexes, "a carrier table", region, gene)
        chosen_variants = None
        if principal.aggregate_only and af_max is not None:  # af_max acts on the released AF
            found = store.lookup(variant, gene=gene, region=region, pass_only=pass_only, variant_type=type)
            chosen_variants = keys_within_af(ctx, found, AfRange(None, af_max))
        table = store.carrier_table(
            variant,
            comma_separated(condition),
            chosen.indexes,
            gene=gene,
            region=region,
            af_max=None if principal.aggregate_only else af_max,
            pass_only=pass_only,
            variant_type=type,
            variants=chosen_variants,
        )
    return _answer(request, ctx, principal, table, chosen, "condition", offset=0, limit=max(table.num_rows, 1))
