"""Writing a batch's two Zarr groups: the VCF Zarr dataset and the query encoding.

The VCF Zarr group (:data:`~genoquery.storage.format.VCF_GROUP`) is Zarr format 2, as bio2zarr
writes it, so that vcztools, xarray and sgkit (whose releases still read only Zarr 2) open it
unchanged. Every array with a ``variants`` dimension has the same chunk length along it
(:attr:`ChunkLayout.variant_chunk`), as the VCF Zarr specification requires, and nothing is
sharded: vcztools reads blocks by ``Array.blocks``, which in zarr-python 3 addresses shards while
``Array.chunks`` names inner chunks, so sharded call arrays came back with other rows' calls.

Genotypes are streamed one block of ``variant_chunk`` sites at a time across all samples, so
every chunk is written whole, once, and never read back. Per-variant arrays are written at the
end from the DuckDB index, when the largest number of alleles and every FILTER are known.

The query group (:data:`~genoquery.storage.format.QUERY_GROUP`) is Zarr format 3 with sharding,
read region by region by :mod:`genoquery.storage.shard_reads`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from genoquery.ingest.chunk_rows import write_chunk_row
from genoquery.ingest.format_arrays import CallField
from genoquery.storage.call_codes import CallCodes
from genoquery.storage.format import FILL, MISSING, VCF_ZARR_VERSION, query_group, vcf_group
from genoquery.storage.wide_calls import GENOTYPE, ROW, SAMPLE, WideCalls


@dataclass(frozen=True)
class ChunkLayout:
    """Chunk shapes, in variants and samples.

    ``variant_chunk`` is the chunk length along ``variants`` of every VCF Zarr array and the
    number of sites ingested per block (memory: ``variant_chunk x samples x 3`` bytes per block, plus
    ``variant_chunk x samples x width x 4`` per kept FORMAT field, 8 for text ones); a batch
    uses it halved until a block's calls fit ``block_bytes`` (:meth:`fitted`).
    See docs/architecture.md for the measurements behind the defaults.
    """

    variant_chunk: int = 256
    # At most four blocks are in flight in one process (pipeline.BLOCKS_IN_FLIGHT; six to seven on
    # a Dask worker): 4 x 256 MiB at any sample count. At 10^6 samples that makes 64-site chunks:
    # 1.81 GB peak instead of 4.5 GB with six blocks, for 12% more call_genotype bytes (207.6 vs 184.9 MB).
    block_bytes: int = 256 << 20
    sample_chunk: int = 10_000
    clevel: int = 5
    # The query encoding is read region by region, where zarr's cost per chunk read (~1-2 ms)
    # outweighs decoding; the rarest sites' calls are also inline in the index.
    # Dense 2-bit codes: at most 131,072 samples by code_chunk_rows sites per chunk, and a row in up
    # to code_columns chunks (each at least code_min_bytes) so one participant's codes decode a
    # fraction of a row. At 10^5 samples, 4,096-byte columns against whole 25,000-byte rows: one
    # sample's codes 4.4 ms against 29.6 ms, all of them 24 ms against 37 ms, 40.4 MB against
    # 44.5 MB (LZ4; the 2,107 dense sites of benchmarks/ at 10^5).
    code_chunk_bytes: int = 32768
    code_columns: int = 8
    code_min_bytes: int = 4096
    code_chunk_rows: int = 32  # one variant's carriers decode 32 sites' codes, not variant_chunk's
    listed_chunk: int = 262144
    listed_shard: int = 16777216
    missing_chunk: int = 1048576  # read whole regions at a time: zarr costs ~1-2 ms per chunk read
    missing_shard: int = 16777216

    def code_width(self, n_bytes: int) -> int:
        """Bytes of a code row per chunk, for rows of ``n_bytes`` (4 samples a byte)."""
        return min(n_bytes, self.code_chunk_bytes, max(self.code_min_bytes, -(-n_bytes // self.code_columns)))

    def fitted(self, n_samples: int, call_bytes: int = 3) -> ChunkLayout:
        """This layout for a batch of ``n_samples``: ``variant_chunk`` halved (down to 1) until a
        block of that many sites' calls, at ``call_bytes`` per call, fits ``block_bytes``."""
        chunk = self.variant_chunk
        while chunk > 1 and chunk * n_samples * call_bytes > self.block_bytes:
            chunk //= 2
        return replace(self, variant_chunk=chunk)


