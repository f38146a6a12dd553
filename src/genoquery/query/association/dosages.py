"""Additive allele dosages for association tests, decoded from the query encoding of calls.

This is the one place where association reads genotypes. Per ALT allele (after
``bcftools norm -m-``: another ALT allele counts as REF) a sample's dosage is its
copies of the allele: 0, 1 or 2 for a diploid call, 0 or 1 for a haploid call.
A call with any missing allele (``./.``, ``.``, ``./0``, ``./1``) has no dosage:
the sample is *missing* for every allele of the site. Only carriers (dosage > 0)
and missing samples are listed; every other sample has dosage 0, so a rare allele
costs its few calls whatever the cohort size, and a dense site's 2-bit codes are
decoded for the analysed samples only (:func:`genoquery.query.carriers.non_ref_calls`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from genoquery.query.carriers import non_ref_calls
from genoquery.storage.call_codes import MAX_GAP
from genoquery.storage.call_reader import SiteCalls


@dataclass(frozen=True)
class AlleleDosages:
    """The dosages of the ALT alleles of a block of sites (``n`` alleles, in site then allele order).

    ``site_row`` and ``allele`` (1-based ALT index) name each allele; ``pattern`` is its
    site's haploid pattern (-1: all diploid). Carriers: ``carrier`` (n + 1) offsets into
    ``sample`` (int64 store sample indexes, ascending per allele) and ``dosage`` (int8, 1
    or 2). Missing genotypes: ``missing`` (n + 1) offsets into ``missing_sample`` (int64,
    ascending per allele).
    """

    site_row: np.ndarray
    allele: np.ndarray
    pattern: np.ndarray
    carrier: np.ndarray
    sample: np.ndarray
    dosage: np.ndarray
    missing: np.ndarray
    missing_sample: np.ndarray


def _missing_calls(batch: SiteCalls) -> tuple[np.ndarray, np.ndarray]:
    """(site index in the batch, sample index) of each missing-call token that is a call."""
    gap = (batch.missing_tokens & MAX_GAP).astype(np.int64)
    step = np.where(gap == 0, MAX_GAP, gap)
    before = np.concatenate([[0], np.cumsum(step)])
    site = np.repeat(np.arange(len(batch.missing) - 1), np.diff(batch.missing))
    sample = before[1:] - before[batch.missing[:-1]][site] - 1
    return site[gap != 0], sample[gap != 0]


def _by_allele(keys: np.ndarray, n: int, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """``columns`` sorted by ``keys`` (allele index, stable), with (n + 1) offsets first."""
    order = np.argsort(keys, kind="stable")
    offsets = np.searchsorted(keys[order], np.arange(n + 1))
    return (offsets, *(c[order] for c in columns))


def allele_dosages(
    batches: Iterator[SiteCalls], haploid: np.ndarray, members: np.ndarray | None = None, sample_offset: int = 0
) -> Iterator[AlleleDosages]:
    """The dosages of every ALT allele of each batch (read with ``missing=True``) among ``members``
    (sorted sample indexes of the genotype batch, None for all). Sample indexes in ``batches`` are
    relative to their genotype batch; ``sample_offset`` is added to every index yielded."""
    in_members = None
    if members is not None:
        in_members = np.zeros(haploid.shape[1], dtype=bool)
        in_members[members] = True
    for batch in batches:
        site, sample, gt = non_ref_calls(batch, haploid, members)
        partial = (gt == -1).any(axis=1)
        miss_site, miss_sample = _missing_calls(batch)
        if in_members is not None:
            keep = in_members[miss_sample]
            miss_site, miss_sample = miss_site[keep], miss_sample[keep]
        miss_site = np.concatenate([miss_site, site[partial]])
        miss_sample = np.concatenate([miss_sample, sample[partial]])
        site, sample, gt = site[~partial], sample[~partial], gt[~partial]
        n_alt = (batch.n_alleles - 1).astype(np.int64)
        first = np.concatenate([[0], np.cumsum(n_alt)])  # first allele index of each site
        n = int(first[-1])
        keys, samples, doses = [], [], []
        for a in range(1, int(batch.n_alleles.max(initial=1))):
            copies = (gt == a).sum(axis=1, dtype=np.int8)
            hit = copies > 0
            keys.append(first[site[hit]] + a - 1), samples.append(sample[hit]), doses.append(copies[hit])
        carrier, c_sample, c_dose = _by_allele(
            np.concatenate(keys or [np.zeros(0, np.int64)]),
            n,
            np.concatenate(samples or [np.zeros(0, np.int64)]),
            np.concatenate(doses or [np.zeros(0, np.int8)]),
        )
        allele_site = np.repeat(np.arange(len(n_alt)), n_alt)
        order = np.lexsort((miss_sample, miss_site))
        miss_site, miss_sample = miss_site[order], miss_sample[order]
        bounds = np.searchsorted(miss_site, np.arange(len(n_alt) + 1))
        per_allele = np.diff(bounds)[allele_site]
        missing = np.concatenate([[0], np.cumsum(per_allele)])
        rows = np.repeat(bounds[allele_site] - missing[:-1], per_allele) + np.arange(missing[-1])
        yield AlleleDosages(
            site_row=batch.site_row[allele_site],
            allele=np.arange(n) - first[allele_site] + 1,
            pattern=batch.pattern[allele_site],
            carrier=carrier,
            sample=c_sample.astype(np.int64) + sample_offset,
            dosage=c_dose,
            missing=missing,
            missing_sample=miss_sample[rows].astype(np.int64) + sample_offset,
        )
