"""An opened store: the DuckDB index and the Zarr genotype group, read-only."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import cached_property
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from genoquery.arrow import take_rows, to_numpy
from genoquery.errors import QueryError, UnknownItemError
from genoquery.query.cluster.stamp import index_stamp
from genoquery.storage.batches import Batch, read_batches
from genoquery.storage.format import INDEX_FILE
from genoquery.storage.lookup_table import LookupTable, SiteRows, locus
from genoquery.storage.objects import batch_root
from genoquery.storage.regions import Region, parse_region
from genoquery.storage.schema import STAT_COLUMNS, VARIANT_COLUMNS, open_index
from genoquery.storage.staging import existing_store, read_marker

if TYPE_CHECKING:
    from genoquery.query.genotypes import Genotypes
    from genoquery.query.lookup import VariantLookup
    from genoquery.query.sample_lookup import SampleIdIndex


_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LITERALS = ("TRUE", "FALSE", "NULL")  # bare words a filter may be
_REGION_LIST = re.compile(r",(?!\d{3}(?:[-,]|$))")  # the commas between regions, not in 1,000


def _later(module: str) -> ModuleType:
    """``module``, imported when a method first needs it, as ``import genoquery`` needs none of
    them: some load numba, pandas, scipy or pysam (seconds), and even the light ones (lookup,
    cohorts, genotypes) would add ~20 ms to every start. Each is a module of this package or of a
    lower layer, so no layer is skipped."""
    return import_module(module)


class Store:
    """A genoquery store opened read-only. Use :func:`genoquery.open`."""

    def __init__(self, path: Path | str) -> None:
        """The store at ``path``: a checked directory (or a store's local mirror) as
        :func:`open` gives it; any other path or URL is checked first, as :func:`open` does."""
        if not isinstance(path, Path):
            path = existing_store(path)
        self.path = path  # the store's directory, or for a store on object storage its local mirror
        self.root = batch_root(path)  # where its batches are: ``path``, or the object store's URL
        self._marker = read_marker(path)
        self.index_stamp = index_stamp(path)  # the index file opened next: what cluster workers must open
        self._con = open_index(path / INDEX_FILE)
        self._contigs = [r[0] for r in self._con.execute("SELECT contig FROM contigs ORDER BY contig_index").fetchall()]
        self._lookup_table = LookupTable.open(self._con, path)  # mapped now: a newer index may delete it
        self._id_lists = 0  # cohorts given as ID lists so far (see _known_ids)

    @cached_property
    def info(self) -> dict:
        """The store's marker (format version, tool) with ``samples``, ``sites``, ``variants``,
        ``batches`` and the ``groupings`` with statistics; counted on first use (a lookup by key
        needs none of it)."""
        return {**self._marker, **self._counts()}

    def _counts(self) -> dict:
        """``samples``, ``sites``, ``variants``, ``batches`` and the ``groupings`` with statistics."""
        counts = self._con.execute(
            "SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM sites), (SELECT count(*) FROM variants), "
            "(SELECT count(*) FROM batches), (SELECT list(DISTINCT grouping ORDER BY grouping) FROM batch_cells "
            "WHERE grouping <> '')"
        ).fetchall()[0]
        return dict(
            zip(("samples", "sites", "variants", "batches", "groupings"), (*counts[:4], counts[4] or []), strict=True)
        )

    def __repr__(self) -> str:
        return (
            f"<genoquery.Store {self.root} samples={self.info['samples']} "
            f"sites={self.info['sites']} variants={self.info['variants']}>"
        )

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def contigs(self) -> list[str]:
        return list(self._contigs)

    @cached_property
    def batches(self) -> list[Batch]:
        """The store's batches in order (each a VCF Zarr group over its own samples)."""
        return read_batches(self._con, self.path)

    def _groupings(self) -> list[str]:
        """Person-table columns with per-group statistics."""
        return list(self.info["groupings"])

    def regions(self, regions: str | Sequence[str]) -> list[str]:
        """One or several regions (``CONTIG[:START[-END]]``, 1-based inclusive; a text may list
        several, comma-separated as for bcftools, where a comma before three digits still groups
        thousands: ``chr20:1,000-2,000``) as disjoint regions in genome order, overlapping or
        adjacent ones merged: what ``bcftools view -r A,B`` reads, each record once."""
        texts = [regions] if isinstance(regions, str) else list(regions)
        parsed = [parse_region(t, self._contigs) for text in texts for t in _REGION_LIST.split(text) if t.strip()]
        order = {c: i for i, c in enumerate(self._contigs)}
        merged: list[Region] = []
        for r in sorted(parsed, key=lambda r: (order[r.contig], r.start, r.end)):
            if merged and merged[-1].contig == r.contig and r.start <= merged[-1].end + 1:
                merged[-1] = Region(r.contig, merged[-1].start, max(merged[-1].end, r.end))
            else:
                merged.append(r)
        return [str(r) for r in merged]

    def _over_regions(self, region: str | Sequence[str] | None, answer: Callable[[str | None], pa.Table]) -> pa.Table:
        """``answer`` of one region (or None), or of several (:meth:`regions`) concatenated."""
        if region is None or (isinstance(region, str) and len(_REGION_LIST.split(region)) == 1):
            return answer(region)
        return pa.concat_tables([answer(r) for r in self.regions(region)])

    def variants(
        self, region: str | Sequence[str] | None = None, by: str | None = None, *, info: Sequence[str] = ()
    ) -> pa.Table:
        """Whole-cohort statistics, one row per ALT allele, in genome order.

        ``region`` is ``CONTIG[:START[-END]]``, 1-based inclusive, or a list of them (see
        :meth:`regions`). ``by`` names
        a sample grouping (``ancestry``, ``sex_at_birth``) to return one row per
        allele and group, with the group in a column of that name. ``info`` names kept INFO
        fields (``DP`` or ``INFO/DP``) to add as columns ``info_<ID>``
        (:func:`genoquery.query.fields.with_info`: Number=A the row's allele's value).
        """
        fields = _later("genoquery.query.fields")
        kept = fields.resolve(self.batches, info, "INFO") if info else []
        if any(f.kind != "INFO" for f in kept):
            raise QueryError("variants gives INFO fields only; FORMAT fields are per call: Store.genotypes(fields=...)")
        table = self._over_regions(region, lambda one: self._variants(one, by))
        return fields.with_info(self._con, self.batches, table, kept) if kept else table

    def _variants(self, region: str | None, by: str | None) -> pa.Table:
        where, params = self.region_filter(region, alias="v.")
        if by is None:
            columns = ", ".join("v." + c for c in VARIANT_COLUMNS)
            sql = f"SELECT {columns} FROM variants v {where} ORDER BY v.site_row, v.allele"
            return self._con.sql(sql, params=params).to_arrow_table()
        if by not in self._groupings():
            raise QueryError(
                f"no statistics grouped by {by!r}; this store has: "
                f"{', '.join(self._groupings()) or 'none (ingest with --persons)'}"
            )
        base = [c for c in VARIANT_COLUMNS if c not in STAT_COLUMNS]
        sql = (
            f'SELECT {", ".join("v." + c for c in base)}, g.group_value AS "{by}", '
            f"{', '.join('g.' + c for c in STAT_COLUMNS)} FROM variants v JOIN variant_group_stats g "
            f"ON g.site_row = v.site_row AND g.allele = v.allele AND g.grouping = ? "
            f"{where} ORDER BY v.site_row, v.allele, g.group_value"
        )
        return self._con.sql(sql, params=[by, *params]).to_arrow_table()

    def frequencies(
        self,
        region: str | Sequence[str] | None = None,
        cohort=None,
        by: str | None = None,
        *,
        client=None,
        progress: bool | None = None,
    ) -> pa.Table:
        """Exact statistics of ``cohort`` per ALT allele in ``region``, with the columns of :meth:`variants`.

        ``cohort`` is a saved cohort name, a filter expression, or sample IDs (None: every
        sample, read from the index); ``by`` any person-table column, for one row per allele
        and group value (as text; groups without a cohort member are left out). ``region`` is
        ``CONTIG[:START[-END]]``, 1-based inclusive, a list of them (:meth:`regions`), or None for
        the whole store. With ``client`` (a ``distributed.Client``) the region's partitions are
        counted on the Dask cluster's workers (:mod:`genoquery.query.cluster`), with the same
        answer; ``progress`` then shows a bar of sites counted (default: when it is a terminal).
        """
        if client is not None:
            return _later("genoquery.query.cluster.scans").frequencies(
                self, region, cohort, by, client, progress=progress if progress is not None else os.isatty(2)
            )
        frequencies = _later("genoquery.query.frequencies")
        return self._over_regions(region, lambda one: frequencies.cohort_frequencies(self, one, cohort, by))

    def carriers(
        self,
        variant: str | None = None,
        cohort=None,
        *,
        gene: str | None = None,
        region: str | Sequence[str] | None = None,
        af_min: float | None = None,
        af_max: float | None = None,
        pass_only: bool = False,
        variant_type: str | None = None,
    ) -> pa.Table:
        """Samples carrying an ALT allele: of ``variant`` (key or rsID), or of every variant of a
        ``gene`` or ``region`` passing the filters of :meth:`lookup` (whole-store AF), e.g.
        ``carriers(gene="BRCA2", af_max=0.01)`` for burden questions.

        One row per carrier and allele: ``variant_key, sample_id, zygosity`` (het, hom_alt,
        hemi, or partial for ``./1``), ``allele_copies, gt`` (unphased VCF text),
        ``sample_index, site_row, allele``; in genome order, then by sample. ``cohort``
        restricts the samples (see :meth:`cohort`).
        """
        variants = self.lookup(
            variant,
            gene=gene,
            region=region,
            af_min=af_min,
            af_max=af_max,
            pass_only=pass_only,
            variant_type=variant_type,
        )
        if cohort is not None:
            members = self.cohort(cohort)
        else:
            members = None if len(self.active_samples) == self.info["samples"] else self.active_samples
        return _later("genoquery.query.carriers").carriers(self, variants, members)

    def associate(
        self,
        phenotype,
        covariates=(),
        *,
        region: str | Sequence[str] | None = None,
        variants=None,
        gene: str | None = None,
        cohort=None,
        model: str | None = None,
        min_mac: int = 20,
        test: str = "wald",
        prescreen_p: float | None = None,
        progress: bool | None = None,
        client=None,
    ) -> pa.Table:
        """Test each ALT allele of ``region`` (``CONTIG[:START[-END]]``, 1-based inclusive, or a list
        of them), ``variants`` (keys or rsIDs) or ``gene`` for association with ``phenotype``: a
        person-table column, or condition code(s) (cases have any of them). None of the three tests
        every allele of the store, contig by contig.

        ``covariates`` are person-table columns, ``age`` (from ``birth_year``), ``sex`` and ``pcs``
        (every ``pcN`` column); ``model`` is ``linear`` or ``logistic`` (default: logistic for a
        0/1 trait). Additive coding, one row per allele in genome order: ``n`` (samples tested),
        ``ac, an, af, mac`` among them, ``beta`` (log odds ratio for logistic), ``se``,
        ``statistic`` (t or z), ``p``, ``odds_ratio``, ``status`` (ok, too_few_carriers when MAC <
        ``min_mac``, collinear, firth_separated / firth_nonconvergence when the Firth fit is
        reported, not_converged) and ``firth``. Samples with a missing genotype are left out of that
        allele's test; see :mod:`genoquery.query.association.regression`. Logistic ``test``: ``wald``
        (default: the exact fit, Wald z, Firth's fit where the plain one fails) or ``score`` (the
        score test of the null model, chi-squared with 1 df: every allele's cost is its carriers
        and missing calls); ``prescreen_p``: the score test first, the exact fit only for alleles
        whose score p is at most it. The ``test`` column says which each row reports (t, wald,
        firth, score); a score-tested allele whose carriers are all cases or all controls has
        status ``separated``. ``min_mac`` defaults to
        20: rarer alleles have too little information for a single-variant test (with 1, over half
        of a 1 Mb logistic scan was Firth fits of separated alleles), and the server withholds
        statistics of 1-20 carriers anyway. ``progress`` shows a bar of alleles fitted on standard
        error (default: when it is a terminal). With ``client`` (a ``distributed.Client``), the
        alleles of a region or of every contig are tested by partition on the Dask cluster's workers
        (:mod:`genoquery.query.cluster`), with the same results.
        """
        if client is not None and variants is None and gene is None:
            return _later("genoquery.query.cluster.scans").associate(
                self,
                phenotype,
                list(covariates),
                region=region,
                cohort=cohort,
                model=model,
                min_mac=min_mac,
                client=client,
                test=test,
                prescreen_p=prescreen_p,
                progress=progress if progress is not None else os.isatty(2),
            )
        return pa.concat_tables(
            self.associate_blocks(
                phenotype,
                covariates,
                region=region,
                variants=variants,
                gene=gene,
                cohort=cohort,
                model=model,
                min_mac=min_mac,
                test=test,
                prescreen_p=prescreen_p,
                progress=progress,
            )
        )

    def associate_blocks(
        self,
        phenotype,
        covariates=(),
        *,
        region: str | Sequence[str] | None = None,
        variants=None,
        gene: str | None = None,
        cohort=None,
        model: str | None = None,
        min_mac: int = 20,
        test: str = "wald",
        prescreen_p: float | None = None,
        progress: bool | None = None,
    ) -> Iterator[pa.Table]:
        """:meth:`associate`'s rows a block of alleles at a time, in genome order, each as soon as
        it is fitted: a genome-wide run can be written out (``genoquery assoc glm -o``) or sent
        while it runs, and holds one block's results at a time. At least one table is yielded
        (empty, with the columns, when no allele was asked for)."""
        return _later("genoquery.query.association.scan").associate_blocks(
            self,
            phenotype,
            list(covariates),
            region=region,
            variants=variants,
            gene=gene,
            cohort=cohort,
            model=model,
            min_mac=min_mac,
            test=test,
            prescreen_p=prescreen_p,
            progress=progress if progress is not None else os.isatty(2),
        )

    def phewas(self, variant: str, phenotypes=None, *, covariates=(), cohort=None, min_cases: int = 20) -> pa.Table:
        """One ALT allele (a key) against ``phenotypes`` (default: every condition code with at least
        ``min_cases`` cases, then every numeric person column but covariates and pcN): per phenotype
        ``model, n, n_cases, n_controls``, ``beta``/``odds_ratio``, ``p``, ``p_bonferroni`` and
        Benjamini-Hochberg ``q_bh`` over the phenotypes tested; rows by p, untested ones last."""
        return _later("genoquery.query.association.scan").phewas(
            self, variant, phenotypes, list(covariates), cohort, min_cases
        )

    def carrier_table(
        self,
        variant: str | None = None,
        condition=None,
        cohort=None,
        *,
        gene: str | None = None,
        region: str | None = None,
        af_max: float | None = None,
        pass_only: bool = False,
        variant_type: str | None = None,
        variants: Collection[str] | None = None,
    ) -> pa.Table:
        """Carriers of ``variant``, or of any variant of ``gene``/``region`` passing the filters of
        :meth:`lookup` (and among ``variants``, keys, when given), against cases of ``condition`` (a
        code or a list: any of them) among the cohort: the 2x2 counts, sample odds ratio and Fisher's
        exact two-sided p-value. A sample whose call is missing counts as a non-carrier."""
        if condition is None:
            raise QueryError("give the condition code(s) whose cases to count")
        carriers = self.carriers(
            variant, cohort, gene=gene, region=region, af_max=af_max, pass_only=pass_only, variant_type=variant_type
        )
        if variants is not None:
            keys = pa.array(list(variants), pa.string())
            carriers = carriers.filter(import_module("pyarrow.compute").is_in(carriers["variant_key"], keys))
        codes = [condition] if isinstance(condition, str) else list(condition)
        return _later("genoquery.query.association.scan").carrier_table(self, carriers, codes, cohort)

    def participant(self, sample_id: str) -> pa.Table:
        """One participant's ALT alleles (zygosity, GT) with each variant's whole-store AC, AN
        and AF, and AF in the participant's ancestry group when the store has it."""
        found = self._con.execute("SELECT sample_index FROM samples WHERE sample_id = ?", [sample_id]).fetchall()
        if not found:
            raise UnknownItemError(
                f"sample {sample_id!r} is not in this store ({self.info['samples']} samples, "
                f"from {self.sample_ids[0]} to {self.sample_ids[-1]} in store order)"
            )
        cohorts = _later("genoquery.query.cohorts")  # a withdrawn sample is refused, as in any cohort
        sample = cohorts.without_withdrawn(self._con, np.array([found[0][0]], np.int64), True, self._withdrawn)
        return _later("genoquery.query.carriers").participant(self, int(sample[0]))

    def persons(self) -> pa.Table:
        """The person table (``sample_id`` and phenotype columns); empty when none was imported."""
        persons = _later("genoquery.index.persons").stored_persons(self._con)
        return pa.table({"sample_id": pa.array([], pa.string())}) if persons is None else persons

    def region_filter(self, region: str | None, alias: str = "") -> tuple[str, list]:
        """A ``WHERE`` clause (or "") and its parameters selecting ``region``'s rows by contig and pos."""
        if region is None:
            return "", []
        r = parse_region(region, self._contigs)
        return f"WHERE {alias}contig = ? AND {alias}pos BETWEEN ? AND ?", [r.contig, r.start, r.end]

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The read-only DuckDB connection on the index (replaced by :meth:`save_cohort`)."""
        return self._con

    def sql(self, query: str, params: list, **tables: pa.Table) -> pa.Table:
        """Run a read-only query on the index, with ``tables`` registered under their names."""
        for name, table in tables.items():
            self._con.register(name, table)
        try:
            return self._con.sql(query, params=params).to_arrow_table()
        finally:
            for name in tables:
                self._con.unregister(name)

    @cached_property
    def active_samples(self) -> np.ndarray:
        """Sorted indexes of the samples that are not withdrawn (every query's whole cohort)."""
        return (
            self._con.execute("SELECT sample_index FROM samples WHERE withdrawn_at IS NULL ORDER BY sample_index")
            .fetchnumpy()["sample_index"]
            .astype(np.int64)
        )

    @cached_property
    def sample_id_array(self) -> pa.StringArray:
        """Sample IDs in genotype-column order, as one Arrow array (read once)."""
        ids = self._con.sql("SELECT sample_id FROM samples ORDER BY sample_index").to_arrow_table()
        return ids.column("sample_id").combine_chunks()

    @cached_property
    def _withdrawn(self) -> list[tuple[int, str]]:
        """``(sample_index, sample_id)`` of the withdrawn samples (read once: a scan of ``samples``)."""
        return _later("genoquery.query.cohorts").withdrawn_samples(self._con)

    @cached_property
    def _everyone(self):  # a genoquery.query.genotypes.SampleSelection: 10^6 IDs are read in ~0.3 s
        return _later("genoquery.query.genotypes").everyone(self._con)

    @cached_property
    def _sample_id_index(self) -> SampleIdIndex:
        """The sample IDs found by hash, for cohorts given as ID lists (built on first use)."""
        return _later("genoquery.query.sample_lookup").SampleIdIndex(self.sample_id_array)

    @cached_property
    def sample_ids(self) -> np.ndarray:
        """Sample IDs in genotype-column order, (samples,) object array."""
        return self.sample_id_array.to_numpy(zero_copy_only=False)

    def site_records(self, site_row: int) -> list[dict] | None:
        """Each batch's record of the site ``site_row`` with its query encoding, from the lookup
        files (:meth:`~genoquery.storage.lookup_table.LookupTable.site_records`); None when the
        store has none (ask the index's ``batch_sites``)."""
        return None if self._lookup_table is None else self._lookup_table.site_records(site_row)

    def region_records(self, region: str | None) -> pa.Table | None:
        """Every batch's records of the sites of ``region`` (1-based inclusive; None: every site)
        with their query encoding (as :meth:`site_records`), by site row then batch, from the
        lookup files; None when the store has none. Sites without an ALT allele at the region's
        ends may be left out: they have no statistics."""
        table = self._lookup_table
        if table is None or table.sites is None:
            return None
        if region is None:
            return table.sites
        r = parse_region(region, self._contigs)
        index = self._contigs.index(r.contig)
        return table.records_between(locus(index, r.start), locus(index, r.end))

    def variants_at(self, site_row: np.ndarray, allele: np.ndarray) -> tuple[pa.Table, np.ndarray]:
        """The ``variants`` rows (:data:`VARIANT_COLUMNS`) of those (site row, allele) pairs that
        are ALT alleles, in the order given, and which pairs those are (bool): found by bisection,
        no scan of the index. (A GT may name allele 1 at a site whose ALT is ``.``: no variant.)"""
        rows, by_site = self._variants_by_site
        at, found = by_site.find(site_row, allele)
        return take_rows(rows, at[found]), found

    @cached_property
    def _variants_by_site(self) -> tuple[pa.Table, SiteRows]:
        """``variants`` and its rows by site: the lookup files' mapped rows, or, where they are
        gone, the table read once from the index."""
        if self._lookup_table is not None:
            return self._lookup_table.rows, self._lookup_table.by_site
        columns = ", ".join(VARIANT_COLUMNS)
        rows = self._con.sql(f"SELECT {columns} FROM variants").to_arrow_table()
        return rows, SiteRows(to_numpy(rows.column("site_row")), to_numpy(rows.column("allele")))

    @cached_property
    def _lookup(self) -> VariantLookup:
        return _later("genoquery.query.lookup").VariantLookup(
            self._con, self._contigs, self._groupings, self._lookup_table
        )

    def lookup(
        self,
        variant: str | None = None,
        *,
        region: str | Sequence[str] | None = None,
        gene: str | None = None,
        af_min: float | None = None,
        af_max: float | None = None,
        pass_only: bool = False,
        variant_type: str | None = None,
        by: str | None = None,
    ) -> pa.Table:
        """Variants by key or rsID, region (or a list of them, :meth:`regions`) or gene, with the
        columns of :meth:`variants`.

        ``variant`` is a key (``chr20-1030-A-C``, ``20-1030-A-C``, ``chr20:1030:A:C``,
        ``chr20_1030_A_C``) or an ID (``rs123``, also within ``rs1;rs2``); ``region``
        is ``CONTIG[:START[-END]]`` and ``gene`` a name or ID from ``genoquery genes``
        (1-based inclusive; ``chr`` may be added or left out). Filters: ``af_min`` <=
        AF <= ``af_max``, ``pass_only`` (FILTER = PASS), ``variant_type`` snv, indel or
        other. An unknown key, ID, gene or contig raises; an empty table means a valid
        region or gene holds no variant passing the filters. See :mod:`genoquery.query.lookup`.
        """
        return self._over_regions(
            region,
            lambda one: self._lookup(
                variant,
                region=one,
                gene=gene,
                af_min=af_min,
                af_max=af_max,
                pass_only=pass_only,
                variant_type=variant_type,
                by=by,
            ),
        )

    def samples(self) -> pa.Table:
        """The store's samples in genotype-column order: ``sample_index, sample_id``, ``batch`` (its
        name), ``source`` (the file its genotypes came from), ``withdrawn_at`` and
        ``withdrawn_reason`` (null unless withdrawn), ``erased_at`` (when ``compact`` removed a
        withdrawn sample's genotypes)."""
        return self._con.sql(
            "SELECT s.sample_index, s.sample_id, b.name AS batch, s.source, s.withdrawn_at, s.withdrawn_reason, "
            "s.erased_at FROM samples s JOIN batches b ON b.batch = s.batch ORDER BY s.sample_index"
        ).to_arrow_table()

    def provenance(self) -> pa.Table:
        """Each ingested file's path, size, sha256, record and sample counts, tool and time."""
        return self._con.sql("SELECT * FROM provenance").to_arrow_table()

    def cohort(self, cohort, *, forbidden_columns: Collection[str] = ()) -> np.ndarray:
        """Sorted sample indexes (genotype column order) of a saved cohort name, a filter
        expression over the phenotype tables, or a list of sample IDs; see :mod:`genoquery.query.cohorts`.
        An empty cohort, an unknown ID or a filter matching no sample is a :class:`QueryError`,
        as is a filter naming a column of ``forbidden_columns`` (whatever it would match); so is a
        bare word that is neither a saved cohort nor a person-table column."""
        self._check_cohort_name(cohort)
        return _later("genoquery.query.cohorts").resolve(
            self._con,
            cohort,
            describe=False,
            forbidden_columns=forbidden_columns,
            known=self._known_ids(cohort),
            withdrawn=self._withdrawn,
        )[2]

    def _known_ids(self, cohort) -> SampleIdIndex | None:
        """The sample IDs found by hash (:mod:`genoquery.query.sample_lookup`) for a cohort given
        as a list of IDs, from the second such cohort on: building it reads every ID once, as
        DuckDB's join does at each list, so a one-off command keeps the join and a session or a
        server (10% of 10^6 samples: ~150 ms a list by the join, ~30 ms by hash) builds it."""
        if isinstance(cohort, str) or (isinstance(cohort, np.ndarray) and cohort.dtype.kind in "iu"):
            return None
        self._id_lists += 1
        return self._sample_id_index if self._id_lists > 1 else None

    def _check_cohort_name(self, cohort) -> None:
        """A bare word (``typo``) names a saved cohort, or a boolean person column as a filter:
        when it is neither (nor a sample ID, which a list must hold), say so rather than report an
        unknown column of a filter."""
        if not (isinstance(cohort, str) and _WORD.match(cohort.strip())) or cohort.strip().upper() in _LITERALS:
            return
        name = cohort.strip()
        saved = self.cohorts()["name"].to_pylist()
        columns = self._con.execute("SELECT list(column_name) FROM duckdb_columns() WHERE table_name = 'persons'")
        columns = columns.fetchall()[0][0] or []
        sample = self._con.execute("SELECT count(*) FROM samples WHERE sample_id = ?", [name]).fetchall()[0][0]
        if name not in saved and name not in columns and not sample:  # a sample ID: resolve() says give a list
            raise QueryError(
                f"no saved cohort named {name!r} (saved: {', '.join(saved) or 'none'}); save one with "
                "'genoquery cohort STORE save NAME FILTER', or give a filter such as \"sex_at_birth = 'Female'\""
            )

    def cohorts(self) -> pa.Table:
        """The saved cohorts: ``name, kind`` (filter or ids), ``definition, created_at``."""
        return _later("genoquery.query.cohorts").saved(self._con)

    def save_cohort(self, name: str, cohort) -> np.ndarray:
        """Check a cohort (filter expression or sample IDs) and save it under ``name``, replacing
        one of that name; returns its sample indexes. The index is written through a separate
        read-write connection, so this store is closed and reopened around the write: other
        :class:`Store` objects on this store in this process must be closed first."""
        cohorts = _later("genoquery.query.cohorts")
        cohorts.check_name(self._con, name)
        kind, definition, indexes = cohorts.resolve(self._con, cohort)
        self._con.close()
        try:
            cohorts.save(self.path, name, kind, definition)
        finally:
            self._con = open_index(self.path / INDEX_FILE)
            for attr, value in vars(type(self)).items():  # helpers built on the closed connection
                if isinstance(value, cached_property):
                    self.__dict__.pop(attr, None)
        return indexes

    def genotypes(
        self,
        region: str | None = None,
        samples: list[str] | None = None,
        *,
        max_bytes: int | None = None,
        fields: Sequence[str] = (),
    ) -> Genotypes:
        """The genotype matrix of ``region`` for ``samples``, from the Zarr arrays.

        ``region`` is ``CONTIG[:START[-END]]``, 1-based inclusive (``None``: every site);
        ``samples`` a list of sample IDs, returned in that order (``None``: all, store
        order). Returns a :class:`genoquery.query.genotypes.Genotypes`: ``sites`` (Arrow),
        ``sample_ids``, ``gt`` int8 (sites, samples, 2; -1 missing, -2 haploid fill) and
        ``phased`` bool (sites, samples); ``.to_xarray()`` gives a VCF Zarr dataset. The
        result takes 3 bytes per call (``sites x samples x 2`` for ``gt`` plus
        ``sites x samples`` for ``phased``); more than ``max_bytes`` (default 2 GiB) is a
        :class:`QueryError`, as are unknown or duplicated sample IDs. ``fields`` names kept
        FORMAT and INFO fields (``FORMAT/DP``, ``INFO/DP``; ``DP`` alone is FORMAT) to read into
        ``.fields`` (``call_DP`` (sites, samples[, width]), ``variant_DP`` (sites[, width]); coded
        as the store's arrays, :mod:`genoquery.query.fields`), for the same samples.
        """
        genotypes = _later("genoquery.query.genotypes")
        return genotypes.read_genotypes(
            self._con,
            self._contigs,
            self.batches,
            region,
            self._everyone.copied() if samples is None else samples,
            genotypes.MAX_BYTES if max_bytes is None else max_bytes,
            _later("genoquery.query.fields").resolve(self.batches, fields, "FORMAT") if fields else (),
        )

    def export_vcf(
        self,
        path: str | os.PathLike,
        region: str | Sequence[str] | None = None,
        samples: list[str] | None = None,
        *,
        index: str | None = None,
        progress: bool = False,
    ) -> Path:
        """Write ``region`` (1-based inclusive, or a list of them, :meth:`regions`; ``None``: every
        site) for ``samples`` (IDs, in that order; ``None``: all) as VCF, bgzipped VCF or BCF,
        chosen by the name: ``.vcf``, ``.vcf.gz`` (BGZF, indexable by tabix) or ``.bcf``; ``-`` is
        VCF on standard output. ``index`` ``csi`` or ``tbi`` also writes that index beside it (as
        ``bcftools view --write-index``); ``progress`` shows a bar of sites written. INFO holds AC
        (per ALT) and AN over the exported samples and the store's kept INFO fields, FORMAT holds GT
        and the kept FORMAT fields (:mod:`genoquery.query.vcf_export`). Memory stays bounded (256
        sites at a time); the file appears only when complete. Returns ``path``.
        """
        regions = None if region is None else self.regions(region)
        return _later("genoquery.query.vcf_export").export_vcf(
            self, path, regions, samples, index=index, progress=progress
        )


def open(path: str | os.PathLike) -> Store:
    """Open an existing store read-only."""
    return Store(existing_store(path))
