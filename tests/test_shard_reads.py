"""Direct shard reads (query/shard_reads.py) against zarr-python reading the same arrays.

Arrays are written by zarr with the ingest's codecs and sharding (1-D and 2-D, inner chunks
that do and do not span the trailing axis, partial edge chunks, chunks and shards never
written), or unsharded; every row range read directly, the array opened by zarr or described
by its metadata alone (storage/local_arrays.py), must equal zarr's own read. A damaged shard index is
an error naming the file, and arrays of another layout are read through zarr.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numcodecs.blosc
import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from zarr.codecs import BloscCodec, BloscShuffle, ZstdCodec

from genoquery.errors import StoreError
from genoquery.ingest.zarr_writer import query_compressor
from genoquery.storage.local_arrays import LocalArray, local_group
from genoquery.storage.shard_reads import RowReader, read_rows_together

DTYPES = ["uint8", "uint16", "int32", "int8"]


@st.composite
def arrays(draw) -> tuple[dict, np.ndarray, list[tuple[int, int]]]:
    """Array parameters, its values (some chunks left at the fill value) and row ranges to read."""
    two_d = draw(st.booleans())
    chunk0 = draw(st.integers(1, 9))
    shard0 = chunk0 * draw(st.integers(1, 4))
    rows = draw(st.integers(1, 60))
    if two_d:
        width = draw(st.integers(1, 20))
        chunk1 = draw(st.integers(1, width))
        shape, chunks = (rows, width), (chunk0, chunk1)
        shards = (shard0, -(-width // chunk1) * chunk1)  # one shard spans the trailing axis, as written
    else:
        shape, chunks, shards = (rows,), (chunk0,), (shard0,)
    if not draw(st.booleans()):  # unsharded: a file per chunk
        shards = None
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))
    values = np.random.default_rng(seed).integers(0, 100, size=shape).astype(dtype)
    blank = draw(st.lists(st.integers(0, rows - 1), max_size=3))  # rows whose chunk stays at the fill value
    for r in blank:
        values[r // chunk0 * chunk0 : (r // chunk0 + 1) * chunk0] = 7
    ranges = draw(st.lists(st.tuples(st.integers(0, rows), st.integers(0, rows)).map(sorted), min_size=1, max_size=5))
    return dict(shape=shape, chunks=chunks, shards=shards, dtype=dtype, zstd=draw(st.booleans())), values, ranges


def write(path, params: dict, values: np.ndarray) -> zarr.Array:
    """``values`` as an array of ``params``: sharded, or unsharded with Zstd (as the haploid masks)
    or Blosc chunks."""
    itemsize = np.dtype(params["dtype"]).itemsize
    if params["zstd"]:
        compressor = (
            BloscCodec(cname="zstd", clevel=5, shuffle=BloscShuffle.bitshuffle, typesize=itemsize)
            if params["shards"]
            else ZstdCodec(level=0)
        )
    else:
        compressor = query_compressor(itemsize)
    array = zarr.create_array(
        str(path),
        shape=params["shape"],
        dtype=params["dtype"],
        chunks=params["chunks"],
        shards=params["shards"],
        compressors=compressor,
        fill_value=7,
    )
    array[...] = values
    return array


def described(array: zarr.Array) -> LocalArray:
    """``array`` as a local group describes it, from its ``zarr.json`` alone."""
    path = Path(array.store_path.store.root)
    return LocalArray(path, json.loads((path / "zarr.json").read_text()))


@settings(max_examples=150, deadline=None)
@given(case=arrays())
def test_rows_equal_zarr(tmp_path_factory, case):
    """Rows, and columns of 2-D arrays, read directly from the files, the array opened by zarr or
    described by its metadata alone, equal zarr's own read."""
    params, values, ranges = case
    array = write(tmp_path_factory.mktemp("a") / "x.zarr", params, values)
    for opened in (zarr.open_array(array.store_path.store.root, mode="r"), described(array)):
        reader = RowReader(opened)
        assert reader.layout is not None
        got = read_rows_together([(reader, slice(a, b)) for a, b in ranges])
        for (a, b), part in zip(ranges, got, strict=True):
            assert part.dtype == values.dtype
            np.testing.assert_array_equal(part, values[a:b])
            np.testing.assert_array_equal(part, array[a:b])
        if values.ndim == 2:
            for a, b in ranges:
                a, b = min(a, values.shape[1] - 1), min(max(b, a + 1), values.shape[1])
                np.testing.assert_array_equal(reader.read_columns(slice(a, b)), values[:, a:b])


