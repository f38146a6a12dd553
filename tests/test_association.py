"""Store.associate / phewas / carrier_table against statsmodels, scipy and plink2.

Expectations come from independent routes only: dosages from the GT text that
``bcftools query`` prints (a call with any '.' allele is missing, haploid calls count
0/1), phenotypes and covariates read from the fixture's TSV files with pandas, and the
regressions run by statsmodels (OLS, Logit) on the same samples; PLINK 2's ``--glm``
(with ``firth-fallback`` and ``firth``) on the store's VCF export; multiple-testing
columns from statsmodels' ``multipletests``; 2x2 tables from the carriers' GT text.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pysam.bcftools as bcftools
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import fisher_exact
from statsmodels.stats.multitest import multipletests

import checks
import genoquery
import oracle
from conftest import skip_without_tool
from genoquery.cli import main
from genoquery.index.phenotypes import import_table
from genoquery.ingest.withdraw import withdraw
from genoquery.query.association import regression, scan
from genoquery.query.association import store_dosages as store_dosages_module
from genoquery.query.association.dosages import AlleleDosages, allele_dosages
from genoquery.query.association.plots import af_by_ancestry, manhattan, phewas_plot, qq
from genoquery.storage.call_codes import code_bits
from genoquery.storage.site_calls import SITE_COLUMNS

CONDITIONS = checks.FIXTURES / "conditions.tsv"
COVARIATES = ["age", "sex", "pc1", "pc2"]
RTOL = 1e-6


@pytest.fixture(scope="module")
def store(gq, tmp_path_factory):

    path = tmp_path_factory.mktemp("assoc") / "cohort.gq"
    checks.ingest_fixture(path).close()
    import_table(path, CONDITIONS)
    with gq.open(path) as s:
        yield s


@pytest.fixture(scope="module")
def ldl_chr20(store) -> list[dict]:
    """The linear GWAS of LDL over chr20 (MAC >= 2), shared by the tests that check it."""
    return store.associate("ldl_mg_dl", COVARIATES, region="chr20", min_mac=2).to_pylist()


@pytest.fixture(scope="module")
def e11_chr20(store) -> list[dict]:
    """The logistic GWAS of E11 over chr20, shared by the tests that check it."""
    return store.associate("E11", COVARIATES, region="chr20", min_mac=1).to_pylist()


@cache
def dosages(vcf: Path) -> pd.DataFrame:
    """Per ALT allele (rows: key) and sample (columns): copies from bcftools' GT text, NaN when missing."""
    samples = oracle.sample_names(vcf)
    rows, keys = [], []
    for line in filter(None, bcftools.query("-f", "%CHROM-%POS-%REF-%ALT[\t%GT]\n", str(vcf)).split("\n")):
        head, *calls = line.split("\t")
        contig, pos, ref, alts = head.split("-")
        alleles = [re.split(r"[/|]", gt) for gt in calls]
        for k, alt in enumerate(alts.split(","), start=1):
            keys.append(f"{contig}-{pos}-{ref}-{alt}")
            rows.append([np.nan if "." in a else float(a.count(str(k))) for a in alleles])
    return pd.DataFrame(rows, index=keys, columns=samples)


def frame() -> pd.DataFrame:
    return _frame().copy()


@cache
def _frame() -> pd.DataFrame:
    """The person table with ``male`` (0/1) and one 0/1 column per condition code."""
    persons = pd.read_csv(checks.FIXTURE_PERSONS, sep="\t").set_index("sample_id")
    persons["male"] = (persons["sex_at_birth"] == "Male").astype(float)
    events = pd.read_csv(CONDITIONS, sep="\t")
    for code in events["condition_code"].unique():
        persons[code] = persons.index.isin(events.loc[events["condition_code"] == code, "person_id"]).astype(float)
    return persons


def oracle_fit(phenotype: str, key: str, logistic: bool, samples=None, covariates=("birth_year", "male", "pc1", "pc2")):
    """statsmodels on samples with the phenotype, covariates and a called genotype."""
    vcf = checks.FIXTURE_VCFS[0] if key.startswith("chr20") else checks.FIXTURE_VCFS[1]
    data = frame()
    data["g"] = dosages(vcf).loc[key]
    if samples is not None:
        data = data.loc[sorted(samples)]
    data = data.dropna(subset=[phenotype, "g", *covariates])
    x = sm.add_constant(data[["g", *covariates]])
    model = sm.Logit(data[phenotype], x) if logistic else sm.OLS(data[phenotype], x)
    result = model.fit(disp=0, method="newton", tol=1e-12, maxiter=100) if logistic else model.fit()
    return len(data), result.params["g"], result.bse["g"], result.pvalues["g"]


def close(a: float, b: float, rtol: float = RTOL) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12)


def _ols_matches(result: list[dict]) -> int:
    """Assert every ``ok`` row of a linear LDL scan equals statsmodels' OLS (n, beta, se, p); their count."""
    tested = [r for r in result if r["status"] == "ok"]
    for r in tested:
        n, beta, se, p = oracle_fit("ldl_mg_dl", r["variant_key"], False)
        assert r["n"] == n, r
        assert close(r["beta"], beta), (r, beta, se, p)
        assert close(r["se"], se), (r, beta, se, p)
        assert close(r["p"], p), (r, beta, se, p)
    return len(tested)


def test_linear_matches_statsmodels_ols(store, ldl_chr20):
    """Every allele with MAC >= 2 on both contigs (chrX: haploid males 0/1), missing genotypes excluded."""
    result = ldl_chr20 + store.associate("ldl_mg_dl", COVARIATES, region="chrX", min_mac=2).to_pylist()
    assert _ols_matches(result) > 100
    skipped = [r for r in result if r["status"] != "ok"]
    assert all(r["status"] == "too_few_carriers" and r["mac"] < 2 and r["beta"] is None for r in skipped)


