"""``genoquery compact``: rewrite batches so that withdrawn genotypes no longer exist on disk.

Each batch with withdrawn samples whose calls are still stored is rewritten, block
by block, into a new batch directory ``batches/NAME.vN`` (:mod:`genoquery.ingest.rewrite`):
their calls become ``./.`` (unphased), their sample IDs empty, and the query encoding is
rebuilt from the new calls. The index's pointers, manifest and ``batches.path`` are updated
in one index transaction; the old directory is deleted only after that commit, so a killed
compaction leaves the store answering as before (the next write removes the half-built one).
Statistics do not change: withdrawn samples were already in none.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from genoquery.errors import StoreError
from genoquery.index.writer import IndexWriter
from genoquery.ingest.rewrite import rewrite_batch
from genoquery.ingest.zarr_writer import ChunkLayout
from genoquery.storage.batches import Batch, read_batches
from genoquery.storage.format import BATCHES, vcf_group
from genoquery.storage.objects import mirrored_url
from genoquery.storage.staging import existing_store, remove_leftovers, write_lock
from genoquery.storage.transaction import index_transaction

VERSION = re.compile(r"^(?P<name>.+?)(\.v(?P<n>\d+))?$")


def compact(store: str | os.PathLike, layout: ChunkLayout | None = None) -> list[str]:
    """Rewrite every batch holding withdrawn genotypes; returns the names of the batches rewritten."""
    path = existing_store(store)
    if mirrored_url(path) is not None:  # the old groups would outlive the commit that drops them
        raise StoreError(
            f"{store}: compact is not supported for a store on object storage yet; withdrawn samples are in no "
            "answer already, and their genotypes stay in the bucket"
        )
    layout = layout or ChunkLayout()
    done = []
    with write_lock(path):
        with index_transaction(path) as copy:
            index = IndexWriter(copy, create=False)
            batches = read_batches(index.con, path)
            groups = {b.name: str(b.path.relative_to(path)) for b in batches}
            remove_leftovers(path, set(groups.values()))
            for batch in batches:
                erase = np.array(
                    [
                        i
                        for (i,) in index.con.execute(
                            "SELECT sample_index - ? FROM samples WHERE batch = ? AND withdrawn_at IS NOT NULL "
                            "AND erased_at IS NULL ORDER BY sample_index",
                            [batch.offset, batch.number],
                        ).fetchall()
                    ],
                    dtype=np.int64,
                )
                if len(erase):
                    groups[batch.name] = _compact_batch(index, path, batch, erase, layout)
                    done.append(batch.name)
            index.finish()
        remove_leftovers(path, set(groups.values()))  # the old groups, now that the index no longer lists them
    return done


def _next_path(batch: Batch) -> str:
    """``batches/NAME.vN`` with N one more than the current directory's."""
    match = VERSION.match(batch.path.name)
    return f"{BATCHES}/{match['name']}.v{int(match['n'] or 0) + 1}"


def _compact_batch(index: IndexWriter, store: Path, batch: Batch, erase: np.ndarray, layout: ChunkLayout) -> str:
    """Rewrite ``batch`` with the samples ``erase`` (batch columns) as ``./.``, into a new
    directory; returns its path in the store."""
    relative = _next_path(batch)
    rewrite_batch(index, store, batch, vcf_group(batch.path), relative, erase, layout)
    index.con.execute(
        "UPDATE samples SET erased_at = ? WHERE batch = ? AND sample_index - ? IN (SELECT unnest(?))",
        [datetime.now(UTC), batch.number, batch.offset, erase.tolist()],
    )
    index.log(
        "compact",
        f"batch {batch.name}: {len(erase)} withdrawn samples' genotypes erased, "
        f"{batch.path.relative_to(store)} -> {relative}",
    )
    return relative
