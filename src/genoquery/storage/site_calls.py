"""The encoded calls of a block of sites, as the readers hand them to the kernels.

Apart from the reader (:mod:`genoquery.storage.call_reader`, which loads zarr), so the carriers of
a rare variant, kept in its index row, are answered without loading zarr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genoquery.storage.wide_calls import WideCalls

SITE_COLUMNS = (
    "site_row, len(alleles) AS n_alleles, dense_row, haploid_pattern, listed_start, n_listed, "
    "missing_start, n_missing_tokens, batch_row"
)
SITE_NAMES = [c.split(" AS ")[-1].strip() for c in SITE_COLUMNS.split(",")]  # the columns' names


@dataclass(frozen=True)
class SiteCalls:
    """The encoded calls of a block of consecutive sites of one batch.

    Per site (``n``): ``site_row``, ``n_alleles`` (REF included), ``dense`` (its rank among
    the block's dense sites, its row in ``codes`` when they were read; -1 for a sparse site),
    ``pattern`` (haploid mask id or -1), ``listed`` (n + 1) offsets into ``listed_sample``
    (int32) / ``listed_gt`` (m, 2) int8, and ``missing`` (n + 1) offsets into
    ``missing_tokens`` (uint16, see :mod:`genoquery.storage.call_codes`; empty unless asked
    for). ``codes`` is (dense sites, ceil(samples / 4)) uint8, or empty when not read. ``wide``:
    the sites' calls of ploidy above 2 (rows: site indexes), whose stand-ins are missing calls.
    """

    site_row: np.ndarray
    n_alleles: np.ndarray
    dense: np.ndarray
    pattern: np.ndarray
    listed: np.ndarray
    listed_sample: np.ndarray
    listed_gt: np.ndarray
    missing: np.ndarray
    missing_tokens: np.ndarray
    codes: np.ndarray
    wide: WideCalls = field(default_factory=WideCalls.empty)
