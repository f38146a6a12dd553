"""Writing the VCF Zarr genotype group (Zarr v3, sharded).

Genotype arrays are streamed one shard row at a time: a block holds
``layout.variant_shard`` sites across all samples, so every shard is written
whole, once, and never read back. Per-variant arrays (positions, alleles, IDs,
filters) are written at the end from the DuckDB index, when the largest number
of alleles and the full filter list are known.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

VCF_ZARR_VERSION = "0.4"


@dataclass(frozen=True)
class ChunkLayout:
    """Chunk and shard shape of the genotype arrays, in variants and samples.

    Inner chunks are what a reader decompresses; shards are the files. See
    docs/architecture.md for the measurements behind the defaults.
    """

    variant_chunk: int = 64
    sample_chunk: int = 8192
    variant_shard: int = 256
    clevel: int = 5
    variant_array_chunk: int = 4096  # a multiple of variant_chunk, so chunk boundaries align
    variant_array_shard: int = 262144


def _compressor(layout: ChunkLayout, typesize: int = 1) -> BloscCodec:
    """Blosc zstd + bitshuffle with one Blosc block per chunk (blocksize 0 splits a
    1 MB chunk into small blocks and costs ~20% in size at equal speed)."""
    chunk_bytes = layout.variant_chunk * layout.sample_chunk * 2 * typesize
    return BloscCodec(cname="zstd", clevel=layout.clevel, shuffle=BloscShuffle.bitshuffle,
                      typesize=typesize, blocksize=chunk_bytes)


class GenotypeWriter:
    """Appends genotype blocks to ``call_genotype`` and ``call_genotype_phased``."""

    def __init__(self, path: Path, n_samples: int, layout: ChunkLayout) -> None:
        self.layout = layout
        self.n_samples = n_samples
        self.group = zarr.open_group(str(path), mode="w", zarr_format=3)
        self.group.attrs["vcf_zarr_version"] = VCF_ZARR_VERSION
        sample_chunk = min(layout.sample_chunk, max(1, n_samples))
        v_shard = layout.variant_shard
        s_shard = -(-max(1, n_samples) // sample_chunk) * sample_chunk  # one shard spans all samples
        self.genotype = self.group.create_array(
            "call_genotype", shape=(0, n_samples, 2), dtype="int8",
            chunks=(layout.variant_chunk, sample_chunk, 2), shards=(v_shard, s_shard, 2),
            compressors=_compressor(layout), fill_value=-1,
            dimension_names=("variants", "samples", "ploidy"))
        self.phased = self.group.create_array(
            "call_genotype_phased", shape=(0, n_samples), dtype="bool",
            chunks=(layout.variant_chunk, sample_chunk), shards=(v_shard, s_shard),
            compressors=_compressor(layout), fill_value=False,
            dimension_names=("variants", "samples"))
        self.n_variants = 0

    def reserve(self, n: int) -> int:
        """Grow the arrays by ``n`` variants; returns the first new row."""
        first = self.n_variants
        self.n_variants += n
        self.genotype.resize((self.n_variants, self.n_samples, 2))
        self.phased.resize((self.n_variants, self.n_samples))
        return first

    def write(self, first: int, gt: np.ndarray, phased: np.ndarray) -> None:
        """Write ``gt`` (n, samples, 2) and ``phased`` (n, samples) at rows reserved before."""
        self.genotype[first:first + len(gt)] = gt
        self.phased[first:first + len(gt)] = phased

    def create_variant_array(self, name: str, shape: tuple[int, ...], dtype,
                             dims: tuple[str, ...]) -> zarr.Array:
        """An empty per-variant array in 4,096-row chunks.

        64-row chunks (the genotype chunk) cost ~2 ms each to encode in
        zarr-python, which dominated ingest of small cohorts; 4,096 is a
        multiple of 64, so chunk boundaries still align with the genotypes'.
        """
        chunks = (self.layout.variant_array_chunk,) + tuple(max(1, n) for n in shape[1:])
        is_text = dtype is str
        return self.group.create_array(
            name, shape=shape, dtype=dtype, chunks=chunks,
            shards=(self.layout.variant_array_shard,) + chunks[1:],
            compressors="auto" if is_text else _compressor(self.layout, np.dtype(dtype).itemsize),
            dimension_names=dims)

    def write_small_array(self, name: str, values: np.ndarray, dims: tuple[str, ...]) -> None:
        """Write a per-sample, per-contig or per-filter array whole."""
        is_text = values.dtype.kind in "OUT"
        array = self.group.create_array(
            name, shape=values.shape, dtype=str if is_text else values.dtype,
            chunks=(max(1, len(values)),), dimension_names=dims)
        if values.size:
            array[...] = values

    def finish(self) -> None:
        """Consolidate metadata so that xarray and zarr open the group with one read."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            zarr.consolidate_metadata(self.group.store)
