"""Allele dosages of a store's sites over all its batches, for association tests.

:func:`genoquery.query.association.dosages.allele_dosages` decodes one batch's records; here
the batches' dosages of each site are put together with global sample indexes, and a
batch without a record of a site gives its analysed samples its absent call there
(:attr:`genoquery.storage.batches.Batch.absent_call`): missing if that call has a missing
allele (``./.``), else dosage 0 (a complete callset's ``0/0``). Haploid patterns are per
batch, so a site's pattern here is the combination of its records' patterns: the
combinations of the sites asked for are numbered, and their masks over all samples
built, before any site is decoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from genoquery.deadline import check
from genoquery.query.association.dosages import AlleleDosages, allele_dosages, sorted_order
from genoquery.storage.call_reader import budget_bounds
from genoquery.storage.format import MISSING
from genoquery.storage.site_calls import SITE_COLUMNS

if TYPE_CHECKING:
    from genoquery.query.store import Store

WINDOW_SITES = 4096  # at most this many sites' dosages are put together at once
WINDOW_ENTRIES = 1 << 23
"""At most about this many carrier and missing entries per window (each ~25 bytes, sorted once):
4,096 sites of 10^6 samples held ~10^9 entries, and association over 1 Mb ran out of 24 GB."""
BLOCK_BYTES = 16 << 20  # encoded calls per read when dense sites stay code rows (linear models)
CARRIER_BLOCK_BYTES = 4 << 20
"""Encoded calls per read when dense sites' codes become carrier lists (logistic models): a code
byte is up to 4 carriers of 9 bytes each (int64 sample, int8 dose), so a block holds at most
~144 MB of carriers. At 16 MB and 8 blocks read ahead, logistic association over 1 Mb of 10^6
samples peaked at 2.4 GB."""


def store_dosages(
    store: Store, site_rows: np.ndarray, members: np.ndarray, keep_codes: bool = False
) -> tuple[np.ndarray, Iterator[AlleleDosages]]:
    """``(haploid, dosages)``: the (patterns, samples) haploid masks of the sites ``site_rows``
    (sorted global rows) and, lazily, the dosages of their ALT alleles among ``members``
    (sorted global sample indexes), in windows of sites, with ``pattern`` indexing ``haploid``.
    ``keep_codes``: dense sites' ALT 1 carriers as code rows (see ``allele_dosages``)."""
    records = store.sql(
        f"SELECT batch, n_carriers, {SITE_COLUMNS} FROM batch_sites WHERE site_row BETWEEN ? AND ? "
        f"AND site_row IN (SELECT unnest(?)) ORDER BY batch, batch_row",
        [int(site_rows[0]), int(site_rows[-1]), site_rows.tolist()] if len(site_rows) else [0, -1, []],
    )
    combo_of, haploid = _patterns(store, records, site_rows)
    n_alleles = store.sql(  # now, not when the first window is asked for: the windows touch no DuckDB,
        # so they can be read on another thread while this one queries the index (its connection is one thread's)
        "SELECT site_row, len(alleles) AS n FROM sites WHERE site_row IN (SELECT unnest(?)) ORDER BY site_row",
        [site_rows.tolist()],
    )["n"].to_numpy()
    return haploid, _windows(store, records, site_rows, n_alleles, members, combo_of, keep_codes)