@settings(max_examples=100, deadline=None)
@given(case=arrays())
def test_visited_chunks_reassemble_the_rows(tmp_path_factory, case):
    """``RowReader.visit`` hands every element of ``array[rows]`` to the visitor exactly once, in
    its place; a copy is taken (the scratch chunk is reused), as for an array read through zarr."""
    params, values, ranges = case
    array = write(tmp_path_factory.mktemp("a") / "x.zarr", params, values)
    for reader in (RowReader(array), RowReader(zarr.open_array(array.store_path.store.root, mode="r"))):
        for a, b in ranges:
            got = np.full((b - a, *values.shape[1:]), -1, dtype=np.int64)
            seen = np.zeros(got.shape, dtype=np.int64)

            def visitor(chunk, to, within, got=got, seen=seen):
                got[to] = chunk[within]
                seen[to] += 1

            reader.visit(slice(a, b), visitor)
            np.testing.assert_array_equal(got, values[a:b])
            assert (seen == 1).all()
            if reader.layout is not None and b > a:  # the count that sizes the runs of streamed jobs
                assert reader._n_chunks(slice(a, b)) == len(list(reader._chunks(slice(a, b))))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 60),
    chunk=st.integers(1, 9),
    per_shard=st.integers(1, 4),
    same=st.booleans(),
    seed=st.integers(0, 99),
)
def test_two_arrays_visited_together(tmp_path_factory, rows, chunk, per_shard, same, seed):
    """``RowReader.visit_with`` hands the same rows of both arrays to the visitor, each row once:
    a chunk row at a time when their rows are chunked alike, else all rows at once."""
    path = tmp_path_factory.mktemp("w")
    rng = np.random.default_rng(seed)
    samples, alleles = rng.integers(0, 1000, rows).astype("int32"), rng.integers(-2, 3, (rows, 2)).astype("int8")
    first = write(
        path / "s.zarr",
        dict(shape=(rows,), chunks=(chunk,), shards=(chunk * per_shard,), dtype="int32", zstd=False),
        samples,
    )
    other_chunk = chunk if same else chunk + 1
    second = write(
        path / "g.zarr",
        dict(shape=(rows, 2), chunks=(other_chunk, 2), shards=(other_chunk * per_shard, 2), dtype="int8", zstd=False),
        alleles,
    )
    for a, b in [(0, rows), (rows // 3, rows - rows // 4)]:
        got_s, got_g = np.full(b - a, -1, np.int64), np.full((b - a, 2), -9, np.int64)
        seen, calls = np.zeros(b - a, np.int64), []

        def visitor(mine, theirs, to, got_s=got_s, got_g=got_g, seen=seen, calls=calls):
            got_s[to], got_g[to] = mine, theirs
            seen[to] += 1
            calls.append(to)

        RowReader(first).visit_with(RowReader(second), slice(a, b), visitor)
        np.testing.assert_array_equal(got_s, samples[a:b])
        np.testing.assert_array_equal(got_g, alleles[a:b])
        assert (seen == 1).all()
        if not same:  # rows chunked differently: read whole, visited once
            assert calls == [slice(0, b - a)]


def test_other_layouts_are_visited_whole(tmp_path):
    values = np.arange(300, dtype="int16").reshape(100, 3)
    array = zarr.create_array(
        str(tmp_path / "plain.zarr"), shape=values.shape, dtype=values.dtype, chunks=(7, 3), compressors=None
    )
    array[...] = values
    calls = []
    RowReader(array).visit(slice(5, 95), lambda chunk, to, within: calls.append((chunk[within].copy(), to)))
    ((chunk, to),) = calls
    np.testing.assert_array_equal(chunk, values[5:95])
    assert to == (slice(0, 90), slice(0, 3))


def test_several_arrays_at_once(tmp_path):
    tokens = write(
        tmp_path / "t.zarr",
        dict(shape=(1000,), chunks=(64,), shards=(256,), dtype="uint16", zstd=False),
        np.arange(1000, dtype="uint16"),
    )
    codes = write(
        tmp_path / "c.zarr",
        dict(shape=(10, 9), chunks=(4, 4), shards=(8, 12), dtype="uint8", zstd=False),
        np.arange(90, dtype="uint8").reshape(10, 9),
    )
    first, second = read_rows_together([(RowReader(tokens), slice(100, 900)), (RowReader(codes), slice(3, 10))])
    np.testing.assert_array_equal(first, np.arange(100, 900))
    np.testing.assert_array_equal(second, np.arange(90).reshape(10, 9)[3:])


def test_damaged_index_names_the_file(tmp_path):
    array = write(
        tmp_path / "t.zarr",
        dict(shape=(100,), chunks=(10,), shards=(50,), dtype="int32", zstd=False),
        np.arange(100, dtype="int32"),
    )
    shard = tmp_path / "t.zarr" / "c" / "1"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF  # a byte of the index, before its CRC32C
    shard.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"t\.zarr/c/1: the shard index fails its CRC32C check"):
        read_rows_together([(RowReader(array), slice(40, 60))])
    np.testing.assert_array_equal(read_rows_together([(RowReader(array), slice(0, 50))])[0], np.arange(50))


def test_other_layouts_read_through_zarr(tmp_path):
    values = np.arange(300, dtype="int16").reshape(100, 3)
    array = zarr.create_array(
        str(tmp_path / "plain.zarr"), shape=values.shape, dtype=values.dtype, chunks=(7, 3), compressors=None
    )
    array[...] = values
    reader = RowReader(array)
    assert reader.layout is None
    np.testing.assert_array_equal(read_rows_together([(reader, slice(5, 95))])[0], values[5:95])


@settings(max_examples=60, deadline=None)
@given(case=arrays(), cuts=st.lists(st.integers(0, 60), max_size=6))
def test_consecutive_reads_sharing_chunks(tmp_path_factory, case, cuts):
    """Consecutive row ranges read with one ``kept`` equal zarr's reads of the same ranges."""
    params, values, _ = case
    array = write(tmp_path_factory.mktemp("a") / "x.zarr", params, values)
    edges = sorted({0, len(values), *[c for c in cuts if c <= len(values)]})
    reader, kept = RowReader(array), {}
    for a, b in itertools.pairwise(edges):
        np.testing.assert_array_equal(read_rows_together([(reader, slice(a, b))], kept)[0], values[a:b])


def test_a_shared_chunk_is_decoded_once(tmp_path, monkeypatch):
    values = np.arange(90, dtype="uint8").reshape(10, 9)
    array = write(
        tmp_path / "c.zarr", dict(shape=(10, 9), chunks=(4, 4), shards=(8, 12), dtype="uint8", zstd=False), values
    )
    decoded = []
    real = numcodecs.blosc.decompress
    monkeypatch.setattr(numcodecs.blosc, "decompress", lambda src, dest: decoded.append(1) or real(src, dest))
    reader, kept = RowReader(array), {}
    parts = [read_rows_together([(reader, slice(a, b))], kept)[0] for a, b in [(0, 1), (1, 2), (2, 6), (6, 10)]]
    np.testing.assert_array_equal(np.concatenate(parts), values)
    assert len(decoded) == 3 * 3  # three chunk rows of three chunks, each decoded once (18 decodes without kept)


@pytest.mark.parametrize("consolidated", [True, False])
def test_a_local_group_described_as_zarr_opens_it(tmp_path, consolidated):
    """Every array of a local group, its shape, type, fill value and attributes as zarr has them,
    and its values read through the description; an array of another layout read through zarr."""
    path = tmp_path / "g.zarr"
    group = zarr.open_group(str(path), mode="w")
    sharded = group.create_array("codes", shape=(30, 9), dtype="uint8", chunks=(4, 9), shards=(8, 9), fill_value=3)
    sharded[...] = np.arange(270).reshape(30, 9) % 7
    sharded.attrs["part_calls"] = 16
    masks = group.create_array("mask", shape=(2, 5), dtype="uint8", chunks=(1, 5), compressors=ZstdCodec(level=0))
    masks[...] = np.arange(10).reshape(2, 5)
    plain = group.create_array("plain", shape=(12,), dtype="int16", chunks=(5,), compressors=None, fill_value=-1)
    plain[:7] = np.arange(7)
    if consolidated:
        zarr.consolidate_metadata(str(path))
    described = local_group(path)
    assert sorted(described) == ["codes", "mask", "plain"]
    for name, local in described.items():
        array = group[name]
        assert (local.shape, local.dtype, local.fill_value) == (array.shape, array.dtype, array.fill_value)
        assert local.attrs == dict(array.attrs)
        reader = RowReader(local)
        assert (reader.layout is None) == (name == "plain")
        np.testing.assert_array_equal(read_rows_together([(reader, slice(0, array.shape[0]))])[0], array[...])
        np.testing.assert_array_equal(local[...], array[...])
