"""Genotype-phenotype association: one package, one job each.

- :mod:`.scan`: ``Store.associate`` (GWAS over a region), ``Store.phewas`` and carrier tables;
- :mod:`.design`: phenotypes and covariates into a design matrix for a cohort;
- :mod:`.dosages`: one batch's calls into allele dosages; :mod:`.store_dosages`: every batch's;
- :mod:`.regression`: linear, logistic and Firth regression kernels;
- :mod:`.plots`: Manhattan, QQ, PheWAS and ancestry plots (matplotlib).
"""
