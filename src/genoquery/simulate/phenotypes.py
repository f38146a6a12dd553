"""Genetic principal components, a quantitative trait and EHR conditions.

* PCs: numpy SVD of the Gram matrix of standardised genotypes at common
  (MAF >= 5%) biallelic chr20 sites, thinned to at most 1000 sites (one per
  ``sequence_length / 1000`` bp). Observed calls are used; a missing call
  contributes 0 after standardising. ``pc_k`` = projection on the k-th
  singular vector / sqrt(number of sites).
* ``ldl_mg_dl`` (mg/dL): 110 + 0.4/year of age over 50 - 3 if female +
  sum of beta_j * (dosage_j - mean) + Normal noise, total SD about 35;
  causal variants drawn among biallelic sites with MAF >= 2%, each
  explaining a planted share of variance. 3% of values are missing (empty).
* ``E11`` (type 2 diabetes): liability threshold model, causal variants
  (disjoint from LDL's) + age + male sex + noise; the top 12% of liability
  are cases. ``I10`` (hypertension, age/sex only) and ``J45`` (asthma,
  random) do not depend on genotype.

Dosage = ALT copies; a haploid male chrX call counts 2 (full dosage
compensation). Dates are ISO days in the EHR window 2005-01-01..2024-12-31;
ages are taken in 2024. No ancestry effect enters any trait, so genotype
association outside the planted variants only arises from LD or chance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genoquery.simulate.demography import POPULATIONS
from genoquery.simulate.design import CohortDesign

CURRENT_YEAR = 2024
EHR_START, EHR_END = np.datetime64("2005-01-01"), np.datetime64("2024-12-31")
PCA_MAF, CAUSAL_MAF = 0.05, 0.02
MAX_PCA_SITES = 1000
LDL_VARIANCE = {"chr20": [0.05, 0.03, 0.02, 0.015, 0.01, 0.01, 0.005, 0.005], "chrX": [0.02]}
E11_VARIANCE = {"chr20": [0.04, 0.03, 0.02, 0.02, 0.01, 0.01], "chrX": []}
LDL_SD, E11_PREVALENCE = 35.0, 0.12


@dataclass
class Candidate:
    """A biallelic site that may become causal, with true dosage of every sample."""

    contig: str
    pos: int
    ref: str
    alt: str
    af: float
    dosage: np.ndarray  # int8, ALT copies (male chrX: 0/2)


@dataclass
class GenotypeCollector:
    """Keeps, during the single pass over sites, what the phenotype model needs."""

    rng: np.random.Generator
    n_samples: int
    pca_spacing: int
    reservoir_size: int = 48
    pca: list[np.ndarray] = field(default_factory=list)
    candidates: dict[str, list[Candidate]] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    _last_pca_pos: int = -(10**12)

    def add(
        self,
        contig: str,
        chunk,
        rows: np.ndarray,
        haps: np.ndarray,
        hap_sample: np.ndarray,
        ploidy: np.ndarray,
        n_haps: int,
        missing_row: np.ndarray,
        missing_sample: np.ndarray,
    ) -> None:
        """Look at a chunk's biallelic sites.

        ``rows``/``haps``: sparse true non-REF entries (sorted by row); dense rows are in
        ``chunk.dense``; ``missing_*``: calls with a missing allele, sorted by row.
        """
        bounds = np.searchsorted(rows, np.arange(len(chunk) + 1))
        m_bounds = np.searchsorted(missing_row, np.arange(len(chunk) + 1))
        pool = self.candidates.setdefault(contig, [])
        for r in range(len(chunk)):
            if len(chunk.alts[r]) != 1:
                continue
            af = int(chunk.alt_count[r][0]) / n_haps
            maf = min(af, 1 - af)
            if maf < CAUSAL_MAF:
                continue
            want_pca = contig == "chr20" and maf >= PCA_MAF and chunk.pos[r] - self._last_pca_pos >= self.pca_spacing
            t = self.seen.get(contig, 0)
            self.seen[contig] = t + 1
            slot: int | None = t if t < self.reservoir_size else int(self.rng.integers(0, t + 1))
            if slot is not None and slot >= self.reservoir_size:
                slot = None
            if slot is None and not want_pca:
                continue
            if r in chunk.dense:
                dosage = np.bincount(hap_sample, weights=chunk.dense[r], minlength=self.n_samples)
            else:
                dosage = np.bincount(hap_sample[haps[bounds[r] : bounds[r + 1]]], minlength=self.n_samples)
            dosage = dosage.astype(np.int8)
            if want_pca:
                observed = dosage.copy()
                observed[missing_sample[m_bounds[r] : m_bounds[r + 1]]] = -1
                self.pca.append(observed)
                self._last_pca_pos = chunk.pos[r]
            if slot is not None:
                dosage = dosage * (3 - ploidy).astype(np.int8)  # haploid ALT counts 2
                cand = Candidate(contig, chunk.pos[r], chunk.ref[r], chunk.alts[r][0], af, dosage)
                if slot < len(pool):
                    pool[slot] = cand
                else:
                    pool.append(cand)


def principal_components(dosages: list[np.ndarray], n_samples: int, k: int = 4) -> np.ndarray:
    """(n_samples, k) PC scores from observed dosages (-1 = missing); zeros if too few sites."""
    if len(dosages) < k + 1:
        return np.zeros((n_samples, k))
    x = np.stack(dosages, axis=1).astype(np.float32)  # standardised in place below
    called = x >= 0
    x[~called] = 0
    p = x.sum(0) / np.maximum(called.sum(0), 1) / 2
    ok = (p > 0) & (p < 1)
    x, called, p = x[:, ok], called[:, ok], p[ok]
    x -= 2 * p
    x /= np.sqrt(2 * p * (1 - p))
    x[~called] = 0
    if x.shape[1] < k + 1:
        return np.zeros((n_samples, k))
    gram = (x.T @ x).astype(np.float64)
    _, _, vt = np.linalg.svd(gram)
    v = vt[:k].T
    v *= np.sign(v[np.argmax(np.abs(v), axis=0), np.arange(k)])  # deterministic sign
    return (x @ v.astype(np.float32)) / np.sqrt(x.shape[1])


def _plant(
    rng: np.random.Generator, n: int, pool: list[Candidate], variances: list[float], scale: float
) -> tuple[np.ndarray, list[dict[str, object]]]:
    """Genetic values (centred) and truth records for len(variances) causal variants from pool."""
    value = np.zeros(n)
    truth = []
    for cand, v in zip(pool, variances, strict=False):  # the pool may hold more candidates
        d = cand.dosage.astype(np.float64)
        var = d.var()
        if var == 0:
            continue
        beta = round(float(rng.choice([-1, 1]) * scale * np.sqrt(v / var)), 3)
        value += beta * (d - d.mean())
        truth.append(
            {
                "contig": cand.contig,
                "pos": cand.pos,
                "ref": cand.ref,
                "alt": cand.alt,
                "effect": beta,
                "af": round(cand.af, 6),
                "variance_share": v,
            }
        )
    return value, truth


def _dates(rng: np.random.Generator, birth_year: np.ndarray, min_age: int) -> np.ndarray:
    """First diagnosis dates, uniform from the later of EHR start and age ``min_age`` to EHR end."""
    earliest = (np.asarray(birth_year) + min_age - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    lo = np.minimum(np.maximum(earliest, EHR_START), EHR_END - 30)
    span = (EHR_END - lo).astype(np.int64)
    return lo + (rng.random(len(lo)) * span).astype(np.int64)


def simulate_phenotypes(
    rng: np.random.Generator, design: CohortDesign, collector: GenotypeCollector
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, object]]:
    """persons table, conditions table (long, OMOP-like) and the traits' truth."""
    n = design.n_samples
    pcs = principal_components(collector.pca, n)
    age = CURRENT_YEAR - design.birth_year
    female = design.female
    pools = {c: list(p) for c, p in collector.candidates.items()}
    for c in pools:
        rng.shuffle(pools[c])

    def take(contig: str, m: int) -> list[Candidate]:
        got, pools[contig] = pools.get(contig, [])[:m], pools.get(contig, [])[m:]
        return got

    # LDL
    ldl_g, ldl_truth = np.zeros(n), []
    for contig, shares in LDL_VARIANCE.items():
        g, t = _plant(rng, n, take(contig, len(shares)), shares, LDL_SD)
        ldl_g += g
        ldl_truth += t
    h2 = sum(t["variance_share"] for t in ldl_truth)
    noise = rng.normal(0, LDL_SD * np.sqrt(max(1 - h2, 0.05)), n)
    ldl = 110 + 0.4 * (age - 50) - 3 * female + ldl_g + noise
    ldl = np.round(np.maximum(ldl, 20), 1)
    ldl[rng.random(n) < 0.03] = np.nan

    # E11 liability
    e11_g, e11_truth = np.zeros(n), []
    for contig, shares in E11_VARIANCE.items():
        g, t = _plant(rng, n, take(contig, len(shares)), shares, 1.0)
        e11_g += g
        e11_truth += t
    h2_e = sum(t["variance_share"] for t in e11_truth)
    liability = e11_g + 0.02 * (age - 50) + 0.15 * ~female + rng.normal(0, np.sqrt(1 - h2_e), n)
    threshold = float(np.quantile(liability, 1 - E11_PREVALENCE))
    e11 = liability > threshold
    i10 = rng.random(n) < 1 / (1 + np.exp(-(-1.2 + 0.06 * (age - 50) + 0.2 * ~female)))
    j45 = rng.random(n) < 0.06 + 0.03 * female

    rows = []
    for code, status, min_age in (("E11", e11, 25), ("I10", i10, 25), ("J45", j45, 3)):
        idx = np.flatnonzero(status)
        first = _dates(rng, design.birth_year[idx], min_age)
        rows.append(pd.DataFrame({"person_id": design.sample_id[idx], "condition_code": code, "condition_date": first}))
        extra = rng.poisson(1.2, len(idx))
        rep = np.repeat(np.arange(len(idx)), extra)
        later = first[rep] + (rng.random(len(rep)) * (EHR_END - first[rep]).astype(np.int64)).astype(np.int64)
        rows.append(
            pd.DataFrame({"person_id": design.sample_id[idx][rep], "condition_code": code, "condition_date": later})
        )
    conditions = pd.concat(rows, ignore_index=True)
    conditions = conditions.sort_values(["person_id", "condition_date", "condition_code"], kind="stable")
    conditions["condition_date"] = conditions["condition_date"].dt.strftime("%Y-%m-%d")
    conditions = conditions.reset_index(drop=True)

    persons = pd.DataFrame(
        {
            "sample_id": design.sample_id,
            "center": [f"center{c + 1}" for c in design.center],
            "sex_at_birth": np.where(female, "Female", "Male"),
            "birth_year": design.birth_year,
            "ancestry": np.array(POPULATIONS)[design.ancestry],
        }
    )
    for j in range(pcs.shape[1]):
        persons[f"pc{j + 1}"] = np.round(pcs[:, j], 5)
    persons["ldl_mg_dl"] = ldl
    truth = {
        "ldl_mg_dl": {
            "type": "quantitative",
            "unit": "mg/dL",
            "model": "110 + 0.4*(age-50) - 3*female + sum(effect*(dosage-mean)) + N(0, sd)",
            "effect_unit": "mg/dL per ALT allele",
            "noise_sd": round(LDL_SD * np.sqrt(max(1 - h2, 0.05)), 3),
            "causal_variants": ldl_truth,
        },
        "E11": {
            "type": "binary",
            "model": "liability threshold: sum(effect*(dosage-mean)) + 0.02*(age-50) "
            "+ 0.15*male + N(0, sqrt(1-h2)) > threshold",
            "effect_unit": "liability SD per ALT allele",
            "prevalence": E11_PREVALENCE,
            "threshold": round(threshold, 6),
            "n_cases": int(e11.sum()),
            "causal_variants": e11_truth,
        },
        "I10": {"type": "binary", "model": "logistic in age and sex; no genetic effect", "causal_variants": []},
        "J45": {"type": "binary", "model": "random, higher in females; no genetic effect", "causal_variants": []},
    }
    return persons, conditions, truth
