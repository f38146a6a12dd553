"""Who is in the cohort: sample ids, centers, ancestry, sex, birth year, call quality.

Everything here is drawn before any genome is simulated, from one numpy
Generator, so a seed fixes the cohort. Samples are numbered in joint-callset
order (``S000001``...), which lists center 1's samples, then center 2's, and
so on (a joint callset ordered by batch); a center file has the same samples
in the same order. Centers differ in size and in ancestry mix (a Dirichlet
perturbation of :data:`ANCESTRY_MIX`), like recruitment sites of a biobank.

Phasing is a property of a center's pipeline: ``round(phased_fraction *
n_centers)`` centers (at least one and at most all but one when 0 <
phased_fraction < 1) deliver statistically phased calls (every diploid call
``a|b``); the other centers deliver unphased calls (``a/b``) in which
heterozygous calls are read-backed phased (``a|b``) with probability
:data:`READ_BACKED_PHASED`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoquery.simulate.demography import POPULATIONS

ANCESTRY_MIX = {"AFR": 0.22, "EUR": 0.48, "EAS": 0.12, "AMR": 0.18}
"""Cohort-wide expected ancestry proportions (order of POPULATIONS)."""
FEMALE_FRACTION = 0.54
READ_BACKED_PHASED = 0.1
BIRTH_YEARS = (1935, 2004)


@dataclass(frozen=True)
class CohortDesign:
    """Per-sample attributes, all arrays of length n_samples in joint-callset order."""

    sample_id: np.ndarray  # str, "S000001", ...
    center: np.ndarray  # int, 0-based center index (file center{k+1}.vcf.gz)
    ancestry: np.ndarray  # int, index into POPULATIONS
    female: np.ndarray  # bool
    birth_year: np.ndarray  # int
    phased: np.ndarray  # bool: the sample's center delivers phased calls ('|')
    call_weight: np.ndarray  # float, relative missing-call propensity (mean 1 within a center)
    n_centers: int

    @property
    def n_samples(self) -> int:
        return len(self.sample_id)

    def center_members(self, k: int) -> np.ndarray:
        """Joint-order indexes of center k's samples (a contiguous range, its VCF's sample order)."""
        return np.flatnonzero(self.center == k)

    @property
    def phased_centers(self) -> list[int]:
        """0-based indexes of the centers delivering phased calls."""
        return sorted({int(c) for c in self.center[self.phased]})


def design_cohort(rng: np.random.Generator, n_samples: int, n_centers: int, phased_fraction: float) -> CohortDesign:
    """Draw the cohort; every center gets at least one sample."""
    width = max(6, len(str(n_samples)))
    sample_id = np.array([f"S{i:0{width}d}" for i in range(1, n_samples + 1)])
    sizes = 1 + rng.multinomial(n_samples - n_centers, rng.dirichlet(np.full(n_centers, 6.0)))
    center = np.repeat(np.arange(n_centers), sizes)
    base = np.array([ANCESTRY_MIX[p] for p in POPULATIONS])
    ancestry = np.empty(n_samples, dtype=np.int64)
    for k in range(n_centers):
        members = center == k
        ancestry[members] = rng.choice(len(POPULATIONS), size=int(sizes[k]), p=rng.dirichlet(40 * base))
    female = rng.random(n_samples) < FEMALE_FRACTION
    birth_year = rng.integers(BIRTH_YEARS[0], BIRTH_YEARS[1] + 1, size=n_samples)
    n_phased = round(phased_fraction * n_centers)
    if 0 < phased_fraction < 1 and n_centers > 1:
        n_phased = min(max(n_phased, 1), n_centers - 1)
    phased_center = np.zeros(n_centers, dtype=bool)
    phased_center[rng.permutation(n_centers)[:n_phased]] = True
    phased = phased_center[center]
    call_weight = rng.gamma(2.0, 0.5, size=n_samples)
    for k in range(n_centers):
        members = center == k
        call_weight[members] /= call_weight[members].mean()
    return CohortDesign(sample_id, center, ancestry, female, birth_year, phased, call_weight, n_centers)
