"""Streaming a source's records as blocks of sites with decoded genotypes.

Text VCF (plain or bgzipped) is read line by line through ISA-L's threaded
gzip reader (decompression runs on its own thread), the fixed columns are
split in Python and the genotype columns decoded in bulk by
:mod:`genoquery.ingest.gt_decode`. A line the fast path cannot prove it reads
exactly is handed whole to htslib (cyvcf2). BCF is read by htslib directly.

Every block holds at most ``capacity`` sites; memory is bounded by
``capacity x samples x 2`` bytes plus per-site metadata, whatever the input's
length.
"""

from __future__ import annotations

import io
import math
import re
import shlex
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import cyvcf2
import numpy as np
from isal import igzip_threaded

from genoquery.errors import GenoqueryWarning, InputFileError
from genoquery.ingest.format_arrays import CallField, call_values
from genoquery.ingest.gt_decode import decode_gt
from genoquery.ingest.htslib_log import htslib_errors
from genoquery.ingest.regions import FileRegion
from genoquery.ingest.vcf_source import VcfSource
from genoquery.storage.format import FILL, MISSING
from genoquery.storage.site_block import PLOIDY, SiteBlock
from genoquery.storage.wide_calls import is_wide

MAX_ALLELES = 127  # int8 allele indexes
# VCF 4.3 section 1.4.7: a contig name, or an angle-bracketed ID of a contig in an assembly file.
_CONTIG_NAME = r"[0-9A-Za-z!#$%&+./:;?@^_|~-][0-9A-Za-z!#$%&*+./:;=?@^_|~-]*"
CONTIG_NAME = re.compile(rf"{_CONTIG_NAME}|<{_CONTIG_NAME}>")
MAX_POS = 2**31 - 1  # VCF/BCF positions are 32-bit
HTSLIB_TYPES = {"Integer": int, "Float": float}  # cyvcf2's Variant.format types; any other is text
# How to fix a record htslib refuses, by the start of htslib's reason ("" for any other reason).
HTSLIB_FIXES = {
    "Incorrect number of FORMAT fields": "a sample column holds at most one ':'-separated value per FORMAT key",
    "Invalid character": "a FORMAT field of Type=Integer or Float (its ##FORMAT line) holds numbers or '.'",
    "": "check the record against the VCF specification",
}


def _sort_command(source: VcfSource) -> str:
    """The commands that sort ``source`` into an indexed file genoquery reads (bcftools sorts in
    bounded memory, spilling to disk), and the rule for files split by region."""
    name = source.path.name
    stem = name.removesuffix(".gz").removesuffix(".vcf").removesuffix(".bcf")
    quoted = shlex.quote(str(source.path))
    sorted_name = shlex.quote(str(source.path.with_name(f"{stem}.sorted.vcf.gz")))
    return (
        f"sort it, then ingest the sorted file: bcftools sort -Oz -o {sorted_name} {quoted} && "
        f"bcftools index -t {sorted_name}; files split by region must cover disjoint regions"
    )


class OrderChecker:
    """Checks that records arrive sorted, across all files of one ingest.

    Each contig's records must form one run with non-decreasing positions;
    a contig the file's header does not declare is an error when the header
    declares any.
    """

    def __init__(self) -> None:
        self.finished: set[str] = set()
        self.current: str | None = None
        self.last_pos = 0

    def check(self, source: VcfSource, declared: set[str], contig: str, pos: int, record: int) -> None:
        if declared and contig not in declared:
            raise InputFileError(
                source.path,
                f"contig {contig!r} is not declared in the header",
                line=record,
                fix="add a ##contig line or fix the CHROM column",
            )
        if contig == self.current:
            if pos < self.last_pos:
                raise InputFileError(
                    source.path,
                    f"records are not sorted: {contig}:{pos} comes after {contig}:{self.last_pos}",
                    line=record,
                    fix=_sort_command(source),
                )
        elif contig in self.finished:
            raise InputFileError(
                source.path,
                f"records are not sorted: contig {contig!r} appears again after {self.current!r}",
                line=record,
                fix=_sort_command(source),
            )
        else:
            if not CONTIG_NAME.fullmatch(contig):
                raise InputFileError(
                    source.path,
                    f"CHROM {contig!r} is not a valid contig name (VCF 4.3: no commas, angle brackets but around "
                    "a whole ID, or whitespace; no '*' or '=' first)",
                    line=record,
                    fix="rename the contig (bcftools annotate --rename-chrs)",
                )
            if self.current is not None:
                self.finished.add(self.current)
            self.current = contig
        self.last_pos = pos


