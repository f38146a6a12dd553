"""The one release path: every answer row below the controlled tier leaves the server through here.

Frequency rows (``/variants``, ``/frequencies``, Beacon) go through :meth:`Disclosure.stat_row`,
test rows (association, PheWAS, carrier tables) through :meth:`Disclosure.table_row`, which
releases only the columns it knows (a new column is withheld until it is classified there).
What the caller filters on is filtered after release, on the released values (``af_min`` /
``af_max``, ``min_mac``), so bisecting a filter tells no more than the released row. Below the
controlled tier every answer costs a unit of budget when it is about a rare allele, is empty,
or was filtered on released values (an empty or filtered page says something too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genoquery.query.store import Store
from genoquery.server.auth import Principal, Tier
from genoquery.server.context import PARTICIPANT_ONLY, Context
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
    charged: bool


@dataclass(frozen=True)
class AfRange:
    """A caller's AF filter, applied to released AF below the controlled tier (a withheld AF is
    below any ``af_min`` and within any ``af_max``: it is that of an allele seen 1..20 times)."""

    low: float | None = None
    high: float | None = None

    @property
    def active(self) -> bool:
        return self.low is not None or self.high is not None

    def keeps(self, af: float | None) -> bool:
        if af is None:
            return self.low is None
        return (self.low is None or af >= self.low) and (self.high is None or af <= self.high)


def released_page(
    ctx: Context,
    store: Store,
    principal: Principal,
    table: pa.Table,
    *,
    cohort_digest: str | None,
    within,
    by: str | None,
    offset: int,
    limit: int,
    af: AfRange | None = None,
) -> tuple[dict, bool]:
    """One page of frequency rows (columns of ``Store.variants``, optionally per ``by`` group),
    exact for controlled tokens, else released by disclosure control: groups of ``by`` that fail
    the cohort rules left out (and named nowhere), ``af`` applied to the released AF; and whether
    the answer costs a unit of budget."""
    if principal.tier == Tier.PARTICIPANT:
        raise ApiError(403, PARTICIPANT_ONLY)
    keep = VARIANT_FIELDS + ((by,) if by else ())
    size = ctx.n_samples if within is None else len(within)
    if not principal.aggregate_only:
        rows = [_variant_fields(r, keep, by) for r in table.slice(offset, limit).to_pylist()]
        return dict(page_of(rows, table.num_rows, offset, limit), cohort_size=size), False
    if by is not None:
        table = _without_refused_groups(ctx, store, principal, table, by, within, cohort_digest)
    af = af or AfRange()
    source = table.to_pylist() if af.active else table.slice(offset, limit).to_pylist()
    released = [ctx.disclosure.stat_row(r, cohort_digest, str(r.get(by, "")) if by else "") for r in source]
    if af.active:
        kept = [i for i, r in enumerate(released) if af.keeps(r.get("af"))]
        total = len(kept)
        page = kept[offset : offset + limit]
        source, released = [source[i] for i in page], [released[i] for i in page]
    else:
        total = table.num_rows
    rows = [_variant_fields(r, keep, by) for r in released]
    charged = af.active or not rows or _touches_rare(ctx, source)
    cohort_size = ctx.disclosure.count(size, f"{cohort_digest}|size")
    suppressed = ["cohort_size"] if cohort_size is None else []
    return dict(page_of(rows, total, offset, limit), cohort_size=cohort_size, suppressed=suppressed), charged


def _variant_fields(row: dict, keep: tuple[str, ...], by: str | None) -> dict:
    return {k: (str(v) if k == by and v is not None else v) for k, v in row.items() if k in keep}


def _without_refused_groups(
    ctx: Context, store: Store, principal: Principal, table: pa.Table, by: str, within, cohort_digest: str | None
) -> pa.Table:
    """The rows of the groups of ``by`` (within the cohort) that pass the cohort rules; the groups
    that pass are recorded in the token's cohort history, the others are left out unnamed."""
    ctx.check_grouping(store, principal, by)
    passed = []
    for value, members in ctx.group_members(store, by, within).items():
        definition = f"group:{cohort_digest}:{by}={value}"
        if not ctx.disclosure.problem(principal, members, definition):
            ctx.disclosure.record(principal, members, definition)
            passed.append(value)
    column = pc.cast(table[by], pa.string())
    return table.filter(pc.fill_null(pc.is_in(column, pa.array(passed, pa.string())), False))


def keys_within_af(ctx: Context, table: pa.Table, af: AfRange) -> list[str]:
    """The variant keys of whole-store rows (``Store.lookup``) whose released AF passes ``af``: a
    filter below the controlled tier that selects variants by AF for another answer (the carrier
    table's ``af_max``) must select by what a caller may know of each."""
    released = (ctx.disclosure.stat_row(r, ctx.everyone) for r in table.to_pylist())
    return [r["variant_key"] for r in released if af.keeps(r.get("af"))]


def variant_page(ctx: Context, store: Store, principal: Principal, table: pa.Table, **page) -> dict:
    """:func:`released_page`, charging the budget when the answer costs a unit."""
    answer, charged = released_page(ctx, store, principal, table, **page)
    if charged:
        ctx.budget.charge(principal)
    return answer