def test_windows_bounded_by_entries_match_statsmodels(store, monkeypatch):
    """Sites are put together in windows of about WINDOW_ENTRIES carrier and missing entries (memory
    bounded whatever the region): with windows of a few sites, results still equal statsmodels."""
    monkeypatch.setattr(store_dosages_module, "WINDOW_ENTRIES", 20)
    rows = np.unique(store.lookup(region="chrX")["site_row"].to_numpy())
    records = store.sql(
        "SELECT batch, site_row, n_carriers, n_missing_tokens FROM batch_sites WHERE site_row IN (SELECT unnest(?))",
        [rows.tolist()],
    )
    assert len(store_dosages_module._window_bounds(store, records, rows)) > 10
    result = store.associate("ldl_mg_dl", COVARIATES, region="chrX", min_mac=2).to_pylist()
    assert _ols_matches(result) > 50


def test_allele_counts_over_analysed_samples(store):
    result = store.associate("ldl_mg_dl", COVARIATES, region="chrX", min_mac=1).to_pylist()
    data = frame().dropna(subset=["ldl_mg_dl"])
    hap = data["male"] == 1
    for r in result:
        g = dosages(checks.FIXTURE_VCFS[1]).loc[r["variant_key"], data.index]
        called = g.notna()
        assert r["n"] == called.sum()
        assert r["ac"] == g.sum()
        assert r["an"] == 2 * called.sum() - (called & hap).sum()
        assert close(r["af"], g.sum() / r["an"])


def test_logistic_matches_statsmodels_logit(e11_chr20):
    """Plain fits (status ok) equal statsmodels' Logit; the rest are separated or too rare."""
    result = e11_chr20
    tested = [r for r in result if r["status"] == "ok"]
    assert len(tested) > 30
    assert not any(r["firth"] for r in tested)
    for r in tested:
        n, beta, se, p = oracle_fit("E11", r["variant_key"], True)
        assert r["n"] == n
        assert close(r["beta"], beta), (r, beta, se, p)
        assert close(r["se"], se), (r, beta, se, p)
        assert close(r["p"], p), (r, beta, se, p)
        assert close(r["odds_ratio"], math.exp(beta))
    data = frame()
    for r in result:
        g = dosages(checks.FIXTURE_VCFS[0]).loc[r["variant_key"], data.index]
        carriers = data.loc[g[g > 0].index, "E11"]
        all_one_class = len(carriers) > 0 and carriers.nunique() == 1
        assert (r["status"] == "firth_separated") == all_one_class, r
        assert r["firth"] == r["status"].startswith("firth")
        assert r["n_cases"] == data.loc[g.notna()[g.notna()].index, "E11"].sum()


def test_cohort_restricts_the_samples(store):
    cohort = "ancestry IN ('EUR', 'AFR')"
    members = frame().query("ancestry in ['EUR', 'AFR']").index
    result = store.associate("ldl_mg_dl", ["age", "pc1"], region="chr20", cohort=cohort, min_mac=3).to_pylist()
    tested = [r for r in result if r["status"] == "ok"]
    assert tested
    for r in tested[:40]:
        n, beta, se, _p = oracle_fit("ldl_mg_dl", r["variant_key"], False, members, ("birth_year", "pc1"))
        assert r["n"] == n
        assert close(r["beta"], beta)
        assert close(r["se"], se)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(st.integers(0, 119), min_size=40, max_size=120), st.sampled_from(["E11", "ldl_mg_dl"]))
def test_random_cohorts(store, chosen, phenotype):
    ids = [f"S{i + 1:06d}" for i in sorted(chosen)]
    logistic = phenotype == "E11"
    members = frame().loc[ids]
    if logistic and members[phenotype].dropna().nunique() < 2:  # a cohort without cases is refused
        with pytest.raises(genoquery.GenoqueryError, match=r"only controls|only cases|too few samples"):
            store.associate(phenotype, ["pc1"], region="chr20:1-20000", cohort=ids, min_mac=2)
        return
    result = store.associate(phenotype, ["pc1"], region="chr20:1-20000", cohort=ids, min_mac=2).to_pylist()
    for r in (r for r in result if r["status"] == "ok"):
        n, beta, se, _p = oracle_fit(phenotype, r["variant_key"], logistic, ids, ("pc1",))
        assert r["n"] == n
        assert close(r["beta"], beta, 1e-5)
        assert close(r["se"], se, 1e-5)


def test_model_given_reads_dosages_before_the_design(store, ldl_chr20):
    """With the model given, the dosages are read over the cohort's members while the design is
    built (scan.associate_blocks), samples missing the phenotype or a covariate included: the same
    rows as when the design chooses the model, which read them over the design's samples."""
    assert frame()["ldl_mg_dl"].isna().any()  # samples outside the analysis, read all the same
    assert store.associate("ldl_mg_dl", COVARIATES, region="chr20", min_mac=2, model="linear").to_pylist() == ldl_chr20
    cohort = "ancestry IN ('EUR', 'AFR')"
    for phenotype, model in (("ldl_mg_dl", "linear"), ("E11", "logistic")):
        options = {"region": "chr20:1-30000", "cohort": cohort, "min_mac": 2}
        chosen = store.associate(phenotype, ["pc1"], **options).to_pylist()
        assert store.associate(phenotype, ["pc1"], model=model, **options).to_pylist() == chosen


def test_zero_carriers_and_min_mac(store):
    cohort = [f"S{i:06d}" for i in range(1, 41)]
    result = store.associate("ldl_mg_dl", ["pc1"], region="chr20", cohort=cohort, min_mac=5).to_pylist()
    absent = [r for r in result if r["ac"] == 0]
    assert absent
    assert all(r["status"] == "too_few_carriers" and r["p"] is None for r in absent)
    assert all((r["status"] == "too_few_carriers") == (r["mac"] < 5) for r in result)


def test_separation_gives_finite_firth_estimates(e11_chr20):
    result = e11_chr20
    separated = [r for r in result if r["status"] == "firth_separated"]
    assert separated
    for r in separated:
        assert r["firth"]
        assert math.isfinite(r["beta"])
        assert math.isfinite(r["se"])
        assert 0 < r["p"] <= 1


