"""``genoquery compact``: rewrite batches so that withdrawn genotypes no longer exist on disk.

Each batch with withdrawn samples whose calls are still stored is rewritten, shard
row by shard row, into a new Zarr group ``batches/NAME.vN.zarr``: their calls become
``./.`` (unphased), their sample IDs empty, and the query encoding is rebuilt from the
new calls. The index's pointers, manifest and ``batches.path`` are updated in one
index transaction; the old group is deleted only after that commit, so a killed
compaction leaves the store answering as before (the next write removes the
half-built group). Statistics do not change: withdrawn samples were already in none.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import zarr

from genoquery.index.writer import IndexWriter, encoding_columns
from genoquery.ingest.variant_arrays import write_variant_arrays
from genoquery.ingest.zarr_writer import ChunkLayout, GenotypeWriter
from genoquery.storage.batches import Batch, read_batches
from genoquery.storage.call_codes import HaploidPatterns, encode_block
from genoquery.storage.format import BATCHES
from genoquery.storage.staging import existing_store, fsync_path, remove_leftovers, staging_name, write_lock
from genoquery.storage.transaction import index_transaction

VERSION = re.compile(r"^(?P<name>.+?)(\.v(?P<n>\d+))?\.zarr$")


def compact(store: str | os.PathLike, layout: ChunkLayout | None = None) -> list[str]:
    """Rewrite every batch holding withdrawn genotypes; returns the names of the batches rewritten."""
    path = existing_store(store)
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
    """``batches/NAME.vN.zarr`` with N one more than the current group's."""
    match = VERSION.match(batch.path.name)
    return f"{BATCHES}/{match['name']}.v{int(match['n'] or 0) + 1}.zarr"


def _compact_batch(index: IndexWriter, store: Path, batch: Batch, erase: np.ndarray, layout: ChunkLayout) -> str:
    """Rewrite ``batch`` with the samples ``erase`` (batch columns) as ``./.``, into a new group;
    returns the group's path in the store."""
    con = index.con
    relative = _next_path(batch)
    staged = store / BATCHES / staging_name(Path(relative).name)
    try:
        pointers = _rewrite(index, batch, erase, staged, layout)
        con.register("gq_pointers", pointers)
        columns = [c for c in pointers.column_names if c not in ("batch", "batch_row")]
        con.execute(
            f"UPDATE batch_sites SET {', '.join(f'{c} = p.{c}' for c in columns)} FROM gq_pointers p "
            f"WHERE batch_sites.batch = p.batch AND batch_sites.batch_row = p.batch_row"
        )
        con.unregister("gq_pointers")
        now = datetime.now(UTC)
        con.execute("UPDATE batches SET path = ? WHERE batch = ?", [relative, batch.number])
        con.execute(
            "UPDATE samples SET erased_at = ? WHERE batch = ? AND sample_index - ? IN (SELECT unnest(?))",
            [now, batch.number, batch.offset, erase.tolist()],
        )
        con.execute("DELETE FROM batch_files WHERE batch = ?", [batch.number])
        index.add_files(batch.number, staged, relative)
        index.log(
            "compact",
            f"batch {batch.name}: {len(erase)} withdrawn samples' genotypes erased, "
            f"{batch.path.relative_to(store)} -> {relative}",
        )
        os.rename(staged, store / relative)
        fsync_path(store / BATCHES)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return relative


def _rewrite(index: IndexWriter, batch: Batch, erase: np.ndarray, group: Path, layout: ChunkLayout) -> pa.Table:
    """Write the new group; returns the records' new query-encoding pointers (``batch_sites`` columns)."""
    old = zarr.open_group(str(batch.path), mode="r")
    genotype, phase = old["call_genotype"], old["call_genotype_phased"]
    writer = GenotypeWriter(group, batch.n_samples, layout)
    patterns = HaploidPatterns(batch.n_samples)
    parts = []
    for lo in range(0, genotype.shape[0], layout.variant_shard):
        gt = np.asarray(genotype[lo : lo + layout.variant_shard])
        phased = np.asarray(phase[lo : lo + layout.variant_shard])
        gt[:, erase] = -1
        phased[:, erase] = False
        codes = encode_block(gt, patterns)
        first_row = writer.reserve(len(gt))
        firsts = writer.reserve_codes(codes)
        writer.write(first_row, gt, phased)
        writer.write_codes(codes)
        parts.append(pa.table(encoding_columns(batch.number, np.arange(lo, lo + len(gt)), codes, *firsts)))
    writer.flush_codes()
    writer.write_small_array("haploid_mask", patterns.array(), ("haploid_patterns", "sample_octets"))
    samples = np.asarray(old["sample_id"][...], dtype=object)
    samples[erase] = ""
    contigs = index.con.execute("SELECT contig, length FROM contigs ORDER BY contig_index").fetchall()
    filters = np.asarray(old["filter_id"][...], dtype=object).tolist()
    write_variant_arrays(writer, index, batch.number, samples.tolist(), contigs, filters)
    writer.finish()
    return pa.concat_tables(parts)
