"""Export a region for chosen samples as VCF, bgzipped VCF or BCF.

The format follows the file name: ``.vcf`` (text), ``.vcf.gz`` (BGZF, so
``tabix``/``bcftools index`` work) or ``.bcf`` (the bgzipped VCF converted by
``bcftools view -Ob``); ``-`` writes VCF text to standard output. A ``.vcf.gz`` or ``.bcf``
can be indexed as it is written (CSI or TBI, by ``bcftools index``). Regions are 1-based
inclusive; several are written in genome order, each site once. Records carry CHROM to
FILTER as ingested, INFO ``AC`` (per ALT) and ``AN`` recomputed over the
exported samples, FORMAT ``GT``, and every INFO and FORMAT field the store keeps, with their
header lines (:mod:`genoquery.query.fields`; an ingested INFO AC or AN gives way to the
recomputed ones): ``bcftools query`` of those fields reads the source's values.

Sites are read and written :data:`BLOCK_SITES` at a time (one chunk row of ``call_genotype``),
and genotype text is built with numpy a slice of at most :data:`CALLS_PER_SLICE`
calls at a time (4 to 8 bytes per call while formatting), so memory does not grow
with the region. The file is written beside its target and renamed onto it when
complete: a failed export leaves the target as it was.
"""

from __future__ import annotations

import itertools
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import duckdb
import numpy as np
import pysam.bcftools
from tqdm import tqdm

from genoquery.bgzf import BgzfWriter
from genoquery.deadline import check
from genoquery.errors import QueryError
from genoquery.query.fields import KeptField, float_text, kept_fields, vcf_bytes, vcf_text
from genoquery.query.genotypes import Genotypes, SampleSelection, read_calls, select_samples, site_rows, sites_between
from genoquery.query.gt_text import call_codes, cell_table, cell_width, wide_gt_text
from genoquery.storage.format import FILL
from genoquery.version import __version__

if TYPE_CHECKING:
    from genoquery.query.store import Store
    from genoquery.storage.batches import Batch

SUFFIXES = (".vcf.gz", ".vcf", ".bcf")
RECOMPUTED = ("AC", "AN")  # INFO fields the export computes over its samples
INDEXES = ("csi", "tbi")
BLOCK_SITES = 256
SITES_PER_QUERY = 64 * BLOCK_SITES  # sites fetched from the index per query (~10 ms each)
CALLS_PER_SLICE = 1 << 22


