"""Store information and health."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from genoquery.server.auth import Principal, Tier
from genoquery.server.context import Context, caller, context
from genoquery.server.models import ERRORS, Health, StoreInfo

SAMPLES_KEY = "samples"  # the rounding key of the released sample count
router = APIRouter(prefix="/api/v1", tags=["store"], responses=ERRORS)


def released_samples(ctx: Context, principal: Principal) -> int | None:
    """The store's sample count as ``/api/v1/info`` and Beacon ``info`` give it: samples not
    withdrawn, exact in the controlled tier, else through disclosure control under one fixed key
    (the same released number everywhere; a withdrawal shows only when it moves the rounding;
    None when withheld)."""
    if principal.tier == Tier.CONTROLLED:
        return ctx.n_samples
    return ctx.disclosure.count(ctx.n_samples, SAMPLES_KEY)


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> dict:
    return {"status": "ok"}


@router.get("/info", response_model=StoreInfo, summary="The store, your tier, your budget, the disclosure rules")
def info(principal: Principal = Depends(caller), ctx: Context = Depends(context)) -> dict:
    s = ctx.settings
    samples = released_samples(ctx, principal)
    return {
        **{k: ctx.info[k] for k in ("sites", "variants", "contigs", "tool")},
        "samples": samples,
        "suppressed": ["samples"] if samples is None else [],
        "groupings": ctx.info.get("groupings", []),
        "tier": principal.tier,
        "budget_remaining": ctx.budget.remaining(principal),
        "disclosure": {
            "max_suppressed": s.max_suppressed,
            "min_cohort": s.min_cohort,
            "rounding": s.rounding,
            "budget": s.budget,
            "budget_window_s": int(s.budget_window_s),
        },
    }
