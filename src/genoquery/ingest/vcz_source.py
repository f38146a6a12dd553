"""A VCF Zarr store (``vcf2zarr convert``'s output, or a batch's ``genotypes.vcz``) as an ingest
source: its header facts as a :class:`~genoquery.ingest.vcf_source.VcfSource` (kind ``vcz``) and
its records as the :class:`~genoquery.storage.site_block.SiteBlock` blocks a VCF reader yields,
so the same writers build the batch and no VCF is read again.

The store is read with zarr (Zarr format 2 or 3), one block of ``capacity`` variants at a time
across all samples: memory is one block's calls, as for a VCF, whatever the number of variants.
What the arrays do not say of the header is inferred as bio2zarr writes them: an INFO or FORMAT
field's Number from its last dimension (``alt_alleles`` A, ``alleles`` R, ``genotypes`` G,
another ``.``; none: 1, or 0 for a Flag) and its Type from the dtype, unless the array's
``info_number``/``format_number`` and ``info_type``/``format_type`` attributes (genoquery's own
groups) declare them. INFO values become the record's INFO text, which the writers parse back
into the same arrays; FORMAT values are handed over as arrays. Arrays and attributes genoquery
does not read are named in the ingest's one "not kept" warning line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import zarr

from genoquery.errors import InputFileError
from genoquery.ingest.format_arrays import CALL_ARRAYS, CallField
from genoquery.ingest.info_arrays import RESERVED
from genoquery.ingest.records import MAX_ALLELES, OrderChecker, check_alleles
from genoquery.ingest.vcf_source import HeaderField, VcfSource
from genoquery.storage.checksums import tree_sha256
from genoquery.storage.format import FILL, FLOAT_FILL, FLOAT_MISSING, INT_FILL, INT_MISSING, STR_FILL, STR_MISSING
from genoquery.storage.site_block import SiteBlock
from genoquery.storage.wide_calls import split_wide

KIND = "vcz"
VERSIONS = ("0.4", "0.5")  # vcf_zarr_version values read: genoquery's groups and bio2zarr 0.2's
REQUIRED = ("variant_position", "variant_contig", "variant_allele", "contig_id", "sample_id")
# Arrays read (or rebuilt: region_index, variant_length from REF, call_genotype_mask from GT).
READ = {f"variant_{name}" for name in RESERVED} | {f"call_{name}" for name in CALL_ARRAYS}
READ |= {"sample_id", "contig_id", "contig_length", "filter_id", "filter_description", "region_index"}
ATTRIBUTES = {"vcf_zarr_version", "source", "vcf_meta_information", "vcf_header"}
NUMBERS = {"alt_alleles": "A", "alleles": "R", "genotypes": "G"}  # by a field's last dimension
FIX = "give a VCF/BCF file, or a VCF Zarr store made by vcf2zarr convert"
REBUILD = "convert the VCF again (vcf2zarr convert)"
_FLOAT_BITS = np.array([FLOAT_MISSING, FLOAT_FILL], dtype=np.float32).view(np.int32)


def _dims(array: zarr.Array) -> tuple[str, ...]:
    """An array's dimension names: Zarr 3 metadata, or Zarr 2's ``_ARRAY_DIMENSIONS``."""
    names = getattr(array.metadata, "dimension_names", None) or array.attrs.get("_ARRAY_DIMENSIONS") or ()
    return tuple(str(n) for n in names)


def _kind(dtype: np.dtype) -> str:
    """The VCF Type of values of ``dtype``."""
    if dtype.kind in "biuf":
        return {"b": "Flag", "i": "Integer", "u": "Integer", "f": "Float"}[dtype.kind]
    return "Character" if dtype == np.dtype("U1") else "String"


def _field(name: str, array: zarr.Array, section: str) -> HeaderField | None:
    """The INFO (``variant_<ID>``) or FORMAT (``call_<ID>``) field that ``array`` holds, or None if
    its dimensions are not such a field's."""
    dims, lead = _dims(array), ("variants",) if section == "info" else ("variants", "samples")
    if dims[: len(lead)] != lead or len(dims) > len(lead) + 1:
        return None
    attrs = array.attrs
    kind = str(attrs.get(f"{section}_type") or _kind(array.dtype))
    if section == "format" and kind == "Flag":
        return None
    inferred = ("0" if kind == "Flag" else "1") if len(dims) == len(lead) else NUMBERS.get(dims[-1], ".")
    number = str(attrs.get(f"{section}_number") or inferred)
    return HeaderField(name.split("_", 1)[1], number, kind, str(attrs.get("description", "")))


