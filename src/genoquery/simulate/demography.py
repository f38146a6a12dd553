"""Out-of-Africa demography with an admixed American population (msprime).

Parameters are those of Browning et al. (2018, PLoS Genet 14:e1007385),
the model stdpopsim calls ``HomSap/AmericanAdmixture_4B11``: an ancestral
African population grows at 148 kya; Eurasians leave Africa 51 kya through a
bottleneck and split into Europeans and East Asians 23 kya, both growing
exponentially, with migration between all three; 12 generations ago an
admixed American population forms from African (1/6), European (1/3) and
East Asian (1/2, proxy for Indigenous American) ancestry, then grows fast.
Times are in generations (25 years each), sizes in diploid individuals.

Population names are gnomAD-style ancestry labels: AFR, EUR, EAS, AMR
(plus the inactive ancestral ``OOA``). ``size_scale`` multiplies every
population size, e.g. 0.75 for chrX (three X copies per four autosome copies).
"""

from __future__ import annotations

import math

import msprime

POPULATIONS: tuple[str, ...] = ("AFR", "EUR", "EAS", "AMR")
"""Sampled populations, also the ancestry labels of persons.tsv, in code order."""

GENERATION_YEARS = 25
MUTATION_RATE = 1.29e-8
"""Per base pair per generation (Tian et al. 2019, as in stdpopsim HomSap)."""
RECOMBINATION_RATE = 1e-8
"""Per base pair per generation (uniform; chrX uses the same sex-averaged value)."""


def out_of_africa_admixture(size_scale: float = 1.0) -> msprime.Demography:
    """The four-population model above as an ``msprime.Demography``."""
    n_anc, n_afr, n_ooa = 7310, 14474, 1861
    n_eur0, n_eas0 = 1032, 554
    t_afr, t_ooa, t_eur_eas = 148_000 / 25, 51_000 / 25, 23_000 / 25
    r_eur, r_eas = 0.0038, 0.0048
    n_eur = n_eur0 * math.exp(r_eur * t_eur_eas)
    n_eas = n_eas0 * math.exp(r_eas * t_eur_eas)
    t_admix, r_admix = 12, 0.05
    n_amr = 30_000 * math.exp(r_admix * t_admix)
    s = size_scale

    d = msprime.Demography()
    d.add_population(name="AFR", initial_size=n_afr * s, initially_active=True, description="African")
    d.add_population(name="EUR", initial_size=n_eur * s, growth_rate=r_eur, description="European")
    d.add_population(name="EAS", initial_size=n_eas * s, growth_rate=r_eas, description="East Asian")
    d.add_population(name="AMR", initial_size=n_amr * s, growth_rate=r_admix, description="Admixed American")
    d.add_population(name="OOA", initial_size=n_ooa * s, description="Out-of-Africa bottleneck")
    d.set_symmetric_migration_rate(["AFR", "EUR"], 2.5e-5)
    d.set_symmetric_migration_rate(["AFR", "EAS"], 0.78e-5)
    d.set_symmetric_migration_rate(["EUR", "EAS"], 3.11e-5)
    d.add_admixture(time=t_admix, derived="AMR", ancestral=["AFR", "EUR", "EAS"], proportions=[1 / 6, 1 / 3, 1 / 2])
    d.add_population_split(time=t_eur_eas, derived=["EUR", "EAS"], ancestral="OOA")
    d.add_symmetric_migration_rate_change(time=t_eur_eas, populations=["AFR", "OOA"], rate=15e-5)
    d.add_symmetric_migration_rate_change(time=t_ooa, populations=["AFR", "OOA"], rate=0)
    d.add_population_split(time=t_ooa, derived=["OOA"], ancestral="AFR")
    d.add_population_parameters_change(time=t_afr, population="AFR", initial_size=n_anc * s)
    d.sort_events()
    return d
