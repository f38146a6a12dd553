"""An ingest's blocks on a fixed set of reused buffers (:mod:`genoquery.ingest.block_pool`)."""

from __future__ import annotations

import threading

import pytest

import checks
import genoquery
from genoquery.ingest import pipeline
from genoquery.ingest.block_pool import BlockPool, PoolClosedError
from genoquery.ingest.zarr_writer import ChunkLayout, GenotypeWriter


def test_a_pool_hands_out_its_buffers_again_and_no_more_of_them() -> None:
    pool = BlockPool(2, 4, 3)
    first, second = pool.block(), pool.block()
    buffers = {id(first.gt), id(second.gt)}
    pool.give_back(first)
    again = pool.block()
    assert id(again.gt) in buffers
    assert (again.n, again.gt.shape) == (0, (4, 3, 2))
    assert first.gt.shape[0] == 0  # a given-back block keeps no view of the buffer
    raised = []

    def wait() -> None:
        with pytest.raises(PoolClosedError):
            pool.block()
        raised.append(True)

    waiting = threading.Thread(target=wait)
    waiting.start()
    pool.close()
    waiting.join(timeout=5)
    assert raised == [True]


def test_a_failed_write_ends_the_ingest_with_its_error_not_a_wait_for_buffers(tmp_path, monkeypatch) -> None:
    """Blocks not written are not given back: the reader, waiting for a buffer, must stop too."""
    calls = []

    def failing(self, first, gt, phased):
        calls.append(first)
        if len(calls) == 2:
            raise OSError("disk full")
        return write(self, first, gt, phased)

    write = GenotypeWriter.write
    monkeypatch.setattr(GenotypeWriter, "write", failing)
    monkeypatch.setattr(pipeline, "BLOCKS_IN_FLIGHT", 2)
    with pytest.raises(OSError, match="disk full"):
        genoquery.ingest(tmp_path / "s.gq", list(checks.FIXTURE_VCFS), layout=ChunkLayout(variant_chunk=2))
    assert not (tmp_path / "s.gq").exists()


def test_blocks_on_reused_buffers_store_what_fresh_blocks_store(tmp_path, monkeypatch) -> None:
    """Two buffers for many 2-site blocks: each is read into again, and nothing of its last
    block shows in the batch's files (the Dask ingest, which allocates every block, is compared
    with the single process byte for byte too)."""
    layout = ChunkLayout(variant_chunk=2)
    for buffers, name in ((2, "pooled.gq"), (10**6, "fresh.gq")):
        monkeypatch.setattr(pipeline, "BLOCKS_IN_FLIGHT", buffers)
        genoquery.ingest(tmp_path / name, list(checks.FIXTURE_VCFS), layout=layout, progress=False).close()
    pooled, fresh = (checks.tree_digest(tmp_path / name / "batches") for name in ("pooled.gq", "fresh.gq"))
    assert pooled == fresh
    assert any("call_genotype/" in path for path in pooled)
