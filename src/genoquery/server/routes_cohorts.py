"""Cohorts: define one for your token (``POST /api/v1/cohorts``), list them with the store's saved ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request

from genoquery.server.auth import Principal, Tier, require
from genoquery.server.context import Context, caller, context, rows_returned
from genoquery.server.disclosure import digest
from genoquery.server.models import ERRORS, CohortIn, CohortList, CohortOut
from genoquery.server.problems import ApiError

router = APIRouter(prefix="/api/v1", tags=["cohorts"], responses=ERRORS)


@router.post("/cohorts", response_model=CohortOut, status_code=201, summary="Define a cohort for your token")
def define(
    request: Request, body: CohortIn, principal: Principal = Depends(caller), ctx: Context = Depends(context)
) -> dict:
    """A filter expression (registered tier), or sample IDs (controlled tier). In the registered
    tier the cohort must pass disclosure control (size, differencing) to be defined."""
    request.state.body = body.model_dump(exclude_none=True)
    require(principal, Tier.REGISTERED, "defining cohorts")
    if (body.definition is None) == (body.samples is None):
        raise ApiError(400, "give exactly one of definition (a filter expression; or filter) or samples")
    if body.samples is not None:
        require(principal, Tier.CONTROLLED, "a cohort of sample IDs")
    with ctx.pool.store() as store:  # a filter may name a saved cohort: resolved (and checked) as in queries
        indexes = (
            store.cohort(body.samples)
            if body.definition is None
            else ctx.cohort(store, principal, body.definition).indexes
        )
    kind = "filter" if body.definition is not None else "ids"
    definition = body.definition if body.definition is not None else json.dumps(list(dict.fromkeys(body.samples)))
    con = ctx.db.con
    with con:
        con.execute(
            "INSERT OR REPLACE INTO server_cohorts VALUES (?, ?, ?, ?, ?)",
            [principal.key, body.name, kind, definition, datetime.now(UTC).isoformat()],
        )
    rows_returned(request, 1)
    return _out(ctx, principal, body.name, kind, definition, "token", len(indexes), digest(indexes))


@router.get("/cohorts", response_model=CohortList, summary="Your cohorts and the store's saved cohorts")
def listing(request: Request, principal: Principal = Depends(caller), ctx: Context = Depends(context)) -> dict:
    """Sizes are given for the controlled tier only (a size per definition would let one difference them)."""
    require(principal, Tier.REGISTERED, "listing cohorts")
    with ctx.pool.store() as store:
        saved = store.cohorts().to_pylist()
    mine = ctx.db.con.execute(
        "SELECT name, kind, definition FROM server_cohorts WHERE principal = ? ORDER BY name", [principal.key]
    ).fetchall()
    items = [_out(ctx, principal, c["name"], c["kind"], c["definition"], "store", None, None) for c in saved]
    items += [_out(ctx, principal, name, kind, definition, "token", None, None) for name, kind, definition in mine]
    rows_returned(request, len(items))
    return {"items": items}


def _out(
    ctx: Context,
    principal: Principal,
    name: str,
    kind: str,
    definition: str,
    scope: str,
    size: int | None,
    key: str | None,
) -> dict:
    shown = definition if kind == "filter" or not principal.aggregate_only else None
    released = ctx.disclosure.count(size, f"{key}|size") if principal.aggregate_only else size
    suppressed = ["size"] if size is not None and released is None else []
    return {"name": name, "kind": kind, "scope": scope, "definition": shown, "size": released, "suppressed": suppressed}
