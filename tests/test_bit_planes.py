"""Rows of VCF Zarr call arrays read from their chunks' bit planes (storage/bit_planes.py)
against zarr-python reading the same arrays.

Arrays are written by zarr in Zarr format 2 with the ingest's compressor (Blosc zstd, bitshuffle,
one block per chunk), or with others the module must hand to Blosc or zarr (several Blosc blocks,
LZ4, stored uncompressed); int8 calls of any allele, missing and fill value, and bool phase flags;
chunks whose rows do and do not start on a byte of the planes; chunks never written. Every
selection of rows and samples must equal zarr's own read.
"""

from __future__ import annotations

from unittest.mock import patch

import numcodecs
import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from genoquery.ingest.zarr_writer import ChunkLayout, vcf_compressor
from genoquery.storage import bit_planes

CALL_VALUES = np.array([-2, -1, 0, 0, 0, 0, 1, 1, 2, 3, 127, -128], dtype=np.int8)


def _compressor(kind: str, chunk_bytes: int) -> numcodecs.Blosc:
    if kind == "ingest":
        return vcf_compressor(ChunkLayout(), chunk_bytes)
    if kind == "blocks":  # Blosc's own block size: several blocks per chunk
        return numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE, blocksize=8)
    if kind == "stored":  # level 0: Blosc stores the chunk as it is
        return numcodecs.Blosc(cname="zstd", clevel=0, shuffle=numcodecs.Blosc.BITSHUFFLE, blocksize=chunk_bytes)
    return numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE, blocksize=chunk_bytes)


def _selection(draw, n: int) -> slice | np.ndarray:
    if draw(st.booleans()):
        lo = draw(st.integers(0, n - 1))
        return slice(lo, draw(st.integers(lo + 1, n)))
    picked = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    return np.array(sorted(picked), dtype=np.int64)


@st.composite
def call_arrays(draw):
    """An array's shape, chunks, compressor kind and values, which chunks to leave unwritten, and
    a selection of rows and of samples."""
    phase = draw(st.booleans())
    variants, samples = draw(st.integers(1, 40)), draw(st.integers(1, 400))
    trailing = () if phase else (draw(st.integers(1, 3)),)
    # Blosc stores chunks under 128 bytes as they are, and bitshuffles only a multiple of 8 bytes:
    # most chunks drawn here are larger and 8 or 16 rows (the module's planes, rows at any bit)
    chunks = (draw(st.sampled_from([8, 16, 8, 16, 3])), draw(st.sampled_from([8, 40, 101, 160])), *trailing)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = (variants, samples, *trailing)
    if phase:
        values = rng.random(shape) < draw(st.sampled_from([0.0, 0.5, 1.0]))
    else:
        rare = rng.random(shape) < draw(st.sampled_from([0.0, 0.05, 0.5]))
        values = np.where(rare, rng.choice(CALL_VALUES, shape), 0).astype(np.int8)
    kind = draw(st.sampled_from(["ingest", "ingest", "ingest", "blocks", "stored", "lz4"]))
    unwritten = draw(st.lists(st.integers(0, 100), max_size=3))
    return shape, chunks, kind, values, unwritten, _selection(draw, variants), _selection(draw, samples)


def _written(tmp_path, shape, chunks, kind, values, unwritten) -> zarr.Array:
    chunk_bytes = int(np.prod(chunks)) * values.dtype.itemsize
    array = zarr.create_array(
        zarr.storage.LocalStore(tmp_path),
        name="call",
        shape=shape,
        chunks=chunks,
        dtype=values.dtype,
        zarr_format=2,
        compressors=_compressor(kind, chunk_bytes),
        fill_value=None,
        overwrite=True,
    )
    grid = [range(-(-s // c)) for s, c in zip(shape[:2], chunks[:2], strict=True)]
    blocks = [(r, c) for r in grid[0] for c in grid[1]]
    skipped = {blocks[i % len(blocks)] for i in unwritten}
    for r, c in blocks:
        if (r, c) not in skipped:
            at = (slice(r * chunks[0], (r + 1) * chunks[0]), slice(c * chunks[1], (c + 1) * chunks[1]))
            array[at] = values[at]
    return array


@settings(max_examples=150, deadline=None)
@given(case=call_arrays(), few=st.sampled_from([bit_planes.FEW_ROWS, 1.0]))
def test_rows_equal_zarrs_read(tmp_path_factory, case, few):
    shape, chunks, kind, values, unwritten, rows, samples = case
    array = _written(tmp_path_factory.mktemp("calls"), shape, chunks, kind, values, unwritten)
    with patch.object(bit_planes, "FEW_ROWS", few):  # 1.0: every selection from the planes
        got = bit_planes.read_rows(array, rows, samples)
    want = array.get_orthogonal_selection((rows, samples))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_planes_are_read_without_blosc(tmp_path, monkeypatch):
    """The ingest's chunks are read from their planes, not by Blosc's whole decode: one row of a
    64-row chunk where every allele value, missing and fill occur, rows not byte-aligned."""
    values = np.random.default_rng(1).choice(CALL_VALUES, (64, 13, 3)).astype(np.int8)
    array = _written(tmp_path, values.shape, (64, 13, 3), "ingest", values, [])
    monkeypatch.setattr(numcodecs.Blosc, "decode", lambda *a, **k: pytest.fail("decoded by Blosc"))
    monkeypatch.setattr(zarr.Array, "get_orthogonal_selection", lambda *a, **k: pytest.fail("read by zarr"))
    for row in (0, 5, 63):
        got = bit_planes.read_rows(array, slice(row, row + 1), slice(None))
        np.testing.assert_array_equal(got, values[row : row + 1])


@settings(max_examples=200, deadline=None)
@given(
    rows_in_chunk=st.integers(1, 20),
    per_row=st.integers(1, 70),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_transposed_rows_write_every_element(rows_in_chunk, per_row, seed, data):
    """The kernel alone, on planes made by numpy (``packbits`` of each bit) from random bytes, into
    a buffer filled with another value first: every element of every row asked for, at any bit
    offset, is written and equals the byte it came from."""
    n = -(-rows_in_chunk * per_row // 8) * 8
    values = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)
    values[n // 4 : n // 4 + data.draw(st.integers(0, n))] = 0  # a run of zeros: the kernel's shortcut
    planes = np.stack([np.packbits((values >> b) & 1, bitorder="little") for b in range(8)])
    rows = np.array(sorted(data.draw(st.sets(st.integers(0, rows_in_chunk - 1), min_size=1))), dtype=np.int64)
    out = np.full((len(rows), per_row), 0xA5, dtype=np.uint8)
    bit_planes._transposed_rows(planes, rows, per_row, out)
    np.testing.assert_array_equal(out, values[: rows_in_chunk * per_row].reshape(rows_in_chunk, per_row)[rows])
