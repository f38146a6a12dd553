"""Who carries which allele: carriers of variants, and one participant's variants.

Both read only calls that are not hom-ref (:mod:`genoquery.storage.call_codes`):
a rare variant's listed calls (one small Zarr chunk) or, at a dense site, the
2-bit codes of the samples asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache, partial
from importlib import import_module
from itertools import pairwise
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from genoquery.arrow import from_numpy, strings, take_strings, to_numpy
from genoquery.deadline import check
from genoquery.query.cohorts import sorted_unique
from genoquery.query.gt_text import unordered_gt_text
from genoquery.query.lookup import parsed_statement
from genoquery.storage.format import FILL
from genoquery.storage.index_thread import on_index_thread
from genoquery.storage.inline_calls import unpack_inline
from genoquery.storage.lookup_table import SiteRows
from genoquery.storage.site_calls import SITE_COLUMNS, SITE_NAMES, SiteCalls
from genoquery.storage.wide_calls import WideCalls, pad

if TYPE_CHECKING:
    import duckdb

    from genoquery.query.store import Store
    from genoquery.storage.batches import Batch

CARRIER_COLUMNS = ("variant_key", "sample_id", "zygosity", "allele_copies", "gt", "sample_index", "site_row", "allele")


def listed_calls(
    batch: SiteCalls, haploid: np.ndarray, members: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The listed calls (a sparse site's non-hom-ref calls, a dense site's calls coded 3) among
    ``members`` (sorted sample indexes of the genotype batch ``batch`` was read from; None for
    all): (site index in ``batch``, int64 sample index in the genotype batch, (calls, 2) int8
    alleles), by site then sample."""
    if members is None:
        keep = np.arange(len(batch.listed_sample))
    elif len(members) == 1:  # one participant: no mask of the batch's samples
        keep = np.flatnonzero(batch.listed_sample == members[0])
    else:
        in_cohort = np.zeros(haploid.shape[1], dtype=bool)  # haploid is (patterns, samples)
        in_cohort[members] = True
        keep = np.flatnonzero(in_cohort[batch.listed_sample])
    # each kept call's site from the sites' offsets (not a site index repeated for every call)
    site = np.searchsorted(batch.listed, keep, side="right") - 1
    return site, batch.listed_sample[keep].astype(np.int64), batch.listed_gt[keep]


def coded_calls(
    batch: SiteCalls, haploid: np.ndarray, members: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The dense sites' calls coded 1 (``0/1``) or 2 (``1/1``, haploid ``1``) among ``members`` (as
    :func:`listed_calls`): site index, int64 sample index, code (uint8) and whether the call is
    haploid, by site then sample."""
    dense_sites = np.flatnonzero(batch.dense >= 0)
    if members is None:
        members = np.arange(haploid.shape[1] if len(dense_sites) else 0)
    if not len(dense_sites) or not len(members):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(0, bool)
    # numba's kernels load in ~0.4 s: only dense sites need them, not a rare variant's index row
    coded_carriers = import_module("genoquery.storage.call_codes").coded_carriers
    row, sample, code = coded_carriers(batch.codes, members)  # code rows are the dense sites, in order
    site = dense_sites[row]
    hap = np.zeros(len(code), dtype=bool)
    if (batch.pattern[dense_sites] >= 0).any():
        pattern = batch.pattern[site]
        hap = (pattern >= 0) & haploid[np.maximum(pattern, 0), sample]
    return site, sample, code, hap


def non_ref_calls(
    batch: SiteCalls, haploid: np.ndarray, members: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Called calls that are not hom-ref among ``members`` (as :func:`listed_calls`): (site index
    in ``batch``, sample index in the genotype batch, (calls, ploidy) int8 alleles), by site then
    sample; ploidy is 2 unless the sites have calls of ploidy above 2 with an ALT allele among
    ``members``. Missing calls are left out."""
    site, sample, gt = _diploid_non_ref(batch, haploid, members)
    wide = batch.wide
    if members is not None and len(wide):
        wide = wide.select(np.isin(wide.sample, members))
    wide = wide.with_alt()
    if not len(wide):
        return site, sample, gt
    site, sample = np.concatenate([site, wide.row]), np.concatenate([sample, wide.sample])
    gt = np.concatenate([pad(gt, wide.ploidy), wide.alleles])
    order = np.lexsort((sample, site))
    return site[order], sample[order], gt[order]


