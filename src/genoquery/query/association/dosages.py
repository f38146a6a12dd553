"""Additive allele dosages for association tests, decoded from the query encoding of calls.

This is the one place where association reads genotypes. Per ALT allele (after
``bcftools norm -m-``: another ALT allele counts as REF) a sample's dosage is its
copies of the allele: 0, 1 or 2 for a diploid call, 0 or 1 for a haploid call.
A call with any missing allele (``./.``, ``.``, ``./0``, ``./1``) has no dosage:
the sample is *missing* for every allele of the site. Only carriers (dosage > 0)
and missing samples are listed; every other sample has dosage 0, so a rare allele
costs its few calls whatever the cohort size. A dense site's calls coded 1 or 2 (ALT 1's
copies) are either listed like the others, for the analysed samples only
(:func:`genoquery.query.carriers.coded_calls`, which gives the dosage straight from the code),
or, for kernels that read the codes themselves (linear sums), kept as the 2-bit code rows
(:class:`CodedAlleles`): at 10^6 samples a common allele's ~10^6 listed carriers cost ~17 bytes
each to build and as much to read back, its code row 250 KB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np

from genoquery.query.carriers import coded_calls
from genoquery.storage.call_codes import MAX_GAP
from genoquery.storage.site_calls import SiteCalls


@dataclass(frozen=True)
class CodedAlleles:
    """ALT 1 of dense sites of one genotype batch, whose calls coded 1 (one copy) or 2 (two copies;
    one for a haploid call) are kept as codes: ``allele`` (int64 indexes into the alleles of the
    :class:`AlleleDosages` holding them), ``codes`` (len(allele), ceil(samples / 4)) uint8 over
    every sample of the batch (members are not applied: consumers keep their own samples),
    ``offset`` (global index of the batch's sample 0), ``haploid`` (patterns, batch samples) bool
    and ``pattern`` (per row, its haploid pattern in ``haploid`` or -1)."""

    allele: np.ndarray
    codes: np.ndarray
    offset: int
    haploid: np.ndarray
    pattern: np.ndarray


@dataclass(frozen=True)
class AlleleDosages:
    """The dosages of the ALT alleles of a block of sites (``n`` alleles, in site then allele order).

    ``site_row`` and ``allele`` (1-based ALT index) name each allele; ``pattern`` is its
    site's haploid pattern (-1: all diploid). Carriers: ``carrier`` (n + 1) offsets into
    ``sample`` (int64 store sample indexes, ascending per allele) and ``dosage`` (int8, 1
    or 2). Missing genotypes: ``missing`` (n + 1) offsets into ``missing_sample`` (int64,
    ascending per allele). ``coded``: carriers kept as codes, in addition to the listed ones.
    """

    site_row: np.ndarray
    allele: np.ndarray
    pattern: np.ndarray
    carrier: np.ndarray
    sample: np.ndarray
    dosage: np.ndarray
    missing: np.ndarray
    missing_sample: np.ndarray
    coded: tuple[CodedAlleles, ...] = ()


def _missing_calls(batch: SiteCalls) -> tuple[np.ndarray, np.ndarray]:
    """(site index in the batch, sample index) of each missing-call token that is a call."""
    gap = (batch.missing_tokens & MAX_GAP).astype(np.int64)
    step = np.where(gap == 0, MAX_GAP, gap)
    before = np.concatenate([[0], np.cumsum(step)])
    site = np.repeat(np.arange(len(batch.missing) - 1), np.diff(batch.missing))
    sample = before[1:] - before[batch.missing[:-1]][site] - 1
    return site[gap != 0], sample[gap != 0]


def sorted_order(keys: np.ndarray, then: np.ndarray) -> np.ndarray | slice:
    """The order sorting entries by ``keys`` then ``then`` (both non-negative), or the whole slice
    when they already are sorted, as one genotype batch's entries mostly are: a linear check instead
    of sorting ~10^7 entries of a window of common alleles at 10^6 samples. Entries that are a few
    sorted runs (listed calls, then coded ones) are merged by a stable sort in linear time."""
    if not len(keys):
        return slice(None)
    d_keys = np.diff(keys)
    if ((d_keys > 0) | ((d_keys == 0) & (np.diff(then) >= 0))).all():
        return slice(None)
    return np.argsort(keys.astype(np.int64) * (int(then.max()) + 1) + then, kind="stable")


@numba.njit(nogil=True, cache=True)
def _listed_by_allele(listed, listed_sample, listed_gt, in_members, first, out):  # pragma: no cover - compiled
    """The listed calls of a block's sites among the members (``in_members``, a flag per sample)
    by ALT allele (``first``: each site's first allele index): a call with a missing allele is
    the site's missing call, else each ALT allele it carries one or two copies of is carried by
    its sample. With ``out`` None, returns the carriers per allele and the missing calls; given
    (offsets, samples, doses, missing site, missing sample), fills them, allele by allele in
    sample order (a site's listed calls are in sample order). One pass instead of numpy's passes
    per ALT index over ~10^7 listed calls of a block at 10^6 samples."""
    counts = np.zeros(first[-1], np.int64)
    at = np.zeros(first[-1], np.int64) if out is None else out[0][:-1].copy()
    n_missing = 0
    for site in range(len(listed) - 1):
        single = first[site + 1] - first[site] == 1
        for c in range(listed[site], listed[site + 1]):
            sample = listed_sample[c]
            if not in_members[sample]:
                continue
            one, two = listed_gt[c, 0], listed_gt[c, 1]
            if one == -1 or two == -1:
                if out is not None:
                    out[3][n_missing], out[4][n_missing] = site, sample
                n_missing += 1
                continue
            if single:  # one ALT allele: its copies without branching on each slot (phased 0|1, 1|0)
                dose = (one == 1) + (two == 1)
                if dose > 0:
                    a = first[site]
                    if out is None:
                        counts[a] += 1
                    else:
                        out[1][at[a]], out[2][at[a]] = sample, dose
                        at[a] += 1
                continue
            for allele, dose in ((one, 1 + (two == one)), (two, 1 * (two != one))):
                if allele > 0 and dose > 0:
                    a = first[site] + allele - 1
                    if out is None:
                        counts[a] += 1
                    else:
                        out[1][at[a]], out[2][at[a]] = sample, dose
                        at[a] += 1
    return counts, n_missing


def _listed_carriers(batch: SiteCalls, in_members: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, ...]:
    """(carrier offsets per allele, sample, dose; missing calls' site and sample) of the listed
    calls of ``batch`` (:func:`_listed_by_allele`)."""
    counts, n_missing = _listed_by_allele(batch.listed, batch.listed_sample, batch.listed_gt, in_members, first, None)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    out = (
        offsets,
        np.empty(offsets[-1], np.int64),
        np.empty(offsets[-1], np.int8),
        np.empty(n_missing, np.int64),
        np.empty(n_missing, np.int64),
    )
    _listed_by_allele(batch.listed, batch.listed_sample, batch.listed_gt, in_members, first, out)
    return out


def _by_allele(
    listed: tuple[np.ndarray, np.ndarray, np.ndarray], coded: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, ...]:
    """Carriers' samples and doses by allele index then sample, with (n + 1) offsets first, from
    the listed calls' ``(offsets, sample, dose)`` by allele (:func:`_listed_carriers`) and the coded
    calls' ``(allele index, sample, dose)`` (in order). Each allele's listed carriers go before its
    coded ones, each placed by offset arithmetic, so the coded calls, ~10^7 at 10^6 samples, are
    moved once and never searched or sorted; only an allele with both (a dense site's calls coded
    3 that carry it) is sorted."""
    listed_at = listed[0]
    if not len(coded[0]):
        return listed
    n = len(listed_at) - 1
    coded_at = np.searchsorted(coded[0], np.arange(n + 1))
    n_listed = np.diff(listed_at)
    offsets = np.concatenate([[0], np.cumsum(n_listed + np.diff(coded_at))])
    to_listed = np.repeat(offsets[:-1] - listed_at[:-1], n_listed) + np.arange(listed_at[-1])
    samples, doses = np.empty(offsets[-1], dtype=np.int64), np.empty(offsets[-1], dtype=np.int8)
    samples[to_listed], doses[to_listed] = listed[1], listed[2]
    for a in np.flatnonzero(np.diff(coded_at)).tolist():  # dense alleles: one copy of a run each
        start = offsets[a] + n_listed[a]
        run, span = slice(coded_at[a], coded_at[a + 1]), slice(start, start + coded_at[a + 1] - coded_at[a])
        samples[span], doses[span] = coded[1][run], coded[2][run]
    for a in np.flatnonzero((n_listed > 0) & (np.diff(coded_at) > 0)).tolist():
        span = slice(offsets[a], offsets[a + 1])
        order = np.argsort(samples[span], kind="stable")
        samples[span], doses[span] = samples[span][order], doses[span][order]
    return offsets, samples, doses


def allele_dosages(
    batches: Iterator[SiteCalls],
    haploid: np.ndarray,
    members: np.ndarray | None = None,
    sample_offset: int = 0,
    keep_codes: bool = False,
) -> Iterator[AlleleDosages]:
    """The dosages of every ALT allele of each batch (read with ``missing=True``) among ``members``
    (sorted sample indexes of the genotype batch, None for all). Sample indexes in ``batches`` are
    relative to their genotype batch; ``sample_offset`` is added to every index yielded. With
    ``keep_codes``, dense sites' calls coded 1 or 2 come as :class:`CodedAlleles`, not listed."""
    in_members = np.ones(haploid.shape[1], dtype=bool)
    if members is not None and len(members) < haploid.shape[1]:  # sorted and distinct: else every sample
        in_members[:] = False
        in_members[members] = True
    for batch in batches:
        n_alt = (batch.n_alleles - 1).astype(np.int64)
        first = np.concatenate([[0], np.cumsum(n_alt)])  # first allele index of each site
        n = int(first[-1])
        *listed, partial_site, partial_sample = _listed_carriers(batch, in_members, first)
        miss_site, miss_sample = _missing_calls(batch)
        if members is not None:
            keep = in_members[miss_sample]
            miss_site, miss_sample = miss_site[keep], miss_sample[keep]
        miss_site = np.concatenate([miss_site, partial_site])
        miss_sample = np.concatenate([miss_sample, partial_sample])
        coded: tuple[CodedAlleles, ...] = ()
        if keep_codes and (batch.dense >= 0).any():
            dense_sites = np.flatnonzero(batch.dense >= 0)  # code rows are the dense sites, in order
            coded = (CodedAlleles(first[dense_sites], batch.codes, sample_offset, haploid, batch.pattern[dense_sites]),)
        listed_members = np.zeros(0, np.int64) if keep_codes else members  # no sample: none listed
        d_site, d_sample, code, hap = coded_calls(batch, haploid, listed_members)  # ALT 1's copies, no gt built
        carrier, c_sample, c_dose = _by_allele(
            tuple(listed), (first[d_site], d_sample, np.where(hap, 1, code).astype(np.int8))
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
            sample=_shifted(c_sample, sample_offset),
            dosage=c_dose,
            missing=missing,
            missing_sample=_shifted(miss_sample[rows], sample_offset),
            coded=coded,
        )


def _shifted(samples: np.ndarray, offset: int) -> np.ndarray:
    """``samples`` (a fresh array) as int64 plus ``offset``, copied only where needed: at 10^6
    samples a linear scan's ~2.5 10^7 listed carriers were copied twice (astype, then the sum)."""
    samples = samples.astype(np.int64, copy=False)
    if offset:
        samples += offset
    return samples
