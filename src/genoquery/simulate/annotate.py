"""VCF header and the fixed columns of records (ID, QUAL, FILTER, INFO).

Site annotations are properties of the site, shared by the joint callset and
every center file that contains the site: an rsID (unique in the cohort)
on 75% of sites with MAF >= 1% and 35% of rarer ones, as dbSNP favours
common variants (about 40% of sites overall, more in small cohorts);
QUAL grows with the allele count; FILTER is ``LowQual`` when QUAL < 30,
``ExcessHet`` on a random 2% of sites, both (``LowQual;ExcessHet``) or
``PASS``; QUAL is ``.`` on 1% of sites. INFO carries ``AC`` (per ALT) and
``AN`` over the file's own samples and called alleles.
"""

from __future__ import annotations

import numpy as np

from genoquery.simulate.genomes import CONTIGS

FILTERS = {
    "PASS": "All filters passed",
    "LowQual": "Low quality (QUAL < 30)",
    "ExcessHet": "Site has excess heterozygosity (simulated flag)",
}
_RS_PRIME = 1_000_000_007
_RS_MULT = 48_271_117


def vcf_header(sample_ids: list[str] | np.ndarray, parameters: dict[str, object]) -> bytes:
    """Header text (meta lines and #CHROM line) for a file with these samples."""
    lines = ["##fileformat=VCFv4.2"]
    lines += [f'##FILTER=<ID={k},Description="{v}">' for k, v in FILTERS.items()]
    lines.append(
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count in genotypes, '
        'for each ALT allele, in the same order as listed">'
    )
    lines.append('##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles in called genotypes">')
    lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    lines += [f"##contig=<ID={c.name},length={c.length},assembly=GRCh38>" for c in CONTIGS]
    params = ",".join(f"{k}={v}" for k, v in parameters.items())
    lines.append(f"##source=genoquery.simulate ({params}); REF bases are simulated, not GRCh38")
    cols = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *sample_ids]
    lines.append("\t".join(cols))
    return ("\n".join(lines) + "\n").encode()


class SiteAnnotator:
    """Draws ID, QUAL and FILTER of successive sites; numbering continues across contigs."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.site_counter = 0

    def annotate(self, alt_count: list[np.ndarray], n_haps: int) -> tuple[list[str], list[str], list[str]]:
        """(ID, QUAL, FILTER) text of each site; ``alt_count``: true ALT copies among ``n_haps``."""
        n = len(alt_count)
        rng = self.rng
        ac = np.array([int(a.sum()) for a in alt_count], dtype=np.float64)
        maf = np.minimum(ac, np.maximum(n_haps - ac, 0)) / max(n_haps, 1)
        p_rs = np.where(maf >= 0.01, 0.75, 0.35)
        has_rs = rng.random(n) < p_rs
        index = self.site_counter + np.arange(n, dtype=np.int64)
        self.site_counter += n
        rs = (index * _RS_MULT + 1234567) % _RS_PRIME + 1
        ids = [f"rs{x}" if h else "." for x, h in zip(rs.tolist(), has_rs.tolist(), strict=True)]
        qual = 10 * np.minimum(ac, 1e5) ** 0.9 + rng.gamma(3.0, 15.0, size=n)
        qual_missing = rng.random(n) < 0.01
        excess_het = rng.random(n) < 0.02
        quals, filters = [], []
        for q, qm, eh in zip(qual.tolist(), qual_missing.tolist(), excess_het.tolist(), strict=True):
            quals.append("." if qm else f"{q:.2f}")
            flags = (["LowQual"] if (not qm and q < 30) else []) + (["ExcessHet"] if eh else [])
            filters.append(";".join(flags) if flags else "PASS")
        return ids, quals, filters


def record_prefixes(
    contig: str,
    pos: list[int],
    ids: list[str],
    refs: list[str],
    alts: list[list[str]],
    quals: list[str],
    filters: list[str],
    ac: np.ndarray,
    an: np.ndarray,
    rows: np.ndarray,
) -> list[bytes]:
    """CHROM..FORMAT columns plus the tab before the first sample, for the given rows."""
    out = []
    ac_l, an_l = ac.tolist(), an.tolist()
    for r in rows.tolist():
        n_alt = len(alts[r])
        ac_txt = ",".join(str(x) for x in ac_l[r][:n_alt])
        out.append(
            f"{contig}\t{pos[r]}\t{ids[r]}\t{refs[r]}\t{','.join(alts[r])}\t{quals[r]}\t"
            f"{filters[r]}\tAC={ac_txt};AN={an_l[r]}\tGT\t".encode()
        )
    return out
