"""Association, PheWAS and carrier tables (registered tier: released by disclosure control)."""

from __future__ import annotations

from typing import Annotated, Literal

import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request

from genoquery.server.auth import Principal, require
from genoquery.server.context import Context, caller, context, page_bounds, rows_returned
from genoquery.server.models import ERRORS, TableAnswer
from genoquery.server.problems import ApiError
from genoquery.server.release import page_of

router = APIRouter(prefix="/api/v1", tags=["association"], responses=ERRORS)

Offset = Annotated[int, Query(ge=0, le=10**9)]
Limit = Annotated[int, Query(ge=1, le=100_000)]
Text = Annotated[str | None, Query(max_length=200)]
Cohort = Annotated[str | None, Query(max_length=4000, description="cohort name or filter expression")]
Names = Annotated[str | None, Query(max_length=2000, description="comma-separated")]

ASSOCIATION_COUNTS = ("n", "n_cases", "n_controls", "ac", "an", "mac", "n_carriers", "case_ac")
ASSOCIATION_STATS = ("af", "beta", "se", "statistic", "p", "odds_ratio")
PHEWAS_COUNTS = ("n", "n_cases", "n_controls")
PHEWAS_STATS = ("beta", "se", "statistic", "p", "odds_ratio", "p_bonferroni", "q_bh")
TABLE_COUNTS = ("n_variants", "carrier_cases", "carrier_controls", "noncarrier_cases", "noncarrier_controls")
TABLE_STATS = ("odds_ratio", "p")


def _names(text: str | None) -> list[str]:
    return [] if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _answer(
    request: Request,
    ctx: Context,
    principal: Principal,
    table: pa.Table,
    digest: str,
    counts: tuple[str, ...],
    stats: tuple[str, ...],
    ident: str,
    offset: int,
    limit: int,
) -> dict:
    rows = table.slice(offset, limit).to_pylist()
    if principal.aggregate_only:
        if any(ctx.disclosure.small(r.get(c)) for r in rows for c in counts):
            ctx.budget.charge(principal)
        rows = [
            ctx.disclosure.table_row(
                r, digest, [c for c in counts if c in r], [c for c in stats if c in r], str(r.get(ident, ""))
            )
            for r in rows
        ]
    rows_returned(request, len(rows))
    return page_of(rows, table.num_rows, offset, limit)


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
    min_mac: Annotated[int, Query(ge=1, le=10**6)] = 1,
    offset: Offset = 0,
    limit: Limit = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    require(principal, "registered", "association")
    offset, limit = page_bounds(ctx, offset, limit)
    codes = _names(phenotype)
    with ctx.pool.store() as store:
        chosen = ctx.cohort(store, principal, cohort)
        table = store.associate(
            codes[0] if len(codes) == 1 else codes,
            _names(covariates),
            region=region,
            variants=_names(variants) or None,
            gene=gene,
            cohort=chosen.indexes,
            model=model,
            min_mac=min_mac,
        )
    return _answer(
        request,
        ctx,
        principal,
        table,
        chosen.digest,
        ASSOCIATION_COUNTS,
        ASSOCIATION_STATS,
        "variant_key",
        offset,
        limit,
    )


@router.get("/phewas", response_model=TableAnswer, summary="One variant against many phenotypes")
def phewas(
    request: Request,
    variant: Annotated[str, Query(max_length=200)],
    phenotypes: Names = None,
    covariates: Names = None,
    cohort: Cohort = None,
    min_cases: Annotated[int, Query(ge=1, le=10**6)] = 20,
    offset: Offset = 0,
    limit: Limit = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    require(principal, "registered", "PheWAS")
    offset, limit = page_bounds(ctx, offset, limit)
    if principal.aggregate_only and min_cases <= ctx.settings.max_suppressed:
        raise ApiError(403, f"min_cases must be over {ctx.settings.max_suppressed} below the controlled tier")
    with ctx.pool.store() as store:
        chosen = ctx.cohort(store, principal, cohort)
        table = store.phewas(
            variant,
            _names(phenotypes) or None,
            covariates=_names(covariates),
            cohort=chosen.indexes,
            min_cases=min_cases,
        )
    return _answer(
        request, ctx, principal, table, chosen.digest, PHEWAS_COUNTS, PHEWAS_STATS, "phenotype", offset, limit
    )


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
    require(principal, "registered", "carrier tables")
    if (variant is None) == (gene is None and region is None):
        raise ApiError(400, "give a variant (key or rsID), or a gene or region with optional filters")
    with ctx.pool.store() as store:
        chosen = ctx.cohort(store, principal, cohort)
        table = store.carrier_table(
            variant,
            _names(condition),
            chosen.indexes,
            gene=gene,
            region=region,
            af_max=af_max,
            pass_only=pass_only,
            variant_type=type,
        )
    return _answer(
        request, ctx, principal, table, chosen.digest, TABLE_COUNTS, TABLE_STATS, "condition", 0, max(table.num_rows, 1)
    )