def check_alleles(source: VcfSource, block: SiteBlock) -> None:
    """Every allele index must name an allele of its site, but allele 1 of a site whose ALT is
    ``.``: htslib and bcftools read and print such a GT as it is (``0/1``), so it is stored as
    it is, with no ALT allele to count it for."""
    n = block.n
    if n == 0 or block.n_samples == 0:
        return
    max_index = block.gt[:n].reshape(n, -1).max(axis=1)
    wide = block.wide
    np.maximum.at(max_index, wide.row, wide.alleles.max(axis=1, initial=0).astype(max_index.dtype))
    n_alleles = np.fromiter((len(a) for a in block.alleles), dtype=np.int64, count=n)
    bad = np.flatnonzero(max_index >= np.maximum(n_alleles, 2))
    if len(bad):
        row = int(bad[0])
        raise InputFileError(
            source.path,
            f"GT uses allele {int(max_index[row])} but the site has only {n_alleles[row] - 1} ALT allele(s)",
            line=block.record[row],
            fix="correct the GT or ALT column",
        )


def _htslib_genotypes(source: VcfSource, variant: cyvcf2.Variant, record: int, block: SiteBlock, row: int) -> None:
    """Copy one htslib-parsed record's GT into the block's row ``row``; no GT means all calls
    missing. Calls of ploidy above 2 are kept as the block's wide calls."""
    out_gt, out_phased = block.gt[row], block.phased[row]
    try:
        genotype = variant.genotype if "GT" in variant.FORMAT else None
    except Exception as err:  # cyvcf2 raises a bare Exception for unreadable GT data
        raise InputFileError(
            source.path,
            f"htslib cannot read the GT values ({err})",
            line=record,
            fix="check the record's GT against the VCF specification",
        ) from None
    if genotype is None:
        out_gt[:, 0] = MISSING
        out_gt[:, 1] = FILL
        out_phased[:] = False
        return
    arr = genotype.array()
    ploidy = arr.shape[1] - 1
    if arr[:, :-1].max(initial=0) > MAX_ALLELES:
        raise InputFileError(
            source.path, f"more than {MAX_ALLELES} alleles", line=record, fix="split the site (bcftools norm -m-)"
        )
    out_gt[:, :] = FILL
    width = min(ploidy, PLOIDY)
    out_gt[:, :width] = np.maximum(arr[:, :width], FILL)
    out_phased[:] = arr[:, -1].astype(bool) | (out_gt[:, 1] == FILL)  # haploid calls count as phased
    if ploidy > PLOIDY:
        calls = np.maximum(arr[:, :ploidy], FILL).astype(np.int8)
        wide = np.flatnonzero(is_wide(calls))
        if len(wide):
            block.set_wide(row, wide, calls[wide])


GT_TEXT = re.compile(r"[|/]?(\d+|\.)([|/](\d+|\.))*")
BAD_CHARACTER = re.compile(r"Invalid character '(.)' in '([^']*)'")


