"""Store.lookup and ``genoquery query`` against bcftools (pysam.bcftools) on the fixture cohort and a small VCF.

Which variants a key, rsID, region, gene or filter selects is computed by bcftools on
``bcftools norm -m-`` output (``query -r ... --regions-overlap pos``, ``-i 'ID=="rs.."'``,
``-i 'FILTER=="PASS"'``, ``-i 'TYPE=...'``); statistics by tests/oracle.py; gene coordinates
from the GTF read with pandas.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pysam.bcftools as bcftools
import pytest

import checks
import genoquery
import oracle
from genoquery.cli import main
from genoquery.query.lookup import VariantLookup, _filter_sql

VCFS, PERSONS, GTF = list(checks.FIXTURE_VCFS), checks.FIXTURE_PERSONS, checks.FIXTURE_GTF
KEY_FORMAT = "%CHROM-%POS-%REF-%ALT\n"

SMALL_VCF = """\
##fileformat=VCFv4.3
##contig=<ID=20,length=100000>
##contig=<ID=MT,length=16569>
##FILTER=<ID=PASS,Description="All filters passed">
##FILTER=<ID=LowQual,Description="Low quality">
##ALT=<ID=DEL,Description="Deletion">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\ts3\ts4
20\t100\trs1;rs2\tA\tC\t50\tPASS\t.\tGT\t0/1\t0/0\t1/1\t0/0
20\t200\trs3\tA\tAT,C\t50\tPASS\t.\tGT\t0/1\t0/2\t1/2\t0/0
20\t300\t.\tATG\tA\t50\tLowQual\t.\tGT\t0/1\t0/0\t0/0\t0/0
20\t400\trs2\tAC\tGT\t50\tPASS\t.\tGT\t0/1\t0/0\t0/0\t./.
20\t500\trs5\tG\t<DEL>\t50\tPASS\t.\tGT\t0/1\t0/0\t0/0\t0/0
20\t600\t.\tT\tC,*\t50\t.\t.\tGT\t0/1\t0/2\t0/0\t0/0
20\t700\trs8\tC\tG\t50\tPASS\t.\tGT\t./.\t./.\t./.\t./.
MT\t50\trs7\tG\tA\t50\tPASS\t.\tGT\t1\t1\t0\t0
"""


# --------------------------------------------------------------------------- oracle


class Split:
    """A VCF after ``bcftools norm -m-``, indexed, for ``bcftools query`` selections."""

    def __init__(self, vcf: Path, workdir: Path) -> None:
        self.path = workdir / (vcf.name.split(".vcf")[0] + ".split.vcf.gz")
        bcftools.norm("-m-", "-Oz", "-o", str(self.path), str(vcf), catch_stdout=False)
        bcftools.index("-t", "-f", str(self.path), catch_stdout=False)

    def keys(self, *args: str) -> list[str]:
        return [k for k in bcftools.query("-f", KEY_FORMAT, *args, str(self.path)).split("\n") if k]

    def in_region(self, region: str, *args: str) -> list[str]:
        return self.keys("-r", region, "--regions-overlap", "pos", *args)


def keys(table) -> list[str]:
    return table.column("variant_key").to_pylist()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lookup")


@pytest.fixture(scope="module")
def cohort(work):
    """The fixture cohort's store (with the fixture genes) and its split VCFs."""
    store = checks.ingest_fixture(work / "s.gq")
    yield store, {v.name.split(".")[1]: Split(v, work) for v in VCFS}
    store.close()


@pytest.fixture(scope="module")
def store(cohort):
    return cohort[0]


@pytest.fixture(scope="module")
def split(cohort):
    return cohort[1]


@pytest.fixture(scope="module")
def all_keys(split) -> list[str]:
    return split["chr20"].keys() + split["chrX"].keys()


@pytest.fixture(scope="module")
def stats() -> dict[str, oracle.AlleleStats]:
    return {f"{e.contig}-{e.pos}-{e.ref}-{e.alt}": e for vcf in VCFS for e in oracle.allele_stats(vcf)}


@pytest.fixture(scope="module")
def small(work):
    """A hand-written VCF with contigs 20 and MT (no chr), indels, MNP, symbolic and * alleles, ID lists."""

    vcf = work / "small.vcf"
    vcf.write_text(SMALL_VCF)
    store = genoquery.ingest(work / "small.gq", [vcf], progress=False)
    yield store, Split(vcf, work)
    store.close()


# --------------------------------------------------------------------------- keys and rsIDs