def open_group(path: Path) -> zarr.Group:
    """The VCF Zarr group at ``path``, checked: a Zarr group with the VCF Zarr version or
    ``call_genotype``, of a version genoquery reads, with the arrays every record needs."""
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception:  # zarr raises several types for a directory that holds no group
        raise InputFileError(path, "a directory that is not a Zarr group", fix=FIX) from None
    names = set(group.array_keys())
    version = group.attrs.get("vcf_zarr_version")
    if version is None and "call_genotype" not in names:
        raise InputFileError(
            path, "a Zarr group that is not VCF Zarr (no vcf_zarr_version attribute, no call_genotype)", fix=FIX
        )
    if version is not None and str(version) not in VERSIONS:
        raise InputFileError(
            path,
            f"vcf_zarr_version {version} is not supported (genoquery reads {', '.join(VERSIONS)})",
            fix=f"{REBUILD} with bio2zarr 0.2",
        )
    lacking = [name for name in REQUIRED if name not in names]
    if lacking:
        raise InputFileError(path, f"the VCF Zarr store has no {', '.join(lacking)}", fix=REBUILD)
    if "call_genotype" not in names and group["sample_id"].shape[0]:
        raise InputFileError(
            path, "the VCF Zarr store has samples but no call_genotype (GT was not converted)", fix=REBUILD
        )
    return group


def _texts(array: zarr.Array) -> list[str]:
    return [str(v) for v in np.asarray(array[...], dtype=object).tolist()]


def open_vcz(path: str | Path) -> VcfSource:
    """Read and check a VCF Zarr store's samples, contigs, FILTERs, INFO and FORMAT fields and
    header lines, as :func:`~genoquery.ingest.vcf_source.open_source` does a VCF's header."""
    path = Path(path)
    group = open_group(path)
    samples = _texts(group["sample_id"])
    seen: set[str] = set()
    for sample in samples:
        if sample in seen:
            raise InputFileError(path, f"sample ID {sample!r} appears twice in sample_id", fix=REBUILD)
        seen.add(sample)
    names = set(group.array_keys())
    contigs = _texts(group["contig_id"])
    lengths = np.asarray(group["contig_length"][...]).tolist() if "contig_length" in names else [-1] * len(contigs)
    filters = {"PASS": "All filters passed"}
    if "filter_id" in names:
        described = _texts(group["filter_description"]) if "filter_description" in names else []
        ids = _texts(group["filter_id"])
        filters |= {f: d for f, d in zip(ids, described or [""] * len(ids), strict=True) if f != "PASS"}
    fields: dict[str, list[HeaderField]] = {"info": [], "format": []}
    unread = []
    for name in sorted(names - READ):
        section = {"variant": "info", "call": "format"}.get(name.split("_", 1)[0])
        field = _field(name, group[name], section) if section and "_" in name else None
        if field is None:
            unread.append(f"array {name} (not a VCF Zarr field genoquery reads)")
        else:
            fields[section].append(field)
    unread += [f"attribute {key}" for key in sorted(set(group.attrs.keys()) - ATTRIBUTES)]
    header = group.attrs.get("vcf_header")
    if header is None:
        header = "".join(f"##{key}={value}\n" for key, value in group.attrs.get("vcf_meta_information", []))
    size, digest = tree_sha256(path)
    return VcfSource(
        path=path,
        kind=KIND,
        samples=tuple(samples),
        contigs=tuple((c, int(n) if n >= 0 else None) for c, n in zip(contigs, lengths, strict=True)),
        filters=tuple(filters),
        filter_descriptions=tuple(filters.values()),
        info_fields=tuple(fields["info"]),
        format_fields=tuple(fields["format"]),
        header_text=str(header),
        header_lines=str(header).count("\n"),
        size=size,
        sha256=digest,
        unread=tuple(unread),
    )


