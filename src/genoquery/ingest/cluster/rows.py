"""Rows of a batch's call arrays, and the chunk rows of ``call_genotype`` (and of the arrays
chunked as it is) a partition of rows writes whole or leaves to the client.

A partition owns the chunk rows that lie wholly in its rows (the last chunk row of the batch ends
with it). The rows before its first chunk boundary (its head) and after its last (its tail) share
a chunk row with the partitions beside it: they are handed back and the client writes them, in
order, so no chunk is written by two processes. Writes go through views of the arrays with the
batch's final number of rows and the width of the rows written, so workers never write an array's
metadata: the client gives each array its shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import zarr
from zarr.core.array import Array, AsyncArray

from genoquery.ingest.format_arrays import CallField
from genoquery.storage.format import vcf_group
from genoquery.storage.site_block import SiteBlock

GENOTYPE, PHASED = "call_genotype", "call_genotype_phased"


@dataclass
class CallRows:
    """Rows ``first`` to ``first + n`` of a batch's call arrays: ``arrays`` maps ``call_genotype``
    (n, samples, 2), ``call_genotype_phased`` (n, samples) and each kept FORMAT field's ``call_<ID>``
    (n, samples[, width]) to its values."""

    first: int
    arrays: dict[str, np.ndarray]

    @property
    def n(self) -> int:
        return len(self.arrays[GENOTYPE])

    @classmethod
    def of_block(cls, first: int, block: SiteBlock) -> CallRows:
        """A decoded block's rows, placed from row ``first``."""
        arrays = {GENOTYPE: block.gt[: block.n], PHASED: block.phased[: block.n]}
        arrays.update({name: values[: block.n] for name, values in block.calls.items()})
        return cls(first, arrays)

    def cut(self, lo: int, hi: int) -> CallRows:
        """Rows ``lo`` to ``hi`` (batch rows), clipped to these."""
        lo, hi = max(lo, self.first), min(hi, self.first + self.n)
        start, stop = lo - self.first, max(lo, hi) - self.first
        return CallRows(lo, {name: values[start:stop] for name, values in self.arrays.items()})


def joined(parts: Sequence[CallRows], specs: Sequence[CallField]) -> CallRows | None:
    """Consecutive rows as one, each FORMAT field widened to its widest part's width with the
    field's fill (the columns beyond a block's own are written again by
    :meth:`~genoquery.ingest.zarr_writer.GenotypeWriter.finish_calls`); None for no rows."""
    parts = [p for p in parts if p.n]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    arrays = {}
    fills = {spec.name: spec.fill for spec in specs}
    for name in parts[0].arrays:
        values = [p.arrays[name] for p in parts]
        if values[0].ndim == 3 and name in fills:
            width = max(v.shape[2] for v in values)
            values = [_widened(v, width, fills[name]) for v in values]
        arrays[name] = np.concatenate(values)
    return CallRows(parts[0].first, arrays)


def _widened(values: np.ndarray, width: int, fill) -> np.ndarray:
    if values.shape[2] == width:
        return values
    out = np.full((*values.shape[:2], width), fill, dtype=values.dtype)
    out[:, :, : values.shape[2]] = values
    return out


class CallArrays:
    """A batch's call arrays in ``batch_dir``, of ``n_variants`` rows, opened for writing rows."""

    def __init__(self, batch_dir: Path, names: Sequence[str], n_variants: int) -> None:
        group = vcf_group(batch_dir)
        self.arrays = {name: zarr.open_array(str(group / name), mode="r+", zarr_format=2) for name in names}
        self.n_variants = n_variants

    def write(self, rows: CallRows) -> None:
        """Write ``rows`` (every array, each FORMAT array up to its rows' width)."""
        for name, values in rows.arrays.items():
            array = self.arrays[name]
            shape = (self.n_variants, *values.shape[1:])
            view = Array(AsyncArray(replace(array.metadata, shape=shape), array.store_path, array.async_array.config))
            view[rows.first : rows.first + rows.n] = values


class ChunkRowWriter:
    """Hands the chunk rows wholly in a partition's rows ``first`` to ``end`` (of a batch of
    ``n_variants`` rows in chunk rows of ``chunk``) to ``write`` as its rows come in order, and keeps
    its head and tail (:mod:`module docstring <genoquery.ingest.cluster.rows>`) for the client."""

    def __init__(
        self,
        write: Callable[[CallRows], None],
        specs: Sequence[CallField],
        chunk: int,
        span: tuple[int, int, int],
    ) -> None:
        first, end, n_variants = span
        self.write, self.specs, self.chunk = write, specs, chunk
        head_end = first if first % chunk == 0 else min(end, -(-first // chunk) * chunk)
        whole_end = end if end % chunk == 0 or end == n_variants else max(head_end, end // chunk * chunk)
        self.bounds = (first, head_end, whole_end, end)
        self.head: list[CallRows] = []
        self.whole: list[CallRows] = []
        self.tail: list[CallRows] = []

    def add(self, rows: CallRows) -> None:
        first, head_end, whole_end, end = self.bounds
        for kept, lo, hi in (
            (self.head, first, head_end),
            (self.whole, head_end, whole_end),
            (self.tail, whole_end, end),
        ):
            part = rows.cut(lo, hi)
            if part.n:  # an empty view would keep the block's buffers alive
                kept.append(part)
        pending = joined(self.whole, self.specs)
        if pending is None:
            return
        ready = pending.n // self.chunk * self.chunk
        if pending.first + pending.n == whole_end:
            ready = pending.n  # the last chunk rows: the batch's last may be short
        if ready:
            self.write(pending.cut(pending.first, pending.first + ready))
        rest = pending.cut(pending.first + ready, pending.first + pending.n)
        self.whole = [rest] if rest.n else []

    def edges(self) -> tuple[CallRows | None, CallRows | None]:
        """The head and the tail, once every row was added."""
        assert not self.whole, "rows of whole chunk rows were not all added"
        return joined(self.head, self.specs), joined(self.tail, self.specs)
