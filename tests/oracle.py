"""Independent expectations for genoquery's tests, computed with bcftools and pysam.

Nothing here imports genoquery or cyvcf2 (genoquery's ingest reads through
cyvcf2): every expected value comes from htslib's own tools as pysam bundles
them (``pysam.bcftools``, ``pysam.VariantFile``) plus plain Python on the text
bcftools prints.

Per-allele statistics follow docs/architecture.md ("Statistics") on the records of
``bcftools norm -m-`` (one record per ALT allele; in a split record the other
ALT alleles of the site read as REF ``0``, a missing allele stays missing):

* AC: copies of the allele among called alleles; AN: called alleles.
* n_missing: samples whose call has any missing allele (``./.``, ``.``, ``./1``).
* over fully called samples: n_het (diploid, one copy), n_hom_alt (diploid,
  two copies), n_hemi (haploid call of the allele).
"""

from __future__ import annotations

import gzip
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools as bcftools

SITE_FORMAT = "%CHROM\t%POS\t%ID\t%REF\t%ALT\t%FILTER[\t%GT]\n"
MISSING_ALLELE = -1
FILL = -2


@dataclass(frozen=True)
class Site:
    """One VCF record as ``bcftools query`` prints it."""

    contig: str
    pos: int
    id: str  # "." when missing
    ref: str
    alts: tuple[str, ...]  # empty for ALT "."
    filters: tuple[str, ...]  # empty for FILTER "."
    gts: tuple[str, ...]  # GT text per sample


@dataclass(frozen=True)
class AlleleStats:
    """Expected statistics of one ALT allele of one site."""

    site: int  # 0-based index of the site in file order
    contig: str
    pos: int
    ref: str
    alt: str
    allele: int  # 1-based ALT index
    ac: int
    an: int
    n_het: int
    n_hom_alt: int
    n_hemi: int
    n_missing: int

    @property
    def af(self) -> float:
        return self.ac / self.an if self.an else math.nan


# --------------------------------------------------------------------------- helpers


def _run(cmd: str, *args: str) -> str:
    """Run a bundled bcftools command and return its stdout (raises pysam.SamtoolsError)."""
    return getattr(bcftools, cmd)(*args)


def _run_to(cmd: str, out: Path, *args: str) -> Path:
    """Run a bundled bcftools command writing uncompressed VCF to ``out``."""
    getattr(bcftools, cmd)("-Ov", "-o", str(out), *args, catch_stdout=False)
    return out


def header_text(path: str | os.PathLike) -> str:
    """The header as ``bcftools view -h`` prints it."""
    return _run("view", "-h", str(path))


def sample_names(path: str | os.PathLike) -> list[str]:
    """Sample IDs in header order (the #CHROM line of ``bcftools view -h``)."""
    chrom_line = next(line for line in header_text(path).split("\n") if line.startswith("#CHROM"))
    return chrom_line.split("\t")[9:]


def _declare_contigs(text: str) -> str:
    """Add ``##contig`` lines for contigs that records use but the header does not declare.

    bcftools can read such VCF text but cannot write it back out; the lines
    change no genotype or allele.
    """
    lines = text.split("\n")
    chrom_line = next(i for i, line in enumerate(lines) if line.startswith("#CHROM"))
    declared = set(re.findall(r"^##contig=<ID=([^,>]+)", text, flags=re.M))
    missing: list[str] = []
    for line in lines[chrom_line + 1 :]:
        if line and not line.startswith("#"):
            chrom = line.split("\t", 1)[0]
            if chrom not in declared and chrom not in missing:
                missing.append(chrom)
    extra = [f"##contig=<ID={name}>" for name in missing]
    return "\n".join(lines[:chrom_line] + extra + lines[chrom_line:])


