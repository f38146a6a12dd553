"""The query encoding (ingest/call_codes.py) against the ingest's own counting of the same calls.

``block_counts`` counts ``call_genotype`` directly (the ingest's statistics, proven equal
to bcftools in test_ingest_oracle.py); here the encoding and the cohort kernel that reads it
must give exactly the same counts for random cohorts, on call arrays too large for a test VCF
(gaps between missing calls beyond one uint16 token, 70,000 samples) and on small
hypothesis-drawn ones with every kind of call.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genoquery.stats import cohort_counts
from genoquery.stats.allele_stats import Cells, SampleGroups, block_counts
from genoquery.stats.cohort_counts import count_calls
from genoquery.storage.call_codes import MAX_GAP, HaploidPatterns, encode_block
from genoquery.storage.site_calls import SiteCalls

CALLS = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (1, 2), (2, 2), (-1, -1), (-1, 0), (0, -1), (-1, 1), (2, -1)]
HAPLOID = [(0, -2), (1, -2), (2, -2), (-1, -2)]


def site_calls(gt: np.ndarray) -> tuple[SiteCalls, np.ndarray]:
    """The encoding of ``gt`` as a query reads it back, and the haploid masks."""
    patterns = HaploidPatterns(gt.shape[1])
    codes = encode_block(gt, patterns)
    n = len(gt)
    listed = np.concatenate([[0], np.cumsum(np.bincount(codes.row_site, minlength=n))])
    missing = np.concatenate([[0], np.cumsum(np.bincount(codes.token_site, minlength=n))])
    batch = SiteCalls(
        site_row=np.arange(n),
        n_alleles=np.full(n, 3),
        dense=np.where(codes.dense, np.cumsum(codes.dense) - 1, -1),
        pattern=codes.haploid_pattern,
        listed=listed,
        listed_sample=codes.row_sample,
        listed_gt=np.stack([codes.row_a0, codes.row_a1], axis=1),
        missing=missing,
        missing_tokens=codes.token,
        codes=codes.codes,
    )
    masks = patterns.array()
    haploid = (
        np.unpackbits(masks, axis=1, bitorder="little", count=gt.shape[1]).astype(bool)
        if len(masks)
        else np.zeros((0, gt.shape[1]), dtype=bool)
    )
    return batch, haploid


class MemoryReader:
    """The part of :class:`CallReader` that :func:`count_calls` uses, over one encoded block in
    memory; dense codes are visited in inner chunks of ``TILE`` (rows, code bytes), zero-padded
    at the edges as zarr's are, so that the reduction's per-chunk sums are exercised."""

    TILE = (3, 1000)

    def __init__(self, batch: SiteCalls, haploid: np.ndarray) -> None:
        self.batch, self.haploid = batch, haploid

    def sites(self) -> pa.Table:
        batch = self.batch
        return pa.table(
            {
                "dense_row": np.where(batch.dense >= 0, batch.dense, -1),
                "haploid_pattern": batch.pattern,
                "n_alleles": batch.n_alleles,
                "listed_start": batch.listed[:-1].astype(np.int64),
                "n_listed": np.diff(batch.listed).astype(np.int64),
            }
        )

    def blocks(self, sites: pa.Table, missing: bool, codes: bool, listed: bool = True) -> Iterator[SiteCalls]:
        assert missing
        batch = self.batch if codes else dataclasses.replace(self.batch, codes=self.batch.codes[:0])
        if not listed:  # as CallReader.blocks: no site has listed calls, the caller visits them
            none = np.zeros_like(batch.listed)
            batch = dataclasses.replace(
                batch, listed=none, listed_sample=batch.listed_sample[:0], listed_gt=batch.listed_gt[:0]
            )
        yield batch

    def visit_listed(self, rows: slice, visitor) -> None:
        """The listed calls ``rows`` in chunks of ``TILE[1]`` calls, as :meth:`CallReader.visit_listed`."""
        for start in range(rows.start, rows.stop, self.TILE[1]):
            stop = min(start + self.TILE[1], rows.stop)
            within = slice(start - rows.start, stop - rows.start)
            visitor(self.batch.listed_sample[start:stop], self.batch.listed_gt[start:stop], within)

    def visit_codes(self, rows: slice, visitor) -> None:
        codes = self.batch.codes[rows]
        for r, c in itertools.product(range(0, len(codes), self.TILE[0]), range(0, codes.shape[1], self.TILE[1])):
            part = codes[r : r + self.TILE[0], c : c + self.TILE[1]]
            tile = np.zeros(self.TILE, dtype=np.uint8)
            tile[: part.shape[0], : part.shape[1]] = part
            visitor(
                tile,
                (slice(r, r + len(part)), slice(c, c + part.shape[1])),
                (slice(0, len(part)), slice(0, part.shape[1])),
            )


def assert_same_stats(gt: np.ndarray, members: np.ndarray, groups: SampleGroups | None) -> None:
    cells = Cells.build(gt.shape[1], (groups,) if groups else ()).restrict(members)
    want_sites, want_alleles = block_counts(gt, np.full(len(gt), 3), cells)
    reader = MemoryReader(*site_calls(gt))
    ((_, got_sites, got_alleles),) = count_calls(reader, reader.sites(), cells, members)
    assert np.array_equal(got_sites, want_sites)
    assert np.array_equal(got_alleles, want_alleles)


def random_calls(rng: np.random.Generator, n_sites: int, n_samples: int, missing: float) -> np.ndarray:
    """Sites from monomorphic to common, with missing and partial calls; haploid males on odd sites."""
    gt = np.zeros((n_sites, n_samples, 2), dtype=np.int8)
    for v in range(n_sites):
        af = [0.0, 1e-4, 0.01, 0.2, 0.5][v % 5]
        gt[v] = rng.random((n_samples, 2)) < af
        gt[v][rng.random(n_samples) < missing] = -1
        gt[v, rng.random(n_samples) < missing / 4, 1] = 0  # partial REF ./0
        if v % 2:
            gt[v, n_samples // 2 :, 1] = -2
    return gt


@pytest.mark.parametrize("packed_above", [cohort_counts.PACKED_ABOVE, 0])
@pytest.mark.parametrize("missing", [0.0, 2e-5, 0.01])
def test_large_cohorts_match_the_ingest_counts(missing, packed_above, monkeypatch):
    """70,000 samples: rare missing calls are further apart than one token's 32,767. The cohort
    mask is a byte per sample, and (as above 2^18 samples) a bit per sample."""
    monkeypatch.setattr(cohort_counts, "PACKED_ABOVE", packed_above)
    rng = np.random.default_rng(7)
    gt = random_calls(rng, 10, 70_000, missing)
    if missing == 2e-5:
        gt[0, :, :] = 0
        gt[0, [3, 3 + MAX_GAP, 3 + 2 * MAX_GAP + 1, 69_999]] = -1  # gaps of exactly one token and more
    ancestry = SampleGroups("ancestry", ("A", "B", "C"), rng.integers(-1, 3, size=70_000))
    for members in (np.arange(70_000), np.sort(rng.choice(70_000, 7_000, replace=False)), np.array([69_999])):
        assert_same_stats(gt, members, None)
        assert_same_stats(gt, members, ancestry)


@st.composite
def small_calls(draw):
    n_sites, n_samples = draw(st.integers(1, 6)), draw(st.integers(1, 40))
    haploid = draw(st.lists(st.booleans(), min_size=n_samples, max_size=n_samples))
    gt = np.zeros((n_sites, n_samples, 2), dtype=np.int8)
    for v in range(n_sites):
        for s in range(n_samples):
            gt[v, s] = draw(st.sampled_from(HAPLOID if haploid[s] and v % 2 else CALLS))
    members = sorted(draw(st.sets(st.integers(0, n_samples - 1), min_size=1)))
    codes = draw(st.lists(st.integers(-1, 2), min_size=n_samples, max_size=n_samples))
    return gt, np.array(members), SampleGroups("g", ("a", "b", "c"), np.array(codes))


@settings(max_examples=150, deadline=None, derandomize=bool(os.environ.get("CI")))
@given(small_calls(), st.booleans())
def test_any_calls_any_cohort_match_the_ingest_counts(case, packed):
    gt, members, groups = case
    original = cohort_counts.PACKED_ABOVE
    cohort_counts.PACKED_ABOVE = 0 if packed else original  # hypothesis runs many cases per fixture
    try:
        assert_same_stats(gt, members, None)
        assert_same_stats(gt, members, groups)
    finally:
        cohort_counts.PACKED_ABOVE = original
