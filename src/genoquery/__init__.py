"""genoquery: VCF/BCF into a Zarr + DuckDB store answering frequency, carrier and genotype queries.

>>> import genoquery
>>> store = genoquery.ingest("cohort.gq", ["chr20.vcf.gz"], persons="persons.tsv")
>>> store.variants(region="chr20:1-2000000")      # pyarrow.Table, one row per ALT allele
"""

from genoquery.errors import GenoqueryError, InputFileError, NotFoundError, QueryError, RegionError, StoreError
from genoquery.ingest import ingest
from genoquery.query.store import Store, open  # noqa: A004 - genoquery.open(path), as zarr.open
from genoquery.version import __version__

__all__ = [
    "GenoqueryError",
    "InputFileError",
    "NotFoundError",
    "QueryError",
    "RegionError",
    "Store",
    "StoreError",
    "__version__",
    "ingest",
    "open",
]
