"""A block of consecutive sites with their calls in VCF Zarr coding: what a reader of VCF
(:mod:`genoquery.ingest.records`) hands to the writers of the genotypes and the index."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genoquery.storage.wide_calls import STAND_IN, WideCalls

PLOIDY = 2


@dataclass
class SiteBlock:
    """Up to ``capacity`` consecutive sites of one source.

    ``gt`` is (capacity, samples, 2) int8 in VCF Zarr coding (-1 missing,
    -2 fill); ``phased`` is (capacity, samples) bool: allocated unless given
    (reused buffers, whatever they held). Only the first ``n``
    rows are meaningful. ``info`` is each record's INFO column as text (``.`` when empty).
    ``record`` numbers are 1-based line numbers for text
    VCF and 1-based record numbers for BCF. ``calls`` holds each kept FORMAT field's values,
    (capacity, samples) or (capacity, samples, width) in VCF Zarr coding (:meth:`set_calls`), and
    ``absent`` the rows whose FORMAT lacks the field. Calls of ploidy above 2 are
    :data:`~genoquery.storage.wide_calls.STAND_IN` in ``gt``, their alleles in ``wide_parts``
    (:meth:`set_wide`, :attr:`wide`).
    """

    capacity: int
    n_samples: int
    n: int = 0
    contig: list[str] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    vid: list[str] = field(default_factory=list)
    alleles: list[list[str]] = field(default_factory=list)
    qual: list[float] = field(default_factory=list)
    filters: list[list[str]] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    record: list[int] = field(default_factory=list)
    calls: dict[str, np.ndarray] = field(default_factory=dict)
    absent: dict[str, list[int]] = field(default_factory=dict)
    wide_parts: list[WideCalls] = field(default_factory=list)
    gt: np.ndarray | None = None
    phased: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.gt is None:
            self.gt = np.empty((self.capacity, self.n_samples, PLOIDY), dtype=np.int8)
            self.phased = np.empty((self.capacity, self.n_samples), dtype=bool)

    @property
    def full(self) -> bool:
        return self.n == self.capacity

    def add_site(
        self,
        contig: str,
        pos: int,
        vid: str,
        alleles: list[str],
        qual: float,
        filters: list[str],
        info: str,
        record: int,
    ) -> int:
        """Append a site's fixed columns; returns its row for the genotype arrays."""
        self.contig.append(contig)
        self.pos.append(pos)
        self.vid.append(vid)
        self.alleles.append(alleles)
        self.qual.append(qual)
        self.filters.append(filters)
        self.info.append(info)
        self.record.append(record)
        self.n += 1
        return self.n - 1

    def set_wide(self, row: int, samples: np.ndarray, alleles: np.ndarray) -> None:
        """Row ``row``'s calls of ``samples`` have ``alleles`` (calls, ploidy above 2): keep them,
        and their stand-in in ``gt``."""
        self.gt[row, samples] = STAND_IN
        self.wide_parts.append(WideCalls(np.full(len(samples), row, np.int64), samples.astype(np.int64), alleles))

    @property
    def wide(self) -> WideCalls:
        """The block's calls of ploidy above 2, rows relative to the block."""
        return WideCalls.concat(self.wide_parts)

    def set_calls(self, name: str, row: int, values: np.ndarray, missing: object, fill: object, present: bool) -> None:
        """Store row ``row``'s values of a FORMAT field, (samples,) or (samples, k); the field's
        buffer widens to the widest record of the block. Columns beyond a row's own are fill, or
        missing where its FORMAT lacks the field (``present`` False)."""
        buf = self.calls.get(name)
        if buf is None:
            buf = self.calls[name] = np.full((self.capacity, *values.shape), missing, dtype=values.dtype)
        absent = self.absent.setdefault(name, [])
        if values.ndim == 2 and values.shape[1] > buf.shape[2]:
            wider = np.full((self.capacity, self.n_samples, values.shape[1]), missing, dtype=buf.dtype)
            wider[:, :, : buf.shape[2]] = buf
            wider[np.setdiff1d(np.arange(row), absent), :, buf.shape[2] :] = fill
            buf = self.calls[name] = wider
        if values.ndim == 2:
            buf[row, :, : values.shape[1]] = values
            buf[row, :, values.shape[1] :] = fill if present else missing
        else:
            buf[row] = values
        if not present:
            absent.append(row)
