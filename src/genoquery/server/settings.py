"""Server settings: disclosure thresholds, budgets and limits (all configurable)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

ENV_STORE = "GENOQUERY_SERVE_STORE"
ENV_SETTINGS = "GENOQUERY_SERVE_SETTINGS"


@dataclass(frozen=True)
class Settings:
    """``max_suppressed``: counts 1..this are never released in the public and registered tiers;
    ``min_cohort``: smaller cohorts (and cohorts differing from an earlier one of the same token by
    fewer members) are refused there; ``rounding``: released counts above ``max_suppressed`` are
    randomly rounded to a multiple of this (1: exact); ``budget``: answers touching a rare allele
    (AC 1..``max_suppressed``) allowed per token (public: per client address) per ``budget_window_s``;
    ``max_page``: rows per page; ``max_genotype_calls``: calls per genotype request (use the VCF
    export beyond); ``pool``: read-only store connections per worker; ``lookup_cache``: answers of
    variant lookups by key kept per worker (about 1 kB each; emptied when the index is replaced);
    ``cohort_cache``: members of this many filter-expression cohorts kept per worker (8 bytes per
    member: 4 MB for half of 10^6 samples), so a cohort asked about region after region is resolved once;
    ``audit_fsync_s``: the audit log is fsynced this often (0: after every request);
    ``token_cache_s``: how long a token check is reused (a revocation takes effect within it);
    ``request_time_s``: time limit of a request's work (past it: 503, see :mod:`genoquery.deadline`);
    ``max_cost``: largest estimated cost of a counting request, ALT alleles in its region times
    cohort members (413 beyond; the default lets 1 Mb at 10^5 samples through with 50,000 alleles);
    ``max_tested_alleles``: ALT alleles an association request may test below the controlled tier;
    ``max_carrier_rows``: carrier rows a carriers or carrier-table request over a region or gene may
    gather (bounded by the ALT copies there: 413 beyond; about 1 s per million rows at 10^5 samples)."""

    max_suppressed: int = 20
    min_cohort: int = 50
    rounding: int = 10
    budget: int = 1000
    budget_window_s: float = 86_400.0
    max_page: int = 1000
    max_genotype_calls: int = 1_000_000
    pool: int = 4
    lookup_cache: int = 20_000
    cohort_cache: int = 16
    audit_fsync_s: float = 0.2
    token_cache_s: float = 1.0
    request_time_s: float = 10.0
    max_cost: float = 5e9
    max_tested_alleles: int = 10_000
    max_carrier_rows: float = 1e7

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Settings:
        known = {f.name for f in fields(cls)}
        values = json.loads(os.environ.get(ENV_SETTINGS, "{}"))
        return cls(**{k: v for k, v in values.items() if k in known})