def variant_answer(ctx: Context, store: Store, principal: Principal, variant: str, by: str | None) -> Answer:
    """The whole-store statistics of one variant (key or rsID) as released to ``principal``,
    serialized once (the caller charges the budget: see :class:`Answer`)."""
    page, charged = released_page(
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
    body = VariantPage.model_validate(page).model_dump_json(by_alias=True).encode()
    return Answer(body, len(page["items"]), charged)


def released_tests(
    ctx: Context,
    principal: Principal,
    table: pa.Table,
    *,
    cohort_digest: str | None,
    ident: str,
    offset: int,
    limit: int,
    min_mac: int | None = None,
) -> dict:
    """One page of test rows (association, PheWAS, carrier table): exact for controlled tokens;
    below, each row released by :meth:`Disclosure.table_row` (``min_mac`` applied to the released
    MAC) and the answer charged to the budget."""
    rows = released_rows(ctx, principal, table.slice(offset, limit), cohort_digest, ident, min_mac)
    if principal.aggregate_only:
        ctx.budget.charge(principal)
    return page_of(rows, table.num_rows, offset, limit)


def released_rows(
    ctx: Context, principal: Principal, table: pa.Table, cohort_digest: str | None, ident: str, min_mac: int | None
) -> list[dict]:
    """The rows of ``table`` as ``principal`` may see them: exact for controlled tokens, else each
    released by :meth:`Disclosure.table_row` (the budget is charged by the caller, per answer)."""
    rows = table.to_pylist()
    if principal.aggregate_only:
        rows = [ctx.disclosure.table_row(r, cohort_digest, str(r.get(ident, "")), min_mac) for r in rows]
    return rows


PARTICIPANT_COUNTS = ("ac", "an", "ancestry_ac", "ancestry_an")
"""Population counts in a participant's view (:meth:`Store.participant`), released to them."""
_WITHHELD = ("ac", "af", "an", "ancestry_ac", "ancestry_af", "ancestry_an")  # sorted: a row's `suppressed`


def released_participant(ctx: Context, store: Store, view: pa.Table) -> list[dict]:
    """A participant's view as their own token sees it: the population counts released by
    :meth:`Disclosure.count_columns` (an AC of 1..20 would tell a person how many others carry
    their variant) and rounded as the public pages round them (whole store; their ancestry
    group), each AF recomputed from the released AC and AN, their own genotype as it is. Their
    ancestry group's counts are withheld where the public pages withhold the group (fewer than
    ``min_cohort`` members, or all but fewer): its AN would tell how many people are in it."""
    names = view.column_names
    group = view.column("ancestry")[0].as_py() if "ancestry" in names and view.num_rows else ""
    counts = {c: view.column(c) for c in PARTICIPANT_COUNTS if c in names}
    # keyed as the public pages key the same counts (Disclosure.stat_row): no second rounding
    everyone = ctx.everyone
    row_keys = [f"{everyone}|{k}|" for k in view.column("variant_key").to_pylist()]
    suffixes = {c: f"{group}|{c.removeprefix('ancestry_')}" if c.startswith("ancestry_") else f"|{c}" for c in counts}
    released, hidden = ctx.disclosure.count_columns(counts, row_keys, suffixes)
    if group and _small_group(ctx, store, group):
        for c in ("ancestry_ac", "ancestry_an"):
            released[c], hidden[c] = [None] * view.num_rows, np.asarray(view.column(c).is_valid())
    columns = {c: released[c] if c in released else view.column(c).to_pylist() for c in names}
    for prefix in ("", "ancestry_"):
        if prefix + "af" in columns:
            ac, an, given = columns[prefix + "ac"], columns[prefix + "an"], columns[prefix + "af"]
            af = [a / n if a is not None and n else None for a, n in zip(ac, an, strict=True)]
            lost = [f is None and g is not None for f, g in zip(af, given, strict=True)]
            hidden[prefix + "af"] = np.array(lost, bool)
            columns[prefix + "af"] = af
    columns["suppressed"] = _named(hidden, view.num_rows)
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _named(hidden: dict[str, np.ndarray], n_rows: int) -> list[list[str]]:
    """Each row's withheld cells, sorted by name, from each cell's withheld mask (one list made
    per combination of cells, copied per row)."""
    masks = np.stack([hidden.get(c, np.zeros(n_rows, bool)) for c in _WITHHELD], axis=1)
    codes = (masks.astype(np.int64) << np.arange(len(_WITHHELD))).sum(axis=1)
    named = [[c for j, c in enumerate(_WITHHELD) if code >> j & 1] for code in range(1 << len(_WITHHELD))]
    return [list(named[code]) for code in codes.tolist()]


def _small_group(ctx: Context, store: Store, group: str) -> bool:
    """Whether the public pages withhold this ancestry group (``Disclosure.problem``'s size rule)."""
    members = ctx.group_members(store, "ancestry", None).get(group, np.zeros(0, np.int64))
    rule = ctx.disclosure
    return len(members) < rule.min_cohort or rule.n_samples - len(members) < rule.min_cohort


def page_of(table_rows: list[dict], total: int, offset: int, limit: int) -> dict:
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "next_offset": offset + limit if offset + limit < total else None,
        "items": table_rows,
    }