def test_every_key_finds_its_variant_with_oracle_statistics(store, all_keys, stats):
    assert len(all_keys) == len(stats) == store.info["variants"]
    for key in all_keys:
        (row,) = store.lookup(key).to_pylist()
        e = stats[key]
        assert (
            row["variant_key"],
            row["ac"],
            row["an"],
            row["n_het"],
            row["n_hom_alt"],
            row["n_hemi"],
            row["n_missing"],
        ) == (key, e.ac, e.an, e.n_het, e.n_hom_alt, e.n_hemi, e.n_missing)
        assert math.isclose(row["af"], e.ac / e.an)


@pytest.mark.parametrize(
    "spell",
    [
        lambda c, p, r, a: f"{c}-{p}-{r}-{a}",
        lambda c, p, r, a: f"{c.removeprefix('chr')}-{p}-{r}-{a}",
        lambda c, p, r, a: f"{c}:{p}:{r}:{a}",
        lambda c, p, r, a: f"{c}_{p}_{r}_{a}",
        lambda c, p, r, a: f"{c.removeprefix('chr')}:{p}:{r.lower()}:{a.lower()}",
    ],
    ids=["dash", "no-chr", "colon", "underscore", "lowercase"],
)
def test_key_spellings(store, all_keys, spell):
    for key in [*all_keys[::25], "chr20-18222-G-A", "chrX-2790769-G-C"]:
        contig, pos, ref, alt = key.split("-")
        assert keys(store.lookup(spell(contig, pos, ref, alt))) == [key]


def test_table_has_the_columns_of_variants(store, all_keys):
    assert store.lookup(all_keys[0]).schema == store.variants().schema
    assert store.lookup(all_keys[0], by="ancestry").schema == store.variants(by="ancestry").schema
    assert store.lookup(region="chr20:1-10").schema == store.variants().schema
    assert store.lookup(gene="GQC3", by="sex_at_birth").schema == store.variants(by="sex_at_birth").schema


def test_rsids_match_bcftools(store, split):
    ids = sorted({i for sp in split.values() for i in bcftools.query("-f", "%ID\n", str(sp.path)).split()} - {"."})
    assert len(ids) > 100
    for rsid in ids[::3]:
        want = split["chr20"].keys("-i", f'ID=="{rsid}"') + split["chrX"].keys("-i", f'ID=="{rsid}"')
        assert want
        assert keys(store.lookup(rsid)) == want
        assert keys(store.lookup(rsid.upper())) == want


def test_by_group_matches_oracle_on_that_groups_samples(store):
    persons = pd.read_csv(PERSONS, sep="\t")
    key, vcf = "chr20-18222-G-A", VCFS[0]  # allele 2 of the multi-allelic chr20 site
    table = store.lookup(key, by="ancestry").to_pylist()
    assert [r["ancestry"] for r in table] == sorted(persons["ancestry"].unique())
    for row in table:
        members = persons.loc[persons["ancestry"] == row["ancestry"], "sample_id"].tolist()
        (e,) = [e for e in oracle.allele_stats(vcf, members) if (e.pos, e.alt) == (18222, "A")]
        assert (row["ac"], row["an"], row["n_het"], row["n_hom_alt"], row["n_missing"]) == (
            e.ac,
            e.an,
            e.n_het,
            e.n_hom_alt,
            e.n_missing,
        )
    by_sex = store.lookup("chrX-2790769-G-C", by="sex_at_birth").to_pylist()
    assert [r["sex_at_birth"] for r in by_sex] == ["Female", "Male"]
    assert sum(r["ac"] for r in by_sex) == store.lookup("chrX-2790769-G-C").column("ac")[0].as_py()


def test_small_vcf_keys_ids_and_contig_names(small):
    store, split = small
    assert keys(store.lookup("chr20-400-AC-GT")) == ["20-400-AC-GT"]
    assert keys(store.lookup("chrM-50-G-A")) == ["MT-50-G-A"] == keys(store.lookup("MT:50:G:A"))
    assert keys(store.lookup("20:500:G:<DEL>")) == ["20-500-G-<DEL>"]
    assert keys(store.lookup("20_600_T_*")) == ["20-600-T-*"]
    for rsid in ("rs1", "rs2", "rs3", "rs5", "rs7", "rs8"):
        assert keys(store.lookup(rsid)) == split.keys("-i", f'ID=="{rsid}"'), rsid
    assert keys(store.lookup("rs2")) == ["20-100-A-C", "20-400-AC-GT"]  # in "rs1;rs2" and alone


# --------------------------------------------------------------------------- regions, genes, filters


@pytest.mark.parametrize(
    "region",
    [
        "chr20",
        "chr20:1-651",
        "chr20:651-651",
        "chr20:652-853",
        "20:10,000-20,000",
        "chrX:2785100-2795199",
        "X:2790769",
        "chrX:2,830,739-2,900,000",
    ],
)
def test_regions_match_bcftools(store, split, region):
    contig = "chrX" if region.lstrip("chr").startswith("X") else "chr20"
    oracle_region = contig + region[region.index(":") :].replace(",", "") if ":" in region else contig
    assert keys(store.lookup(region=region)) == split[contig].in_region(oracle_region)