def _vcf_text(path: str | os.PathLike) -> str:
    """The file as VCF text: read directly for (bgzipped) VCF, through ``bcftools view`` for BCF."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head == b"\x1f\x8b":
        with gzip.open(path, "rb") as handle:
            data = handle.read()
        if data.startswith(b"BCF"):
            return _run("view", str(path))
        return data.decode()
    return Path(path).read_text()


def prepare(path: str | os.PathLike, workdir: str | os.PathLike) -> Path:
    """A plain-VCF copy of ``path`` holding only what the oracle reads.

    INFO and every FORMAT field but GT are removed (``bcftools annotate -x``),
    so malformed INFO values (e.g. a wrong INFO/AC count) do not stop
    ``bcftools norm``. Contigs that records use but the header does not
    declare are declared. A file without a GT header line keeps no FORMAT
    field; :func:`sites` then reads every call as missing.
    """
    workdir = Path(workdir)
    fd, name = tempfile.mkstemp(suffix=".vcf", dir=workdir)
    os.close(fd)
    text_path = Path(name)
    text = _vcf_text(path)
    text_path.write_text(_declare_contigs(text))
    has_gt = "##FORMAT=<ID=GT," in text
    out = text_path.with_suffix(".gt.vcf")
    try:
        _run_to("annotate", out, "-x", "INFO,^FORMAT/GT" if has_gt else "INFO,FORMAT", str(text_path))
    except pysam.SamtoolsError:  # e.g. a FORMAT field given twice; read the text as it is
        return text_path
    return out


def sites(path: str | os.PathLike) -> list[Site]:
    """Every record of a VCF/BCF in file order, GT as text."""
    path = str(path)
    n_samples = len(sample_names(path))
    has_gt = "##FORMAT=<ID=GT," in header_text(path)
    fmt = SITE_FORMAT if has_gt else "%CHROM\t%POS\t%ID\t%REF\t%ALT\t%FILTER\n"
    out: list[Site] = []
    for line in _run("query", "-f", fmt, path).split("\n"):
        if not line:
            continue
        cols = line.split("\t")
        gts = tuple(cols[6:]) if has_gt else (".",) * n_samples
        assert len(gts) == n_samples, (path, line)
        out.append(
            Site(
                contig=cols[0],
                pos=int(cols[1]),
                id=cols[2],
                ref=cols[3],
                alts=() if cols[4] == "." else tuple(cols[4].split(",")),
                filters=() if cols[5] == "." else tuple(cols[5].split(";")),
                gts=gts,
            )
        )
    return out


def parse_gt(text: str) -> tuple[tuple[int, int], bool]:
    """A GT text as VCF Zarr stores it: ((allele, allele), phased).

    ``0|1`` -> ((0, 1), True); ``1`` -> ((1, -2), True) (a haploid call counts
    as phased, as htslib); ``.`` -> ((-1, -2), True); ``./.`` -> ((-1, -1), False);
    ``./1`` -> ((-1, 1), False).
    """
    parts = re.split(r"[/|]", text)
    if len(parts) > 2:
        raise ValueError(f"ploidy {len(parts)} GT {text!r}")
    codes = [MISSING_ALLELE if p == "." else int(p) for p in parts]
    if len(codes) == 1:
        return (codes[0], FILL), True
    return (codes[0], codes[1]), "|" in text


def genotype_arrays(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """call_genotype (V, S, 2) int8 and call_genotype_phased (V, S) bool from bcftools query."""
    recs = sites(path)
    n_samples = len(sample_names(path))
    gt = np.empty((len(recs), n_samples, 2), dtype=np.int16)
    phased = np.empty((len(recs), n_samples), dtype=bool)
    for i, site in enumerate(recs):
        for j, text in enumerate(site.gts):
            (a, b), ph = parse_gt(text)
            gt[i, j] = (a, b)
            phased[i, j] = ph
    return gt, phased


def pysam_genotypes(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The same arrays read through pysam.VariantFile (a second reader, for the oracle's self-check)."""
    rows, phases = [], []
    with pysam.VariantFile(str(path)) as vf:
        n_samples = len(vf.header.samples)
        for rec in vf:
            row, ph = [], []
            for sample in rec.samples.values():
                alleles = sample.get("GT") if "GT" in rec.format else (None,)
                alleles = alleles or (None,)
                codes = [MISSING_ALLELE if a is None else a for a in alleles]
                row.append((codes[0], FILL) if len(codes) == 1 else tuple(codes))
                ph.append(bool(sample.phased) or len(codes) == 1)
            rows.append(row)
            phases.append(ph)
    gt = np.array(rows, dtype=np.int16).reshape(len(rows), n_samples, 2)
    return gt, np.array(phases, dtype=bool).reshape(len(rows), n_samples)


