"""genoquery: VCF/BCF into a Zarr + DuckDB store answering frequency, carrier and genotype queries.

>>> import genoquery
>>> store = genoquery.ingest("cohort.gq", ["chr20.vcf.gz"], persons="persons.tsv")
>>> store.variants(region="chr20:1-2000000")      # pyarrow.Table, one row per ALT allele
"""

from genoquery.errors import GenoqueryError, InputFileError, QueryError, RegionError, StoreError
from genoquery.ingest import ingest
from genoquery.query.store import Store, open

__version__ = "0.1.0"

__all__ = [
    "GenoqueryError", "InputFileError", "QueryError", "RegionError", "StoreError",
    "Store", "ingest", "open", "__version__",
]
