"""Genotype-phenotype association: per-allele GWAS tests, PheWAS of one allele, carrier 2x2 tables.

Each ALT allele is tested with additive coding (copies 0/1/2; haploid calls 0/1) by
:mod:`genoquery.query.association.regression`; samples with a missing genotype are excluded from
that allele's test, samples missing the phenotype or a covariate from every test
(:mod:`genoquery.query.association.design`). Results are Arrow tables in genome order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from genoquery.deadline import Prefetch, ahead, check
from genoquery.errors import QueryError
from genoquery.query.association.design import (
    PC_COLUMN,
    Design,
    build_design,
    cases,
    condition_codes,
    expand_covariates,
    person_frame,
)
from genoquery.query.association.dosages import AlleleDosages
from genoquery.query.association.regression import (
    TESTS,
    Covariates,
    allele_sums,
    linear,
    logistic,
    null_logistic,
)
from genoquery.query.association.store_dosages import store_dosages
from genoquery.storage.schema import allele_keys

if TYPE_CHECKING:
    from genoquery.query.store import Store

MODELS = ("linear", "logistic")
RESULT_TYPES = {
    "site_row": pa.int64(),
    "allele": pa.int16(),
    "model": pa.string(),
    "n": pa.int64(),
    "n_cases": pa.int64(),
    "n_controls": pa.int64(),
    "ac": pa.int64(),
    "an": pa.int64(),
    "af": pa.float64(),
    "mac": pa.int64(),
    "n_carriers": pa.int64(),
    "case_ac": pa.int64(),
    "beta": pa.float64(),
    "se": pa.float64(),
    "statistic": pa.float64(),
    "p": pa.float64(),
    "odds_ratio": pa.float64(),
    "status": pa.string(),
    "firth": pa.bool_(),
    "test": pa.string(),
}
VARIANT_FIELDS = ("variant_key", "contig", "pos", "ref", "alt", "id")


def tested_alleles(
    store: Store, region: str | Sequence[str] | None, variants: list[str] | str | None, gene: str | None
) -> pa.Table:
    """The ALT alleles to test (``site_row``, ``allele``), from at most one of the three selections:
    a region or a list of regions (an allele in two of them once), keys, or a gene; none is
    every allele of every contig of the store."""
    if sum(x is not None for x in (region, variants, gene)) > 1:
        raise QueryError(
            "give at most one of region=, variants= or gene= to choose the variants to test "
            "(none tests every allele of the store)"
        )
    if variants is not None:
        keys = [variants] if isinstance(variants, str) else list(variants)
        if not keys:
            raise QueryError("variants= is an empty list")
        return pa.concat_tables([store.lookup(k) for k in keys])
    if gene is not None:
        return store.lookup(gene=gene)
    regions = [region] if isinstance(region, str) else store.contigs if region is None else list(region)
    if not regions:
        raise QueryError("region= is an empty list")
    found = pa.concat_tables([store.lookup(region=r) for r in regions])
    key = allele_keys(found)
    return found.take(np.sort(np.unique(key, return_index=True)[1]))


def _stats() -> ModuleType:
    """scipy.stats, imported on first use: ~0.5 s of every ``genoquery assoc glm`` process's start
    (p-values come from scipy.special, which it imports anyway)."""
    return import_module("scipy.stats")


def _members(store: Store, cohort) -> np.ndarray:
    """The cohort's sample indexes; every sample not withdrawn when ``cohort`` is None."""
    return store.cohort(cohort) if cohort is not None else store.active_samples


def fit(
    store: Store,
    design: Design,
    model: str,
    dosages: tuple[np.ndarray, Iterable[AlleleDosages]],
    min_mac: int,
    screen: float | None = None,
) -> pa.Table:
    """One result row per allele of ``dosages``: :func:`fit_blocks`, put together."""
    parts = list(fit_blocks(store, design, model, dosages, min_mac, screen=screen))
    return pa.concat_tables(parts) if parts else pa.schema(RESULT_TYPES).empty_table()


def fit_blocks(
    store: Store,
    design: Design,
    model: str,
    dosages: tuple[np.ndarray, Iterable[AlleleDosages]],
    min_mac: int,
    bar: tqdm | None = None,
    screen: float | None = None,
) -> Iterator[pa.Table]:
    """One result row per allele of ``dosages`` (the haploid masks and the dosages of
    :func:`~genoquery.query.association.store_dosages.store_dosages`; columns :data:`RESULT_TYPES`),
    a table per block of alleles as it is fitted; ``bar`` counts the alleles. ``screen``
    (logistic, :func:`screen_threshold`): the score test first, the exact fit where its p is at
    most this."""
    cov = Covariates(design, store.info["samples"])
    haploid, dosages = dosages
    hap_analysed = haploid[:, design.samples].sum(axis=1) if len(haploid) else np.zeros(0, np.int64)
    null = null_logistic(cov) if model == "logistic" else None
    # the next blocks' dosages are decoded while this one is fitted (already being read: Prefetch)
    blocks = dosages if isinstance(dosages, Prefetch) else ahead(iter(dosages))
    with _helper(model) as helper:
        yield from _fitted(design, model, cov, null, haploid, hap_analysed, blocks, min_mac, bar, screen, helper)