FIRTH_SCORE_TOL = 1e-10
"""The oracle iterates until every component of Firth's modified score is at most this."""


def penalised_likelihood(x: np.ndarray, y: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Firth's penalised log-likelihood l(b) + log|X'WX| / 2, its gradient (the modified score
    X'(y - mu + h (1/2 - mu)), h the hat values) and the Fisher information X'WX."""
    eta = x @ b
    mu = expit(eta)
    info = (x * (mu * (1 - mu))[:, None]).T @ x
    h = mu * (1 - mu) * np.einsum("ni,ij,nj->n", x, np.linalg.inv(info), x)
    value = (y * eta - np.logaddexp(0, eta)).sum() + 0.5 * np.linalg.slogdet(info)[1]
    return value, x.T @ (y - mu + h * (0.5 - mu)), info


def negative_penalised(b: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """What scipy minimises: minus the penalised likelihood and its gradient."""
    value, score, _ = penalised_likelihood(x, y, b)
    return -value, -score


def score_jacobian(x: np.ndarray, y: np.ndarray, b: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """d(modified score)/db by central differences of the analytic score."""
    columns = []
    for j in range(len(b)):
        step = np.zeros_like(b)
        step[j] = h * max(1.0, abs(b[j]))
        columns.append(
            (penalised_likelihood(x, y, b + step)[1] - penalised_likelihood(x, y, b - step)[1]) / (2 * step[j])
        )
    return np.column_stack(columns)


def firth_newton(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Firth's estimate by Newton's method on the modified score, to max |score| <=
    :data:`FIRTH_SCORE_TOL`: (coefficients, the max |score| reached). Fisher-scoring steps (the
    information as the step's matrix, halved while they lower the penalised likelihood) bring it
    near the root, then Newton steps with the score's own Jacobian converge on it (Fisher
    scoring alone creeps: the information is not the penalised likelihood's Hessian)."""
    b = np.zeros(x.shape[1])
    value, score, info = penalised_likelihood(x, y, b)
    for _ in range(100):
        if np.abs(score).max() <= 1e-4:
            break
        step = np.linalg.solve(info, score)
        for _ in range(60):
            trial = penalised_likelihood(x, y, b + step)
            if trial[0] >= value - 1e-12:
                break
            step /= 2
        b = b + step
        value, score, info = trial
    for _ in range(50):
        if np.abs(score).max() <= FIRTH_SCORE_TOL:
            break
        b = b - np.linalg.solve(score_jacobian(x, y, b), score)
        score = penalised_likelihood(x, y, b)[1]
    return b, float(np.abs(score).max())


def firth_design(phenotype: str, key: str, covariates=("birth_year", "male", "pc1", "pc2")):
    """(X, y): intercept, the allele's dosage (from bcftools' GT text), standardised covariates."""
    data = frame()
    data["g"] = dosages(checks.FIXTURE_VCFS[0]).loc[key]
    data = data.dropna(subset=[phenotype, "g", *covariates])
    z = data[list(covariates)]
    x = sm.add_constant(pd.concat([data[["g"]], (z - z.mean()) / z.std()], axis=1)).to_numpy()
    return x, data[phenotype].to_numpy()


def test_firth_solves_the_penalised_score_equation(e11_chr20):
    """Genoquery's Firth estimates equal the oracle's to 1e-6; the oracle reaches a score of at
    most 1e-9 on every allele it checks, and scipy's BFGS on the same likelihood agrees with it."""
    firth = [r for r in e11_chr20 if r["firth"]]
    assert len(firth) > 20
    for r in firth[:: max(1, len(firth) // 12)]:
        x, y = firth_design("E11", r["variant_key"])
        b, score = firth_newton(x, y)
        assert score <= 1e-9, (r["variant_key"], score)
        assert close(r["beta"], b[1], 1e-6), (r, b[1])
        second = minimize(
            negative_penalised, np.zeros(x.shape[1]), args=(x, y), jac=True, method="BFGS", options={"gtol": 1e-9}
        )
        assert close(second.x[1], b[1], 1e-4), (r["variant_key"], second.x[1], b[1])
        assert penalised_likelihood(x, y, b)[0] >= -second.fun - 1e-9  # Newton's point is the optimum


def test_phewas_multiple_testing(store):
    table = store.phewas("chr20-651-C-T", covariates=["age", "sex"], min_cases=5)
    rows = table.to_pylist()
    names = [r["phenotype"] for r in rows]
    assert set(names) >= {"E11", "I10", "J45", "ldl_mg_dl"}
    p = np.array([r["p"] for r in rows])
    assert np.allclose(table["p_bonferroni"].to_numpy(), multipletests(p, method="bonferroni")[1], rtol=1e-12)
    assert np.allclose(table["q_bh"].to_numpy(), multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    assert list(p) == sorted(p)  # strongest first
    for r in rows:
        logistic = r["model"] == "logistic"
        n, beta, _se, pv = oracle_fit(r["phenotype"], "chr20-651-C-T", logistic, covariates=("birth_year", "male"))
        assert r["n"] == n
        assert close(r["beta"], beta)
        assert close(r["p"], pv)


def test_carrier_table_matches_fisher_on_gt_text(store):

    data = frame()
    for key in ("chr20-651-C-T", "chr20-1662-G-T"):
        g = dosages(checks.FIXTURE_VCFS[0]).loc[key]
        carrier = g.reindex(data.index).fillna(0) > 0
        case = data["E11"] == 1
        want = [
            [int((carrier & case).sum()), int((carrier & ~case).sum())],
            [int((~carrier & case).sum()), int((~carrier & ~case).sum())],
        ]
        got = store.carrier_table(key, "E11").to_pylist()[0]
        assert [
            [got["carrier_cases"], got["carrier_controls"]],
            [got["noncarrier_cases"], got["noncarrier_controls"]],
        ] == want
        odds, p = fisher_exact(want)
        assert close(got["p"], p)
        assert close(got["odds_ratio"], odds) or math.isinf(odds)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.associate("no_such", [], region="chr20"), "neither a person-table column"),
        (lambda s: s.associate("ldl_mg_dl", ["height"], region="chr20"), "unknown covariate 'height'"),
        (lambda s: s.associate("center", [], region="chr20"), "is not numeric"),
        (lambda s: s.associate(["E11", "Z99"], [], region="chr20"), "'Z99'"),
        (lambda s: s.associate("ldl_mg_dl", [], region="chr20", model="probit"), "unknown model"),
        (lambda s: s.associate("ldl_mg_dl", [], region="chr20", model="logistic"), "not binary"),
        (lambda s: s.associate("ldl_mg_dl", [], cohort=["S000001", "S000002"], region="chr20"), "too few samples"),
        (lambda s: s.associate("ldl_mg_dl", [], region="chr20", gene="GENE1"), "at most one of"),
        (lambda s: s.carrier_table("chr20-651-C-T", "Z99"), "'Z99'"),
    ],
)
def test_errors(gq, store, call, message):
    with pytest.raises(gq.GenoqueryError, match=re.escape(message)):
        call(store)


# --------------------------------------------------------------------------- plink2


def _plink(tmp: Path, store, phenotype: str, extra: list[str]) -> pd.DataFrame:
    vcf = store.export_vcf(tmp / "chr20.vcf.gz", region="chr20")
    data = frame()
    data.index.name = "#IID"
    pheno = data[[phenotype]].copy()
    if phenotype == "E11":
        pheno[phenotype] = pheno[phenotype] + 1  # plink: 1 control, 2 case
    pheno.to_csv(tmp / "pheno.tsv", sep="\t", na_rep="NA")
    data[["birth_year", "male", "pc1", "pc2"]].to_csv(tmp / "covar.tsv", sep="\t")
    subprocess.run(
        [
            "plink2",
            "--vcf",
            str(vcf),
            "--vcf-half-call",
            "missing",
            "--allow-extra-chr",
            "--pheno",
            str(tmp / "pheno.tsv"),
            "--covar",
            str(tmp / "covar.tsv"),
            "--glm",
            *extra,
            "hide-covar",
            "cols=+a1count,+firth",
            "--covar-variance-standardize",
            "--out",
            str(tmp / "out"),
            "--threads",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    out = next(p for p in tmp.iterdir() if ".glm." in p.name)
    table = pd.read_csv(out, sep="\t")
    table["key"] = (
        "chr" + table["#CHROM"].astype(str) + "-" + table["POS"].astype(str) + "-" + table["REF"] + "-" + table["ALT"]
    )
    flip = table["A1"] != table["ALT"]  # plink2 reports the common ALT's test against REF as A1
    if "BETA" in table:
        table.loc[flip, "BETA"] = -table.loc[flip, "BETA"]
    if "OR" in table:
        table.loc[flip, "OR"] = 1 / table.loc[flip, "OR"]
    return table.set_index("key")


needs_plink = skip_without_tool("plink2", install="Debian plink2")


@needs_plink
def test_linear_matches_plink2(store, ldl_chr20, tmp_path):
    plink = _plink(tmp_path, store, "ldl_mg_dl", [])
    result = ldl_chr20
    compared = 0
    for r in result:
        if r["status"] != "ok" or r["variant_key"] not in plink.index:
            continue
        row = plink.loc[r["variant_key"]]
        assert row["OBS_CT"] == r["n"]
        assert close(r["beta"], row["BETA"], 2e-5), (r, row)
        assert close(r["se"], row["SE"], 2e-5), (r, row)
        compared += 1
    assert compared > 50


@needs_plink
def test_logistic_and_firth_fallback_match_plink2(store, e11_chr20, tmp_path):
    plink = _plink(tmp_path, store, "E11", ["firth-fallback"])
    result = e11_chr20
    n_with_phenotype = len(frame())
    compared = {True: 0, False: 0}
    for r in result:
        if r["status"] == "too_few_carriers" or r["variant_key"] not in plink.index:
            continue
        row = plink.loc[r["variant_key"]]
        assert (row["FIRTH?"] == "Y") == r["firth"], (r, row)
        assert row["OBS_CT"] == r["n"], (r, row)
        # plain fits: plink2's 6 printed digits; Firth fits: plink2 (2.00a3.5) stops its iteration
        # earlier (up to 0.6% apart here); test_firth_solves_the_penalised_score_equation checks ours.
        # Its standard errors differ (up to 17%) where a sample's genotype is missing, while its ORs
        # and OBS_CT agree: there statsmodels on the same samples is the reference (and agrees with us).
        rtol = 2e-2 if r["firth"] else 2e-5
        assert close(r["odds_ratio"], row["OR"], rtol), (r, row)
        if r["n"] == n_with_phenotype:
            assert close(r["se"], row["LOG(OR)_SE"], rtol), (r, row)
        compared[r["firth"]] += 1
    assert compared[True] > 50, compared
    assert compared[False] > 30, compared


# --------------------------------------------------------------------------- command line and plots


def test_cli_glm_phewas_table_and_plots(store, ldl_chr20, tmp_path, capsys):

    path = str(store.path)
    out = tmp_path / "glm.tsv"
    assert (
        main(
            [
                "assoc",
                path,
                "glm",
                "--phenotype",
                "ldl_mg_dl",
                "--covar",
                "age,sex,pc1,pc2",
                "--region",
                "chr20",
                "--min-mac",
                "2",
                "--output",
                str(out),
                "--manhattan",
                str(tmp_path / "m.png"),
                "--qq",
                str(tmp_path / "q.svg"),
            ]
        )
        == 0
    )
    got = pacsv.read_csv(out, parse_options=pacsv.ParseOptions(delimiter="\t")).to_pylist()
    want = ldl_chr20
    assert [(r["variant_key"], r["status"]) for r in got] == [(r["variant_key"], r["status"]) for r in want]
    assert all(close(a["beta"], b["beta"]) for a, b in zip(got, want, strict=True) if b["beta"] is not None)
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "q.svg").read_bytes()[:500]
    assert (
        main(
            [
                "assoc",
                path,
                "phewas",
                "chr20-651-C-T",
                "--covar",
                "age",
                "--min-cases",
                "5",
                "--format",
                "json",
                "--plot",
                str(tmp_path / "p.svg"),
            ]
        )
        == 0
    )
    assert {r["phenotype"] for r in json.loads(capsys.readouterr().out)} == {
        "E11",
        "I10",
        "J45",
        "ldl_mg_dl",
    }  # numeric columns but covariates, birth_year (age) and PCs
    assert main(["assoc", path, "table", "chr20-651-C-T", "--condition", "E11,J45", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row == store.carrier_table("chr20-651-C-T", ["E11", "J45"]).to_pylist()[0]
    assert main(["assoc", path, "ancestry", "chr20-651-C-T", "--plot", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").stat().st_size > 1000
    assert main(["assoc", path, "glm", "--phenotype", "ldl_mg_dl", "--covar", "height", "--region", "chr20"]) == 2
    err = capsys.readouterr().err
    assert "unknown covariate 'height'" in err
    assert "Traceback" not in err


def test_no_region_tests_every_contig_and_overlapping_regions_test_an_allele_once(store):
    """Without region, variants or gene every allele of the store is tested, each contig's rows
    equal to that contig's own run; regions given as a list may overlap."""
    whole = store.associate("ldl_mg_dl", COVARIATES, min_mac=2)
    parts = [store.associate("ldl_mg_dl", COVARIATES, region=c, min_mac=2) for c in store.contigs]
    assert whole.num_rows == store.info["variants"]
    assert whole.to_pylist() == [r for part in parts for r in part.to_pylist()]
    both = store.associate("ldl_mg_dl", COVARIATES, region=["chr20:1-30000", "chr20:20000-40000"], min_mac=2)
    keys = both["variant_key"].to_pylist()
    assert len(keys) == len(set(keys))
    assert keys == store.lookup(region="chr20:1-40000")["variant_key"].to_pylist()


def test_plots_show_contigs_positions_band_and_keys_outside_the_axes(store):
    """Manhattan: a tick per contig when several, positions in Mb when one; QQ: the 95% band and
    lambda_GC from the p-values (scipy); PheWAS: phenotypes by p with a key for the triangles.
    Every legend is the figure's, outside the axes, so it hides no point."""
    whole = store.associate("ldl_mg_dl", COVARIATES, min_mac=2)
    fig = manhattan(whole)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["chr20", "chrX"]
    assert fig.axes[0].get_legend() is None
    assert len(fig.legends) == 1
    one = manhattan(store.associate("ldl_mg_dl", COVARIATES, region="chr20", min_mac=2))
    assert one.axes[0].get_xlabel() == "position on chr20 (Mb)"
    assert one.axes[0].get_xlim()[1] < 2  # the fixture's chr20 is under 2 Mb: positions are in Mb
    p = whole["p"].to_numpy(zero_copy_only=False)
    p = p[np.isfinite(p) & (p > 0)]
    want = np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1)
    fig = qq(whole)
    assert fig.axes[0].get_title() == f"QQ plot, lambda_GC = {want:.3f}"
    assert any(type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection") for c in fig.axes[0].collections)
    table = store.phewas("chr20-651-C-T", covariates=["age", "sex"], min_cases=5)
    fig = phewas_plot(table)
    tested = [r["phenotype"] for r in table.to_pylist() if r["p"] is not None and r["p"] > 0]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == tested
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"effect > 0", "effect < 0"} & set(labels)
    assert fig.axes[0].get_legend() is None


def test_af_by_ancestry_plot_shows_exact_group_frequencies(store):

    fig = af_by_ancestry(store, "chr20-651-C-T")
    bars = fig.axes[0].patches
    data = frame()
    g = dosages(checks.FIXTURE_VCFS[0]).loc["chr20-651-C-T"]
    want = {
        a: g[data.index[data["ancestry"] == a]].sum() / (2 * g[data.index[data["ancestry"] == a]].notna().sum())
        for a in sorted(data["ancestry"].unique())
    }
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == list(want)
    assert all(close(bar.get_height(), want[a]) for bar, a in zip(bars, labels, strict=True))


def test_import_genoquery_does_not_import_matplotlib_or_statsmodels():

    code = (
        "import sys, genoquery; "
        "print(any(m.split('.')[0] in ('matplotlib', 'scipy', 'statsmodels') for m in sys.modules))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"


def test_allele_dosages_sample_offset(store):
    """Sample indexes of a genotype batch are shifted by its offset (several batches, issue 5)."""

    reader = store.batches[0].reader
    sites = store.sql(f"SELECT {SITE_COLUMNS} FROM batch_sites WHERE batch = 0 ORDER BY batch_row", [])
    plain = list(allele_dosages(reader.blocks(sites, missing=True), reader.haploid))
    shifted = list(allele_dosages(reader.blocks(sites, missing=True), reader.haploid, sample_offset=1000))
    for a, b in zip(plain, shifted, strict=True):
        assert np.array_equal(a.sample + 1000, b.sample)
        assert np.array_equal(a.missing_sample + 1000, b.missing_sample)
        assert np.array_equal(a.dosage, b.dosage)
        assert np.array_equal(a.carrier, b.carrier)
    assert sum(len(a.allele) for a in plain) == store.info["variants"]


def test_complete_callset_batches_give_the_joint_callsets_results(gq, store, ldl_chr20, e11_chr20, tmp_path):
    """The centers' chr20 files as complete-callset batches hold the joint chr20's calls, so every
    allele's test is the same: dosages are gathered across batches with global sample indexes."""

    centers = [
        checks.subset_targets(p, tmp_path / p.name, "chr20") for p in sorted(checks.FIXTURES.glob("center*.vcf.gz"))
    ]
    path = tmp_path / "centers.gq"
    gq.ingest(path, centers, persons=checks.FIXTURE_PERSONS, complete_callset=True, progress=False).close()
    import_table(path, CONDITIONS)
    with gq.open(path) as merged:
        assert len(merged.batches) == 3
        for want, got in (
            (ldl_chr20, merged.associate("ldl_mg_dl", COVARIATES, region="chr20", min_mac=2)),
            (e11_chr20, merged.associate("E11", COVARIATES, region="chr20", min_mac=1)),
        ):
            by_key = {r["variant_key"]: r for r in got.to_pylist()}
            assert set(by_key) == {r["variant_key"] for r in want}
            for row in want:
                other = by_key[row["variant_key"]]
                assert (other["n"], other["ac"], other["an"], other["status"]) == (
                    row["n"],
                    row["ac"],
                    row["an"],
                    row["status"],
                ), row["variant_key"]
                if row["p"] is not None:
                    assert math.isclose(other["p"], row["p"], rel_tol=RTOL), row["variant_key"]


def test_a_center_lacking_a_site_leaves_its_samples_out_of_that_test(gq, tmp_path):
    """Without complete_callset a batch's absent record is not called: its samples are missing there."""

    centers = sorted(checks.FIXTURES.glob("center*.vcf.gz"))
    path = tmp_path / "centers.gq"
    gq.ingest(path, centers, persons=checks.FIXTURE_PERSONS, progress=False).close()
    import_table(path, CONDITIONS)
    with gq.open(path) as merged:
        results = merged.associate("ldl_mg_dl", COVARIATES, region="chr20", min_mac=1).to_pylist()
        stats = {r["variant_key"]: r for r in merged.variants("chr20").to_pylist()}
        persons = merged.persons().to_pandas()
        analysed = int(persons[["ldl_mg_dl", "birth_year", "sex_at_birth", "pc1", "pc2"]].notna().all(axis=1).sum())
        lacking = [r for r in results if stats[r["variant_key"]]["n_missing"] > 40]
        assert lacking, "the fixture's centers should lack some sites"
        for row in lacking:
            assert row["n"] <= analysed - 40, row["variant_key"]
            assert row["an"] <= 2 * row["n"], row["variant_key"]


def test_withdrawn_samples_are_not_analysed(gq, tmp_path):

    path = tmp_path / "w.gq"
    checks.ingest_fixture(path).close()
    import_table(path, CONDITIONS)
    with gq.open(path) as before:
        gone = before.sample_ids[before.cohort("ldl_mg_dl IS NOT NULL AND pc1 IS NOT NULL")[:3]].tolist()
        rest = [s for s in before.sample_ids.tolist() if s not in gone]
        want = before.associate("ldl_mg_dl", COVARIATES, region="chr20:1-20000", cohort=rest, min_mac=1)
    withdraw(path, gone, "test")
    with gq.open(path) as after:
        got = after.associate("ldl_mg_dl", COVARIATES, region="chr20:1-20000", min_mac=1)
    assert got.num_rows == want.num_rows > 0
    assert got.select(["variant_key", "n", "ac", "an", "status"]).equals(
        want.select(["variant_key", "n", "ac", "an", "status"])
    )


def test_progress_bar_counts_every_allele_and_quiet_shows_none(store, capfd):
    """A long association shows a bar of alleles fitted on standard error; --quiet shows nothing."""
    table = store.associate("ldl_mg_dl", COVARIATES, region="chr20", progress=True)
    bar = capfd.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert f"{table.num_rows}/{table.num_rows}" in bar
    assert bar.startswith("associate ldl_mg_dl: 100%")
    path = str(store.path)
    assert main(["assoc", path, "glm", "--phenotype", "ldl_mg_dl", "--region", "chr20", "--quiet"]) == 0
    assert capfd.readouterr().err == ""


def test_blocks_stream_in_genome_order_before_the_scan_ends(store, ldl_chr20, monkeypatch):
    """``associate_blocks`` hands out each block's rows as soon as it is fitted: with windows of a
    few sites, the first block arrives while most are unfitted, and the blocks put together are
    ``associate``'s table (itself checked against statsmodels above)."""
    monkeypatch.setattr(store_dosages_module, "WINDOW_ENTRIES", 20)
    fitted = []
    original = scan.linear
    monkeypatch.setattr(scan, "linear", lambda *a: fitted.append(1) or original(*a))
    blocks = store.associate_blocks("ldl_mg_dl", COVARIATES, region="chr20", min_mac=2)
    first = next(blocks)
    assert first.num_rows > 0
    assert len(fitted) == 1
    tables = [first, *blocks]
    assert len(tables) == len(fitted) > 5
    whole = pa.concat_tables(tables).to_pylist()
    assert [r["variant_key"] for r in whole] == [r["variant_key"] for r in ldl_chr20]
    assert all(close(a["beta"], b["beta"]) for a, b in zip(whole, ldl_chr20, strict=True) if b["beta"] is not None)


@pytest.mark.parametrize("suffix", [".tsv", ".parquet", ".json"])
def test_cli_glm_writes_rows_as_they_are_fitted(store, ldl_chr20, tmp_path, monkeypatch, suffix):
    """``assoc glm -o`` without plots writes block by block: TSV rows under one header, one JSON
    array, a Parquet file of several row groups; each reads back as ``associate``'s table."""
    monkeypatch.setattr(store_dosages_module, "WINDOW_ENTRIES", 20)
    out = tmp_path / f"glm{suffix}"
    args = ["assoc", str(store.path), "glm", "--phenotype", "ldl_mg_dl", "--covar", ",".join(COVARIATES)]
    assert main([*args, "-r", "chr20", "--min-mac", "2", "--quiet", "-o", str(out)]) == 0
    if suffix == ".tsv":
        got = pacsv.read_csv(out, parse_options=pacsv.ParseOptions(delimiter="\t")).to_pylist()
    elif suffix == ".json":
        got = json.loads(out.read_text())
    else:
        assert pq.ParquetFile(out).num_row_groups > 5
        got = pq.read_table(out).to_pylist()
    assert [r["variant_key"] for r in got] == [r["variant_key"] for r in ldl_chr20]
    assert [r["status"] for r in got] == [r["status"] for r in ldl_chr20]
    assert all(close(a["beta"], b["beta"]) for a, b in zip(got, ldl_chr20, strict=True) if b["beta"] is not None)
    assert "site_row" not in got[0]


def test_cli_glm_of_no_allele_writes_the_header(store, tmp_path):
    out = tmp_path / "none.tsv"
    args = ["assoc", str(store.path), "glm", "--phenotype", "ldl_mg_dl", "-r", "chr20:1-2", "--quiet", "-o", str(out)]
    assert main(args) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("variant_key\tcontig\tpos")


@pytest.mark.parametrize("n_columns", [5, 6])
@pytest.mark.parametrize("n_bytes", [2 * regression.TILE_BYTES + 1, 2 * regression.TILE_BYTES + 13])
def test_coded_products_over_several_tiles_equal_numpy(n_columns, n_bytes):
    """Dense sites' code rows decoded and multiplied by the samples' weights tile by tile: over
    samples in several tiles (the last partial, with or without a whole word of 32 samples, and
    samples not a multiple of 4), rows in blocks of four (the last partial), an odd or even
    number of weight columns, and haploid rows, equal to numpy's products of the dosages decoded
    from the same codes, and the two-copy counts."""
    rng = np.random.default_rng(7)
    n, rows = 4 * n_bytes - 1, 4 * 2 + 3
    codes = rng.integers(0, 256, size=(rows, (n + 3) // 4), dtype=np.uint8)
    haploid = rng.random((2, n)) < 0.5
    pattern = rng.integers(-1, 2, size=rows)
    w = np.concatenate([rng.random((n, 2)) < 0.7, rng.normal(size=(n, n_columns - 2))], axis=1)  # 0/1 columns first
    columns = np.zeros((n_columns, (n + 3) // 4 * 4))
    columns[:, :n] = w.T
    dose, two = regression.coded_products(codes, haploid, pattern, columns, code_bits(w[:, :2].T > 0))

    s = np.arange(n)
    code = (codes[:, s // 4] >> (2 * (s % 4))) & 3
    hap = np.where(pattern[:, None] >= 0, haploid[np.maximum(pattern, 0)], False)
    het, hom = (code == 1) | ((code == 2) & hap), (code == 2) & ~hap
    np.testing.assert_allclose(dose, (het + 2 * hom) @ w, rtol=1e-12)
    assert np.array_equal(two, hom @ w[:, :2])


@pytest.mark.parametrize("firth", [False, True])
def test_logistic_terms_over_several_tiles_equal_numpy(firth):
    """The logistic pass, tile by tile with each allele's carriers and missing samples scattered
    in: over samples in several tiles (the last partial), store samples outside the analysis among
    the listed ones, groups of alleles (the last partial) taken out of order, carriers and missing
    samples on tile edges, an allele with every sample a carrier and one with none, and eta far
    beyond the exp's range, equals numpy's information, (Firth-modified) score and
    log-likelihood over each allele's called analysed samples."""
    rng = np.random.default_rng(11)
    n, k, b = 3 * regression.LOGIT_TILE + 5, 3, regression.LOGIT_GROUP + 3
    analysed = np.sort(rng.choice(n + 300, n, replace=False))  # store samples -> analysed rows
    row = np.full(n + 300, -1)
    row[analysed] = np.arange(n)
    x = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
    y = (rng.random(n) < 0.3).astype(float)
    edges = analysed[[0, regression.LOGIT_TILE - 1, regression.LOGIT_TILE, n - 1]]
    carriers = [np.union1d(np.flatnonzero(rng.random(n + 300) < f), edges) for f in rng.random(b)]
    carriers[1], carriers[2] = np.arange(n + 300), np.array([], dtype=np.int64)
    missing = [np.setdiff1d(np.flatnonzero(rng.random(n + 300) < 0.05), c) for c in carriers]
    dose = [rng.integers(1, 3, len(c)).astype(np.int8) for c in carriers]
    order = rng.permutation(b)
    coef = np.column_stack([rng.normal(-1, 0.5, b), rng.normal(0, 0.5, (b, k - 1)), rng.normal(0, 1, b)])
    coef[3, -1] = 900.0  # eta beyond -708 and far above 0
    inverse = np.linalg.inv(np.eye(k + 1) * n / 4 + rng.normal(0, 1, (b, k + 1, k + 1)))
    offsets = [np.concatenate([[0], np.cumsum([len(r) for r in rows])]) for rows in (carriers, missing)]
    listed = AlleleDosages(
        *(np.zeros(b, np.int64),) * 3,
        offsets[0],
        np.concatenate(carriers),
        np.concatenate(dose),
        offsets[1],
        np.concatenate(missing).astype(np.int64),
    )
    batch = regression._Alleles(np.ascontiguousarray(x.T), y, row, listed, np.arange(b)).take(order)
    info, score, loglik = batch.terms(coef, inverse if firth else None)
    for at, a in enumerate(order):
        g = np.zeros(n + 300)
        g[carriers[a]] = dose[a]
        called = np.isin(analysed, missing[a], invert=True)
        xa = np.column_stack([x, g[analysed]])[called]
        eta = xa @ coef[at]
        mu, w = expit(eta), expit(eta) * (1 - expit(eta))
        r = y[called] - mu
        if firth:
            r += w * np.einsum("si,ij,sj->s", xa, inverse[at], xa) * (0.5 - mu)
        np.testing.assert_allclose(info[at], xa.T @ (xa * w[:, None]), rtol=1e-12, atol=1e-12 * n)
        np.testing.assert_allclose(score[at], xa.T @ r, rtol=1e-12, atol=1e-12 * n)
        assert loglik[at] == pytest.approx(np.sum(y[called] * eta - np.logaddexp(0, eta)), rel=1e-13)


def test_exp_of_the_logistic_pass_is_close_to_libm():
    """The logistic pass's vectorisable exp is within 12 ulp of libm's over -40..0 and 2.4e-14
    relative down to -708; below, exp(-708)."""
    t = np.concatenate([-np.random.default_rng(3).random(20_000) * 40, -np.linspace(0, 708, 20_000)])
    ours = np.array([regression._exp_neg(v) for v in t])
    libm = np.array([math.exp(v) for v in t])
    assert (np.abs(ours - libm)[t >= -40] <= 12 * np.spacing(libm[t >= -40])).all()
    assert (np.abs(ours - libm) <= 2.4e-14 * libm).all()
    assert regression._exp_neg(-1000.0) == regression._exp_neg(-708.0)


# --------------------------------------------------------------------------- score test and prescreen


def oracle_score(phenotype: str, key: str, covariates=("birth_year", "male", "pc1", "pc2")):
    """(n, U, V, statsmodels' score statistic, its p) of adding the dosage to the null Logit fitted
    on the samples with the phenotype, covariates and a called genotype; ``U = g'(y - mu)`` and
    ``V = g'Wg - g'WX (X'WX)^-1 X'Wg`` by hand with numpy."""
    data = frame()
    data["g"] = dosages(checks.FIXTURE_VCFS[0]).loc[key]
    data = data.dropna(subset=[phenotype, "g", *covariates])
    x = sm.add_constant(data[list(covariates)]).to_numpy()
    y, g = data[phenotype].to_numpy(), data["g"].to_numpy()
    null = sm.Logit(y, x).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    statistic, p = null.score_test(exog_extra=g[:, None])[:2]
    mu = expit(x @ null.params)
    w = mu * (1 - mu)
    xwg = x.T @ (w * g)
    v = g @ (w * g) - xwg @ np.linalg.solve(x.T @ (x * w[:, None]), xwg)
    return len(data), g @ (y - mu), v, float(np.squeeze(statistic)), float(np.squeeze(p))


@pytest.fixture(scope="module")
def e11_score(store) -> list[dict]:
    return store.associate("E11", COVARIATES, region="chr20", min_mac=1, test="score").to_pylist()


def test_score_test_matches_statsmodels(e11_score):
    """Every score row equals statsmodels' score test of the dosage (statistic z^2 and p) and the
    hand-computed U and V (beta = U / V, se = V^-1/2), alleles with missing calls included (their
    null model is refitted over their called samples); separated carriers are said."""
    rows = [r for r in e11_score if r["test"] == "score"]
    assert len(rows) > 100
    n_all = max(r["n"] for r in e11_score)
    assert sum(r["n"] < n_all for r in rows) >= 20  # alleles with missing calls
    data = frame()
    for r in rows:
        n, u, v, statistic, p = oracle_score("E11", r["variant_key"])
        assert r["n"] == n, r
        assert close(r["statistic"] ** 2, statistic), (r, statistic)
        assert close(r["p"], p), (r, p)
        assert close(r["beta"], u / v), (r, u, v)
        assert close(r["se"], v**-0.5), (r, u, v)
        assert close(r["statistic"], u / math.sqrt(v)), (r, u, v)
        assert not r["firth"]
        g = dosages(checks.FIXTURE_VCFS[0]).loc[r["variant_key"], data.index]
        carriers = data.loc[g[g > 0].index, "E11"]
        assert (r["status"] == "separated") == (carriers.nunique() == 1), r
    untested = [r for r in e11_score if r["test"] is None]
    assert all(r["status"] == "too_few_carriers" and r["p"] is None for r in untested)


def test_prescreen_fits_exactly_the_alleles_that_pass(store, e11_chr20, e11_score):
    """With a prescreen, alleles whose score p is at most the threshold get the default path's rows
    exactly (Wald or Firth); the others the score test's rows exactly."""
    score_p = {r["variant_key"]: r["p"] for r in e11_score if r["test"] == "score"}
    threshold = float(np.median(list(score_p.values())))
    screened = store.associate("E11", COVARIATES, region="chr20", min_mac=1, prescreen_p=threshold).to_pylist()
    default = {r["variant_key"]: r for r in e11_chr20}
    score = {r["variant_key"]: r for r in e11_score}
    assert [r["variant_key"] for r in screened] == list(default)
    kinds = {"exact": 0, "score": 0}
    for r in screened:
        key = r["variant_key"]
        if key in score_p and score_p[key] <= threshold:
            assert r == default[key], (r, default[key])
            assert r["test"] in ("wald", "firth"), r
            kinds["exact"] += 1
        else:
            assert r == score[key], (r, score[key])
            assert r["test"] == "score", r
            kinds["score"] += 1
    assert min(kinds.values()) > 20, kinds
    assert {r["test"] for r in e11_chr20} == {"wald", "firth"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"test": "lrt"}, "unknown test 'lrt'; choose wald or score"),
        ({"prescreen_p": 0.0}, "must be in (0, 1], not 0.0"),
        ({"prescreen_p": 1.5}, "must be in (0, 1], not 1.5"),
        ({"test": "score", "prescreen_p": 0.01}, "with the score test none are"),
        ({"test": "score", "model": "linear"}, "are for the logistic model"),
    ],
)
def test_score_options_errors(gq, store, options, message):
    with pytest.raises(gq.GenoqueryError, match=re.escape(message)):
        store.associate("E11", COVARIATES, region="chr20", **options)


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--test", "lrt"], "unknown test 'lrt'"), (["--prescreen-p", "2"], "must be in (0, 1], not 2.0")],
)
def test_cli_score_options_errors(store, flags, message, capsys):
    assert main(["assoc", str(store.path), "glm", "--phenotype", "E11", "-r", "chr20", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert message in err, err