def _items(values: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """VCF text of each of a record's values of an INFO field, and which are missing and fill."""
    if values.dtype.kind in "iu":
        return [str(int(v)) for v in values], values == INT_MISSING, values == INT_FILL
    if values.dtype.kind == "f":
        bits = values.astype(np.float32).view(np.int32)
        return [str(v) for v in values.astype(np.float32)], bits == _FLOAT_BITS[0], bits == _FLOAT_BITS[1]
    texts = [str(v) for v in values.tolist()]
    return texts, np.array([t == STR_MISSING for t in texts]), np.array([t == STR_FILL for t in texts])


def info_entry(field: HeaderField, value: np.ndarray) -> str | None:
    """``ID=VALUE`` (``ID`` for a set Flag) for a record's ``value`` of an INFO ``field`` in VCF
    Zarr coding, or None where the record has no value: every column missing. Trailing fill is
    left out, so a shorter value than the array's width reads back padded with fill."""
    if field.kind == "Flag":
        return field.id if bool(value) else None
    texts, missing, fill = _items(np.atleast_1d(value))
    kept = len(texts) - int(np.argmin(fill[::-1])) if not fill.all() else 0
    if kept == 0 or (missing.all() and not fill.any()):
        return None
    return f"{field.id}={','.join('.' if missing[k] else texts[k] for k in range(kept))}"


class VczReader:
    """Reads a VCF Zarr store into blocks of ``capacity`` sites, with the FORMAT ``fields`` kept."""

    def __init__(
        self,
        source: VcfSource,
        capacity: int,
        order: OrderChecker,
        fields: Sequence[CallField],
        new_block: Callable[[], SiteBlock] | None = None,
    ) -> None:
        self.source = source
        self.capacity = capacity
        self.order = order
        self.fields = fields
        self.group = open_group(source.path)
        self.names = set(self.group.array_keys())
        self.contigs = [c for c, _ in source.contigs]
        self.declared = set(self.contigs)
        self.filter_ids = _texts(self.group["filter_id"]) if "filter_id" in self.names else []
        self.n_samples = len(source.samples)
        self.new_block = new_block or partial(SiteBlock, capacity, self.n_samples)

    def _rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (0-based, end excluded) of an array; an unreadable chunk is an error."""
        try:
            return np.asarray(self.group[name][start:stop])
        except Exception as err:  # numcodecs and zarr raise many types for a damaged chunk
            raise InputFileError(
                self.source.path,
                f"cannot read {name} of records {start + 1}-{stop} ({type(err).__name__}: {err})",
                fix=f"the store is incomplete or damaged; {REBUILD}",
            ) from None

    def first_locus(self) -> tuple[str, int] | None:
        """The first record's CHROM and POS (None without records), read without its calls."""
        if self.group["variant_position"].shape[0] == 0:
            return None
        block = SiteBlock(1, 0)
        self._add_sites(block, 0, 1)
        return block.contig[0], block.pos[0]

    def blocks(self) -> Iterator[SiteBlock]:
        n = self.group["variant_position"].shape[0]
        for start in range(0, n, self.capacity):
            block = self.new_block()
            self._add_sites(block, start, min(n, start + self.capacity))
            if self.n_samples:
                self._add_calls(block, start)
                check_alleles(self.source, block)
            yield block

    def _add_sites(self, block: SiteBlock, start: int, stop: int) -> None:
        """The records' fixed columns and INFO text."""
        m = stop - start
        pos, contig = self._rows("variant_position", start, stop), self._rows("variant_contig", start, stop)
        alleles = self._rows("variant_allele", start, stop).astype(object)
        ids = self._rows("variant_id", start, stop).astype(object) if "variant_id" in self.names else ["."] * m
        has = {name: name in self.names for name in ("variant_quality", "variant_filter")}
        qual = self._rows("variant_quality", start, stop) if has["variant_quality"] else np.full(m, np.nan)
        flags = self._rows("variant_filter", start, stop) if has["variant_filter"] else np.zeros((m, 0), bool)
        info = [(f, self._rows(f"variant_{f.id}", start, stop)) for f in self.source.info_fields]
        for row in range(m):
            record = start + row + 1
            if not 0 <= contig[row] < len(self.contigs):
                raise InputFileError(
                    self.source.path, f"variant_contig {contig[row]} names no contig_id entry", line=record, fix=REBUILD
                )
            name = self.contigs[contig[row]]
            self.order.check(self.source, self.declared, name, int(pos[row]), record)
            site = [str(a) for a in alleles[row].tolist()]
            site = site[: site.index("")] if "" in site else site
            if not site or len(site) > MAX_ALLELES:
                raise InputFileError(
                    self.source.path,
                    f"{len(site)} alleles (a record has a REF and at most {MAX_ALLELES - 1} ALT alleles)",
                    line=record,
                    fix="split the site (bcftools norm -m-) before converting" if site else REBUILD,
                )
            entries = (info_entry(field, values[row]) for field, values in info)
            block.add_site(
                name,
                int(pos[row]),
                "" if str(ids[row]) in (".", "") else str(ids[row]),
                site,
                math.nan if math.isnan(qual[row]) else float(qual[row]),
                [self.filter_ids[k] for k in np.flatnonzero(flags[row])],
                ";".join(e for e in entries if e is not None) or ".",
                record,
            )

    def _add_calls(self, block: SiteBlock, start: int) -> None:
        """The records' GT (haploid calls padded with fill and counted as phased, as htslib's) and
        the kept FORMAT fields."""
        m, stop = block.n, start + block.n
        gt = self._rows("call_genotype", start, stop)
        if gt.dtype != np.int8 and (np.any(gt > MAX_ALLELES) or np.any(gt < FILL)):
            raise InputFileError(
                self.source.path, f"call_genotype holds allele indexes beyond {MAX_ALLELES}", fix=REBUILD
            )
        gt, wide = split_wide(gt.astype(np.int8, copy=False))
        block.gt[:m, :, : gt.shape[2]] = gt
        block.gt[:m, :, gt.shape[2] :] = FILL
        phased = self._rows("call_genotype_phased", start, stop) if "call_genotype_phased" in self.names else False
        block.phased[:m] = phased | (block.gt[:m, :, 1] == FILL)
        if len(wide):
            block.wide_parts.append(wide)
        for spec in self.fields:
            values = self._rows(spec.name, start, stop).astype(spec.dtype)
            block.calls[spec.name] = values if spec.scalar or values.ndim == 3 else values[:, :, None]
            block.absent[spec.name] = []