def export_vcf(
    store: Store,
    path: str | os.PathLike,
    regions: Sequence[str] | None = None,
    samples: Sequence[str] | None = None,
    *,
    index: str | None = None,
    progress: bool = False,
) -> Path:
    """Write the sites of ``regions`` (disjoint, in genome order, as :meth:`Store.regions` gives
    them; ``None``: every site) with the calls of ``samples`` (``None``: all, store order; else in
    the order given) to ``path`` (``-``: VCF text on standard output), and its ``index`` (``csi``
    or ``tbi``) when asked; ``progress`` shows a bar of sites written on standard error. Returns
    ``path``. The regions, samples and file name are checked before anything is written."""
    path = Path(path)
    suffix = ".vcf" if str(path) == "-" else next((s for s in SUFFIXES if path.name.endswith(s)), None)
    if suffix is None:
        raise QueryError(f"cannot tell the output format of {str(path)!r}: name it .vcf, .vcf.gz or .bcf")
    if index not in (None, *INDEXES) or (index and suffix == ".vcf") or (index == "tbi" and suffix == ".bcf"):
        raise QueryError(
            f"cannot write a {index} index for {str(path)!r}: index a .vcf.gz (csi or tbi) or a .bcf (csi)"
        )
    con = store._con  # the store's read-only index connection
    spans = [site_rows(con, store.contigs, r) for r in regions] if regions is not None else [site_rows(con, [], None)]
    selection = select_samples(con, samples)
    kept = [
        f
        for f in kept_fields(store.batches)
        if not (f.kind == "INFO" and f.id in RECOMPUTED) and (f.kind == "INFO" or selection.ids)
    ]
    header = _header(con, spans, selection.ids, kept)
    bar = tqdm(total=sum(hi - lo for lo, hi in spans), unit="site", desc="export", disable=not progress)
    records = partial(
        _write_vcf,
        header=header,
        con=con,
        batches=store.batches,
        spans=spans,
        selection=selection,
        kept=kept,
        bar=bar,
    )
    if str(path) == "-":
        records(sys.stdout.buffer, bgzf=False)
        sys.stdout.buffer.flush()
        return path
    with _replacing(path) as out:
        if suffix == ".bcf":
            _write_bcf(out, records)
        else:
            records(out, bgzf=suffix == ".vcf.gz")
    if index:
        pysam.bcftools.index("--force", "--csi" if index == "csi" else "--tbi", str(path), catch_stdout=False)
    return path


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A new temporary file beside ``path``, renamed onto ``path`` when the block
    completes and removed when it fails."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        tmp.open("xb").close()  # created with the umask's permissions, unlike tempfile.mkstemp
    except OSError as err:
        raise QueryError(f"cannot write {path}: {err.strerror}") from None
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_vcf(
    target: Path | BinaryIO,
    bgzf: bool,
    header: bytes,
    con: duckdb.DuckDBPyConnection,
    batches: list[Batch],
    spans: list[tuple[int, int]],
    selection: SampleSelection,
    kept: list[KeptField],
    bar: tqdm,
) -> None:
    """Write the header and the records of the site rows of ``spans`` (``[lo, hi)`` each), with
    the ``kept`` fields, as text or BGZF, to a path or (text) an open binary stream, counting
    sites on ``bar``."""
    with ThreadPoolExecutor(os.cpu_count()) as pool, _output(target, bgzf, pool) as out, bar:
        out.write(header)
        for lo, hi in spans:
            for query_lo, query_hi in _spans(lo, hi, SITES_PER_QUERY):
                sites = sites_between(con, query_lo, query_hi)
                for block_lo, block_hi in _spans(query_lo, query_hi, BLOCK_SITES):
                    check()  # a server request's time limit (a no-op elsewhere)
                    block = read_calls(
                        batches, con, sites.slice(block_lo - query_lo, block_hi - block_lo), selection, kept
                    )
                    for piece in _records(block):
                        out.write(piece)
                    bar.update(block_hi - block_lo)


def _output(target: Path | BinaryIO, bgzf: bool, pool: ThreadPoolExecutor) -> BinaryIO | BgzfWriter:
    """``target`` opened for writing, through a BGZF writer compressing on ``pool`` if ``bgzf``;
    a stream stays open after the block."""
    if not isinstance(target, Path):
        return nullcontext(target)
    if not bgzf:
        return open(target, "wb")
    return BgzfWriter(target, pool)