def _fits(reason: str, keys: list[str], values: list[str]) -> bool:
    """Whether htslib's ``reason`` for refusing a record (more values than FORMAT ``keys``, a bad
    character in a field, unreadable GT) fits one sample column's ``values``."""
    if reason.startswith("Incorrect number of FORMAT fields"):
        return len(values) > len(keys)
    bad = BAD_CHARACTER.search(reason)
    if bad and bad[2] in keys:
        field = keys.index(bad[2])
        return field < len(values) and bad[1] in values[field]
    return reason.startswith("Couldn't read GT") and keys[:1] == ["GT"] and not GT_TEXT.fullmatch(values[0])


def _culprit(samples: tuple[str, ...], line: str, reason: str) -> str:
    """`` (sample NAME: 'COLUMN')``, the first sample column of a record that htslib's ``reason``
    for refusing it fits, or ""."""
    cols = line.split("\t")
    keys = cols[8].split(":") if len(cols) > 8 else []
    culprits = (
        f" (sample {name}: {text!r})"
        for name, text in zip(samples, cols[9:], strict=False)
        if _fits(reason, keys, text.split(":"))
    )
    return next(culprits, "")


def _parse_fixed(source: VcfSource, cols: list[bytes], line_no: int):
    """Parse CHROM..FILTER of a text record; raises on malformed values."""
    if len(cols) < 8:
        raise InputFileError(
            source.path,
            f"record has {len(cols)} columns, expected at least 8",
            line=line_no,
            fix="VCF columns must be tab-separated",
        )
    chrom = cols[0].decode()
    pos_text = cols[1]
    if not pos_text.isdigit():
        raise InputFileError(
            source.path,
            f"POS {pos_text.decode(errors='replace')!r} is not a number",
            line=line_no,
            fix="correct the POS column",
        )
    if int(pos_text) > MAX_POS:
        raise InputFileError(
            source.path,
            f"POS {int(pos_text)} is beyond {MAX_POS}, the largest VCF position",
            line=line_no,
            fix="correct the POS column",
        )
    ref = cols[3].decode()
    if not ref or ref == ".":
        raise InputFileError(source.path, "REF is empty", line=line_no, fix="correct the REF column")
    alt = cols[4].decode()
    alleles = [ref] + ([] if alt == "." else alt.split(","))
    if len(alleles) > MAX_ALLELES:
        raise InputFileError(
            source.path,
            f"{len(alleles)} alleles (at most {MAX_ALLELES})",
            line=line_no,
            fix="split the site (bcftools norm -m-)",
        )
    qual_text = cols[5]
    try:
        qual = math.nan if qual_text == b"." else float(qual_text)
    except ValueError:
        raise InputFileError(
            source.path,
            f"QUAL {qual_text.decode(errors='replace')!r} is not a number",
            line=line_no,
            fix="correct the QUAL column",
        ) from None
    filt = cols[6].decode()
    filters = [] if filt == "." else filt.split(";")
    vid = "" if cols[2] == b"." else cols[2].decode()
    return chrom, int(pos_text), vid, alleles, qual, filters, cols[7].decode()


READ_SIZE = 1 << 22  # bytes of decompressed text read at a time


def _lines(handle: io.BufferedIOBase) -> Iterator[tuple[bytearray, int, int]]:
    """Yield ``(buffer, start, end)`` for each line, without its line ending.

    Lines are located in one reused buffer and never copied: a 400 KB line
    (10^5 samples) copied per ``readline`` or ``split`` costs as much as
    decoding it. The buffer grows to hold the longest line. The yielded
    buffer is only valid until the next line is requested.
    """
    buf = bytearray(READ_SIZE)
    filled = 0
    start = 0
    while True:
        newline = buf.find(b"\n", start, filled)
        if newline >= 0:
            end = newline - 1 if newline > start and buf[newline - 1] == 13 else newline
            yield buf, start, end
            start = newline + 1
            continue
        remaining = filled - start
        buf[:remaining] = buf[start:filled]
        start, filled = 0, remaining
        if filled == len(buf):
            buf.extend(bytes(len(buf)))
        got = handle.readinto(memoryview(buf)[filled:])
        if not got:
            if filled:
                yield buf, 0, filled - 1 if buf[filled - 1] == 13 else filled
            return
        filled += got