def test_gene_lookup_matches_bcftools_over_the_gtf_coordinates(store, split):
    gtf = pd.read_csv(
        GTF,
        sep="\t",
        comment="#",
        header=None,
        names=["contig", "source", "feature", "start", "end", "score", "strand", "frame", "attrs"],
    )
    genes = gtf[gtf["feature"] == "gene"]
    checked = 0
    for gene in genes.itertuples():
        name = gene.attrs.split('gene_name "')[1].split('"')[0]
        gene_id = gene.attrs.split('gene_id "')[1].split('"')[0]
        if gene.contig not in split:
            continue
        want = split[gene.contig].in_region(f"{gene.contig}:{gene.start}-{gene.end}")
        assert keys(store.lookup(gene=name)) == want, name
        assert keys(store.lookup(gene=gene_id)) == want
        assert keys(store.lookup(gene=gene_id.split(".")[0])) == want  # ID without version
        assert keys(store.lookup(gene=name.lower())) == want
        checked += 1
    assert checked == 6
    assert store.lookup(gene="GQC3").num_rows == 0  # a valid gene without variants: empty, no error


@pytest.mark.parametrize(("af_min", "af_max"), [(None, 0.01), (0.05, None), (0.1, 0.5), (0.0, 1.0)])
def test_af_filters_match_oracle(store, stats, af_min, af_max):
    lo, hi = af_min if af_min is not None else -1, af_max if af_max is not None else 2
    want = [k for k, e in stats.items() if e.an and lo <= e.ac / e.an <= hi]
    got = keys(store.lookup(af_min=af_min, af_max=af_max))
    assert sorted(got) == sorted(want)
    assert got


def test_af_bounds_are_inclusive(store, all_keys):
    row = store.lookup(all_keys[40]).to_pylist()[0]
    assert all_keys[40] in keys(store.lookup(region="chr20", af_min=row["af"], af_max=row["af"]))


def test_pass_only_and_combined_filters_match_bcftools(store, split, stats):
    for contig, s in split.items():
        assert keys(store.lookup(region=contig, pass_only=True)) == s.keys("-i", 'FILTER=="PASS"')
        rare_pass = [k for k in s.keys("-i", 'FILTER=="PASS" && TYPE="snp"') if stats[k].ac / stats[k].an <= 0.02]
        assert keys(store.lookup(region=contig, pass_only=True, variant_type="snv", af_max=0.02)) == rare_pass
    not_pass = split["chr20"].keys("-e", 'FILTER=="PASS"')
    assert not_pass
    assert all(store.lookup(k, pass_only=True).num_rows == 0 for k in not_pass)


def test_variant_types_and_filters_on_small_vcf(small):
    store, split = small
    assert keys(store.lookup(variant_type="snv")) == split.keys("-i", 'TYPE="snp"')
    assert keys(store.lookup(variant_type="indel")) == split.keys("-i", 'TYPE="indel"')
    assert keys(store.lookup(variant_type="other")) == split.keys("-e", 'TYPE="snp" || TYPE="indel"')
    assert keys(store.lookup(pass_only=True)) == split.keys("-i", 'FILTER=="PASS"')
    assert keys(store.lookup(region="20:301-350")) == split.in_region("20:301-350") == []  # POS, not overlap
    assert "20-700-C-G" not in keys(store.lookup(af_min=0.0))  # AN = 0: no AF, never in an AF range
    assert "20-700-C-G" in keys(store.lookup())
    assert store.lookup("rs2", variant_type="indel").num_rows == 0  # exists, filtered out: empty, no error


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"variant": "chr20-651-C-G"}, "QueryError", "at chr20:651 it holds chr20-651-C-T"),
        ({"variant": "chr20-652-C-G"}, "QueryError", "no variant at chr20:652; nearest: chr20-651-C-T"),
        ({"variant": "chr21-651-C-T"}, "QueryError", "contig 'chr21' is not in the store.*chr20"),
        ({"variant": "chr20-651-C"}, "QueryError", "malformed variant key 'chr20-651-C'"),
        ({"variant": "chr20:651"}, "QueryError", "malformed variant key"),
        ({"variant": "rs1"}, "QueryError", "rsID rs1 is not in this store"),
        ({"variant": "BRCA2"}, "QueryError", "neither a variant key .* nor an rsID"),
        ({"region": "chr7:1-100"}, "RegionError", "contig 'chr7' is not in the store.*chr20, chrX"),
        ({"region": "chr20:100-1"}, "RegionError", "bad region"),
        ({"region": "chr20:a-b"}, "RegionError", "bad region"),
        ({"gene": "GQA7"}, "QueryError", "gene 'GQA7' is not among the 7 imported genes; did you mean GQA1"),
        ({"gene": "GQZ9"}, "QueryError", "GQZ9' lies on chr1:10000-20000, a contig this store does not hold"),
        ({"region": "chr20", "af_min": 1.5}, "QueryError", "af_min must be a number between 0 and 1"),
        ({"region": "chr20", "af_min": 0.5, "af_max": 0.1}, "QueryError", "af_min .* is larger than af_max"),
        ({"region": "chr20", "variant_type": "snp"}, "QueryError", "unknown variant type 'snp'"),
        ({"region": "chr20", "by": "center"}, "QueryError", "no statistics grouped by 'center'"),
        ({"variant": "rs97776802", "gene": "GQA1"}, "QueryError", "not variant and gene"),
    ],
)
def test_errors_name_what_was_asked_and_what_exists(store, kwargs, error, message):

    with pytest.raises(getattr(genoquery, error), match=message):
        store.lookup(**kwargs)


