"""genoquery: VCF/BCF into a Zarr + DuckDB store answering frequency, carrier and genotype queries.

>>> import genoquery
>>> store = genoquery.ingest("cohort.gq", ["chr20.vcf.gz"], persons="persons.tsv")
>>> store.variants(region="chr20:1-2000000")      # pyarrow.Table, one row per ALT allele

``import genoquery`` loads no numpy, DuckDB or pyarrow: :class:`Store` and :func:`open` are
imported on first use, and the ``genoquery`` program (:mod:`genoquery.launch`) can hand a command
to a warm daemon before loading any of them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from genoquery.errors import GenoqueryError, InputFileError, NotFoundError, QueryError, RegionError, StoreError
from genoquery.ingest import ingest
from genoquery.version import __version__

if TYPE_CHECKING:
    from genoquery.query.store import Store, open  # noqa: A004

_FROM_STORE = ("Store", "open")


def __getattr__(name: str):
    """``Store`` and ``open``, from :mod:`genoquery.query.store` on first use."""
    if name in _FROM_STORE:
        return getattr(import_module("genoquery.query.store"), name)
    raise AttributeError(f"module 'genoquery' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


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