def _diploid_non_ref(
    batch: SiteCalls, haploid: np.ndarray, members: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`non_ref_calls` of the diploid and haploid calls (listed and coded)."""
    site, sample, gt = listed_calls(batch, haploid, members)
    d_site, d_sample, code, hap = coded_calls(batch, haploid, members)
    if not len(d_site):
        return site, sample, gt
    d_gt = coded_gt(code, hap)
    if not len(site):
        return d_site, d_sample, d_gt
    site, sample, gt = np.concatenate([site, d_site]), np.concatenate([sample, d_sample]), np.concatenate([gt, d_gt])
    # two runs each sorted by (site, sample): a stable sort merges them in linear time
    order = np.argsort(site * haploid.shape[1] + sample, kind="stable")
    return site[order], sample[order], gt[order]


def coded_gt(code: np.ndarray, haploid: np.ndarray) -> np.ndarray:
    """(calls, 2) int8 alleles of calls coded 1 (``0/1``) or 2 (``1/1``, or ``1`` where
    ``haploid``)."""
    gt = np.ones((len(code), 2), dtype=np.int8)
    gt[:, 0] = code == 2
    gt[haploid, 1] = FILL
    return gt


ZYGOSITY = strings(["het", "hom_alt", "hemi", "partial"])


def zygosity(gt: np.ndarray, allele: np.ndarray | int) -> tuple[np.ndarray, pa.DictionaryArray]:
    """Per call of ``allele`` (``gt`` (calls, ploidy)): its copies (int8) and ``het``, ``hom_alt``
    (every allele is ``allele``), ``hemi`` or ``partial`` (a copy beside a missing allele, as
    ``./1``), dictionary-encoded (no string per call)."""
    if gt.shape[1] == 2 and np.ndim(allele) == 0:  # one allele: a table of every diploid call
        pair = np.ascontiguousarray(gt).view(np.uint16)[:, 0]
        copies, kind = _diploid_zygosity(int(allele))
        return copies[pair], pa.DictionaryArray.from_arrays(from_numpy(kind[pair]), ZYGOSITY)
    if gt.shape[1] == 2:
        copies = (gt[:, 0] == allele).astype(np.int8) + (gt[:, 1] == allele)
        partial = (gt[:, 0] < 0) | (gt[:, 1] < 0)
        kind = np.where(gt[:, 1] == FILL, 2, np.where(partial, 3, copies == 2))
    else:
        allele = np.asarray(allele).reshape(-1, 1)
        copies = (gt == allele).sum(axis=1).astype(np.int8)
        partial = ((gt < 0) & (gt != FILL)).any(axis=1)
        ploidy = (gt != FILL).sum(axis=1)
        kind = np.where(ploidy == 1, 2, np.where(partial, 3, copies == ploidy))
    return copies, pa.DictionaryArray.from_arrays(from_numpy(kind.astype(np.int8)), ZYGOSITY)


@cache
def _diploid_zygosity(allele: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`zygosity` of ``allele`` for every diploid call, indexed by its two int8 alleles read
    as one uint16: two gathers per call instead of six passes over the calls (750,898 carriers:
    ~1 against ~5 ms)."""
    every = np.arange(1 << 16, dtype=np.uint16).view(np.int8).reshape(-1, 2)
    copies = (every[:, 0] == allele).astype(np.int8) + (every[:, 1] == allele)
    partial = (every[:, 0] < 0) | (every[:, 1] < 0)
    kind = np.where(every[:, 1] == FILL, 2, np.where(partial, 3, copies == 2)).astype(np.int8)
    return copies, kind


def carriers(store: Store, variants: pa.Table, members: np.ndarray | None) -> pa.Table:
    """Samples among ``members`` (sorted global sample indexes; None for all) carrying each ALT
    allele of ``variants`` (rows with ``site_row``, ``allele``, ``variant_key``), one row per
    carrier and allele, by site, allele and sample."""
    wanted = {}
    for key, row, allele in zip(*(variants[c].to_pylist() for c in ("variant_key", "site_row", "allele")), strict=True):
        wanted.setdefault(row, []).append((allele, key))
    parts, ends = [], []  # each part's (site row, allele, first and last sample)
    for batch, calls in _batch_calls(store, sorted_unique(to_numpy(variants["site_row"]))):
        check()  # the request's time limit (genoquery.deadline), per batch of calls read
        local = None if members is None else batch.local(members)
        # a rare variant's calls come from its index row: no haploid masks read (nor zarr loaded)
        haploid = batch.reader.haploid if (calls.dense >= 0).any() else np.zeros((0, batch.n_samples), bool)
        site, sample, gt = non_ref_calls(calls, haploid, local)
        sample += batch.offset
        for i, row in enumerate(calls.site_row.tolist()):
            lo, hi = np.searchsorted(site, [i, i + 1])
            for allele, key in wanted.get(row, ()):
                hit = slice(lo, hi)
                carries = _carries(gt[hit], allele)
                if not carries.all():  # other ALT alleles' carriers too: not at a biallelic site
                    hit = lo + np.flatnonzero(carries)
                who = sample[hit]
                parts.append(_carrier_rows(key, row, allele, who, gt[hit]))
                if len(who):
                    ends.append((row, allele, int(who[0]), int(who[-1])))
    table = (
        pa.concat_tables(parts) if parts else _carrier_rows("", 0, 1, np.zeros(0, np.int64), np.zeros((0, 2), np.int8))
    )
    table = table if _parts_in_order(ends) else _sorted(table)
    ids = take_strings(store.sample_id_array, to_numpy(table["sample_index"]))
    return table.append_column("sample_id", ids).select(list(CARRIER_COLUMNS))


def _carries(gt: np.ndarray, allele: int) -> np.ndarray:
    """Whether each call of ``gt`` (calls, ploidy) has a copy of ``allele`` (for two slots, two
    comparisons: numpy's ``any(axis=1)`` over pairs took 11 ms for 750,898 calls)."""
    if gt.shape[1] == 2:
        return (gt[:, 0] == allele) | (gt[:, 1] == allele)
    return (gt == allele).any(axis=1)


def _parts_in_order(ends: list[tuple[int, int, int, int]]) -> bool:
    """Whether parts with these ``(site row, allele, first sample, last sample)``, concatenated,
    are by site, allele and sample. Each part is one variant's carriers by sample; one batch
    gives its sites' parts in order, so the parts' ends suffice (checking 0.75 million rows cost
    8 ms, sorting them more)."""
    return all(a[:2] < b[:2] or (a[:2] == b[:2] and a[3] < b[2]) for a, b in pairwise(ends))


def _sorted(table: pa.Table) -> pa.Table:
    """``table`` by site, allele and sample."""
    site, allele, sample = (to_numpy(table[c]) for c in ("site_row", "allele", "sample_index"))
    return table.take(from_numpy(np.lexsort((sample, allele, site))))


def _batch_calls(store: Store, rows: np.ndarray) -> Iterator[tuple[Batch, SiteCalls]]:
    """The encoded calls of the sites with these (sorted) rows, batch by batch. One site's
    records are found in the lookup files of sites (or by the index's ART index with a parsed
    statement) and, when rare enough to be inlined, read from those rows alone; more sites are
    a range scan pruned by min/max."""
    batches = {b.number: b for b in store.batches}
    if len(rows) == 0:
        return
    if len(rows) > 1:
        sites = store.sql(
            f"SELECT batch, {SITE_COLUMNS} FROM batch_sites WHERE site_row BETWEEN ? AND ? "
            f"AND site_row IN (SELECT unnest(?)) ORDER BY batch, batch_row",
            [int(rows[0]), int(rows[-1]), rows.tolist()],
        )
        numbers = to_numpy(sites["batch"])
        for number in sorted_unique(numbers).tolist():
            part = sites.filter(from_numpy(numbers == number))
            yield from ((batches[number], calls) for calls in batches[number].reader.blocks(part))
        return
    found = store.site_records(int(rows[0]))
    if found is None:  # a store without lookup files of sites: the index's ART index
        statement = f"SELECT batch, {SITE_COLUMNS}, inline_calls FROM batch_sites WHERE site_row = $1"
        records = store.connection.execute(parsed_statement(store.connection, statement), [int(rows[0])]).fetchall()
        found = [dict(zip(["batch", *SITE_NAMES, "inline_calls"], record, strict=True)) for record in records]
    for site in sorted(found, key=itemgetter("batch")):  # sorted here: an ORDER BY costs DuckDB ~1 ms
        batch = batches[site["batch"]]
        if site["inline_calls"] is None:
            one = pa.table(
                {n: from_numpy(np.array([site[n] or 0], np.int64), np.array([site[n] is None])) for n in SITE_NAMES}
            )
            yield from ((batch, calls) for calls in batch.reader.blocks(one))
        else:
            # a batch without calls of ploidy above 2 is not opened (nor zarr loaded) for its rare variants
            wide = batch.reader.wide.at_rows(np.array([site["batch_row"]])) if batch.wide_calls else WideCalls.empty()
            yield batch, _inline_calls(site, wide)


def _inline_calls(site: dict, wide: WideCalls) -> SiteCalls:
    """The calls of a sparse site from its index row's ``inline_calls``, and its ``wide`` calls."""
    samples, gt = unpack_inline(site["inline_calls"])
    pattern = -1 if site["haploid_pattern"] is None else site["haploid_pattern"]
    return SiteCalls(
        site_row=np.array([site["site_row"]]),
        n_alleles=np.array([site["n_alleles"]]),
        dense=np.array([-1]),
        pattern=np.array([pattern]),
        listed=np.array([0, len(samples)]),
        listed_sample=samples,
        listed_gt=gt,
        missing=np.zeros(2, np.int64),
        missing_tokens=np.zeros(0, np.uint16),
        codes=np.zeros((0, 0), np.uint8),
        wide=wide,
    )


def _carrier_rows(key: str, site_row: int, allele: int, samples: np.ndarray, gt: np.ndarray) -> pa.Table:
    copies, kind = zygosity(gt, allele)
    n = len(samples)
    return pa.table(
        {
            "variant_key": pa.repeat(strings([key])[0], n),
            "zygosity": kind,
            "allele_copies": from_numpy(copies),
            "gt": unordered_gt_text(gt),
            "sample_index": from_numpy(samples.astype(np.int32)),
            "site_row": from_numpy(np.full(n, site_row, np.int64)),
            "allele": from_numpy(np.full(n, allele, np.int16)),
        }
    )


def participant(store: Store, sample_index: int) -> pa.Table:
    """Every ALT allele one sample carries, with the variant and its whole-store AC, AN and AF
    (and AF in the sample's ancestry group when the store has ancestry statistics). The sample's
    calls are read while the index is asked for the batch's sites and the ancestry group's
    statistics on another thread (:mod:`genoquery.storage.index_thread`)."""
    batch = next(b for b in store.batches if b.offset <= sample_index < b.offset + b.n_samples)
    sample, reader = sample_index - batch.offset, batch.reader
    grouped = "ancestry" in store.info.get("groupings", [])
    with (
        on_index_thread(store.connection, partial(_sites_with_calls, batch.number)) as sites,
        on_index_thread(store.connection, partial(_ancestry_stats, sample_index, grouped)) as group,
    ):
        listed = reader.own_listed_calls(sample)
        codes = reader.own_codes(sample)
    sites, (ancestry, stats) = sites.result(), group.result()
    site_row, gt = _own_calls(store, batch, sample, sites, listed, codes)
    check()
    alleles = np.arange(1, max(2, int(gt.max(initial=1)) + 1))
    call, allele = np.nonzero((gt[:, None, :] == alleles[None, :, None]).any(axis=2))
    order = np.lexsort((alleles[allele], site_row[call]))  # as variants: by site row, then allele
    call, allele = call[order], alleles[allele[order]]
    found, known = store.variants_at(site_row[call], allele)
    call, allele = call[known], allele[known]
    copies, kind = zygosity(gt[call], allele)
    columns = {c: found.column(c) for c in ("variant_key", "contig", "pos", "ref", "alt", "id", "filter")}
    columns |= {"zygosity": kind, "gt": unordered_gt_text(gt[call]), "allele_copies": from_numpy(copies)}
    columns |= {c: found.column(c) for c in ("ac", "an", "af")}
    if ancestry:
        columns |= {"ancestry": strings([ancestry] * len(call))}
        columns |= _group_stats("ancestry", stats, site_row[call], allele)
    return pa.table(columns)


_SITES_WITH_CALLS = (
    "SELECT site_row, dense_row, haploid_pattern, listed_start, n_listed FROM batch_sites "
    "WHERE batch = ? AND (dense_row IS NOT NULL OR n_listed > 0) ORDER BY batch_row"
)
_ANCESTRY = (
    "SELECT CAST(p.ancestry AS VARCHAR) FROM persons p JOIN samples s ON s.sample_id = p.sample_id "
    "WHERE s.sample_index = ?"
)
_GROUP_STATS = "SELECT site_row, allele, af, ac, an FROM variant_group_stats WHERE grouping = ? AND group_value = ?"


def _sites_with_calls(batch: int, cursor: duckdb.DuckDBPyConnection) -> pa.Table:
    """The batch's sites that have calls to read, in batch order (columns of :data:`_SITES_WITH_CALLS`)."""
    return cursor.sql(_SITES_WITH_CALLS, params=[batch]).to_arrow_table()


def _ancestry_stats(
    sample_index: int, grouped: bool, cursor: duckdb.DuckDBPyConnection
) -> tuple[str | None, dict[str, np.ndarray] | None]:
    """The sample's ancestry (None without one, or where the store has no ancestry statistics)
    and that group's statistics columns (every allele's, numpy)."""
    found = cursor.execute(_ANCESTRY, [sample_index]).fetchall() if grouped else []
    ancestry = found[0][0] if found else None
    return ancestry, cursor.execute(_GROUP_STATS, ["ancestry", ancestry]).fetchnumpy() if ancestry else None


def _group_stats(grouping: str, stats: dict[str, np.ndarray], site_row: np.ndarray, allele: np.ndarray) -> dict:
    """``{grouping}_af``, ``_ac`` and ``_an`` of one group at those alleles (null where the group
    has no row), from the group's ``stats`` columns, joined by bisection."""
    at, found = SiteRows(stats["site_row"], stats["allele"]).find(site_row, allele)
    types = {"af": pa.float64(), "ac": pa.int64(), "an": pa.int64()}
    return {f"{grouping}_{c}": _taken(stats[c], at, found, t) for c, t in types.items()}


def _taken(column: np.ndarray, at: np.ndarray, found: np.ndarray, kind: pa.DataType) -> pa.Array:
    """``column[at]`` (a DuckDB numpy column of type ``kind``, masked where NULL), null where not ``found``."""
    if not len(column):
        return pa.nulls(len(at), kind)
    return from_numpy(np.ma.getdata(column)[at], ~found | np.ma.getmaskarray(column)[at])


def _own_calls(
    store: Store,
    batch: Batch,
    sample: int,
    sites: pa.Table,
    listed: tuple[np.ndarray, np.ndarray],
    codes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Called calls that are not hom-ref of one sample (index within ``batch``): site_row (int64)
    and (calls, ploidy) int8 alleles, by site; ploidy is 2 unless the sample has calls of ploidy
    above 2 (:mod:`genoquery.storage.wide_calls`). From the batch's ``sites`` with calls
    (:data:`_SITES_WITH_CALLS`), the sample's ``listed`` calls (positions, alleles) and its 2-bit
    ``codes`` at every dense row (:meth:`CallReader.own_listed_calls`, :meth:`CallReader.own_codes`):
    no other sample's calls are assembled, and missing calls are never read."""
    site_row = to_numpy(sites["site_row"])
    reader, has_listed = batch.reader, to_numpy(sites["n_listed"]) > 0
    positions, listed_gt = listed
    starts = to_numpy(sites["listed_start"])[has_listed]  # ascending: listed calls are in site order
    listed_site = site_row[has_listed][np.searchsorted(starts, positions, side="right") - 1]
    dense_row = to_numpy(sites["dense_row"], null=-1)
    dense = dense_row >= 0  # in NumPy: Table.filter imports pyarrow.compute (a cold start's 50 ms)
    code = codes[dense_row[dense]]
    carried = np.flatnonzero((code == 1) | (code == 2))
    pattern = to_numpy(sites["haploid_pattern"], null=-1)[dense][carried]
    haploid = (pattern >= 0) & reader.haploid[np.maximum(pattern, 0), sample] if (pattern >= 0).any() else pattern >= 0
    dense_gt = coded_gt(code[carried], haploid)
    rows = np.concatenate([listed_site, site_row[dense][carried]])
    gt = np.concatenate([listed_gt, dense_gt])
    wide = reader.wide.select(reader.wide.sample == sample).with_alt()
    if len(wide):  # their stand-ins are missing calls, which were not read
        at = store.sql(
            "SELECT site_row FROM batch_sites WHERE batch = ? AND batch_row IN (SELECT unnest(?)) ORDER BY batch_row",
            [batch.number, wide.row.tolist()],
        )
        rows, gt = (
            np.concatenate([rows, to_numpy(at["site_row"])]),
            np.concatenate([pad(gt, wide.ploidy), wide.alleles]),
        )
    order = np.argsort(rows, kind="stable")
    return rows[order], gt[order]
