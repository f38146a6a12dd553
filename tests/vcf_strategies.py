"""Hypothesis strategies for valid VCF text.

A document has 0-12 samples, 1-3 contigs (declared in the header, records in
header order, positions sorted, repeated positions allowed), sites with 1-12
alleles (ALT ``.`` included), haploid/diploid/missing/partial/phased calls with
single- and multi-digit allele indexes, and optionally a DP field after GT.
Some records are "simple" (every call diploid, one digit, GT only), the shape
a fast text decoder handles; others mix everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

CONTIG_NAMES = ["chr1", "chr2", "chrX", "1", "22", "scaffold_7"]
REFS = ["A", "C", "G", "T", "N", "AC", "GTT", "TAAAC"]
ALT_POOL = ["A", "C", "G", "T", "AT", "CG", "GA", "TTT", "ACGT", "CC", "AAA", "GGC", "<DEL>", "*", "<INS>", "CA", "TG"]
FILTERS = ["q10", "lowDP", "LowQual"]
SAMPLE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-."


@dataclass(frozen=True)
class VcfDoc:
    text: str
    samples: tuple[str, ...]
    contigs: tuple[str, ...]  # header order
    n_records: int


def _call(draw, n_alleles: int, simple: bool) -> str:
    if simple:
        top = min(n_alleles, 10)
        allele = st.one_of(st.just("."), st.integers(0, top - 1).map(str))
        return f"{draw(allele)}{draw(st.sampled_from('/|'))}{draw(allele)}"
    allele = st.one_of(st.just("."), st.integers(0, n_alleles - 1).map(str))
    ploidy = draw(st.sampled_from([1, 2, 2]))
    if ploidy == 1:
        return draw(allele)
    return f"{draw(allele)}{draw(st.sampled_from('/|'))}{draw(allele)}"


def _sample_column(draw, call: str, with_dp: bool) -> str:
    if not with_dp:
        return call
    dp = draw(st.one_of(st.none(), st.just("."), st.integers(0, 999).map(str)))
    return call if dp is None else f"{call}:{dp}"  # trailing FORMAT fields may be dropped


@st.composite
def records_for(draw, contig: str, length: int, n_samples: int, has_dp: bool, filters: list[str]) -> list[str]:
    positions = sorted(draw(st.lists(st.integers(1, length), min_size=0, max_size=8)))
    lines = []
    for pos in positions:
        ref = draw(st.sampled_from(REFS))
        n_alt = draw(st.one_of(st.integers(0, 3), st.integers(4, 11)))
        pool = [a for a in ALT_POOL if a != ref]
        alts = draw(st.lists(st.sampled_from(pool), min_size=n_alt, max_size=n_alt, unique=True))
        n_alleles = 1 + len(alts)
        vid = draw(st.one_of(st.just("."), st.integers(1, 10**8).map(lambda n: f"rs{n}")))
        qual = draw(
            st.one_of(st.just("."), st.integers(0, 10000).map(str), st.sampled_from(["12.5", "0.001", "99.99", "1e3"]))
        )
        filt = draw(
            st.one_of(
                st.just("."),
                st.just("PASS"),
                st.lists(st.sampled_from(filters), min_size=1, max_size=3, unique=True).map(";".join)
                if filters
                else st.just("PASS"),
            )
        )
        cols = [contig, str(pos), vid, ref, ",".join(alts) or ".", qual, filt, "."]
        if n_samples:
            simple = draw(st.booleans())
            with_dp = has_dp and not simple and draw(st.booleans())
            cols.append("GT:DP" if with_dp else "GT")
            for _ in range(n_samples):
                cols.append(_sample_column(draw, _call(draw, n_alleles, simple), with_dp))
        lines.append("\t".join(cols))
    return lines


@st.composite
def vcf_documents(draw, max_samples: int = 12, min_samples: int = 0) -> VcfDoc:
    name = st.text(SAMPLE_ALPHABET, min_size=1, max_size=8).filter(lambda s: s.strip(".") != "")
    samples = draw(st.lists(name, min_size=min_samples, max_size=max_samples, unique=True))
    contigs = draw(st.lists(st.sampled_from(CONTIG_NAMES), min_size=1, max_size=3, unique=True))
    lengths = {c: draw(st.integers(10, 2_000_000_000)) for c in contigs}
    has_dp = draw(st.booleans())
    filters = draw(st.lists(st.sampled_from(FILTERS), unique=True, max_size=3))
    header = ["##fileformat=VCFv4.2", '##FILTER=<ID=PASS,Description="All filters passed">']
    header += [f'##FILTER=<ID={f},Description="{f}">' for f in filters]
    header += [f"##contig=<ID={c},length={lengths[c]}>" for c in contigs]
    header.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    if has_dp:
        header.append('##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">')
    columns = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    if samples:
        columns += ["FORMAT", *samples]
    header.append("\t".join(columns))
    body: list[str] = []
    for contig in contigs:
        body += draw(records_for(contig, min(lengths[contig], 5000), len(samples), has_dp, filters))
    text = "\n".join(header + body) + "\n"
    return VcfDoc(text=text, samples=tuple(samples), contigs=tuple(contigs), n_records=len(body))
