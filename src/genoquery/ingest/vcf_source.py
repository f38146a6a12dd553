"""Opening a VCF or BCF source: format detection, header, samples, contigs, checksum.

Header parsing is htslib's (through cyvcf2); this module adds the checks that
htslib lets through (duplicate sample IDs) and records what provenance needs.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import cyvcf2

from genoquery.errors import InputFileError
from genoquery.ingest.htslib_log import htslib_errors
from genoquery.storage.checksums import file_sha256

BGZF_MAGIC = b"\x1f\x8b"
BCF_MAGIC = b"BCF\x02"


@dataclass(frozen=True)
class HeaderField:
    """An INFO or FORMAT field as the header declares it: ``number`` is the header's Number (``1``,
    ``A``, ``R``, ``G``, ``.`` or a count), ``kind`` its Type (Integer, Float, Flag, String,
    Character)."""

    id: str
    number: str
    kind: str
    description: str


@dataclass(frozen=True)
class VcfSource:
    """One input file as the header describes it.

    ``contigs`` are ``(name, length or None)`` in header order; ``filters``
    are the FILTER IDs the header declares, PASS first, and ``filter_descriptions``
    their descriptions, in the same order. ``kind`` is ``vcf``, ``vcf.gz``, ``bcf``, or ``vcz`` for
    a VCF Zarr store (:mod:`genoquery.ingest.vcz_source`), whose ``size`` and ``sha256`` cover all
    its files and whose ``unread`` names what of it genoquery does not read.
    """

    path: Path
    kind: str
    samples: tuple[str, ...]
    contigs: tuple[tuple[str, int | None], ...]
    filters: tuple[str, ...]
    filter_descriptions: tuple[str, ...]
    info_fields: tuple[HeaderField, ...]
    format_fields: tuple[HeaderField, ...]
    header_text: str
    header_lines: int
    size: int
    sha256: str = field(repr=False)
    unread: tuple[str, ...] = ()


def _detect_kind(path: Path) -> str:
    """Tell BCF, bgzipped VCF and plain VCF apart by their first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head == BGZF_MAGIC:
        with gzip.open(path, "rb") as handle:
            try:
                inner = handle.read(4)
            except (OSError, EOFError) as err:
                raise InputFileError(
                    path, f"cannot decompress: {err}", fix="check the file is complete (bgzip -t)"
                ) from None
        return "bcf" if inner == BCF_MAGIC else "vcf.gz"
    return "vcf"


def _header_contigs(reader: cyvcf2.VCF) -> tuple[tuple[str, int | None], ...]:
    """Declared contigs with their lengths (None where the header gives none)."""
    try:
        names, lengths = reader.seqnames, reader.seqlens
    except Exception:  # htslib has no contig dictionary (no ##contig lines, no index)
        return ()
    return tuple((name, int(n) if n is not None and n >= 0 else None) for name, n in zip(names, lengths, strict=True))


def _header_filters(reader: cyvcf2.VCF) -> dict[str, str]:
    """Declared FILTER IDs, PASS first, with their descriptions (quotes removed)."""
    filters = {"PASS": "All filters passed"}
    for rec in reader.header_iter():
        info = rec.info()
        if info.get("HeaderType") == "FILTER":
            filters[info["ID"]] = info.get("Description", "").strip('"')
    return filters


def _header_fields(reader: cyvcf2.VCF) -> tuple[tuple[HeaderField, ...], tuple[HeaderField, ...]]:
    """The declared INFO fields, and the declared FORMAT fields."""
    declared: dict[str, list[HeaderField]] = {"INFO": [], "FORMAT": []}
    for rec in reader.header_iter():
        fields = rec.info()
        if fields.get("HeaderType") in declared:
            number, kind = fields.get("Number", "."), fields.get("Type", "String")
            field = HeaderField(fields["ID"], number, kind, fields.get("Description", "").strip('"'))
            declared[fields["HeaderType"]].append(field)
    return tuple(declared["INFO"]), tuple(declared["FORMAT"])


STRUCTURED_LINES = ("INFO", "FORMAT", "FILTER", "contig")  # VCF Zarr keeps these as arrays


def meta_information(header_text: str) -> list[list[str]]:
    """The header's other ``##key=value`` lines as ``[key, value]`` pairs, in order (VCF Zarr's
    ``vcf_meta_information`` attribute)."""
    pairs = []
    for line in header_text.splitlines():
        if line.startswith("##") and "=" in line:
            key, value = line[2:].split("=", 1)
            if key not in STRUCTURED_LINES:
                pairs.append([key, value])
    return pairs


def _text_chrom_line(path: Path, kind: str) -> tuple[int, str] | None:
    """The 1-based line number and text of a text VCF's ``#CHROM`` line, if it has one."""
    opener = gzip.open if kind == "vcf.gz" else open
    try:
        with opener(path, "rt", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if line.startswith("#CHROM"):
                    return number, line.rstrip("\r\n")
                if not line.startswith("##"):
                    return None
    except (OSError, EOFError):
        return None
    return None


def _check_sample_columns(path: Path, kind: str) -> None:
    """Checks htslib would report only as an unreadable header: spacing and duplicate IDs."""
    found = _text_chrom_line(path, kind)
    if found is None:
        return
    number, line = found
    if "\t" not in line and " " in line:
        raise InputFileError(
            path,
            "the #CHROM line is separated by spaces, not tabs",
            line=number,
            fix="VCF columns must be tab-separated",
        )
    seen: set[str] = set()
    for name in line.split("\t")[9:]:
        if name in seen:
            raise InputFileError(
                path,
                f"sample ID {name!r} appears twice in the header",
                line=number,
                fix="rename or remove the duplicate column (bcftools reheader -s)",
            )
        seen.add(name)


def open_source(path: str | os.PathLike) -> VcfSource:
    """Read and check the header of a VCF, VCF.gz or BCF file."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file", fix="check the path")
    if not path.is_file():
        raise InputFileError(path, "not a regular file", fix="give a VCF, VCF.gz or BCF file")
    if path.stat().st_size == 0:
        raise InputFileError(path, "file is empty", fix="give a VCF, VCF.gz or BCF file")
    kind = _detect_kind(path)
    if kind != "bcf":
        _check_sample_columns(path, kind)
    reader = None
    with htslib_errors() as messages:
        try:
            reader = cyvcf2.VCF(str(path), lazy=True)
        except Exception:  # htslib reports any unreadable header this way
            pass
    if reader is None:
        detail = "; ".join(messages) or "htslib cannot parse it"
        raise InputFileError(
            path, f"not a readable VCF/BCF header ({detail})", fix="check the file with 'bcftools view -h'"
        )
    try:
        header_text = reader.raw_header
        samples = list(reader.samples)
        contigs = _header_contigs(reader)
        filters = _header_filters(reader)
        info_fields, format_fields = _header_fields(reader)
    finally:
        reader.close()
    return VcfSource(
        path=path,
        kind=kind,
        samples=tuple(samples),
        contigs=contigs,
        filters=tuple(filters),
        filter_descriptions=tuple(filters.values()),
        info_fields=info_fields,
        format_fields=format_fields,
        header_text=header_text,
        header_lines=header_text.count("\n"),
        size=path.stat().st_size,
        sha256=file_sha256(path),
    )