def test_gene_lookup_without_genes(small):

    with pytest.raises(genoquery.QueryError, match="no genes in this store; import a GTF or BED"):
        small[0].lookup(gene="GQA1")


# --------------------------------------------------------------------------- command line


def test_cli_query_outputs(store, split, capsys, tmp_path):

    path = str(store.path)
    assert main(["query", path, "variant", "20-651-C-T"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[:4] == ["contig", "pos", "ref", "alt"]
    assert lines[1].startswith("chr20\t651\tC\tT")
    assert main(["query", path, "variant", "rs97776802", "--by", "ancestry", "--format", "json"]) == 0
    assert '"ancestry": "AFR"' in capsys.readouterr().out
    assert (
        main(
            [
                "query",
                path,
                "region",
                "chrX:2785100-2795199",
                "--pass-only",
                "--type",
                "snv",
                "--af-max",
                "0.02",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == len(
        keys(store.lookup(region="chrX:2785100-2795199", pass_only=True, variant_type="snv", af_max=0.02))
    )
    out = tmp_path / "gene.parquet"
    assert main(["query", path, "gene", "GQB2", "--format", "parquet", "--output", str(out)]) == 0
    assert pd.read_parquet(out)["variant_key"].tolist() == split["chr20"].in_region("chr20:15000-19183")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["variant", "chr20-1-A"], "malformed variant key"),
        (["variant", "rs1"], "rsID rs1 is not in this store"),
        (["region", "chr7"], "contig 'chr7' is not in the store"),
        (["gene", "NOPE"], "gene 'NOPE' is not among"),
        (["region", "chr20", "--af-min", "3"], "af_min must be"),
    ],
)
def test_cli_errors_one_line_exit_2(store, capsys, argv, message):

    assert main(["query", str(store.path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
    assert err.startswith("genoquery: error:")


def test_cli_process_exit_codes(store):
    run = [sys.executable, "-m", "genoquery", "query", str(store.path)]
    ok = subprocess.run([*run, "variant", "chrX-2790769-G-C"], capture_output=True, text=True)
    assert ok.returncode == 0
    assert "chrX-2790769-G-C" in ok.stdout
    bad = subprocess.run([*run, "variant", "chrX-2790769-G-T"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_cli_usage_errors_exit_2(store, capsys):

    for argv in (["region", "chr20", "--type", "snp"], ["region", "chr20", "--af-min", "x"], ["variant"]):
        with pytest.raises(SystemExit) as stop:
            main(["query", str(store.path), *argv])
        assert stop.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


# --------------------------------------------------------------------------- speed by design


@pytest.mark.parametrize(("indexed", "value"), [("variant_key = $key", "chr20-651-C-T"), ("id = $key", "rs97776802")])
@pytest.mark.parametrize("filters", [{}, {"af_min": 0.1, "pass_only": True, "variant_type": "snv"}])
@pytest.mark.parametrize("by", [None, "ancestry"])
def test_point_lookups_scan_the_art_index(store, indexed, value, filters, by):
    """Key and rsID lookups read variants through the ART index, with or without filters and groups."""

    terms, params = _filter_sql(
        filters.get("af_min"), None, filters.get("pass_only", False), filters.get("variant_type")
    )
    params["key"] = value
    if by:
        params["grouping"] = by
    sql = VariantLookup._point_sql(indexed, terms, by)
    plan = store._con.execute("EXPLAIN ANALYZE " + sql, params).fetchall()[0][1]
    scans = [line for line in plan.splitlines() if "Type:" in line and "Scan" in line]
    variants_scan = [line for line in scans if "Index Scan" in line]
    assert variants_scan, plan
    assert len(store._con.execute(sql, params).fetchall()) >= 1
