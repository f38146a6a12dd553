"""Every VCF/BCF that Debian's htslib-test package ships either ingests with the oracle's per-allele
AC/AN, or fails with a GenoqueryError (never another exception).

Files whose outcome is fixed by the contract are listed in EXPECTED with the
reason; the others (odd but readable input such as duplicate FORMAT keys) may
go either way.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pysam
import pytest

import checks
import oracle
from conftest import MISSING_TOOL


def _htslib_test_dir() -> Path | None:
    default = Path("/usr/share/htslib-test")
    if default.is_dir():
        return default
    try:
        listing = subprocess.run(["dpkg", "-L", "htslib-test"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    dirs = [Path(p) for p in listing.split("\n") if p.endswith("/htslib-test")]
    return dirs[0] if dirs else None


ROOT = _htslib_test_dir()
if ROOT is None:
    pytest.skip(f"{MISSING_TOOL}htslib-test (apt-get install htslib-test)", allow_module_level=True)

FILES = sorted(p for p in ROOT.rglob("*") if p.is_file() and p.name.endswith((".vcf", ".vcf.gz", ".bcf")))

# path relative to ROOT -> ("ok" | "error", why)
EXPECTED: dict[str, tuple[str, str]] = {
    "test/longrefs/index.vcf": ("error", "POS 10,009,999,919 does not fit variant_position int32"),
    "test/longrefs/index.expected1.vcf": ("error", "no header: expected tabix output, not a VCF"),
    "test/longrefs/index.expected2.vcf": ("error", "no header: expected tabix output, not a VCF"),
    "test/test-vcf-hdr-in.vcf": ("ok", "GT 0/1 at sites whose ALT is '.': stored as bcftools reads it"),
    "test/noroundtrip-out.vcf": ("error", "GT value '2,4' is not a genotype"),
    "test/tabix/large_chr.vcf": ("ok", "POS 2,147,483,647 is the largest int32, it fits"),
    "test/tabix/vcf_file.vcf": ("error", "4:3258501 has 306 alleles, GT 0/300: beyond call_genotype int8"),
    "test/tabix/vcf_file.bcf": ("error", "4:3258501 has 306 alleles, GT 0/300: beyond call_genotype int8"),
    "test/formatcols.vcf": ("ok", "no GT field: every call missing; a non-ASCII sample name"),
    "test/formatmissing.vcf": ("ok", "FORMAT '.': every call missing"),
    "test/formatmissing-out.vcf": ("ok", "FORMAT '.': every call missing"),
    "test/index.vcf": ("ok", "PL only, no GT: every call missing"),
    "test/vcf_meta_meta.vcf": ("ok", "##META lines, no samples"),
    "test/bcf-sr/merge.noidx.a.vcf": ("ok", "plain small VCF"),
    "test/bcf-sr/merge.noidx.b.vcf": ("ok", "plain small VCF"),
    "test/bcf-sr/merge.noidx.c.vcf": ("ok", "plain small VCF"),
    "test/bcf-sr/merge.noidx.hdr_order.vcf": ("ok", "plain small VCF"),
    "test/bcf-sr/merge.noidx.rec_order.vcf": ("ok", "plain small VCF"),
}

# bcftools view -S exits the process on these (bcf_calc_ac: 'Incorrect allele' for GT 1 at an ALT '.' site)
NO_RECOMPUTE = {"test/test-vcf-hdr-in.vcf"}


def test_files_found():
    assert FILES, f"no *.vcf, *.vcf.gz or *.bcf under {ROOT}"


def _has_gt(path: Path) -> bool:
    try:
        return "##FORMAT=<ID=GT," in oracle.header_text(path)
    except Exception:
        return False


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_ingests_or_fails_cleanly(gq, tmp_path, store_path, path):
    key = str(path.relative_to(ROOT))
    try:
        store = gq.ingest(store_path, [path])
    except gq.GenoqueryError as err:
        outcome, message = "error", str(err)
        assert str(path) in message, f"the error does not name the file: {message}"
        assert not store_path.exists()
    else:
        outcome = "ok"
    want, why = EXPECTED.get(key, (outcome, "either outcome is acceptable"))
    assert outcome == want, f"{key}: expected {want} ({why}), got {outcome}"
    if outcome == "error":
        return
    expected = oracle.allele_stats(path)
    got = [
        (checks.row_of(r), r["contig"], r["pos"], r["ref"], r["alt"], r["allele"], r["ac"], r["an"])
        for r in store.variants().to_pylist()
    ]
    assert got == [(e.site, e.contig, e.pos, e.ref, e.alt, e.allele, e.ac, e.an) for e in expected]
    if _has_gt(path):
        samples = oracle.sample_names(path)
        try:  # bcftools view -S recomputes INFO/AC,AN: a second route to the same numbers
            recomputed = oracle.recomputed_ac_an(path, samples) if samples and key not in NO_RECOMPUTE else None
        except pysam.SamtoolsError:  # bcftools refuses to subset some odd headers (noroundtrip.vcf)
            recomputed = None
        if recomputed is not None:
            assert [g[1:5] + g[6:] for g in got] == recomputed
        counts = [(r["n_het"], r["n_hom_alt"], r["n_hemi"], r["n_missing"]) for r in store.variants().to_pylist()]
        assert counts == [(e.n_het, e.n_hom_alt, e.n_hemi, e.n_missing) for e in expected]
        gt, phased = oracle.genotype_arrays(oracle.prepare(path, tmp_path))
        group = checks.open_genotypes(store_path)
        assert (group["call_genotype"][...] == gt).all()
        assert (group["call_genotype_phased"][...] == phased).all()