def vcf_compressor(layout: ChunkLayout, chunk_bytes: int) -> numcodecs.Blosc:
    """Blosc zstd with bitshuffle, as bio2zarr's genotype arrays, with one Blosc block per chunk
    of ``chunk_bytes``: on 1,024 sites x 10^5 samples of the simulated cohort, 256 x 10,000 chunks
    at level 5 take 2,368 B/site at 0.44 ms/site to encode, against 2,602 B/site with Blosc's
    automatic blocksize and 2,440 B/site (0.69 ms) for bio2zarr's 1,000 x 10,000 at level 7."""
    return numcodecs.Blosc(
        cname="zstd", clevel=layout.clevel, shuffle=numcodecs.Blosc.BITSHUFFLE, blocksize=chunk_bytes
    )


def query_compressor(typesize: int = 1) -> BloscCodec:
    """LZ4 with byte shuffle for the query encoding, read whole regions at a time: at 10^5
    samples it decodes missing-call tokens at 2.0 GB/s and dense codes at 3.6 GB/s, against
    0.8 GB/s for zstd 5, for 38% more bytes (tokens 37.7 vs 27.4 MB, codes 26.8 vs 15.1 MB)."""
    return BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.shuffle, typesize=typesize)


SAMPLE_START_CHUNK = 65536  # samples per chunk of listed_call_sample_start: one sample's bounds decode 256 KB


def _sample_major_compressor(typesize: int = 1) -> BloscCodec:
    """zstd for the sample-major index, read a few rows at a time: 21.5 MB against LZ4's 24.1 MB
    for 8.7 M positions at 10^5 samples."""
    return BloscCodec(cname="zstd", clevel=5, shuffle=BloscShuffle.shuffle, typesize=typesize)


class _AppendedArray:
    """A Zarr array grown along its first axis whole shards at a time.

    Rows are buffered until a shard fills, so no shard is written twice (zarr
    would read it back and rewrite it); :meth:`flush` writes the rest.
    """

    def __init__(self, array: zarr.Array) -> None:
        self.array = array
        self.shard_rows = array.shards[0]
        self.pending: list[np.ndarray] = []
        self.reserved = 0

    def reserve(self, n: int) -> int:
        """Count ``n`` rows to come; returns the first one's row."""
        self.reserved += n
        return self.reserved - n

    def append(self, rows: np.ndarray) -> None:
        self.pending.append(rows)
        if sum(len(p) for p in self.pending) >= self.shard_rows:
            self._write(whole_shards=True)

    def flush(self) -> None:
        self._write(whole_shards=False)

    def _write(self, whole_shards: bool) -> None:
        if not self.pending:
            return
        stacked = np.concatenate(self.pending)
        keep = len(stacked) // self.shard_rows * self.shard_rows if whole_shards else len(stacked)
        first = self.array.shape[0]
        if keep:
            self.array.resize((first + keep, *self.array.shape[1:]))
            self.array[first : first + keep] = stacked[:keep]
        self.pending = [stacked[keep:]] if keep < len(stacked) else []


def _dims(names: tuple[str, ...]) -> dict:
    """Zarr format 2 keeps dimension names where xarray looks for them."""
    return {"_ARRAY_DIMENSIONS": list(names)}


