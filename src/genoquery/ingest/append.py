"""Appending a batch to an existing store without rewriting what is there.

The new batch's Zarr group is built in a hidden staging directory under
``STORE/batches/`` and its index rows in a copy of ``index.duckdb``; the group is
renamed to ``batches/NAME.zarr`` (which no index lists yet), then the index copy
replaces ``index.duckdb`` in one ``rename``: the commit. A reader opens the index
first, so it sees the old batches or the new ones, never a mix; a process killed
before the commit leaves the store as it was, and the next write removes its
leftovers. Existing genotype chunks are never opened for writing: the bytes
written are the new batch's group plus the index (which grows with sites, not
samples).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from genoquery.errors import InputFileError, StoreError
from genoquery.index.persons import stored_persons
from genoquery.index.writer import IndexWriter
from genoquery.ingest.pipeline import (
    BatchOptions,
    IngestPlan,
    batches_of,
    build_batch,
    contig_renames,
    merged_contigs,
    order_sources,
    unique_sample_ids,
)
from genoquery.ingest.sources import open_input
from genoquery.ingest.zarr_writer import ChunkLayout
from genoquery.query.store import open as open_store
from genoquery.storage.format import BATCHES, INDEX_FILE, batch_path
from genoquery.storage.schema import open_index
from genoquery.storage.staging import (
    check_batch_name,
    existing_store,
    fsync_path,
    remove_leftovers,
    staging_name,
    write_lock,
)
from genoquery.storage.transaction import index_transaction


def _existing(index: Path) -> dict:
    """What an append checks against: samples (ID -> source), contigs, batch names and paths,
    the next batch number and sample offset, and the person table (or None)."""
    con = open_index(index)
    try:
        samples = dict(con.execute("SELECT sample_id, source FROM samples").fetchall())
        contigs = con.execute("SELECT contig, length FROM contigs ORDER BY contig_index").fetchall()
        batches = con.execute("SELECT name, path FROM batches").fetchall()
        number, offset = con.execute(
            "SELECT coalesce(max(batch) + 1, 0), coalesce(max(sample_offset + n_samples), 0) FROM batches"
        ).fetchall()[0]
        persons = stored_persons(con)
    finally:
        con.close()
    return {
        "samples": samples,
        "contigs": contigs,
        "names": {n for n, _ in batches},
        "paths": {p for _, p in batches},
        "number": number,
        "offset": offset,
        "persons": persons,
    }


def append_files(
    store: str | os.PathLike,
    vcfs: Sequence[str | os.PathLike],
    *,
    batch: str,
    options: BatchOptions,
    progress: bool | None,
    layout: ChunkLayout | None,
    client=None,
):
    """Add ``vcfs`` (one sample set) to the existing ``store`` as the batch ``batch``; see the module docstring."""
    path = existing_store(store)
    name = check_batch_name(batch)
    if not vcfs:
        raise InputFileError("(command line)", "no VCF/BCF files given", fix="name at least one input file")
    sources = [open_input(p) for p in vcfs]
    groups = batches_of(sources)
    if len(groups) > 1:
        raise InputFileError(
            groups[1][0].path,
            f"its samples differ from {groups[0][0].path.name}'s; a batch holds one sample set",
            fix="append one batch (one center's files) at a time",
        )
    with write_lock(path):
        existing = _existing(path / INDEX_FILE)
        remove_leftovers(path, existing["paths"])
        if name in existing["names"]:
            raise StoreError(f"{path}: it already has a batch named {name!r}; choose another --batch name")
        ids = unique_sample_ids(groups, [name], existing["samples"], options.rename_duplicate_samples)[0]
        renames = contig_renames(groups, [c for c, _ in existing["contigs"]], options.match_contig_names)
        contigs = list(existing["contigs"])
        contigs += [c for c in merged_contigs(sources, renames) if c[0] not in {n for n, _ in contigs}]
        plan = IngestPlan(
            layout or ChunkLayout(),
            existing["persons"],
            options.complete_callset,
            progress if progress is not None else os.isatty(2),
            options.fields,
            client,
        )
        _commit(path, name, existing, groups[0], ids, contigs, plan, renames[0], options)
    return open_store(path)


def _commit(
    path: Path,
    name: str,
    existing: dict,
    sources: list,
    ids: list[str],
    contigs: list,
    plan: IngestPlan,
    rename: dict[str, str],
    options: BatchOptions,
) -> None:
    """Build the batch and the new index beside the old ones, then rename them into place."""
    (path / BATCHES).mkdir(exist_ok=True)
    group = path / BATCHES / staging_name(name)
    try:
        with index_transaction(path) as index_copy:
            index = IndexWriter(index_copy, create=False)
            build_batch(
                group,
                index,
                existing["number"],
                name,
                order_sources(sources, contigs),
                ids,
                existing["offset"],
                contigs,
                plan,
                rename,
            )
            index.add_contigs(contigs)
            index.log(
                "append",
                f"batch {name}: {len(sources[0].samples)} samples from {', '.join(str(s.path) for s in sources)}",
            )
            index.finish(check_refs=not options.allow_ref_conflicts)
            os.rename(group, path / batch_path(name))
            fsync_path(path / BATCHES)
    finally:
        shutil.rmtree(group, ignore_errors=True)
