"""Turning query answers into released rows for the caller's tier (exact, or by disclosure control)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from genoquery.query.store import Store
from genoquery.server.auth import Principal
from genoquery.server.context import Context
from genoquery.server.disclosure import GENOTYPE_CELLS
from genoquery.server.models import VariantPage, VariantRow
from genoquery.server.problems import ApiError

VARIANT_FIELDS = tuple(VariantRow.model_fields)


def _touches_rare(ctx: Context, rows: list[dict]) -> bool:
    return any(ctx.disclosure.small(r.get(c)) for r in rows for c in GENOTYPE_CELLS)


@dataclass(frozen=True)
class Answer:
    """A released page as JSON, its number of rows, and whether it costs a unit of budget."""

    body: bytes
    rows: int
    rare: bool


def released_page(
    ctx: Context,
    store: Store,
    principal: Principal,
    table: pa.Table,
    *,
    cohort_digest: str,
    within,
    by: str | None,
    offset: int,
    limit: int,
) -> tuple[dict, bool]:
    """One page of frequency rows (columns of ``Store.variants``, optionally per ``by`` group),
    exact for controlled tokens, else released by disclosure control with ``by`` groups that
    fail the cohort rules withheld; and whether the answer is about a rare allele (an
    aggregate-tier answer that costs a unit of budget)."""
    if principal.tier == "participant":
        raise ApiError(403, "a participant token sees only its own data: /api/v1/me")
    withheld: list[str] = []
    if by is not None and principal.aggregate_only:
        withheld = withheld_groups(ctx, store, principal, by, within)
        if withheld:
            table = table.filter(pc.invert(pc.is_in(table[by].cast(pa.string()), pa.array(withheld, pa.string()))))
    rows = table.slice(offset, limit).to_pylist()
    keep = VARIANT_FIELDS + ((by,) if by else ())
    rare = principal.aggregate_only and _touches_rare(ctx, rows)
    if principal.aggregate_only:
        rows = [ctx.disclosure.stat_row(r, cohort_digest, str(r.get(by, "")) if by else "") for r in rows]
    rows = [{k: (str(v) if k == by and v is not None else v) for k, v in r.items() if k in keep} for r in rows]
    size = ctx.n_samples if within is None else len(within)
    return dict(
        page_of(rows, table.num_rows, offset, limit),
        withheld_groups=withheld,
        cohort_size=ctx.disclosure.count(size, cohort_digest + "|size") if principal.aggregate_only else size,
    ), rare


def variant_page(ctx: Context, store: Store, principal: Principal, table: pa.Table, **page) -> dict:
    """:func:`released_page`, charging the budget when the answer is about a rare allele."""
    answer, rare = released_page(ctx, store, principal, table, **page)
    if rare:
        ctx.budget.charge(principal)
    return answer


def variant_answer(ctx: Context, store: Store, principal: Principal, variant: str, by: str | None) -> Answer:
    """The whole-store statistics of one variant (key or rsID) as released to ``principal``,
    serialized once (the budget is not charged: see :class:`Answer`)."""
    page, rare = released_page(
        ctx,
        store,
        principal,
        store.lookup(variant, by=by),
        cohort_digest=ctx.everyone,
        within=None,
        by=by,
        offset=0,
        limit=ctx.settings.max_page,
    )
    return Answer(VariantPage.model_validate(page).model_dump_json().encode(), len(page["items"]), rare)


def withheld_groups(ctx: Context, store: Store, principal: Principal, by: str, within) -> list[str]:
    """Groups of ``by`` (within the cohort) that fail the cohort rules; the others are recorded."""
    out = []
    for value, members in ctx.group_members(store, by, within).items():
        if ctx.disclosure.problem(principal, members):
            out.append(value)
        else:
            ctx.disclosure.record(principal, members)
    return out


def page_of(table_rows: list[dict], total: int, offset: int, limit: int) -> dict:
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "next_offset": offset + limit if offset + limit < total else None,
        "items": table_rows,
    }