def site_quals(path: str | os.PathLike) -> list[float]:
    """QUAL per record as float32 values (NaN for missing), read by pysam (exact, unlike %QUAL text)."""
    with pysam.VariantFile(str(path)) as vf:
        return [math.nan if rec.qual is None else float(np.float32(rec.qual)) for rec in vf]


def header_contigs(path: str | os.PathLike) -> list[tuple[str, int | None]]:
    """(name, length) of every ##contig line, header order."""
    with pysam.VariantFile(str(path)) as vf:
        return [(name, contig.length) for name, contig in vf.header.contigs.items()]


# --------------------------------------------------------------------------- statistics


def split_sites(path: str | os.PathLike) -> list[Site]:
    """Records of ``bcftools norm -m-`` (one per ALT allele) in file order."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare(path, tmp)
        normed = _run_to("norm", Path(tmp) / "split.vcf", "-m-", str(prepared))
        return sites(normed)


def _count(site_index: int, split: Site, allele: int) -> AlleleStats:
    ac = an = het = hom = hemi = missing = 0
    for text in split.gts:
        alleles = re.split(r"[/|]", text)
        assert set(alleles) <= {"0", "1", "."}, f"norm -m- left {text!r}"
        if len(alleles) > 2:
            raise ValueError(f"ploidy {len(alleles)} GT {text!r}")
        called = [a for a in alleles if a != "."]
        copies = called.count("1")
        an += len(called)
        ac += copies
        if len(called) < len(alleles):
            missing += 1
        elif len(alleles) == 1:
            hemi += copies
        else:
            het += copies == 1
            hom += copies == 2
    return AlleleStats(
        site_index, split.contig, split.pos, split.ref, split.alts[0], allele, ac, an, het, hom, hemi, missing
    )


def allele_stats(path: str | os.PathLike, samples: list[str] | None = None) -> list[AlleleStats]:
    """Expected per-allele statistics of every ALT allele, in file order.

    ``samples`` restricts the statistics to those samples
    (``bcftools view -S``, which keeps every ALT allele).
    """
    with tempfile.TemporaryDirectory() as tmp:
        src = str(path)
        if samples is not None:
            listing = Path(tmp) / "samples.txt"
            listing.write_text("".join(f"{s}\n" for s in samples))
            src = str(_run_to("view", Path(tmp) / "subset.vcf", "--no-update", "-S", str(listing), src))
        originals = sites(prepare(src, tmp))
        split = split_sites(src)
    out: list[AlleleStats] = []
    cursor = 0
    for index, site in enumerate(originals):
        if not site.alts:  # ALT "." stays one record with no ALT allele
            assert split[cursor].alts == ()
            assert split[cursor].pos == site.pos
            cursor += 1
            continue
        for k, alt in enumerate(site.alts, start=1):
            rec = split[cursor]
            assert (rec.contig, rec.pos, rec.ref, rec.alts) == (site.contig, site.pos, site.ref, (alt,)), (
                f"norm -m- record {rec} does not match ALT {k} of {site}"
            )
            out.append(_count(index, rec, k))
            cursor += 1
    assert cursor == len(split)
    return out


def recomputed_ac_an(path: str | os.PathLike, samples: list[str]) -> list[tuple[str, int, str, str, int, int]]:
    """(contig, pos, ref, alt, AC, AN) per ALT allele as ``bcftools view -S`` recomputes INFO/AC and INFO/AN.

    A second, independent route to AC/AN (bcftools' own counting on the
    unsplit records). Sites with ALT "." are left out.
    """
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "samples.txt"
        listing.write_text("".join(f"{s}\n" for s in samples))
        prepared = prepare(path, tmp)
        subset = _run_to("view", Path(tmp) / "subset.vcf", "-S", str(listing), str(prepared))
        text = _run("query", "-f", "%CHROM\t%POS\t%REF\t%ALT\t%INFO/AC\t%INFO/AN\n", str(subset))
    out = []
    for line in text.split("\n"):
        if not line:
            continue
        contig, pos, ref, alt, ac, an = line.split("\t")
        if alt == ".":
            continue
        alts = alt.split(",")
        acs = [0] * len(alts) if ac == "." else [int(x) for x in ac.split(",")]
        for a, c in zip(alts, acs, strict=True):
            out.append((contig, int(pos), ref, a, c, 0 if an == "." else int(an)))
    return out
