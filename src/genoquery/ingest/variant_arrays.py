"""The per-variant, per-sample, per-contig and per-filter arrays of a batch's VCF Zarr group,
built from the index's ``batch_sites`` rows, and the group's ``region_index`` (as bio2zarr's).

They are written after the genotypes, when the widest allele list and every FILTER are known,
a slice of rows at a time so memory does not grow with the number of sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genoquery.index.writer import IndexWriter
from genoquery.ingest.info_arrays import InfoArray, longest_values, parse_info
from genoquery.ingest.info_arrays import layout as info_layout
from genoquery.ingest.info_arrays import values as info_values
from genoquery.ingest.vcf_source import HeaderField
from genoquery.ingest.zarr_writer import GenotypeWriter
from genoquery.version import __version__

VARIANT_DIMS = {
    "variant_position": ("variants",),
    "variant_contig": ("variants",),
    "variant_length": ("variants",),
    "variant_allele": ("variants", "alleles"),
    "variant_id": ("variants",),
    "variant_id_mask": ("variants",),
    "variant_quality": ("variants",),
    "variant_filter": ("variants", "filters"),
}
SLICE_CHUNKS = 256  # chunks of rows built and written at a time
REGION_FIELDS = 6  # region_index columns: chunk, contig, first POS, last POS, largest END, records


@dataclass(frozen=True)
class HeaderFacts:
    """What a batch's VCF Zarr group keeps of its VCF header: FILTER IDs (PASS first) with their
    descriptions, the other meta-information lines as ``[key, value]`` pairs
    (``vcf_meta_information``, as bio2zarr; INFO, FORMAT, FILTER and contig lines excluded), and
    the INFO fields kept as ``variant_<ID>`` arrays (:mod:`genoquery.ingest.info_arrays`)."""

    filters: list[str]
    filter_descriptions: dict[str, str]
    meta_information: list[list[str]]
    info_fields: list[HeaderField]


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
        # the reference span, len(REF), as htslib's rlen for records without INFO/END
        "variant_length": pc.utf8_length(pc.list_element(sites["alleles"], 0)).to_numpy().astype(np.int32),
        "variant_allele": allele,
        "variant_id": ids,
        "variant_id_mask": ids == ".",
        "variant_quality": sites["qual"].fill_null(np.nan).to_numpy().astype(np.float32),
        "variant_filter": flags,
    }


def _info_arrays(
    index: IndexWriter, batch: int, n: int, max_alleles: int, fields: list[HeaderField]
) -> list[InfoArray]:
    """The arrays of the INFO ``fields``; a pass over the records finds the widest value of each
    field whose Number does not fix its width."""
    variable = [f for f in fields if f.kind != "Flag" and f.number not in ("1", "A", "R")]
    longest = dict.fromkeys((f.id for f in fields), 0)
    step = 1 << 20
    for start in range(0, n if variable else 0, step):
        texts = index.sites_table(batch, start, start + step)["info"].to_pylist()
        for key, count in longest_values(texts, variable).items():
            longest[key] = max(longest[key], count)
    return [info_layout(f, max_alleles, longest[f.id]) for f in fields]


def _where(sites: pa.Table):
    """``where(row)``: the source file and line of a row of ``sites``, for error messages."""
    sources, records = sites["source"].to_pylist(), sites["record"].to_pylist()
    return lambda row: {"path": sources[row], "line": records[row]}


def region_rows(first_chunk: int, chunk: int, contig: np.ndarray, pos: np.ndarray, length: np.ndarray) -> list[tuple]:
    """``region_index`` rows of consecutive records starting at chunk ``first_chunk``: one per
    chunk and contig run, (chunk, contig, first POS, last POS, largest END, records)."""
    rows = []
    for start in range(0, len(pos), chunk):
        c, p = contig[start : start + chunk], pos[start : start + chunk]
        end = p + length[start : start + chunk] - 1
        bounds = [0, *(np.flatnonzero(np.diff(c)) + 1).tolist(), len(c)]
        number = first_chunk + start // chunk
        rows += [
            (number, int(c[lo]), int(p[lo]), int(p[hi - 1]), int(end[lo:hi].max()), hi - lo)
            for lo, hi in pairwise(bounds)
        ]
    return rows


def write_variant_arrays(
    genotypes: GenotypeWriter,
    index: IndexWriter,
    batch: int,
    samples: list[str],
    contigs: list[tuple[str, int | None]],
    header: HeaderFacts,
) -> None:
    """Write a batch's per-variant, per-sample, per-contig and per-filter arrays, its
    ``region_index``, and the group's attributes; then consolidate its metadata."""
    n = genotypes.n_variants
    max_alleles = max(1, index.max_alleles(batch))
    names = [c for c, _ in contigs]
    shapes = {"variant_allele": (n, max_alleles), "variant_filter": (n, len(header.filters))}
    dtypes = {"variant_allele": str, "variant_id": str, "variant_id_mask": bool, "variant_filter": bool}
    dtypes |= {"variant_position": np.int32, "variant_contig": np.int16, "variant_length": np.int32}
    dtypes["variant_quality"] = np.float32
    arrays = {
        name: genotypes.create_variant_array(name, shapes.get(name, (n,)), dtypes[name], dims)
        for name, dims in VARIANT_DIMS.items()
    }
    infos = _info_arrays(index, batch, n, max_alleles, header.info_fields)
    info_arrays = {
        spec.name: genotypes.create_variant_array(
            spec.name,
            (n, *spec.shape_tail),
            spec.dtype,
            spec.dims,
            # description as bio2zarr; Number and Type as declared, for rewrites of the group
            {"description": spec.field.description, "info_number": spec.field.number, "info_type": spec.field.kind},
        )
        for spec in infos
    }
    chunk = genotypes.layout.variant_chunk
    regions: list[tuple] = []
    for start in range(0, n, chunk * SLICE_CHUNKS):
        sites = index.sites_table(batch, start, start + chunk * SLICE_CHUNKS)
        values = _slice_arrays(sites, max_alleles, names, header.filters)
        for name, array in arrays.items():
            array[start : start + len(values[name])] = values[name]
        parsed = [parse_info(text) for text in sites["info"].to_pylist()]
        n_alleles = pc.list_value_length(sites["alleles"]).to_pylist()
        where = _where(sites)
        for spec in infos:
            info_arrays[spec.name][start : start + len(parsed)] = info_values(spec, parsed, n_alleles, where)
        regions += region_rows(
            start // chunk, chunk, values["variant_contig"], values["variant_position"], values["variant_length"]
        )
    genotypes.write_small_array(
        "region_index",
        np.array(regions, dtype=np.int32).reshape(-1, REGION_FIELDS),
        ("region_index_values", "region_index_fields"),
    )
    genotypes.write_small_array("sample_id", np.array(samples, dtype=object), ("samples",))
    genotypes.write_small_array("contig_id", np.array(names, dtype=object), ("contigs",))
    genotypes.write_small_array(
        "contig_length", np.array([-1 if n is None else n for _, n in contigs], dtype=np.int64), ("contigs",)
    )
    genotypes.write_small_array("filter_id", np.array(header.filters, dtype=object), ("filters",))
    descriptions = [header.filter_descriptions.get(f, "") for f in header.filters]
    genotypes.write_small_array("filter_description", np.array(descriptions, dtype=object), ("filters",))
    genotypes.finish({"source": f"genoquery-{__version__}", "vcf_meta_information": header.meta_information})
