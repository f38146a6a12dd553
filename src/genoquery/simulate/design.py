"""Who is in the cohort: sample ids, centers, ancestry, sex, birth year, call quality.

Everything here is drawn before any genome is simulated, from one numpy
Generator, so a seed fixes the cohort. Samples are numbered in joint-callset
order (``S000001``...); centers are interleaved over that order. Centers
differ in size and in ancestry mix (a Dirichlet perturbation of
:data:`ANCESTRY_MIX`), like recruitment sites of a real biobank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoquery.simulate.demography import POPULATIONS

ANCESTRY_MIX = {"AFR": 0.22, "EUR": 0.48, "EAS": 0.12, "AMR": 0.18}
"""Cohort-wide expected ancestry proportions (order of POPULATIONS)."""
FEMALE_FRACTION = 0.54
BIRTH_YEARS = (1935, 2004)


@dataclass(frozen=True)
class CohortDesign:
    """Per-sample attributes, all arrays of length n_samples in joint-callset order."""

    sample_id: np.ndarray        # str, "S000001", ...
    center: np.ndarray           # int, 0-based center index (file center{k+1}.vcf.gz)
    ancestry: np.ndarray         # int, index into POPULATIONS
    female: np.ndarray           # bool
    birth_year: np.ndarray       # int
    phased: np.ndarray           # bool: this sample's diploid calls are written with '|'
    call_weight: np.ndarray      # float, relative missing-call propensity (mean 1 within a center)
    n_centers: int

    @property
    def n_samples(self) -> int:
        return len(self.sample_id)

    def center_members(self, k: int) -> np.ndarray:
        """Joint-order indexes of center k's samples (its VCF's sample order)."""
        return np.flatnonzero(self.center == k)


def design_cohort(rng: np.random.Generator, n_samples: int, n_centers: int,
                  phased_fraction: float) -> CohortDesign:
    """Draw the cohort; every center gets at least one sample."""
    width = max(6, len(str(n_samples)))
    sample_id = np.array([f"S{i:0{width}d}" for i in range(1, n_samples + 1)])
    sizes = rng.dirichlet(np.full(n_centers, 6.0))
    center = rng.choice(n_centers, size=n_samples, p=sizes)
    center[:n_centers] = np.arange(n_centers)  # no empty center
    center = rng.permutation(center)
    base = np.array([ANCESTRY_MIX[p] for p in POPULATIONS])
    ancestry = np.empty(n_samples, dtype=np.int64)
    for k in range(n_centers):
        members = np.flatnonzero(center == k)
        mix = rng.dirichlet(40 * base)
        ancestry[members] = rng.choice(len(POPULATIONS), size=len(members), p=mix)
    female = rng.random(n_samples) < FEMALE_FRACTION
    birth_year = rng.integers(BIRTH_YEARS[0], BIRTH_YEARS[1] + 1, size=n_samples)
    phased = rng.random(n_samples) < phased_fraction
    call_weight = rng.gamma(2.0, 0.5, size=n_samples)
    for k in range(n_centers):
        members = center == k
        call_weight[members] /= call_weight[members].mean()
    return CohortDesign(sample_id, center, ancestry, female, birth_year, phased, call_weight, n_centers)
