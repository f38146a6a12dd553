"""Association, PheWAS and carrier tables (registered tier: released by disclosure control)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Annotated, Literal

import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from genoquery.errors import GenoqueryError
from genoquery.query.store import Store
from genoquery.server.auth import Principal, Tier, require
from genoquery.server.context import Context, caller, comma_separated, context, page_bounds, rows_returned
from genoquery.server.limits import check_carriers, check_cost
from genoquery.server.models import API_SCHEMA, ERRORS, TableAnswer
from genoquery.server.problems import ApiError, error_body, status_of
from genoquery.server.release import AfRange, keys_within_af, released_rows, released_tests
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


@dataclass(frozen=True)
class AssociationQuery:
    """The test both association endpoints run, from their query parameters."""

    phenotype: str
    covariates: str | None
    region: str | None
    gene: str | None
    variants: str | None
    cohort: str | None
    model: str | None
    min_mac: int
    test: str
    prescreen_p: float | None


def _association_query(
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
    test: Annotated[
        Literal["wald", "score"],
        Query(description="logistic: wald (the exact fit, Firth's where it fails) or score (score test)"),
    ] = "wald",
    prescreen_p: Annotated[
        float | None,
        Query(gt=0, le=1, description="logistic: the score test first, the Wald/Firth fit only where its p <= this"),
    ] = None,
) -> AssociationQuery:
    return AssociationQuery(phenotype, covariates, region, gene, variants, cohort, model, min_mac, test, prescreen_p)


def _association_blocks(ctx: Context, principal: Principal, store: Store, q: AssociationQuery):
    """The cohort and, lazily, the association's result tables block by block (cost checked)."""
    require(principal, Tier.REGISTERED, "association")
    codes = comma_separated(q.phenotype)
    chosen = ctx.cohort(store, principal, q.cohort)
    check_cost(ctx, store, principal, chosen.indexes, "association", q.region, q.gene, q.variants, tests=True)
    blocks = store.associate_blocks(
        codes[0] if len(codes) == 1 else codes,
        comma_separated(q.covariates),
        region=q.region,
        variants=comma_separated(q.variants) or None,
        gene=q.gene,
        cohort=chosen.indexes,
        model=q.model,
        # below the controlled tier the exact MAC decides nothing: rows of MAC <= 20 are withheld
        # whatever they say, and min_mac is applied to the released MAC when rows are released
        min_mac=ctx.settings.max_suppressed + 1 if principal.aggregate_only else q.min_mac,
        test=q.test,
        prescreen_p=q.prescreen_p,
        progress=False,  # not in the server's terminal
    )
    return chosen, blocks


@router.get("/association", response_model=TableAnswer, summary="Test variants for association with a phenotype")
def association(
    request: Request,
    q: AssociationQuery = Depends(_association_query),
    offset: Offset = 0,
    limit: Limit = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    offset, limit = page_bounds(ctx, offset, limit)
    with ctx.pool.store() as store:
        chosen, blocks = _association_blocks(ctx, principal, store, q)
        table = pa.concat_tables(blocks)
    return _answer(
        request,
        ctx,
        principal,
        table,
        chosen,
        "variant_key",
        offset=offset,
        limit=limit,
        min_mac=q.min_mac if principal.aggregate_only else None,
    )


@router.get(
    "/association.ndjson",
    summary="Stream an association's rows as they are tested (NDJSON)",
    description="The rows of /association, all of them, one JSON object per line in genome order, each "
    'block of alleles sent as soon as it is tested; then a last line `{"total": N}`. An error '
    "before the first rows is answered with its status; one later (the time limit) is the last "
    'line, `{"error": {"status": ..., "message": ...}}`, with no total. One answer to the budget.',
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def association_stream(
    request: Request,
    q: AssociationQuery = Depends(_association_query),
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> StreamingResponse:
    lease = ExitStack()  # the store stays leased while the rows stream, and is given back after
    try:
        chosen, blocks = _association_blocks(ctx, principal, lease.enter_context(ctx.pool.store()), q)
        first = next(blocks)  # input errors are answered with their own status, before any row
    except BaseException:
        lease.close()
        raise
    if principal.aggregate_only:
        ctx.budget.charge(principal)
    min_mac = q.min_mac if principal.aggregate_only else None

    def lines() -> Iterator[str]:
        total = 0
        yield json.dumps({"schema": API_SCHEMA}) + "\n"
        try:
            for table in itertools.chain([first], blocks):
                rows = released_rows(ctx, principal, table, chosen.digest, "variant_key", min_mac)
                total += len(rows)
                yield "".join(json.dumps(row, allow_nan=False) + "\n" for row in rows)
            yield json.dumps({"total": total}) + "\n"
        except GenoqueryError as err:
            yield json.dumps(error_body(status_of(err), str(err))) + "\n"
        finally:
            lease.close()

    rows_returned(request, None)  # not known when the request is logged: the stream has not run
    return StreamingResponse(lines(), media_type="application/x-ndjson")


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
