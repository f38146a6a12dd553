"""Tests of the cohort simulator (genoquery.simulate).

Files are read back with independent readers: htslib through pysam.VariantFile,
pysam.bcftools (view/query/index) and pysam.tabix_index; genotypes are also
checked against the msprime tree sequence they came from.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pysam.bcftools
import pytest

import genoquery.simulate.cohort as driver
from genoquery.bgzf import EOF_BLOCK
from genoquery.errors import GenoqueryError
from genoquery.simulate import CohortFiles, simulate_cohort

N_SAMPLES, N_CENTERS, LENGTH, SEED = 400, 3, 250_000, 7
POPULATIONS = {"AFR", "EUR", "EAS", "AMR"}
CONTIG_LENGTH = {"chr20": 64_444_167, "chrX": 156_040_895}
PAR1_END = 2_781_479


# --------------------------------------------------------------------------- helpers


def query(path: Path, fmt: str, *args: str) -> list[list[str]]:
    """bcftools query output as rows of tab-separated fields (trailing tab removed)."""
    out = pysam.bcftools.query("-f", fmt, *args, str(path))
    return [line.rstrip("\t").split("\t") for line in out.splitlines()]


def samples_of(path: Path) -> list[str]:
    with pysam.VariantFile(str(path)) as vf:
        return list(vf.header.samples)


class Calls:
    """Records and GT strings of a VCF, read with bcftools query."""

    def __init__(self, path: Path, *args: str) -> None:
        rows = query(path, "%CHROM\t%POS\t%REF\t%ALT\t%ID\t%QUAL\t%FILTER\t%INFO/AC\t%INFO/AN[\t%GT]\n", *args)
        self.site = [(r[0], int(r[1]), r[2], r[3]) for r in rows]
        self.id = [r[4] for r in rows]
        self.qual = [r[5] for r in rows]
        self.filter = [r[6] for r in rows]
        self.ac = [r[7] for r in rows]
        self.an = [int(r[8]) for r in rows]
        self.gt = np.array([r[9:] for r in rows], dtype=object)
        self.index = {s: i for i, s in enumerate(self.site)}
        self.samples = samples_of(path)


def dosage(gts: np.ndarray) -> np.ndarray:
    """ALT copies per call (any ALT), NaN when an allele is missing; haploid calls count once."""
    out = np.full(gts.shape, np.nan)
    for idx, g in np.ndenumerate(gts):
        alleles = re.split(r"[|/]", g)
        if "." not in alleles:
            out[idx] = sum(a != "0" for a in alleles)
    return out


def read_tbi(path: str) -> list[tuple[dict[int, list[tuple[int, int]]], tuple[int, ...]]]:
    """Parsed content of a .tbi: per contig, bins (sorted) and the linear index."""
    data = gzip.open(path).read()
    assert data[:4] == b"TBI\x01"
    n_ref, *_conf, l_nm = struct.unpack_from("<8i", data, 4)
    off = 36 + l_nm
    out = []
    for _ in range(n_ref):
        (n_bin,) = struct.unpack_from("<i", data, off)
        off += 4
        bins = {}
        for _ in range(n_bin):
            b, n_chunk = struct.unpack_from("<Ii", data, off)
            off += 8
            bins[b] = [struct.unpack_from("<QQ", data, off + 16 * j) for j in range(n_chunk)]
            off += 16 * n_chunk
        (n_intv,) = struct.unpack_from("<i", data, off)
        off += 4
        linear = struct.unpack_from(f"<{n_intv}Q", data, off)
        off += 8 * n_intv
        out.append((dict(sorted(bins.items())), linear))
    return out


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> CohortFiles:
    return simulate_cohort(
        tmp_path_factory.mktemp("cohort"), n_samples=N_SAMPLES, n_centers=N_CENTERS, sequence_length=LENGTH, seed=SEED
    )


@pytest.fixture(scope="module")
def truth(cohort: CohortFiles) -> dict:
    return json.loads(cohort.truth.read_text())


@pytest.fixture(scope="module")
def persons(cohort: CohortFiles) -> pd.DataFrame:
    return pd.read_csv(cohort.persons, sep="\t")


@pytest.fixture(scope="module")
def joint(cohort: CohortFiles) -> dict[str, Calls]:
    return {p.name.split(".")[1]: Calls(p) for p in cohort.joint_vcfs}


@pytest.fixture(scope="module")
def all_vcfs(cohort: CohortFiles) -> list[Path]:
    return [*cohort.center_vcfs, *cohort.joint_vcfs]


# --------------------------------------------------------------------------- files and formats


def test_files_written(cohort: CohortFiles) -> None:
    names = sorted(p.name for p in cohort.out_dir.iterdir())
    expected = [f"center{k}.vcf.gz" for k in range(1, N_CENTERS + 1)] + ["cohort.chr20.vcf.gz", "cohort.chrX.vcf.gz"]
    expected += [n + ".tbi" for n in expected] + ["conditions.tsv", "persons.tsv", "truth.json"]
    assert names == sorted(expected)
    assert [p.name for p in cohort.joint_vcfs] == ["cohort.chr20.vcf.gz", "cohort.chrX.vcf.gz"]
    assert "center1.vcf.gz" in str(cohort)


def test_bcftools_and_htslib_accept_every_file(all_vcfs: list[Path], truth: dict, capfd) -> None:
    for path in all_vcfs:
        n_view = pysam.bcftools.view("-H", str(path)).count("\n")
        n_index = int(pysam.bcftools.index("-n", str(path)))
        assert n_view == n_index == truth["n_records"][path.name] > 0
        with pysam.VariantFile(str(path)) as vf:
            assert sum(1 for _ in vf) == n_view
        assert path.read_bytes().endswith(EOF_BLOCK)
    err = capfd.readouterr().err
    assert "[W::" not in err, err
    assert "[E::" not in err, err


def test_header_declares_everything_used(all_vcfs: list[Path]) -> None:
    for path in all_vcfs:
        with pysam.VariantFile(str(path)) as vf:
            header = vf.header
            assert {c: header.contigs[c].length for c in header.contigs} == CONTIG_LENGTH
            assert set(header.filters) == {"PASS", "LowQual", "ExcessHet"}
            assert list(header.formats) == ["GT"]
            assert set(header.info) == {"AC", "AN"}
            used = set()
            for rec in vf:
                used |= set(rec.filter.keys())
            assert used <= set(header.filters)


def test_index_equals_htslib_index(cohort: CohortFiles, tmp_path: Path) -> None:
    for path in [cohort.center_vcfs[0], *cohort.joint_vcfs]:
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        pysam.tabix_index(str(copy), preset="vcf", force=True)
        assert read_tbi(str(path) + ".tbi") == read_tbi(str(copy) + ".tbi")


def test_region_queries_use_the_index(cohort: CohortFiles, joint: dict[str, Calls]) -> None:
    path = cohort.center_vcfs[1]
    everything = [tuple(r) for r in query(path, "%CHROM\t%POS\n")]
    rng = np.random.default_rng(0)
    for contig, lo, hi in [("chr20", 1, LENGTH), ("chrX", PAR1_END + 1, PAR1_END + LENGTH)]:
        for _ in range(20):
            a = int(rng.integers(lo, hi))
            b = a + int(rng.choice([0, 50, 5_000, 40_000]))
            got = [tuple(r) for r in query(path, "%CHROM\t%POS\n", "-r", f"{contig}:{a}-{b}")]
            assert got == [r for r in everything if r[0] == contig and a <= int(r[1]) <= b]
    with pysam.VariantFile(str(cohort.joint_vcfs[0])) as vf:
        pos = [rec.pos for rec in vf.fetch("chr20", 10_000, 20_000)]
    assert pos == [s[1] for s in joint["chr20"].site if 10_000 < s[1] <= 20_000]


def test_positions_one_based_and_strictly_increasing(cohort: CohortFiles) -> None:
    for path in cohort.center_vcfs:
        rows = query(path, "%CHROM\t%POS\n")
        contigs = [r[0] for r in rows]
        assert contigs == sorted(contigs, key=["chr20", "chrX"].index)  # chr20 first
        for contig in ("chr20", "chrX"):
            pos = np.array([int(r[1]) for r in rows if r[0] == contig])
            assert len(pos)
            assert np.all(np.diff(pos) > 0)
    for path in cohort.joint_vcfs:
        rows = query(path, "%CHROM\t%POS\n")
        assert len({r[0] for r in rows}) == 1
        pos = np.array([int(r[1]) for r in rows])
        assert np.all(np.diff(pos) > 0)
        if rows[0][0] == "chr20":
            assert 1 <= pos[0]
            assert pos[-1] <= LENGTH
        else:
            assert PAR1_END < pos[0]
            assert pos[-1] <= PAR1_END + LENGTH


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    kw = dict(n_samples=60, n_centers=2, sequence_length=30_000)
    a = simulate_cohort(tmp_path / "a", seed=3, **kw)
    b = simulate_cohort(tmp_path / "b", seed=3, progress=True, **kw)
    c = simulate_cohort(tmp_path / "c", seed=4, **kw)
    for name in [
        "center1.vcf.gz",
        "center2.vcf.gz",
        "cohort.chr20.vcf.gz",
        "cohort.chrX.vcf.gz",
        "persons.tsv",
        "conditions.tsv",
        "truth.json",
    ]:
        assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), name
    records = [pysam.bcftools.view("-H", str(x.out_dir / "cohort.chr20.vcf.gz")) for x in (a, c)]
    assert records[0] != records[1]


def test_progress_bar(tmp_path: Path, capsys) -> None:
    simulate_cohort(tmp_path, n_samples=20, n_centers=1, sequence_length=5_000, progress=True)
    assert "simulate chr20" in capsys.readouterr().err


def test_invalid_parameters(tmp_path: Path) -> None:
    bad = [
        dict(n_samples=1),
        dict(n_centers=0),
        dict(n_samples=5, n_centers=6),
        dict(sequence_length=10),
        dict(sequence_length=10**9),
        dict(missing_rate=-0.1),
        dict(phased_fraction=1.5),
    ]
    for kw in bad:
        with pytest.raises(GenoqueryError):
            simulate_cohort(tmp_path, **{"n_samples": 50, **kw})


# --------------------------------------------------------------------------- realism


def test_multiallelic_sites(joint: dict[str, Calls]) -> None:
    multi = [s for c in joint.values() for s in c.site if "," in s[3]]
    assert multi
    alts = [a for s in multi for a in s[3].split(",")]
    assert set(alts) <= set("ACGT")
    assert max(len(s[3].split(",")) for s in multi) <= 3
    gts = np.concatenate([c.gt.ravel() for c in joint.values()])
    digits = {ch for g in set(gts) for ch in g if ch.isdigit()}
    assert digits >= {"0", "1", "2"}
    assert digits <= set("0123")


def test_missing_calls_full_and_partial(joint: dict[str, Calls], truth: dict) -> None:
    gt = joint["chr20"].gt
    counts = Counter(gt.ravel())
    full = counts["./."] + counts[".|."]
    partial_first = sum(n for g, n in counts.items() if re.fullmatch(r"\.[/|][0-9]", g))
    partial_second = sum(n for g, n in counts.items() if re.fullmatch(r"[0-9][/|]\.", g))
    assert full > 0
    assert partial_first > 0
    assert partial_second > 0
    assert full > partial_first + partial_second
    rate = (full + partial_first + partial_second) / gt.size
    assert 0.002 < rate < 0.03, rate  # missing_rate 0.01, overdispersed by site and center
    chrx = Counter(joint["chrX"].gt.ravel())
    assert chrx["."] > 0


def test_both_phasings(cohort: CohortFiles, joint: dict[str, Calls], truth: dict) -> None:
    gts = set(joint["chr20"].gt.ravel())
    assert any("|" in g for g in gts)
    assert any("/" in g for g in gts)
    phased_centers = set(truth["phased_centers"])
    assert 0 < len(phased_centers) < N_CENTERS
    for path in cohort.center_vcfs:
        center = Calls(path, "-r", "chr20")
        calls = [g for g in center.gt.ravel() if len(g) == 3]
        if path.name.split(".")[0] in phased_centers:
            assert all(g[1] == "|" for g in calls)
        else:
            piped = [g for g in calls if g[1] == "|"]
            assert piped
            assert all(g[0] != g[2] for g in piped)
            unphased = [g for g in calls if g[1] == "/" and "." not in g]
            assert all(g[0] <= g[2] for g in unphased)  # alleles ascending


def test_chrx_males_haploid_females_diploid(joint: dict[str, Calls], persons: pd.DataFrame) -> None:
    chrx = joint["chrX"]
    sex = persons.set_index("sample_id").loc[chrx.samples, "sex_at_birth"].to_numpy()
    lengths = np.vectorize(len)(chrx.gt)
    assert np.all(lengths[:, sex == "Male"] == 1)
    assert np.all(lengths[:, sex == "Female"] == 3)
    assert set(chrx.gt[:, sex == "Male"].ravel()) >= {"0", "1", "."}
    assert np.all(np.vectorize(len)(joint["chr20"].gt) == 3)


def test_ids_quality_filters(joint: dict[str, Calls]) -> None:
    ids = [i for c in joint.values() for i in c.id]
    with_rs = [i for i in ids if i != "."]
    assert all(re.fullmatch(r"rs[1-9][0-9]*", i) for i in with_rs)
    assert len(set(with_rs)) == len(with_rs)
    assert 0.25 < len(with_rs) / len(ids) < 0.6
    filters = Counter(f for c in joint.values() for f in c.filter)
    assert filters["PASS"] > 0.7 * len(ids)
    assert any("LowQual" in f for f in filters)
    assert any("ExcessHet" in f for f in filters)
    quals = [float(q) for c in joint.values() for q in c.qual if q != "."]
    assert min(quals) > 0
    assert len(quals) > 0.9 * len(ids)


def test_info_ac_an_match_genotypes(cohort: CohortFiles, joint: dict[str, Calls]) -> None:
    for calls in [joint["chr20"], joint["chrX"], Calls(cohort.center_vcfs[0])]:
        for i, site in enumerate(calls.site[:400]):
            alleles = [a for g in calls.gt[i] for a in re.split(r"[|/]", g)]
            n_alt = len(site[3].split(","))
            ac = [sum(a == str(j) for a in alleles) for j in range(1, n_alt + 1)]
            assert calls.ac[i] == ",".join(map(str, ac)), site
            assert calls.an[i] == sum(a != "." for a in alleles), site


# --------------------------------------------------------------------------- centers vs joint callset


def test_center_samples_partition_joint_samples(cohort: CohortFiles, persons: pd.DataFrame) -> None:
    joint_samples = samples_of(cohort.joint_vcfs[0])
    assert joint_samples == samples_of(cohort.joint_vcfs[1]) == persons["sample_id"].tolist()
    seen: list[str] = []
    for k, path in enumerate(cohort.center_vcfs, start=1):
        members = samples_of(path)
        assert members == [s for s in joint_samples if s in set(members)]  # joint order
        assert set(members) == set(persons.loc[persons["center"] == f"center{k}", "sample_id"])
        seen += members
    assert sorted(seen) == sorted(joint_samples)
    assert len(set(seen)) == len(seen)


def test_center_genotypes_equal_joint_genotypes(cohort: CohortFiles) -> None:
    for path in cohort.center_vcfs:
        members = ",".join(samples_of(path))
        center = Calls(path)
        for contig, joint_path in zip(("chr20", "chrX"), cohort.joint_vcfs, strict=True):
            sub = Calls(joint_path, "-s", members)
            in_center = 0
            for i, site in enumerate(sub.site):
                j = center.index.get(site)
                if j is None:  # absent from the center: every center call is REF
                    assert set(sub.gt[i]) <= {"0/0", "0|0", "0"}, (path.name, site)
                else:
                    in_center += 1
                    assert list(center.gt[j]) == list(sub.gt[i]), (path.name, site)
                    assert (center.id[j], center.qual[j], center.filter[j]) == (sub.id[i], sub.qual[i], sub.filter[i])
            assert in_center == sum(s[0] == contig for s in center.site)
        for i in range(len(center.site)):  # kept: a non-REF or missing allele in this center
            assert any(ch not in "0|/" for g in center.gt[i] for ch in g)


def test_sites_overlap_only_partly_between_centers(cohort: CohortFiles) -> None:
    sites = [{tuple(r) for r in query(p, "%CHROM\t%POS\n")} for p in cohort.center_vcfs]
    for a in range(len(sites)):
        for b in range(a + 1, len(sites)):
            shared = sites[a] & sites[b]
            assert shared
            assert shared != sites[a]
            assert shared != sites[b]


def test_genotypes_match_the_tree_sequence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    simulated = {}
    original = driver.simulate_contig

    def capture(design, spec, *args):
        sim = original(design, spec, *args)
        simulated[spec.name] = sim
        return sim

    monkeypatch.setattr(driver, "simulate_contig", capture)
    files = simulate_cohort(tmp_path, n_samples=60, n_centers=2, sequence_length=60_000, seed=11)
    for path in files.joint_vcfs:
        contig = path.name.split(".")[1]
        sim = simulated[contig]
        calls = Calls(path)
        nodes = np.concatenate([sim.hap_node, [sim.ref_node]])
        n_variant = 0
        for var in sim.ts.variants(samples=nodes):
            states = [var.alleles[x] for x in var.genotypes]
            ref, states = states[-1], states[:-1]
            pos = int(var.site.position) + 1 + sim.spec.offset
            alts = sorted({s for s in states if s != ref})
            i = next((i for i, s in enumerate(calls.site) if s[1] == pos), None)
            if not alts:
                assert i is None
                continue
            n_variant += 1
            _, _, vcf_ref, vcf_alt = calls.site[i]
            alleles = [vcf_ref, *vcf_alt.split(",")]
            assert vcf_ref == ref
            assert sorted(alleles[1:]) == alts
            h = 0
            for j, g in enumerate(calls.gt[i]):
                expected = states[h : h + sim.ploidy[j]]
                h += sim.ploidy[j]
                got = [None if a == "." else alleles[int(a)] for a in re.split(r"[|/]", g)]
                if "/" in g:  # unphased: alleles ascending by index
                    expected = sorted(expected, key=alleles.index)
                assert all(x is None or x == y for x, y in zip(got, expected, strict=True)), (contig, pos, j, g)
        assert n_variant == len(calls.site)


# --------------------------------------------------------------------------- populations and traits


def test_ancestry_groups_differ_in_allele_frequency(joint: dict[str, Calls], persons: pd.DataFrame) -> None:
    calls = joint["chr20"]
    ancestry = persons["ancestry"].to_numpy()
    assert set(ancestry) == POPULATIONS
    biallelic = np.array(["," not in s[3] for s in calls.site])
    d = dosage(calls.gt[biallelic])

    def mean_abs_af_difference(labels: np.ndarray) -> float:
        af = {p: np.nanmean(d[:, labels == p], axis=1) / 2 for p in ("AFR", "EAS", "EUR")}
        common = (af["AFR"] + af["EAS"]) / 2 > 0.05
        return float(np.mean(np.abs(af["AFR"] - af["EAS"])[common]))

    observed = mean_abs_af_difference(ancestry)
    permuted = mean_abs_af_difference(np.random.default_rng(1).permutation(ancestry))
    assert observed > 0.1, (observed, permuted)
    assert observed > 2.5 * permuted, (observed, permuted)


def test_persons_table(persons: pd.DataFrame) -> None:
    assert list(persons.columns) == [
        "sample_id",
        "center",
        "sex_at_birth",
        "birth_year",
        "ancestry",
        "pc1",
        "pc2",
        "pc3",
        "pc4",
        "ldl_mg_dl",
    ]
    assert len(persons) == N_SAMPLES
    assert persons["sample_id"].is_unique
    assert set(persons["sex_at_birth"]) == {"Female", "Male"}
    assert set(persons["center"]) == {f"center{k}" for k in range(1, N_CENTERS + 1)}
    assert persons["birth_year"].between(1930, 2010).all()
    ldl = persons["ldl_mg_dl"]
    assert 0 < ldl.isna().sum() < 0.1 * len(ldl)
    assert ldl.dropna().between(20, 400).all()
    explained = 0.0  # share of each PC's variance explained by ancestry (short region: modest)
    for pc in ("pc1", "pc2", "pc3", "pc4"):
        group_mean = persons.groupby("ancestry")[pc].transform("mean")
        explained += 1 - ((persons[pc] - group_mean) ** 2).sum() / ((persons[pc] - persons[pc].mean()) ** 2).sum()
    assert explained > 0.4, explained


def test_conditions_table(cohort: CohortFiles, persons: pd.DataFrame, truth: dict) -> None:
    cond = pd.read_csv(cohort.conditions, sep="\t")
    assert list(cond.columns) == ["person_id", "condition_code", "condition_date"]
    assert set(cond["condition_code"]) == {"E11", "I10", "J45"}
    assert set(cond["person_id"]) <= set(persons["sample_id"])
    dates = pd.to_datetime(cond["condition_date"], format="%Y-%m-%d")
    assert dates.between("2005-01-01", "2024-12-31").all()
    assert cond.duplicated("person_id").any()  # several rows per person
    e11_cases = cond.loc[cond["condition_code"] == "E11", "person_id"].nunique()
    assert e11_cases == truth["traits"]["E11"]["n_cases"]
    assert 0.08 < e11_cases / N_SAMPLES < 0.16
    assert truth["traits"]["I10"]["causal_variants"] == []
    assert truth["traits"]["J45"]["causal_variants"] == []


def test_planted_causal_variants_exist_and_act(
    cohort: CohortFiles, joint: dict[str, Calls], persons: pd.DataFrame, truth: dict
) -> None:
    traits = truth["traits"]
    assert truth["seed"] == SEED
    assert truth["parameters"]["n_samples"] == N_SAMPLES
    scores = {}
    for trait in ("ldl_mg_dl", "E11"):
        causal = traits[trait]["causal_variants"]
        assert len(causal) >= 4
        score = np.zeros(N_SAMPLES)
        for v in causal:
            calls = joint[v["contig"]]
            i = calls.index[(v["contig"], v["pos"], v["ref"], v["alt"])]  # the record exists, biallelic
            assert abs(int(calls.ac[i]) / calls.an[i] - v["af"]) < 0.02  # observed vs true frequency
            d = dosage(calls.gt[i : i + 1])[0]
            if v["contig"] == "chrX":  # a male's single X counts 2
                d = np.where(persons["sex_at_birth"] == "Male", 2 * d, d)
            assert v["effect"] != 0
            score += v["effect"] * np.where(np.isnan(d), np.nanmean(d), d)
        scores[trait] = score
    ldl = persons["ldl_mg_dl"].to_numpy()
    ok = ~np.isnan(ldl)
    assert np.corrcoef(scores["ldl_mg_dl"][ok], ldl[ok])[0, 1] > 0.2
    cases = set(pd.read_csv(cohort.conditions, sep="\t").query("condition_code == 'E11'")["person_id"])
    is_case = persons["sample_id"].isin(cases).to_numpy()
    assert scores["E11"][is_case].mean() > scores["E11"][~is_case].mean()
