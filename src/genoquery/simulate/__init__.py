"""Simulated multi-center cohort: msprime genomes written as bgzipped, tabix-indexed VCFs.

>>> from genoquery.simulate import simulate_cohort
>>> files = simulate_cohort("demo-out", n_samples=300, sequence_length=100_000, seed=7)
>>> files.joint_vcfs[0].name
'cohort.chr20.vcf.gz'

Modules: ``demography`` (msprime model), ``design`` (samples, centers,
ancestry, sex), ``genomes`` (ancestry + mutation runs), ``sites`` (sparse true
genotypes), ``layout``/``calls`` (GT text, missingness, phasing),
``annotate`` (header, ID/QUAL/FILTER/INFO), ``tabix``/``vcf_file`` (with genoquery.bgzf)
(output), ``phenotypes`` (PCs, traits, conditions), ``cohort`` (the driver).
"""

from genoquery.simulate.cohort import CohortFiles, simulate_cohort

__all__ = ["CohortFiles", "simulate_cohort"]
