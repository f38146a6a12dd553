"""Rewriting one batch into a new directory of the current format, committed with the index.

Compaction (erasing withdrawn samples' calls) and ``genoquery upgrade`` (format 2 to 3) both
read a batch's calls (GT and the kept FORMAT fields) block by block, optionally blank some
samples (missing values), write a new batch directory beside the store's (hidden until
committed), and point the index at it: the new
query-encoding pointers of every record, ``batches.path`` and the manifest. The new directory
is renamed into place inside the caller's index transaction; the old one is deleted by the
caller only after the index commit, so a killed rewrite leaves the store answering as before.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import zarr

from genoquery.index.writer import IndexWriter, encoding_columns
from genoquery.ingest.format_arrays import CallField
from genoquery.ingest.variant_arrays import VARIANT_DIMS, HeaderFacts, write_variant_arrays
from genoquery.ingest.vcf_source import HeaderField
from genoquery.ingest.zarr_writer import ChunkLayout, GenotypeWriter
from genoquery.storage.batches import Batch
from genoquery.storage.call_codes import HaploidPatterns, encode_block
from genoquery.storage.format import BATCHES, FILL, MISSING
from genoquery.storage.staging import fsync_path, staging_name
from genoquery.storage.wide_calls import split_wide


def rewrite_batch(
    index: IndexWriter, store: Path, batch: Batch, calls: Path, relative: str, erase: np.ndarray, layout: ChunkLayout
) -> None:
    """Rewrite ``batch``, whose VCF Zarr arrays are the group ``calls``, into ``store/relative``
    with the samples ``erase`` (batch columns) as ``./.`` and unnamed; updates the index."""
    con = index.con
    staged = store / BATCHES / staging_name(Path(relative).name)
    try:
        pointers = _write(index, batch, zarr.open_group(str(calls), mode="r"), erase, staged, layout)
        con.register("gq_pointers", pointers)
        columns = [c for c in pointers.column_names if c not in ("batch", "batch_row")]
        con.execute(
            f"UPDATE batch_sites SET {', '.join(f'{c} = p.{c}' for c in columns)} FROM gq_pointers p "
            f"WHERE batch_sites.batch = p.batch AND batch_sites.batch_row = p.batch_row"
        )
        con.unregister("gq_pointers")
        con.execute("UPDATE batches SET path = ? WHERE batch = ?", [relative, batch.number])
        con.execute("DELETE FROM batch_files WHERE batch = ?", [batch.number])
        index.add_files(batch.number, staged, relative)
        os.rename(staged, store / relative)
        fsync_path(store / BATCHES)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _header(old: zarr.Group) -> HeaderFacts:
    """The header facts the old group kept (format 2 groups have no descriptions nor INFO arrays)."""
    filters = np.asarray(old["filter_id"][...], dtype=object).tolist()
    described = "filter_description" in old
    descriptions = np.asarray(old["filter_description"][...], dtype=object).tolist() if described else []
    meta = list(old.attrs.get("vcf_meta_information", []))
    return HeaderFacts(filters, dict(zip(filters, descriptions, strict=False)), meta, _info_fields(old))


def _info_fields(old: zarr.Group) -> list[HeaderField]:
    """The INFO fields of the old group's ``variant_<ID>`` arrays, as their header declared them."""
    fields = []
    for name, array in old.arrays():
        key = name.removeprefix("variant_")
        if not name.startswith("variant_") or name in VARIANT_DIMS or "info_number" not in array.attrs:
            continue
        fields.append(
            HeaderField(key, array.attrs["info_number"], array.attrs["info_type"], array.attrs["description"])
        )
    return sorted(fields, key=lambda f: f.id)


def _call_fields(old: zarr.Group) -> list[CallField]:
    """The FORMAT fields of the old group's ``call_<ID>`` arrays, as their header declared them."""
    fields = []
    for name, array in old.arrays():
        if name.startswith("call_") and "format_number" in array.attrs:
            attrs = array.attrs
            field = HeaderField(
                name.removeprefix("call_"), attrs["format_number"], attrs["format_type"], attrs["description"]
            )
            fields.append(CallField(field))
    return sorted(fields, key=lambda f: f.name)


def _write(
    index: IndexWriter, batch: Batch, old: zarr.Group, erase: np.ndarray, directory: Path, layout: ChunkLayout
) -> pa.Table:
    """Write the new batch directory; returns the records' new query-encoding pointers (``batch_sites`` columns)."""
    genotype, phase = old["call_genotype"], old["call_genotype_phased"]
    calls = _call_fields(old)
    writer = GenotypeWriter(directory, batch.n_samples, layout, calls)
    patterns = HaploidPatterns(batch.n_samples)
    parts = []
    step = writer.layout.variant_chunk
    for lo in range(0, genotype.shape[0], step):
        gt = np.asarray(genotype[lo : lo + step])
        phased = np.asarray(phase[lo : lo + step])
        gt[:, erase, :2], gt[:, erase, 2:] = MISSING, FILL
        phased[:, erase] = False
        gt, wide = split_wide(gt)
        values = {spec.name: np.asarray(old[spec.name][lo : lo + len(gt)]) for spec in calls}
        for spec in calls:
            values[spec.name][:, erase] = spec.missing
        codes = encode_block(gt, patterns)
        first_row = writer.reserve(len(gt), values)
        writer.add_wide(first_row, wide)
        firsts = writer.reserve_codes(codes)
        writer.write(first_row, gt, phased)
        writer.write_calls(first_row, len(gt), values, {spec.name: [] for spec in calls})
        writer.write_codes(codes)
        parts.append(pa.table(encoding_columns(batch.number, np.arange(lo, lo + len(gt)), codes, *firsts)))
    writer.flush_codes()
    writer.finish_calls(calls, max(1, index.max_alleles(batch.number)))
    writer.finish_wide()
    writer.write_small_array("haploid_mask", patterns.array(), ("haploid_patterns", "sample_octets"), query=True)
    samples = np.asarray(old["sample_id"][...], dtype=object)
    samples[erase] = ""
    contigs = index.con.execute("SELECT contig, length FROM contigs ORDER BY contig_index").fetchall()
    write_variant_arrays(writer, index, batch.number, samples.tolist(), contigs, _header(old))
    return pa.concat_tables(parts)