class GenotypeWriter:
    """Writes a batch's directory ``batch_dir``: the VCF Zarr group and the query group."""

    def __init__(self, batch_dir: Path, n_samples: int, layout: ChunkLayout, calls: Sequence[CallField] = ()) -> None:
        # GT and phase take 3 bytes per call, each FORMAT field at least one value's bytes
        self.layout = layout.fitted(n_samples, 3 + sum(spec.dtype.itemsize for spec in calls))
        self.n_samples = n_samples
        self.directory = batch_dir
        batch_dir.mkdir(parents=True, exist_ok=True)
        self.vcf = zarr.open_group(str(vcf_group(batch_dir)), mode="w", zarr_format=2)
        self.vcf.attrs["vcf_zarr_version"] = VCF_ZARR_VERSION
        self.query = zarr.open_group(str(query_group(batch_dir)), mode="w", zarr_format=3)
        sample_chunk = min(layout.sample_chunk, max(1, n_samples))
        self.genotype = self._call_array("call_genotype", (n_samples, 2), "int8", (sample_chunk, 2))
        self.phased = self._call_array("call_genotype_phased", (n_samples,), "bool", (sample_chunk,))
        self.calls = {spec.name: self.create_call_array(spec) for spec in calls}
        self.narrow: dict[str, list[tuple[int, int, int, list[int]]]] = {spec.name: [] for spec in calls}
        self.wide: list[WideCalls] = []
        self.n_variants = 0
        self._create_query_arrays()

    def _call_array(self, name: str, trailing: tuple, dtype: str, chunk: tuple) -> zarr.Array:
        dims = ("variants", "samples", "ploidy")[: 1 + len(trailing)]
        return self.vcf.create_array(
            name,
            shape=(0, *trailing),
            dtype=dtype,
            chunks=(self.layout.variant_chunk, *chunk),
            compressors=vcf_compressor(
                self.layout, self.layout.variant_chunk * int(np.prod(chunk)) * np.dtype(dtype).itemsize
            ),
            fill_value=None,
            attributes=_dims(dims),
        )

    def create_call_array(self, spec: CallField, width: int = 1) -> zarr.Array:
        """An empty ``call_<ID>`` array, chunked as ``call_genotype`` along variants and samples and
        one column at a time along its trailing dimension, which grows as wider records come."""
        sample_chunk = min(self.layout.sample_chunk, max(1, self.n_samples))
        trailing = () if spec.scalar else (width,)
        chunks = (self.layout.variant_chunk, sample_chunk, *(1 for _ in trailing))
        is_text = spec.dtype.kind == "O"
        return self.vcf.create_array(
            spec.name,
            shape=(0, self.n_samples, *trailing),
            dtype=str if is_text else spec.dtype,
            chunks=chunks,
            compressors="auto" if is_text else vcf_compressor(self.layout, int(np.prod(chunks)) * spec.dtype.itemsize),
            fill_value="" if is_text else None,
            attributes=_dims(spec.dims) | spec.attributes,
        )

    def _create_query_arrays(self) -> None:
        layout, n_bytes = self.layout, max(1, -(-self.n_samples // 4))
        code_chunk = layout.code_width(n_bytes)
        self.codes = _AppendedArray(
            self.query.create_array(
                "call_genotype_code",
                shape=(0, n_bytes),
                dtype="uint8",
                chunks=(math.gcd(layout.code_chunk_rows, layout.variant_chunk), code_chunk),
                shards=(layout.variant_chunk, -(-n_bytes // code_chunk) * code_chunk),
                compressors=query_compressor(),
                fill_value=0,
                dimension_names=("dense_variants", "sample_quads"),
            )
        )
        listed = {"chunks": (layout.listed_chunk,), "shards": (layout.listed_shard,)}
        self.listed_sample = self._query_list("listed_call_sample", "int32", ("listed_calls",), listed)
        self.listed_genotype = self._query_list(
            "listed_call_genotype",
            "int8",
            ("listed_calls", "ploidy"),
            {"chunks": (layout.listed_chunk, 2), "shards": (layout.listed_shard, 2)},
        )
        missing = {"chunks": (layout.missing_chunk,), "shards": (layout.missing_shard,)}
        self.missing_tokens = self._query_list("missing_call_token", "uint16", ("missing_tokens",), missing)

    def _query_list(self, name: str, dtype: str, dims: tuple[str, ...], shape: dict, compressor=None) -> _AppendedArray:
        return _AppendedArray(
            self.query.create_array(
                name,
                shape=(0, *shape["chunks"][1:]),
                dtype=dtype,
                compressors=(compressor or query_compressor)(np.dtype(dtype).itemsize),
                dimension_names=dims,
                **shape,
            )
        )

    def reserve(self, n: int, calls: dict[str, np.ndarray] | None = None) -> int:
        """Grow the call arrays by ``n`` variants, and each FORMAT array to the width of its
        block buffer in ``calls``; returns the first new row."""
        first = self.n_variants
        self.n_variants += n
        self.genotype.resize((self.n_variants, self.n_samples, 2))
        self.phased.resize((self.n_variants, self.n_samples))
        for name, array in self.calls.items():
            width = max(array.shape[2:] + (calls[name].shape[2:] if calls else ())) if array.ndim == 3 else None
            array.resize((self.n_variants, self.n_samples, *(() if width is None else (width,))))
        return first

    def widen_calls(self, widths: dict[str, int]) -> None:
        """Widen FORMAT arrays to ``widths`` (name: trailing size) where they are narrower."""
        for name, width in widths.items():
            array = self.calls[name]
            if width > array.shape[2]:
                array.resize((self.n_variants, self.n_samples, width))

    def write(self, first: int, gt: np.ndarray, phased: np.ndarray) -> None:
        """Write ``gt`` (n, samples, 2) and ``phased`` (n, samples) at rows reserved before: from the
        start of a chunk row by :func:`write_chunk_row`, else through zarr (which reads back and
        rewrites the chunks the rows share with rows written before)."""
        for array, values in ((self.genotype, gt), (self.phased, phased)):
            if first % self.layout.variant_chunk == 0 and array.shape[1:] == values.shape[1:]:
                write_chunk_row(array, first, values)
            else:
                array[first : first + len(values)] = values

    def add_wide(self, first: int, wide: WideCalls) -> None:
        """Keep a block's calls of ploidy above 2 (block rows, written at row ``first``) for
        :meth:`finish_wide`."""
        if len(wide):
            self.wide.append(wide.shifted(first))

    def finish_wide(self) -> None:
        """Widen ``call_genotype`` to the batch's largest ploidy, fill beyond each call's own, and
        write the calls of ploidy above 2 there and as the query group's wide-call arrays (none
        are written for a batch without such calls)."""
        if not self.wide:
            return
        wide = WideCalls.concat(self.wide)
        ploidy, (step, _) = wide.ploidy, self.genotype.chunks[:2]
        self.genotype.resize((self.n_variants, self.n_samples, ploidy))
        for lo in range(0, self.n_variants, step):
            part = wide.rows_between(lo, lo + step)
            beyond = np.full((min(step, self.n_variants - lo), self.n_samples, ploidy - 2), FILL, dtype=np.int8)
            beyond[part.row, part.sample] = part.alleles[:, 2:]
            self.genotype[lo : lo + len(beyond), :, 2:] = beyond
        for slot in range(2):
            self.genotype.vindex[wide.row, wide.sample, np.full(len(wide), slot)] = wide.alleles[:, slot]
        self.write_small_array(ROW, wide.row, ("wide_calls",), query=True)
        self.write_small_array(SAMPLE, wide.sample.astype(np.int32), ("wide_calls",), query=True)
        self.write_small_array(GENOTYPE, wide.alleles, ("wide_calls", "ploidy"), query=True)

    def write_calls(self, first: int, n: int, calls: dict[str, np.ndarray], absent: dict[str, list[int]]) -> None:
        """Write a block's FORMAT buffers (:class:`~genoquery.storage.site_block.SiteBlock`) at ``n``
        rows reserved before; columns a wider later block adds are written by :meth:`finish_calls`."""
        for name, array in self.calls.items():
            values = calls[name][:n]
            if array.ndim == 3:
                array[first : first + n, :, : values.shape[2]] = values
                self.narrow[name].append((first, n, values.shape[2], absent[name]))
            else:
                array[first : first + n] = values

    def finish_calls(self, specs: Sequence[CallField], max_alleles: int) -> None:
        """Give each FORMAT array its final width (:meth:`CallField.width`) and write the columns
        blocks narrower than it lack: fill, or missing in rows whose FORMAT lacks the field."""
        for spec in specs:
            array = self.calls[spec.name]
            if array.ndim == 2:
                continue
            width = spec.width(max_alleles, array.shape[2])
            array.resize((self.n_variants, self.n_samples, width))
            step = array.chunks[1]
            for first, n, written, absent in self.narrow[spec.name]:
                for lo in range(0, self.n_samples if written < width else 0, step):
                    pad = np.full((n, min(step, self.n_samples - lo), width - written), spec.fill, dtype=spec.dtype)
                    pad[absent] = spec.missing
                    array[first : first + n, lo : lo + step, written:] = pad

    def reserve_codes(self, codes: CallCodes) -> tuple[int, int, int]:
        """Count a block's dense sites, listed calls and missing-call tokens; returns the first row of each."""
        return (
            self.codes.reserve(len(codes.codes)),
            self.listed_sample.reserve(len(codes.row_sample)),
            self.missing_tokens.reserve(len(codes.token)),
        )

    def write_codes(self, codes: CallCodes) -> None:
        """Append a block's query encoding, in the order of :meth:`reserve_codes`."""
        self.codes.append(codes.codes)
        self.listed_sample.append(codes.row_sample)
        self.listed_genotype.append(np.stack([codes.row_a0, codes.row_a1], axis=1))
        self.missing_tokens.append(codes.token)

    def flush_codes(self) -> None:
        """Write the query encoding still pending (each array's last, partial shard), then the
        listed calls' sample-major index."""
        for array in (self.codes, self.listed_sample, self.listed_genotype, self.missing_tokens):
            array.flush()
        self._write_listed_by_sample()

    def _write_listed_by_sample(self) -> None:
        """The listed calls again in sample order, so one participant's are read, not searched for.

        Per part of ``listed_shard`` listed calls (a part's sort stays in memory at any size):
        ``listed_call_by_sample`` (listed_calls) uint32 holds the part's positions (from its first
        call) ordered by sample then position, ``listed_call_genotype_by_sample`` their alleles, and
        ``listed_call_sample_start`` (parts, samples + 1) uint32 where each sample's run begins in its
        part. At 10^5 samples, 8.7 M listed calls: 21.5 + 1.8 MB (zstd), 1.4 s to sort."""
        part, n = self.layout.listed_shard, self.listed_sample.array.shape[0]
        bounds = self.n_samples + 1
        width = min(SAMPLE_START_CHUNK, bounds)
        starts = self.query.create_array(
            "listed_call_sample_start",
            shape=(-(-n // part), bounds),
            dtype="uint32",
            chunks=(1, width),
            shards=(1, -(-bounds // width) * width),
            compressors=_sample_major_compressor(4),
            dimension_names=("listed_parts", "sample_bounds"),
            attributes={"part_calls": part},
        )
        shape = {"chunks": (self.layout.listed_chunk,), "shards": (part,)}
        positions = self._query_list(
            "listed_call_by_sample", "uint32", ("listed_calls",), shape, _sample_major_compressor
        )
        ploidy = self.listed_genotype.array.shape[1]
        shape = {"chunks": (self.layout.listed_chunk, ploidy), "shards": (part, ploidy)}
        alleles = self._query_list(
            "listed_call_genotype_by_sample", "int8", ("listed_calls", "ploidy"), shape, _sample_major_compressor
        )
        for first in range(0, n, part):
            samples = self.listed_sample.array[first : first + part]
            order = np.argsort(samples, kind="stable")
            runs = np.bincount(samples, minlength=self.n_samples)  # each sample's calls in the part
            starts[first // part] = np.concatenate([[0], np.cumsum(runs)]).astype(np.uint32)
            positions.append(order.astype(np.uint32))
            alleles.append(self.listed_genotype.array[first : first + part][order])
        positions.flush()
        alleles.flush()

    def create_variant_array(
        self, name: str, shape: tuple[int, ...], dtype, dims: tuple[str, ...], attributes: dict | None = None
    ) -> zarr.Array:
        """An empty VCF Zarr array with a ``variants`` dimension, in ``variant_chunk`` rows."""
        is_text = dtype is str
        chunks = (self.layout.variant_chunk, *tuple(max(1, n) for n in shape[1:]))
        return self.vcf.create_array(
            name,
            shape=shape,
            dtype=dtype,
            chunks=chunks,
            compressors="auto"
            if is_text
            else vcf_compressor(self.layout, int(np.prod(chunks)) * np.dtype(dtype).itemsize),
            fill_value="" if is_text else None,
            attributes=_dims(dims) | (attributes or {}),
        )

    def write_small_array(self, name: str, values: np.ndarray, dims: tuple[str, ...], query: bool = False) -> None:
        """Write a per-sample, per-contig, per-filter or per-pattern array whole, as one chunk, in
        the VCF Zarr group (or the query group)."""
        is_text = values.dtype.kind in "OUT"
        shape = {"shape": values.shape, "chunks": tuple(max(1, n) for n in values.shape)}
        dtype = str if is_text else values.dtype
        if query:
            array = self.query.create_array(name, dtype=dtype, dimension_names=dims, **shape)
        else:
            fill = "" if is_text else MISSING if values.dtype.kind == "i" else None
            array = self.vcf.create_array(name, dtype=dtype, fill_value=fill, attributes=_dims(dims), **shape)
        if values.size:
            array[...] = values

    def finish(self, attributes: dict) -> None:
        """Set the VCF Zarr group's ``attributes`` and consolidate both groups' metadata, so
        that xarray and zarr open each with one read."""
        self.vcf.attrs.update(attributes)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            zarr.consolidate_metadata(self.vcf.store)
            zarr.consolidate_metadata(self.query.store)
