"""A store's batches as queries see them: each batch's Zarr group, samples and records."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from importlib import import_module
from pathlib import Path

import numpy as np

from genoquery.storage.format import MISSING, QUERY_GROUP, query_group, vcf_group
from genoquery.storage.objects import ObjectPath, batch_root, zarr_location
from genoquery.storage.wide_calls import ROW as WIDE_ROWS

NOT_CALLED = (MISSING, MISSING)  # ./.
HOM_REF = (0, 0)  # 0/0


@dataclass(frozen=True)
class Batch:
    """One batch: ``number`` (``batches.batch``), ``name``, its directory ``path`` (on object
    storage an :class:`~genoquery.storage.objects.ObjectPath`), global
    sample indexes ``offset`` .. ``offset + n_samples - 1``, and whether it is a complete
    callset (what records it lacks mean: :attr:`absent_call`)."""

    number: int
    name: str
    path: Path | ObjectPath
    offset: int
    n_samples: int
    complete: bool
    wide_calls: bool = True  # may hold calls of ploidy above 2 (False: its manifest lists none)

    @property
    def absent_call(self) -> tuple[int, int]:
        """The absent-record rule: the call each of the batch's samples has at a site the batch
        has no record of, ``0/0`` for a complete callset (as ``bcftools merge -0``), else ``./.``."""
        return HOM_REF if self.complete else NOT_CALLED

    @property
    def absent_terms(self) -> tuple[int, int]:
        """What each sample adds at a site the batch has no record of, from :attr:`absent_call`:
        uncalled allele slots (none to AN) and incomplete calls (to ``n_missing``)."""
        call = self.absent_call
        return call.count(MISSING), int(MISSING in call)

    @cached_property
    def reader(self):  # a genoquery.storage.call_reader.CallReader
        return import_module("genoquery.storage.call_reader").CallReader(query_group(self.path), self.n_samples)

    @cached_property
    def genotypes(self):  # the batch's VCF Zarr group (a zarr.Group), opened read-only once
        return import_module("zarr").open_group(zarr_location(vcf_group(self.path)), mode="r")

    @cached_property
    def calls(self):  # (call_genotype, call_genotype_phased) zarr.Arrays
        return self.genotypes["call_genotype"], self.genotypes["call_genotype_phased"]

    def local(self, members: np.ndarray) -> np.ndarray:
        """The batch's columns of ``members`` (sorted global sample indexes), sorted int64."""
        lo, hi = np.searchsorted(members, [self.offset, self.offset + self.n_samples])
        return np.asarray(members[lo:hi], dtype=np.int64) - self.offset


def read_batches(con, store: Path) -> list[Batch]:
    """The batches of the store at ``store`` (its directory, or its mirror's) from its index
    connection ``con``, in order."""
    where = batch_root(store)
    wide = f"%/{QUERY_GROUP}/{WIDE_ROWS}/zarr.json"  # the manifest names every file of a batch's groups
    rows = con.execute(
        "SELECT batch, name, path, sample_offset, n_samples, complete_callset, "
        "EXISTS (SELECT 1 FROM batch_files f WHERE f.batch = b.batch AND f.path LIKE ?) "
        "OR NOT EXISTS (SELECT 1 FROM batch_files f WHERE f.batch = b.batch) FROM batches b ORDER BY batch",
        [wide],
    ).fetchall()
    return [Batch(number, name, where / path, *rest) for number, name, path, *rest in rows]
