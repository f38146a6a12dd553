"""``genoquery upgrade``: rewrite a store of an older format in the current one, atomically.

Format 2 kept each batch in one Zarr v3 group, ``batches/NAME.zarr``, holding the VCF Zarr
arrays (sharded, with ``variants`` chunks that differed between arrays, so vcztools misread
them) and the query encoding together. Format 3 keeps a directory per batch with the two
groups side by side (:mod:`genoquery.storage.format`). Each batch is rewritten block by block
(:mod:`genoquery.ingest.rewrite`, as compaction does) and committed with the index in one
rename; the marker's version changes after that commit. A killed upgrade leaves the store in
format 2 answering as before, or, if killed after the commit, with batches already rewritten,
which the next ``genoquery upgrade`` recognises and finishes.
"""

from __future__ import annotations

import os

import numpy as np

from genoquery.index.writer import IndexWriter
from genoquery.ingest.rewrite import rewrite_batch
from genoquery.ingest.zarr_writer import ChunkLayout
from genoquery.storage.batches import read_batches
from genoquery.storage.format import BATCHES, FORMAT_VERSION, UPGRADABLE_VERSIONS, vcf_group
from genoquery.storage.staging import existing_store, read_marker, remove_leftovers, update_marker, write_lock
from genoquery.storage.transaction import index_transaction


def upgrade(store: str | os.PathLike, layout: ChunkLayout | None = None) -> list[str]:
    """Rewrite the store at ``store`` in :data:`FORMAT_VERSION`; returns the names of the batches
    rewritten (none when it is already current)."""
    path = existing_store(store, versions=(FORMAT_VERSION, *UPGRADABLE_VERSIONS))
    layout = layout or ChunkLayout()
    done = []
    with write_lock(path):
        if read_marker(path, (FORMAT_VERSION, *UPGRADABLE_VERSIONS))["format_version"] == FORMAT_VERSION:
            return done
        with index_transaction(path) as copy:
            index = IndexWriter(copy, create=False)
            index.con.execute("ALTER TABLE batch_sites ADD COLUMN IF NOT EXISTS info VARCHAR")  # format 2 kept none
            batches = read_batches(index.con, path)
            kept = {str(b.path.relative_to(path)) for b in batches}
            remove_leftovers(path, kept)
            for batch in batches:
                if vcf_group(batch.path).is_dir():  # rewritten by an upgrade killed after its commit
                    continue
                relative = f"{BATCHES}/{batch.path.name.removesuffix('.zarr')}"
                rewrite_batch(index, path, batch, batch.path, relative, np.zeros(0, dtype=np.int64), layout)
                kept = (kept - {str(batch.path.relative_to(path))}) | {relative}
                done.append(batch.name)
            index.log("upgrade", f"store format {FORMAT_VERSION}: batches rewritten: {', '.join(done) or 'none'}")
            index.finish(check_refs=False)
        update_marker(path, format_version=FORMAT_VERSION)
        remove_leftovers(path, kept)  # the format 2 groups, now that the index no longer lists them
    return done