def _split_fixed(buf: bytearray, start: int, end: int) -> list:
    """The columns of a line: the first nine as bytes, the sample columns as a memoryview."""
    cols = []
    pos = start
    for _ in range(9):
        tab = buf.find(b"\t", pos, end)
        if tab < 0:
            break
        cols.append(bytes(buf[pos:tab]))
        pos = tab + 1
    else:
        cols.append(memoryview(buf)[pos:end])
        return cols
    cols.append(bytes(buf[pos:end]))
    return cols


@dataclass(frozen=True)
class RegionCount:
    """What a counting pass finds of a :class:`~genoquery.ingest.regions.FileRegion`: its
    ``records``; ``lines`` from its first record to the next region's first (header, blank and
    comment lines among them; records for BCF); and ``before``, the lines read from its offset
    before its first record (the header, for the region read from the file's beginning)."""

    before: int
    records: int
    lines: int


class _RegionLines:
    """The lines of a bgzipped VCF's ``region``, read from its offset: lines before its first
    record are counted in :attr:`before` and left out; its records and the lines among and after
    them are yielded numbered from ``first``, up to the first record of another contig or beyond
    its end. A record whose CHROM or POS cannot be read counts as the region's (its error is
    raised by the reader)."""

    def __init__(self, region: FileRegion, first: int) -> None:
        self.region, self.first = region, first
        self.contig = region.contig.encode()
        self.before = 0

    def lines(self, lines: Iterator[tuple[bytearray, int, int]]) -> Iterator[tuple[int, bytearray, int, int]]:
        region, line_no = self.region, None
        for buf, start, end in lines:
            if start != end and buf[start] != 35:  # a record
                tab = buf.find(b"\t", start, end)
                after = buf.find(b"\t", tab + 1, end) if tab >= 0 else -1
                pos_text = bytes(buf[tab + 1 : after]) if after >= 0 else b""
                pos = int(pos_text) if pos_text.isdigit() else None
                ours = tab < 0 or buf[start:tab] == self.contig  # unreadable: ours, the reader's error
                if line_no is None and ours and pos is not None and pos < region.start and region.start > 1:
                    ours = False  # the previous region's
                if line_no is None and not ours and pos is not None:
                    self.before += 1
                    continue
                if line_no is not None and not ours:
                    return
                if pos is not None and region.end is not None and pos > region.end:
                    return
                line_no = self.first if line_no is None else line_no
            elif line_no is None:
                self.before += 1
                continue
            yield line_no, buf, start, end
            line_no += 1


class _FileReader:
    """What a reader of a VCF or BCF file holds: its ``source``, blocks of ``capacity`` sites made
    by ``new_block`` (default: a new :class:`SiteBlock`), the ``order`` check, the kept FORMAT
    ``fields``, and the ``region`` read (None: the whole file) with its first record's number."""

    def __init__(
        self,
        source: VcfSource,
        capacity: int,
        order: OrderChecker,
        fields: Sequence[CallField],
        new_block: Callable[[], SiteBlock] | None = None,
        region: FileRegion | None = None,
        first: int = 1,
    ) -> None:
        self.source = source
        self.capacity = capacity
        self.n_samples = len(source.samples)
        self.new_block = new_block or partial(SiteBlock, capacity, self.n_samples)
        self.order = order
        self.fields = fields
        self.region = region
        self.first = first
        self.declared = {name for name, _ in source.contigs}


