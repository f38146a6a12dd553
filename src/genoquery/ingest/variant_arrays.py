"""The per-variant VCF Zarr arrays of a batch, built from the index's ``batch_sites`` rows.

They are written after the genotypes, when the widest allele list and every
FILTER are known, one shard of rows at a time so memory does not grow with
the number of sites.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genoquery.index.writer import IndexWriter
from genoquery.ingest.zarr_writer import GenotypeWriter

VARIANT_DIMS = {
    "variant_position": ("variants",),
    "variant_contig": ("variants",),
    "variant_allele": ("variants", "alleles"),
    "variant_id": ("variants",),
    "variant_id_mask": ("variants",),
    "variant_quality": ("variants",),
    "variant_filter": ("variants", "filters"),
}


def _flatten(lists: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, position within the row, and value of every element of a list column."""
    lists = lists.combine_chunks()
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy()
    rows = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    values = pc.list_flatten(lists).to_numpy(zero_copy_only=False)
    return rows, np.arange(len(rows)) - starts, values


def _slice_arrays(sites: pa.Table, max_alleles: int, contigs: list[str], filters: list[str]) -> dict[str, np.ndarray]:
    n = sites.num_rows
    rows, slots, values = _flatten(sites["alleles"])
    allele = np.full((n, max_alleles), "", dtype=object)
    allele[rows, slots] = values
    rows, _, names = _flatten(sites["filters"])
    flags = np.zeros((n, len(filters)), dtype=bool)
    flags[rows, pc.index_in(pa.array(names, pa.string()), value_set=pa.array(filters)).to_numpy()] = True
    ids = sites["id"].fill_null(".").to_numpy(zero_copy_only=False)
    return {
        "variant_position": sites["pos"].to_numpy().astype(np.int32),
        "variant_contig": pc.index_in(sites["contig"], value_set=pa.array(contigs)).to_numpy().astype(np.int16),
        "variant_allele": allele,
        "variant_id": ids,
        "variant_id_mask": ids == ".",
        "variant_quality": sites["qual"].fill_null(np.nan).to_numpy().astype(np.float32),
        "variant_filter": flags,
    }


def write_variant_arrays(
    genotypes: GenotypeWriter,
    index: IndexWriter,
    batch: int,
    samples: list[str],
    contigs: list[tuple[str, int | None]],
    filters: list[str],
) -> None:
    """Write a batch's per-variant, per-sample, per-contig and per-filter arrays."""
    n = genotypes.n_variants
    max_alleles = max(1, index.max_alleles(batch))
    names = [c for c, _ in contigs]
    shapes = {"variant_allele": (n, max_alleles), "variant_filter": (n, len(filters))}
    dtypes = {
        "variant_position": np.int32,
        "variant_contig": np.int16,
        "variant_allele": str,
        "variant_id": str,
        "variant_id_mask": bool,
        "variant_quality": np.float32,
        "variant_filter": bool,
    }
    arrays = {
        name: genotypes.create_variant_array(name, shapes.get(name, (n,)), dtypes[name], dims)
        for name, dims in VARIANT_DIMS.items()
    }
    step = genotypes.layout.variant_array_shard
    for start in range(0, n, step):
        values = _slice_arrays(index.sites_table(batch, start, start + step), max_alleles, names, filters)
        for name, array in arrays.items():
            array[start : start + len(values[name])] = values[name]
    genotypes.write_small_array("sample_id", np.array(samples, dtype=object), ("samples",))
    genotypes.write_small_array("contig_id", np.array(names, dtype=object), ("contigs",))
    genotypes.write_small_array(
        "contig_length", np.array([-1 if n is None else n for _, n in contigs], dtype=np.int64), ("contigs",)
    )
    genotypes.write_small_array("filter_id", np.array(filters, dtype=object), ("filters",))
