"""Per-request limits: a time limit on every request's work, and a cost limit checked before it.

Time: :class:`TimeLimit` (ASGI middleware) sets the :mod:`genoquery.deadline` of each HTTP request
to now + ``Settings.request_time_s``. The deadline is a ContextVar: it reaches the endpoints that
FastAPI runs in its thread pool (``run_in_threadpool`` runs them in a copy of the request's
context), where the engine's long loops check it; past it they raise
:class:`~genoquery.errors.TimeLimitError`, which :mod:`genoquery.server.problems` answers with 503
and ``Retry-After``.

Cost: :func:`check_cost`, called by the routes once the cohort is resolved and before counting or
testing, estimates the work as the ALT alleles of the region (one ``count(*)`` on the index) times
the cohort's members and answers 413 over ``Settings.max_cost``, and below the controlled tier
limits an association request to ``Settings.max_tested_alleles`` alleles. Below the controlled tier
the cohort's size enters the estimate rounded up to 1, 2 or 5 times a power of ten, and no message
names it: whether a request is refused must not tell its exact size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genoquery.deadline import deadline
from genoquery.index.genes import find_gene
from genoquery.query.store import Store
from genoquery.server.auth import Principal
from genoquery.server.context import Context
from genoquery.server.problems import ApiError
from genoquery.storage.regions import resolve_contig


class TimeLimit:
    """ASGI middleware: each HTTP request's work runs under a deadline of ``seconds``."""

    def __init__(self, app, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with deadline(self.seconds):
            await self.app(scope, receive, send)


def coarse(n: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``n``."""
    if n <= 1:
        return 1
    power = 10 ** (len(str(n)) - 1)
    return next(step * power for step in (1, 2, 5, 10) if step * power >= n)


def count_alleles(
    store: Store, region: str | None = None, gene: str | None = None, variants: str | Sequence[str] | None = None
) -> int:
    """ALT alleles a request reads: in ``region``, in ``gene``'s loci, or one per listed variant
    (a list, or keys and rsIDs comma-separated); every allele of the store when none is given. A
    contig or gene the store does not hold counts 0 here (the request itself then says what is wrong)."""
    if variants is not None:
        return len([v for v in variants.split(",") if v.strip()] if isinstance(variants, str) else variants)
    return _over_loci(store, "count(*)", region, gene)


def count_copies(store: Store, region: str | None = None, gene: str | None = None) -> int:
    """ALT allele copies in the whole store over ``region`` or ``gene``'s loci (every allele when
    neither is given): a bound on the carrier rows a request about them builds."""
    return _over_loci(store, "coalesce(sum(ac), 0)", region, gene)


def _over_loci(store: Store, aggregate: str, region: str | None, gene: str | None) -> int:
    """``aggregate`` over the index's variants in ``region``, in ``gene``'s loci, or in the whole store."""
    loci = []
    if region is not None:
        where, params = store.region_filter(region)
        loci.append((where, params))
    elif gene is not None:
        for found in find_gene(store.connection, gene):
            contig = resolve_contig(found.contig, store.contigs)
            if contig is not None:
                loci.append(("WHERE contig = ? AND pos BETWEEN ? AND ?", [contig, found.start, found.end]))
    else:
        loci.append(("", []))
    return sum(
        int(store.sql(f"SELECT {aggregate} AS n FROM variants {where}", params)["n"][0].as_py())
        for where, params in loci
    )


def _cohort_size(ctx: Context, principal: Principal, members: np.ndarray | None) -> int:
    """The cohort's size as a cost estimate uses it: rounded up by :func:`coarse` below the
    controlled tier, so whether a request is refused does not tell its exact size."""
    size = ctx.n_samples if members is None else len(members)
    return coarse(size) if principal.aggregate_only else size


def check_cost(
    ctx: Context,
    store: Store,
    principal: Principal,
    members: np.ndarray | None,
    what: str,
    region: str | None = None,
    gene: str | None = None,
    variants: str | Sequence[str] | None = None,
    *,
    tests: bool = False,
) -> int:
    """Refuse (413) ``what`` (a request about ``region``, ``gene`` or ``variants``: see
    :func:`count_alleles`) when its ALT alleles times the cohort's
    ``members`` (sorted sample indexes; None: every sample) exceed ``Settings.max_cost``, or, with
    ``tests`` below the controlled tier, when it would test more than ``Settings.max_tested_alleles``
    alleles. Returns the number of alleles."""
    settings = ctx.settings
    alleles = count_alleles(store, region=region, gene=gene, variants=variants)
    size = _cohort_size(ctx, principal, members)
    cost = alleles * size
    if cost > settings.max_cost:
        cohort = "the cohort" if principal.aggregate_only else f"{size:,} samples"
        raise ApiError(
            413,
            f"{what} over {alleles:,} ALT alleles for {cohort} would count about {cost:.2g} calls, over this "
            f"server's limit of {settings.max_cost:.2g}; narrow the region or the cohort",
        )
    if tests and principal.aggregate_only and alleles > settings.max_tested_alleles:
        raise ApiError(
            413,
            f"{what} would test {alleles:,} ALT alleles, over the {settings.max_tested_alleles:,} allowed per "
            "request below the controlled tier; narrow the region or list fewer variants",
        )
    return alleles


def check_carriers(
    ctx: Context,
    store: Store,
    principal: Principal,
    members: np.ndarray | None,
    what: str,
    region: str | None,
    gene: str | None,
) -> None:
    """Refuse (413) ``what`` about the carriers of a region or gene whose carrier rows could pass
    ``Settings.max_carrier_rows``: the whole store's ALT copies there (filters such as ``af_max``
    ignored: the estimate must not depend on exact frequencies) times the cohort's share of the
    samples (rounded as in :func:`check_cost` below the controlled tier). One variant is never refused."""
    if region is None and gene is None:
        return
    size = _cohort_size(ctx, principal, members)
    rows = count_copies(store, region=region, gene=gene) * min(1.0, size / max(ctx.n_samples, 1))
    if rows > ctx.settings.max_carrier_rows:
        raise ApiError(
            413,
            f"{what} would gather about {rows:.2g} carrier rows, over this server's limit of "
            f"{ctx.settings.max_carrier_rows:.2g}; narrow the region, or ask for a gene",
        )


def check_frequencies(
    ctx: Context, store: Store, principal: Principal, region: str, members: np.ndarray | None, by: str | None
) -> None:
    """:func:`check_cost` of cohort frequencies; free when they are the whole store's statistics
    that the index holds (no cohort, and no grouping or one the index has statistics for)."""
    if members is None and (by is None or by in store.info.get("groupings", [])):
        return
    check_cost(ctx, store, principal, members, "cohort frequencies", region)