class _TextReader(_FileReader):
    """Reads a plain or bgzipped VCF into blocks: the whole file, or one ``region`` of it whose
    first record is line ``first``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._fallback: cyvcf2.Writer | None = None
        self._formats: set[bytes] = set()  # FORMAT texts checked
        self._format_ids = {f.id.encode() for f in self.source.format_fields}
        self.undeclared: set[str] = set()  # FORMAT keys the header does not declare (htslib drops their values)

    @contextmanager
    def _open(self) -> Iterator[io.BufferedIOBase]:
        """The file's text, from its region's virtual offset when it has one."""
        if self.source.kind != "vcf.gz":
            with open(self.source.path, "rb") as handle:
                yield handle
            return
        offset = 0 if self.region is None else self.region.offset
        with open(self.source.path, "rb") as raw:
            raw.seek(offset >> 16)  # a BGZF block, a gzip member of its own
            with igzip_threaded.open(raw, "rb", threads=1) as handle:
                handle.read(offset & 0xFFFF)
                yield handle

    def _numbered(self, handle: io.BufferedIOBase) -> Iterator[tuple[int, bytearray, int, int]]:
        """The lines read, each with its 1-based line number in the file."""
        if self.region is not None:
            yield from _RegionLines(self.region, self.first).lines(_lines(handle))
            return
        for line_no, (buf, start, end) in enumerate(_lines(handle), start=1):
            yield line_no, buf, start, end

    def _htslib_variant(self, line: bytes, line_no: int) -> cyvcf2.Variant:
        """The record as htslib parses it, which checks every FORMAT value as bcftools does; a record
        htslib refuses is an error quoting htslib's own reason."""
        if self._fallback is None:
            self._fallback = cyvcf2.Writer.from_string("/dev/null", self.source.header_text)
        text = line.decode()
        try:
            return self._fallback.variant_from_string(text)
        except Exception:  # cyvcf2's message quotes the whole line; htslib's log names the reason
            pass
        with htslib_errors() as messages:
            try:
                self._fallback.variant_from_string(text)
            except Exception:
                pass
        reason = "; ".join(messages) or "htslib cannot parse it"
        fix = next((fix for start, fix in HTSLIB_FIXES.items() if reason.startswith(start)), HTSLIB_FIXES[""])
        raise InputFileError(
            self.source.path,
            f"htslib refuses the record: {reason}{_culprit(self.source.samples, text, reason)}",
            line=line_no,
            fix=fix,
        )

    def _check_format(self, fmt: bytes, line_no: int) -> None:
        """An empty FORMAT key (``GT::DP``), which htslib reads with a warning as an undeclared
        field and bcftools then cannot write as BCF, is an error; each FORMAT text is checked once."""
        if fmt in self._formats:
            return
        if b"" in fmt.split(b":"):
            raise InputFileError(
                self.source.path,
                f"FORMAT {fmt.decode(errors='replace')!r} has an empty key",
                line=line_no,
                fix="remove the extra ':' from the FORMAT column and the sample columns",
            )
        keys = fmt.split(b":")
        self.undeclared.update(k.decode(errors="replace") for k in keys if k not in self._format_ids and k != b".")
        self._formats.add(fmt)

    def blocks(self) -> Iterator[SiteBlock]:
        block = self.new_block()
        line_no = self.first - 1
        try:
            with self._open() as handle:
                for line_no, buf, start, end in self._numbered(handle):
                    if start == end or buf[start] == 35:  # empty or '#'
                        continue
                    self._add_line(block, buf, start, end, line_no)
                    if block.full:
                        check_alleles(self.source, block)
                        yield block
                        block = self.new_block()
        except (EOFError, OSError) as err:
            raise InputFileError(
                self.source.path,
                f"cannot read past line {line_no} ({err})",
                fix="the file is truncated or corrupt; check it with 'bgzip -t'",
            ) from None
        except UnicodeDecodeError:
            raise InputFileError(
                self.source.path, "record is not valid UTF-8 text", line=line_no + 1, fix="check the file's encoding"
            ) from None
        if block.n:
            check_alleles(self.source, block)
            yield block
        if self.undeclared:
            keys = ", ".join(f"FORMAT/{key}" for key in sorted(self.undeclared))
            warnings.warn(
                f"{self.source.path}: not kept: {keys} (not declared in the header; add a ##FORMAT line "
                "for each to keep it, e.g. with bcftools annotate -h)",
                GenoqueryWarning,
                stacklevel=2,
            )

    def _add_line(self, block: SiteBlock, buf: bytearray, start: int, end: int, line_no: int) -> None:
        cols = _split_fixed(buf, start, end)
        chrom, pos, vid, alleles, qual, filters, info = _parse_fixed(self.source, cols, line_no)
        self.order.check(self.source, self.declared, chrom, pos, line_no)
        row = block.add_site(chrom, pos, vid, alleles, qual, filters, info, line_no)
        out_gt, out_phased = block.gt[row], block.phased[row]
        if self.n_samples == 0:
            return
        if len(cols) < 10:
            raise InputFileError(
                self.source.path,
                f"record has no sample columns, the header names {self.n_samples} samples",
                line=line_no,
                fix="every record needs FORMAT and one column per sample",
            )
        fmt = cols[8]
        variant = None
        if fmt != b"GT":  # GT alone is read by the kernel; other FORMAT values are checked by htslib
            self._check_format(fmt, line_no)
            if bytes(cols[9]).count(b"\t") + 1 == self.n_samples:
                variant = self._htslib_variant(bytes(buf[start:end]), line_no)
        found = None
        if fmt == b"GT" or fmt.startswith(b"GT:"):
            found = decode_gt(cols[9], self.n_samples, fmt == b"GT", out_gt, out_phased)
        if found is None:
            found = bytes(cols[9]).count(b"\t") + 1
            if found == self.n_samples:
                variant = variant or self._htslib_variant(bytes(buf[start:end]), line_no)
                _htslib_genotypes(self.source, variant, line_no, block, row)
        if found != self.n_samples:
            raise InputFileError(
                self.source.path,
                f"record has {found} sample columns, the header names {self.n_samples}",
                line=line_no,
                fix="every record needs one column per sample",
            )
        if self.fields:
            _add_calls(self.source, block, row, variant, self.fields, line_no)