def _spans(lo: int, hi: int, step: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` cut at the multiples of ``step`` (so blocks of 256 rows are Zarr shards)."""
    cuts = [lo, *range((lo // step + 1) * step, hi, step), hi] if lo < hi else []
    return list(itertools.pairwise(cuts))


def _write_bcf(target: Path, records: Callable[..., None]) -> None:
    """Write bgzipped VCF to a temporary file beside ``target``, convert it with ``bcftools view -Ob``."""
    text = target.with_name(target.name + ".vcf.gz")
    try:
        records(text, bgzf=True)
        pysam.bcftools.view("-Ob", "-o", str(target), str(text), catch_stdout=False)
    finally:
        text.unlink(missing_ok=True)


def _header(
    con: duckdb.DuckDBPyConnection, spans: list[tuple[int, int]], sample_ids: list[str], kept: list[KeptField]
) -> bytes:
    """The VCF header: contigs of the store, FILTERs used by the site rows of ``spans`` (PASS
    first), the ``kept`` INFO and FORMAT fields."""
    within = " OR ".join(["(site_row >= ? AND site_row < ?)"] * len(spans)) or "false"
    used = con.execute(
        f"SELECT f FROM (SELECT unnest(filters) AS f, site_row FROM sites WHERE {within}) GROUP BY f "
        "ORDER BY f <> 'PASS', min(site_row)",
        [bound for span in spans for bound in span],
    ).fetchall()
    filters = ["PASS"] + [f for (f,) in used if f != "PASS"]
    contigs = con.execute("SELECT contig, length FROM contigs ORDER BY contig_index").fetchall()
    lines = ["##fileformat=VCFv4.2"]
    lines += ['##FILTER=<ID=PASS,Description="All filters passed">']
    lines += [f'##FILTER=<ID={f},Description="FILTER {f} of the ingested files">' for f in filters[1:]]
    lines += [
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count in genotypes of the '
        'exported samples, for each ALT allele">',
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Number of called alleles in genotypes '
        'of the exported samples">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        *(f.header_line for f in kept),
    ]
    lines += [f"##contig=<ID={c}>" if n is None else f"##contig=<ID={c},length={n}>" for c, n in contigs]
    lines += [f"##source=genoquery {__version__}"]
    columns = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    columns += ["FORMAT", *sample_ids] if sample_ids else []
    return ("\n".join([*lines, "\t".join(columns)]) + "\n").encode()


def _records(block: Genotypes) -> Iterator[bytes | memoryview]:
    """The block's records as pieces of text: each site's fixed columns, then its calls."""
    prefixes = _fixed_columns(block)
    if not block.sample_ids:
        yield from prefixes
        return
    if any(f.kind == "FORMAT" for f in block.kept):
        for prefix, row in zip(prefixes, _calls_with_fields(block), strict=True):
            yield prefix
            yield row
        return
    step = max(1, CALLS_PER_SLICE // len(block.sample_ids))
    for first in range(0, len(prefixes), step):
        gt, phased = _narrowed(block.gt[first : first + step]), block.phased[first : first + step]
        rows = _call_rows(gt, phased) if gt.shape[2] == 2 else _wide_rows(gt, phased, [])
        for prefix, row in zip(prefixes[first : first + step], rows, strict=True):
            yield prefix
            yield row


def _fixed_columns(block: Genotypes) -> list[bytes]:
    """CHROM to INFO (AC, AN over the block's samples, then the kept INFO fields) per site, then
    FORMAT (``GT`` and the kept FORMAT fields) and a tab (or the line end)."""
    sites = block.sites
    alts = sites["alt"].to_pylist()
    an, ac = _allele_counts(block.gt, max(map(len, alts), default=0))
    keys = ":".join(["GT", *(f.id for f in block.kept if f.kind == "FORMAT")])
    tail = f"\t{keys}\t" if block.sample_ids else "\n"
    out = []
    for contig, pos, vid, ref, alt, qual, filters, acs, n, more in zip(
        sites["contig"].to_pylist(),
        sites["pos"].to_pylist(),
        sites["id"].to_pylist(),
        sites["ref"].to_pylist(),
        alts,
        sites["qual"].to_pylist(),
        sites["filters"].to_pylist(),
        ac.tolist(),
        an.tolist(),
        _info_texts(block),
        strict=True,
    ):
        info = (f"AC={','.join(map(str, acs[: len(alt)]))};AN={n}" if alt else f"AN={n}") + more
        out.append(
            f"{contig}\t{pos}\t{vid or '.'}\t{ref}\t{','.join(alt) or '.'}\t{_qual(qual)}\t"
            f"{';'.join(filters) or '.'}\t{info}{tail}".encode()
        )
    return out


def _allele_counts(gt: np.ndarray, n_alts: int) -> tuple[np.ndarray, np.ndarray]:
    """AN (called alleles) per site and AC per site and ALT allele 1..``n_alts`` (as bcftools:
    a partial call ``./1`` adds its called allele)."""
    an = np.count_nonzero(gt >= 0, axis=(1, 2))
    ac = np.zeros((len(gt), n_alts), dtype=np.int64)
    for allele in range(1, n_alts + 1):
        ac[:, allele - 1] = np.count_nonzero(gt == allele, axis=(1, 2))
    return an, ac


def _info_texts(block: Genotypes) -> list[str]:
    """Per site, the kept INFO fields that have a value, as ``;ID=value`` (a Flag set: ``;ID``)."""
    out = [""] * block.sites.num_rows
    for field in block.kept:
        if field.kind != "INFO":
            continue
        texts = vcf_text(field, block.fields[field.array]).tolist()
        for k, text in enumerate(texts):
            if field.type == "Flag":
                out[k] += f";{field.id}" if text else ""
            elif text != ".":
                out[k] += f";{field.id}={text}"
    return out


def _calls_with_fields(block: Genotypes) -> Iterator[memoryview]:
    """Sample columns of each site with the kept FORMAT fields (``0/1:12:6,6``), tab-joined, each
    ending in a newline: per slice of sites, each column's cells as fixed-width bytes (GT from
    :func:`cell_table`, each field ``:`` + :func:`vcf_bytes`) put side by side, and their zero
    padding dropped, with no string per call (10^4 samples x 2,000 sites with DP, GQ and AD: 233 s
    as Python strings, beside bcftools' 28 s)."""
    formats = [f for f in block.kept if f.kind == "FORMAT"]
    step = max(1, CALLS_PER_SLICE // len(block.sample_ids))
    for first in range(0, len(block.gt), step):
        part = slice(first, first + step)
        gt, fields = _narrowed(block.gt[part]), [vcf_bytes(f, block.fields[f.array][part]) for f in formats]
        yield from (_field_rows if gt.shape[2] == 2 else _wide_rows)(gt, block.phased[part], fields)


def _narrowed(gt: np.ndarray) -> np.ndarray:
    """``gt`` (sites, samples, ploidy) without the slots beyond 2 when no call uses them."""
    return gt[:, :, :2] if gt.shape[2] > 2 and (gt[:, :, 2:] == FILL).all() else gt


def _wide_rows(gt: np.ndarray, phased: np.ndarray, fields: list[np.ndarray]) -> list[bytes]:
    """The sample columns of sites with calls of ploidy above 2 (:func:`wide_gt_text`), with the
    FORMAT values ``fields`` (each (sites, samples) bytes), one string per call: such calls are rare."""
    rows = []
    for v in range(len(gt)):
        cells = wide_gt_text(gt[v], phased[v])
        for values in fields:
            cells = [f"{cell}:{value.decode()}" for cell, value in zip(cells, values[v].tolist(), strict=True)]
        rows.append(("\t".join(cells) + "\n").encode())
    return rows


def _field_rows(gt: np.ndarray, phased: np.ndarray, fields: list[np.ndarray]) -> list[memoryview]:
    """The sample columns of ``gt`` (sites, samples, 2) with the FORMAT values ``fields`` (each
    (sites, samples) bytes), as for :func:`_calls_with_fields`."""
    n_sites, n_samples = gt.shape[:2]
    width = cell_width(gt)
    cells = cell_table(width)[call_codes(gt, phased)].view(np.uint8).reshape(n_sites, n_samples, width)
    columns = [np.where(cells == ord("\t"), 0, cells)]  # GT without its tab
    for values in fields:
        text = np.strings.add(b":", values.ravel())
        columns.append(text.view(np.uint8).reshape(n_sites, n_samples, text.itemsize))
    ends = np.full((n_sites, n_samples, 1), ord("\t"), dtype=np.uint8)
    ends[:, -1] = ord("\n")
    matrix = np.concatenate([*columns, ends], axis=2).reshape(n_sites, -1)
    keep = matrix != 0
    flat, stops = memoryview(matrix[keep]), np.cumsum(np.count_nonzero(keep, axis=1))
    return [flat[start:stop] for start, stop in zip([0, *stops[:-1].tolist()], stops.tolist(), strict=True)]


def _qual(qual: float | None) -> str:
    """QUAL as the shortest text that reads back as the same float32 ("." when missing)."""
    return "." if qual is None else float_text(qual)


def _call_rows(gt: np.ndarray, phased: np.ndarray) -> list[memoryview]:
    """Sample columns of each site as VCF text (``0/1``, ``1|0``, ``./.``, ``.``, ``1``,
    ``./1``) joined by tabs and ending in a newline, built without a loop over calls.

    Cells are looked up whole (4 or 8 bytes); when every call is diploid with alleles up
    to 9 (most blocks) each is exactly 4 bytes, otherwise the zero padding is dropped."""
    width = cell_width(gt)
    text = cell_table(width)[call_codes(gt, phased)].view(np.uint8).reshape(len(gt), -1)
    if width == 4 and gt.min(initial=0) >= -1:  # no haploid call: no padding
        text[:, -1] = ord("\n")
        flat, ends = memoryview(text.ravel()), np.arange(1, len(gt) + 1) * text.shape[1]
    else:
        last = text[:, -width:]
        last[last == ord("\t")] = ord("\n")
        keep = text != 0
        flat, ends = memoryview(text[keep]), np.cumsum(np.count_nonzero(keep, axis=1))
    return [flat[start:end] for start, end in zip([0, *ends[:-1].tolist()], ends.tolist(), strict=True)]