def _helper(model: str) -> AbstractContextManager[ThreadPoolExecutor | None]:
    """The thread on which a linear scan sums each block's listed calls while this one sums its
    code rows (:func:`~.regression.allele_sums`); None for logistic scans (no code rows). At 10^6
    samples the main thread summed both, 1.6 s of chr20's ~1.8 s of fits, while the thread reading
    the blocks used ~0.9 s of the other core."""
    if model != "linear":
        return nullcontext()
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="genoquery-sums")


def _fitted(
    design: Design,
    model: str,
    cov: Covariates,
    null: np.ndarray | None,
    haploid: np.ndarray,
    hap_analysed: np.ndarray,
    blocks: Iterable[AlleleDosages],
    min_mac: int,
    bar: tqdm | None,
    screen: float | None,
    helper: ThreadPoolExecutor | None,
) -> Iterator[pa.Table]:
    """:func:`fit_blocks`' tables, from its covariates ``cov`` and logistic ``null`` model."""
    for batch in blocks:
        check()  # the request's time limit (genoquery.deadline), per block of alleles
        if bar is not None:
            bar.update(len(batch.allele))
        y = cov.y_star if null is None else design.y
        counts, sums = allele_sums(cov, haploid, hap_analysed, batch, y, helper)
        mac = np.minimum(counts.ac, counts.an - counts.ac)
        testable = (mac >= max(min_mac, 1)) & (counts.n > 0)
        result = (
            linear(cov, counts, sums, testable)
            if null is None
            else logistic(cov, null, counts, batch, testable, screen)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            af = np.where(counts.an > 0, counts.ac / counts.an, np.nan)
        binary = design.binary
        yield (
            pa.table(
                {
                    "site_row": batch.site_row,
                    "allele": batch.allele,
                    "model": [model] * len(mac),
                    "n": counts.n,
                    "n_cases": counts.case_n if binary else pa.nulls(len(mac), pa.int64()),
                    "n_controls": counts.n - counts.case_n if binary else pa.nulls(len(mac), pa.int64()),
                    "ac": counts.ac,
                    "an": counts.an,
                    "af": pa.array(af, from_pandas=True),
                    "mac": mac,
                    "n_carriers": counts.n_carriers,
                    "case_ac": counts.case_ac if binary else pa.nulls(len(mac), pa.int64()),
                    **{
                        c: pa.array(v, from_pandas=True)
                        for c, v in (  # NaN (not tested) as null
                            ("beta", result.beta),
                            ("se", result.se),
                            ("statistic", result.statistic),
                            ("p", result.p),
                        )
                    },
                    "odds_ratio": pa.array(np.exp(result.beta), from_pandas=True)
                    if model == "logistic"
                    else pa.nulls(len(mac), pa.float64()),
                    "status": result.status.astype(str),
                    "firth": result.firth,
                    "test": result.test,
                }
            ).cast(pa.schema(RESULT_TYPES))
        )


def _model(design: Design, model: str | None) -> str:
    if model is None:
        return "logistic" if design.binary else "linear"
    if model not in MODELS:
        raise QueryError(f"unknown model {model!r}; choose {' or '.join(MODELS)}")
    return model


def screen_threshold(model: str | None, test: str, prescreen_p: float | None) -> float | None:
    """The score-p threshold of the exact fit (:func:`~.regression.logistic`'s ``screen``): None
    for the exact fit of every allele (``test="wald"``), -inf for none (``test="score"``), else
    ``prescreen_p``; a :class:`QueryError` for an unknown test, a threshold outside (0, 1], or
    either with the linear model."""
    if test not in TESTS:
        raise QueryError(f"unknown test {test!r}; choose {' or '.join(TESTS)}")
    if prescreen_p is not None and not 0 < prescreen_p <= 1:
        raise QueryError(f"the prescreen p threshold must be in (0, 1], not {prescreen_p}")
    if test == "score" and prescreen_p is not None:
        raise QueryError("a prescreen chooses the alleles given the Wald/Firth fit; with the score test none are")
    if model == "linear" and (test == "score" or prescreen_p is not None):
        raise QueryError("the score test and its prescreen are for the logistic model")
    return -np.inf if test == "score" else prescreen_p


def associate_blocks(
    store: Store,
    phenotype: str | list[str],
    covariates: list[str],
    *,
    region: str | Sequence[str] | None = None,
    variants: list[str] | str | None = None,
    gene: str | None = None,
    cohort=None,
    model: str | None = None,
    min_mac: int = 20,
    test: str = "wald",
    prescreen_p: float | None = None,
    progress: bool = False,
) -> Iterator[pa.Table]:
    """Per-allele association results a block of alleles at a time, in genome order, as they are
    fitted; see :meth:`genoquery.query.store.Store.associate_blocks`."""
    if model is not None and model not in MODELS:
        raise QueryError(f"unknown model {model!r}; choose {' or '.join(MODELS)}")
    screen_threshold(model, test, prescreen_p)  # before any work
    wanted = tested_alleles(store, region, variants, gene)
    early = None
    if model is not None:  # the dosages wanted are known: they are read while the design is built
        haploid, dosages = store_dosages(store, _rows(wanted), _members(store, cohort), keep_codes=model == "linear")
        early = haploid, Prefetch(dosages, READ_AHEAD if model == "linear" else LOGISTIC_READ_AHEAD)
    try:
        design, model = prepared_design(store, phenotype, covariates, cohort, model)
        screen = screen_threshold(model, test, prescreen_p)
        yield from fitted_blocks(store, wanted, design, model, min_mac, progress, screen, early)
    finally:
        if early is not None:
            early[1].close()


READ_AHEAD = 8
"""Blocks of dosages a linear association reads ahead of its fits once it knows the model: the
design (person table, covariates' basis, weights) is built meanwhile. At 10^6 samples a block is
~16 MB of code rows, read in ~30 ms."""
LOGISTIC_READ_AHEAD = 2
"""The same for a logistic association, whose blocks are carrier lists (up to ~144 MB each:
:data:`~.store_dosages.CARRIER_BLOCK_BYTES`) and whose fits take far longer than the reads."""


def _rows(wanted: pa.Table) -> np.ndarray:
    """The sorted distinct site rows of the alleles ``wanted``."""
    return np.unique(wanted["site_row"].to_numpy())


def prepared_design(
    store: Store, phenotype: str | list[str], covariates: list[str], cohort, model: str | None
) -> tuple[Design, str]:
    """The design (samples, phenotype, covariates) and the model of an association: what every
    block and every partition of a scan shares."""
    design = build_design(
        store, phenotype, covariates, _members(store, cohort), binary=True if model == "logistic" else None
    )
    return design, _model(design, model)


def fitted_blocks(
    store: Store,
    wanted: pa.Table,
    design: Design,
    model: str,
    min_mac: int,
    progress: bool,
    screen: float | None = None,
    dosages: tuple[np.ndarray, Iterable[AlleleDosages]] | None = None,
) -> Iterator[pa.Table]:
    """The results of the ``wanted`` alleles (:func:`tested_alleles`) under ``design`` and ``model``
    (:func:`prepared_design`; ``screen``: :func:`screen_threshold`), a block at a time, in genome
    order; at least one table. ``dosages``: theirs as :func:`store_dosages` gives them, over the
    design's samples or more (the others' calls are skipped), when already being read."""
    with tqdm(total=wanted.num_rows, unit="allele", desc=f"associate {design.phenotype}", disable=not progress) as bar:
        if dosages is None:  # codes: linear sums
            dosages = store_dosages(store, _rows(wanted), design.samples, keep_codes=model == "linear")
        wanted = wanted.take(np.argsort(wanted["site_row"].to_numpy(), kind="stable"))
        at = wanted["site_row"].to_numpy()
        empty = True
        for results in fit_blocks(store, design, model, dosages, min_mac, bar, screen):
            empty = False
            block = results["site_row"].to_numpy()
            lo, hi = np.searchsorted(at, block.min(initial=0)), np.searchsorted(at, block.max(initial=-1), "right")
            yield _with_variants(results, wanted.slice(lo, hi - lo))  # its alleles' rows only
    if empty:
        yield _with_variants(pa.schema(RESULT_TYPES).empty_table(), wanted)


def _with_variants(results: pa.Table, wanted: pa.Table) -> pa.Table:
    """The results of the ``wanted`` alleles (an allele listed twice: once) with their variant
    columns first, in genome order. A join by (site_row, allele) in numpy: a block's join in
    DuckDB cost ~15 ms, over a second of a 1 Mb scan once results stream by block."""
    w_key = allele_keys(wanted)
    r_key = allele_keys(results)
    keys, first = np.unique(w_key, return_index=True)
    at = np.minimum(np.searchsorted(keys, r_key), max(len(keys) - 1, 0))
    found = np.flatnonzero(keys[at] == r_key) if len(keys) else np.zeros(0, np.int64)
    found = found[np.argsort(r_key[found], kind="stable")]
    variant, result = wanted.take(first[at[found]]), results.take(found)
    return pa.table({**{c: variant[c] for c in VARIANT_FIELDS}, **{c: result[c] for c in RESULT_TYPES}})


def _one_allele(store: Store, variant: str) -> pa.Table:
    found = store.lookup(variant)
    if found.num_rows != 1:
        keys = ", ".join(found["variant_key"].to_pylist())
        raise QueryError(f"{variant!r} names {found.num_rows} ALT alleles ({keys}); give one variant key")
    return found


def phewas(
    store: Store, variant: str, phenotypes: list[str] | None, covariates: list[str], cohort, min_cases: int
) -> pa.Table:
    """One allele against condition codes and quantitative person columns; see :meth:`Store.phewas`."""
    found = _one_allele(store, variant)
    members = _members(store, cohort)
    if phenotypes is None:
        phenotypes = _all_phenotypes(store, covariates, min_cases)
    rows = []
    allele = found["allele"][0].as_py()
    haploid, dosages = store_dosages(store, found["site_row"].to_numpy(), members)
    dosages = (haploid, list(dosages))  # decoded once, for every phenotype
    for phenotype in phenotypes:
        check()
        design = build_design(store, phenotype, covariates, members)
        if design.binary and min(design.y.sum(), len(design.y) - design.y.sum()) < min_cases:
            continue
        result = fit(store, design, _model(design, None), dosages, 1).filter(pc.field("allele") == allele)
        rows.append(result.append_column("phenotype", pa.array([design.phenotype], pa.string())))
    if not rows:
        raise QueryError(f"no phenotype with at least {min_cases} cases or a quantitative value to test")
    table = pa.concat_tables(rows)
    p = table["p"].to_numpy(zero_copy_only=False)
    tested = np.isfinite(p)
    bonferroni, bh = np.full(len(p), np.nan), np.full(len(p), np.nan)
    bonferroni[tested] = np.minimum(1.0, p[tested] * tested.sum())
    bh[tested] = _stats().false_discovery_control(p[tested], method="bh")
    table = table.append_column("p_bonferroni", pa.array(bonferroni)).append_column("q_bh", pa.array(bh))
    columns = [
        "phenotype",
        "model",
        "n",
        "n_cases",
        "n_controls",
        "ac",
        "af",
        "beta",
        "se",
        "odds_ratio",
        "statistic",
        "p",
        "p_bonferroni",
        "q_bh",
        "status",
        "firth",
        "test",
    ]
    variant_columns = pa.table({c: [found[c][0].as_py()] * table.num_rows for c in VARIANT_FIELDS})
    table = table.select(columns).sort_by([("p", "ascending")])  # strongest first, untested last
    for i, c in enumerate(VARIANT_FIELDS):
        table = table.add_column(i, c, variant_columns[c])
    return table


def _all_phenotypes(store: Store, covariates: list[str], min_cases: int) -> list[str]:
    """Every condition code with ``min_cases`` cases in the store, then every numeric person column
    not used as a covariate (nor ``birth_year`` when ``age`` is one, nor principal components)."""
    codes = condition_codes(store)
    persons = person_frame(store)
    used = set(expand_covariates(persons, list(covariates))) | {"sample_id"}
    if "age" in used:
        used.add("birth_year")
    numeric = [
        c
        for c in persons.columns
        if c not in used and not PC_COLUMN.fullmatch(c) and pd.api.types.is_numeric_dtype(persons[c])
    ]
    return [c for c in codes.index if codes[c] >= min_cases] + numeric


def carrier_table(store: Store, carriers: pa.Table, condition: list[str], cohort) -> pa.Table:
    """The 2x2 table of carriers (samples in ``carriers``) x cases of ``condition`` among the cohort
    (every sample when None), with the sample odds ratio and Fisher's exact two-sided p-value."""
    members = _members(store, cohort)
    carrier = np.isin(members, carriers["sample_index"].to_numpy())
    case = np.isin(members, cases(store, condition))
    table = [
        [int((carrier & case).sum()), int((carrier & ~case).sum())],
        [int((~carrier & case).sum()), int((~carrier & ~case).sum())],
    ]
    odds_ratio, p = _stats().fisher_exact(table)
    n_variants = len(
        {(r, a) for r, a in zip(carriers["site_row"].to_pylist(), carriers["allele"].to_pylist(), strict=True)}
    )
    return pa.table(
        {
            "condition": ["|".join(condition)],
            "n_variants": [n_variants],
            "carrier_cases": [table[0][0]],
            "carrier_controls": [table[0][1]],
            "noncarrier_cases": [table[1][0]],
            "noncarrier_controls": [table[1][1]],
            "odds_ratio": [float(odds_ratio)],
            "p": [float(p)],
        }
    )