def _region_variants(reader: cyvcf2.VCF, region: FileRegion | None) -> Iterator[cyvcf2.Variant]:
    """The records of ``reader``'s file, or of its ``region`` (htslib's query by the index, which
    also yields the records before the region that overlap it: left out)."""
    if region is None:
        yield from reader
        return
    for variant in reader(f"{region.contig}:{region.start}-{region.end or MAX_POS}"):
        if variant.POS >= region.start or region.start == 1:
            yield variant


class _BcfReader(_FileReader):
    """Reads a BCF into blocks through htslib: the whole file, or one ``region`` of it whose first
    record is the file's record ``first``."""

    def blocks(self) -> Iterator[SiteBlock]:
        reader = cyvcf2.VCF(str(self.source.path), threads=2)
        variants = _region_variants(reader, self.region)
        block = self.new_block()
        record = self.first - 1
        try:
            while True:
                try:
                    variant = next(variants)
                except StopIteration:
                    break
                except Exception as err:
                    raise InputFileError(
                        self.source.path,
                        f"htslib cannot read the record ({err})",
                        line=record + 1,
                        fix="check the file with 'bcftools view'",
                    ) from None
                record += 1
                self._add(block, variant, record)
                if block.full:
                    check_alleles(self.source, block)
                    yield block
                    block = self.new_block()
        finally:
            reader.close()
        if block.n:
            check_alleles(self.source, block)
            yield block

    def _add(self, block: SiteBlock, variant: cyvcf2.Variant, record: int) -> None:
        self.order.check(self.source, self.declared, variant.CHROM, variant.POS, record)
        qual = variant.QUAL
        filt = variant.FILTER
        filters = ["PASS"] if filt is None and "PASS" in variant.FILTERS else ([] if filt is None else filt.split(";"))
        row = block.add_site(
            variant.CHROM,
            variant.POS,
            variant.ID or "",
            [variant.REF, *list(variant.ALT)],
            math.nan if qual is None else float(qual),
            filters,
            _info_text(variant),
            record,
        )
        if self.n_samples:
            _htslib_genotypes(self.source, variant, record, block, row)
            if self.fields:
                _add_calls(self.source, block, row, variant, self.fields, record)