def _patterns(store: Store, records: pa.Table, site_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per site, its combination of per-batch haploid patterns (-1: all diploid), and the masks."""
    batch, row = records["batch"].to_numpy(), records["site_row"].to_numpy()
    pattern = records["haploid_pattern"].fill_null(-1).to_numpy()
    per_site: dict[int, tuple] = {}
    for b, r, p in zip(batch.tolist(), row.tolist(), pattern.tolist(), strict=True):
        if p >= 0:
            per_site[r] = (*per_site.get(r, ()), (b, p))
    combos = sorted(set(per_site.values()))
    number = {c: i for i, c in enumerate(combos)}
    haploid = np.zeros((len(combos), store.info["samples"]), dtype=bool)
    batches = {b.number: b for b in store.batches}
    for i, combo in enumerate(combos):
        for b, p in combo:
            haploid[i, batches[b].offset : batches[b].offset + batches[b].n_samples] = batches[b].reader.haploid[p]
    return np.array([number[per_site[r]] if r in per_site else -1 for r in site_rows.tolist()], np.int64), haploid


def _windows(
    store: Store,
    records: pa.Table,
    site_rows: np.ndarray,
    n_alleles: np.ndarray,
    members: np.ndarray,
    combo_of: np.ndarray,
    keep_codes: bool,
) -> Iterator[AlleleDosages]:
    local = [batch.local(members) for batch in store.batches]  # once, not per window (~2 ms each at 10^6)
    for start, end in _window_bounds(store, records, site_rows):
        rows, combo = site_rows[start:end], combo_of[start:end]
        if len(store.batches) == 1:
            yield from _one_batch(store, records, rows, local[0], combo, keep_codes)
        else:
            yield _window(store, records, rows, n_alleles[start:end], local, combo, keep_codes)


def _one_batch(
    store: Store, records: pa.Table, rows: np.ndarray, local: np.ndarray, combo: np.ndarray, keep_codes: bool
) -> Iterator[AlleleDosages]:
    """The dosages of the sites ``rows`` of a store of one batch among its samples ``local``, block
    by block as decoded: its records are the sites, in order, so there is nothing to merge or sort
    (at 10^6 samples, regrouping a window's carriers cost more than decoding them)."""
    (batch,) = store.batches
    site_row = records["site_row"].to_numpy()
    mine = records.filter(pa.array((site_row >= rows[0]) & (site_row <= rows[-1])))
    reader = batch.reader
    calls = reader.blocks(mine, budget=_budget(keep_codes), missing=True)
    for part in allele_dosages(calls, reader.haploid, local, batch.offset, keep_codes):
        check()  # the request's time limit (genoquery.deadline), per block of sites
        yield replace(part, pattern=combo[np.searchsorted(rows, part.site_row)])


def _budget(keep_codes: bool) -> int:
    """Encoded bytes of calls per block read: :data:`BLOCK_BYTES` or :data:`CARRIER_BLOCK_BYTES`."""
    return BLOCK_BYTES if keep_codes else CARRIER_BLOCK_BYTES


def _window_bounds(store: Store, records: pa.Table, site_rows: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` ranges of ``site_rows`` of at most :data:`WINDOW_SITES` sites and about
    :data:`WINDOW_ENTRIES` entries (or one site above it): a site's entries are its records'
    non-hom-ref and missing calls, plus every sample of a batch whose absent records are missing."""
    at = np.searchsorted(site_rows, records["site_row"].to_numpy())
    entries = np.zeros(len(site_rows), dtype=np.int64)
    np.add.at(entries, at, records["n_carriers"].to_numpy() + records["n_missing_tokens"].to_numpy())
    numbers = records["batch"].to_numpy()
    for batch in store.batches:
        if MISSING in batch.absent_call:
            absent = np.ones(len(site_rows), dtype=bool)
            absent[at[numbers == batch.number]] = False
            entries += absent * batch.n_samples
    return budget_bounds(entries, WINDOW_ENTRIES, WINDOW_SITES)


def _window(
    store: Store,
    records: pa.Table,
    rows: np.ndarray,
    n_alleles: np.ndarray,
    locals_: list[np.ndarray],
    combo: np.ndarray,
    keep_codes: bool,
) -> AlleleDosages:
    """The dosages of the ALT alleles of the sites ``rows``, from every batch (``locals_``: each
    batch's samples analysed, :meth:`~genoquery.storage.batches.Batch.local`)."""
    carriers, missing = [], []  # (site_row, allele, sample[, dosage]) arrays
    coded = []  # (site_row of each allele, CodedAlleles)
    record_rows, record_batch = records["site_row"].to_numpy(), records["batch"].to_numpy()
    in_window = (record_rows >= rows[0]) & (record_rows <= rows[-1])
    for batch, local in zip(store.batches, locals_, strict=True):
        check()  # the request's time limit (genoquery.deadline), per window of sites and batch
        mine = in_window & (record_batch == batch.number)
        present = np.isin(rows, record_rows[mine])
        if len(local) and mine.any():
            reader = batch.reader
            calls = reader.blocks(records.filter(pa.array(mine)), budget=_budget(keep_codes), missing=True)
            for part in allele_dosages(calls, reader.haploid, local, batch.offset, keep_codes):
                coded.extend((part.site_row[c.allele], c) for c in part.coded)  # ALT 1 of each
                n_carriers, n_missing = np.diff(part.carrier), np.diff(part.missing)
                carriers.append(
                    (np.repeat(part.site_row, n_carriers), np.repeat(part.allele, n_carriers), part.sample, part.dosage)
                )
                missing.append(
                    (np.repeat(part.site_row, n_missing), np.repeat(part.allele, n_missing), part.missing_sample)
                )
        if len(local) and MISSING in batch.absent_call and not present.all():
            missing.append(_absent(rows[~present], n_alleles[~present], local + batch.offset))
    return _assemble(rows, n_alleles, combo, carriers, missing, coded)


def _absent(rows: np.ndarray, n_alleles: np.ndarray, samples: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every allele of the sites ``rows`` missing for ``samples``."""
    site = np.repeat(rows, n_alleles - 1)
    allele = np.concatenate([np.arange(1, n) for n in n_alleles.tolist()] or [np.zeros(0, np.int64)])
    return (np.repeat(site, len(samples)), np.repeat(allele, len(samples)), np.tile(samples, len(site)))


def _assemble(
    rows: np.ndarray, n_alleles: np.ndarray, combo: np.ndarray, carriers: list, missing: list, coded: list
) -> AlleleDosages:
    """One :class:`AlleleDosages` over the alleles of ``rows``, entries sorted by allele then sample,
    and the batches' code rows renumbered to these alleles."""
    n_alt = (n_alleles - 1).astype(np.int64)
    site_row = np.repeat(rows, n_alt)
    allele = np.concatenate([np.arange(1, n + 1) for n in n_alt.tolist()] or [np.zeros(0, np.int64)])
    width = int(n_alleles.max(initial=2))

    def group(parts: list, columns: int) -> tuple[np.ndarray, ...]:
        joined = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, np.int64) for i in range(columns)]
        keys = np.searchsorted(site_row * width + allele, joined[0] * width + joined[1])
        order = sorted_order(keys, joined[2])
        offsets = np.searchsorted(keys[order], np.arange(len(site_row) + 1))
        return (offsets, *(c[order] for c in joined[2:]))

    carrier, sample, dosage = group(carriers, 4)
    missing_offsets, missing_sample = group(missing, 3)
    return AlleleDosages(
        site_row=site_row,
        allele=allele,
        pattern=np.repeat(combo, n_alt),
        carrier=carrier,
        sample=sample.astype(np.int64),
        dosage=dosage.astype(np.int8),
        missing=missing_offsets,
        missing_sample=missing_sample.astype(np.int64),
        coded=tuple(replace(c, allele=np.searchsorted(site_row * width + allele, at * width + 1)) for at, c in coded),
    )