def _info_value(value) -> str:
    """An INFO value as htslib decoded it (a tuple for several, None for missing) as VCF text."""
    if isinstance(value, tuple):
        return ",".join("." if v is None else str(v) for v in value)
    return "." if value is None else str(value)


def _info_text(variant: cyvcf2.Variant) -> str:
    """A BCF record's INFO as VCF text (``.`` when empty), from htslib's decoded values."""
    items = [key if value is True else f"{key}={_info_value(value)}" for key, value in variant.INFO]
    return ";".join(items) or "."


def _add_calls(
    source: VcfSource,
    block: SiteBlock,
    row: int,
    variant: cyvcf2.Variant | None,
    fields: Sequence[CallField],
    record: int,
) -> None:
    """Store a record's values of the kept FORMAT ``fields`` as htslib read them (``variant`` None:
    its FORMAT is GT alone)."""
    keys = set(variant.FORMAT or ()) if variant is not None else set()
    n_alleles = len(block.alleles[row])
    for spec in fields:
        key = spec.field.id
        values = variant.format(key, HTSLIB_TYPES.get(spec.field.kind, str)) if key in keys else None
        out = call_values(spec, values, block.n_samples, n_alleles, {"path": source.path, "line": record})
        block.set_calls(spec.name, row, out, spec.missing, spec.fill, present=values is not None)


def read_blocks(
    source: VcfSource,
    capacity: int,
    order: OrderChecker | None = None,
    fields: Sequence[CallField] = (),
    new_block: Callable[[], SiteBlock] | None = None,
    region: tuple[FileRegion, int] | None = None,
) -> Iterator[SiteBlock]:
    """Yield the source's sites in file order, ``capacity`` at a time, with the values of the
    FORMAT ``fields`` kept (:mod:`genoquery.ingest.format_arrays`), each block made by
    ``new_block`` (default: a new :class:`SiteBlock` of ``capacity`` sites); with ``region``, a
    :class:`~genoquery.ingest.regions.FileRegion` and the record number (line number for text) of
    its first record, only its sites, numbered as in the whole file.

    Pass one ``order`` to every file of an ingest to check sorting across files.
    """
    reader_type = _BcfReader if source.kind == "bcf" else _TextReader
    return reader_type(source, capacity, order or OrderChecker(), fields, new_block, *(region or ())).blocks()


def count_records(source: VcfSource) -> int:
    """How many records :func:`read_blocks` reads from ``source``, counted without decoding them
    (for a file without an index: a partition's first row needs the counts of the files before it)."""
    if source.kind == "bcf":
        reader = cyvcf2.VCF(str(source.path), lazy=True)
        try:
            return sum(1 for _ in reader)
        finally:
            reader.close()
    with _TextReader(source, 1, OrderChecker(), ())._open() as handle:
        return sum(1 for buf, start, end in _lines(handle) if start != end and buf[start] != 35)


def count_region(source: VcfSource, region: FileRegion) -> RegionCount:
    """Count the records and lines of an indexed file's ``region`` without decoding them (its
    first record's number then follows from the regions before it: CSI indexes count no regions)."""
    if source.kind == "bcf":
        reader = cyvcf2.VCF(str(source.path), lazy=True)
        try:
            records = sum(1 for _ in _region_variants(reader, region))
        finally:
            reader.close()
        return RegionCount(0, records, records)
    lines = _RegionLines(region, 1)
    with _TextReader(source, 1, OrderChecker(), (), region)._open() as handle:
        counted = [0, 0]
        for _, buf, start, end in lines.lines(_lines(handle)):
            counted[0] += start != end and buf[start] != 35
            counted[1] += 1
    return RegionCount(lines.before, *counted)
