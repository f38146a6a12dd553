"""Disclosure control for the public and registered tiers (All of Us dissemination rule).

No participant count of 1..``max_suppressed`` (20) is released, nor a number it can be
derived from:

- **Counts.** AC, AN, genotype counts, carriers, cohort, case and control counts: 0 is
  released as 0 for the whole store (what a Beacon says anyway) and withheld for a cohort or
  group (it would tell every member's genotype), 1..20 is ``"<=20"`` (and the cell is named in the row's ``suppressed``
  list), larger counts randomly rounded to a multiple of ``rounding`` (10), never below the
  first multiple above 20. The rounding direction is drawn from an HMAC of the store's
  secret, the cohort's membership digest and the cell, so asking again gives the same
  answer (no averaging) while different cohorts get independent errors. AF is recomputed
  from the released AC and AN.
- **Linked cells.** ``AC = n_het + 2 n_hom_alt + n_hemi (+ partial calls)`` and
  ``AN - AC`` is the REF allele count: when any of AC, AN - AC, n_het, n_hom_alt, n_hemi is
  withheld, all of AC, AF, n_het, n_hom_alt and n_hemi are suppressed. An ``n_missing`` of 1..20
  is withheld; AN (= 2 x called samples) stays, rounded, so it tells n_missing only to +-5 (with
  ``rounding = 1`` AN and AF are withheld too). Test statistics (p, beta, odds ratio)
  of a row with a suppressed count are withheld, the others are given to 2 significant digits.
- **Cohorts.** Aggregate-tier cohorts are filter expressions (sample lists need the
  controlled tier). A cohort of fewer than ``min_cohort`` (50) members is refused, and so is
  one whose symmetric difference with the whole store or with any cohort the same token was
  answered for before is 1..``min_cohort - 1`` members (the differencing attack "A and A minus
  one person"). Each group of a ``by`` breakdown is such a cohort: groups failing the test are
  withheld. Combinations of several allowed cohorts (e.g. B1+x, B2+x, B1+B2) pass the test;
  against those, the rounding errors of the three answers (up to +-9 each) swamp the 0..2 copies
  of one person, and budgets bound how many such combinations a token can collect.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import zlib
from collections.abc import Sequence

import numpy as np

from genoquery.server.auth import Principal
from genoquery.server.problems import ApiError
from genoquery.server.settings import Settings
from genoquery.server.state import AccessDb

GENOTYPE_CELLS = ("ac", "n_het", "n_hom_alt", "n_hemi")
STAT_CELLS = ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing")


def digest(indexes: np.ndarray) -> str:
    """A cohort's membership digest: SHA-256 of its sorted sample indexes."""
    return hashlib.sha256(np.asarray(indexes, dtype=np.int64).tobytes()).hexdigest()[:32]


def significant(value: float | None, digits: int = 2) -> float | None:
    if value is None or not math.isfinite(value) or value == 0:
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


class Disclosure:
    def __init__(
        self,
        settings: Settings,
        secret: bytes,
        db: AccessDb,
        active: np.ndarray,
        n_indexes: int,
        haploid_contigs: set[str],
    ) -> None:
        """``active``: indexes of the samples not withdrawn, of ``n_indexes`` sample indexes."""
        self.limit, self.min_cohort, self.rounding = settings.max_suppressed, settings.min_cohort, settings.rounding
        self.secret, self.db, self.n_samples, self.n_indexes = secret, db, len(active), n_indexes
        self.haploid_contigs = haploid_contigs  # contigs with haploid calls: there n_hemi counts people
        self.everyone = digest(active)
        self.token = f"<={self.limit}"
        self.floor = (self.limit // max(self.rounding, 1) + 1) * max(self.rounding, 1)

    def small(self, n) -> bool:
        return n is not None and 1 <= n <= self.limit

    def count(self, n: int | None, key: str) -> int | str | None:
        """One released count: 0, ``"<=20"``, or ``n`` randomly rounded (keyed by ``key``)."""
        if n is None or n == 0:
            return n
        if self.small(n):
            return self.token
        r = self.rounding
        if r <= 1 or n % r == 0:
            return int(n)
        u = int.from_bytes(hmac.new(self.secret, key.encode(), hashlib.sha256).digest()[:8], "big") / 2**64
        down = n - n % r
        return int(max(down + r if u < (n % r) / r else down, self.floor))

    def stat_row(self, row: dict, cohort: str, group: str = "") -> dict:
        """A frequency row (AC, AN, AF, genotype counts) as released; ``suppressed`` names withheld
        cells. Outside the whole store (a cohort, or a group of a breakdown) a count of 0 is withheld
        like 1..20: "no member carries it" tells each member's genotype."""
        out = dict(row)
        key = f"{cohort}|{row['variant_key']}|{group}|"
        whole = cohort == self.everyone and not group

        def low(n) -> bool:
            return n is not None and (self.small(n) or (n == 0 and not whole))

        an, ac = row.get("an"), row.get("ac")
        cells = GENOTYPE_CELLS if row.get("contig") in self.haploid_contigs else GENOTYPE_CELLS[:3]
        hidden = set()
        if any(low(row.get(c)) for c in cells) or (an is not None and low(an - ac)):
            hidden.update((*GENOTYPE_CELLS, "af"))
        if self.small(row.get("n_missing")):  # AN = 2 x called samples: exact AN would tell n_missing
            hidden.update(("n_missing",) if self.rounding > 1 else ("n_missing", "an", "af"))
        if self.small(an):
            hidden.update(("an", "af"))
        for cell in STAT_CELLS:
            if cell in row:
                out[cell] = 0 if row[cell] == 0 else self.count(row[cell], key + cell)
        if "af" in row:
            released_an = out.get("an")
            out["af"] = None if "af" in hidden or not released_an else out["ac"] / released_an
        # a structural 0 (n_hemi off the haploid contigs, n_missing) stays 0; in the whole store every 0 does
        hidden = {c for c in hidden if c in row and (row[c] != 0 or (not whole and c in cells) or c == "af")}
        for cell in hidden & set(STAT_CELLS):
            out[cell] = self.token
        out["suppressed"] = sorted(hidden)
        return out

    def table_row(self, row: dict, cohort: str, counts: Sequence[str], stats: Sequence[str], ident: str) -> dict:
        """A row of counts and test statistics: counts of 0..20 withheld (a 0 among cases or carriers
        tells each one's status), the others released by :meth:`count`; the statistics withheld
        when a count is, else given to 2 significant digits."""
        out = dict(row)
        key = f"{cohort}|{ident}|"
        hidden = {c for c in counts if row.get(c) is not None and 0 <= row[c] <= self.limit}
        for cell in counts:
            out[cell] = self.token if cell in hidden else self.count(row.get(cell), key + cell)
        for cell in stats:
            out[cell] = None if hidden else significant(row.get(cell))
        out["suppressed"] = sorted(hidden | (set(stats) if hidden else set()))
        return out

    # ------------------------------------------------------------------ cohorts

    def check_cohort(self, principal: Principal, indexes: np.ndarray, what: str = "cohort") -> str:
        """Refuse (403) a cohort too small or too close to an earlier one; returns its digest."""
        problem = self.problem(principal, indexes)
        if problem:
            raise ApiError(403, f"{what} refused by disclosure control: {problem}")
        return self.record(principal, indexes)

    def problem(self, principal: Principal, indexes: np.ndarray) -> str | None:
        size = len(indexes)
        if size < self.min_cohort:
            return f"it has fewer than {self.min_cohort} members"
        if 0 < self.n_samples - size < self.min_cohort:
            return (
                f"it leaves out fewer than {self.min_cohort} of the store's samples (the difference "
                "would be a cohort too small to report)"
            )
        if principal.tier == "public":
            return None
        mask = self._mask(indexes)
        for (stored,) in self.db.con.execute("SELECT members FROM cohort_history WHERE principal = ?", [principal.key]):
            differ = _members_apart(mask, np.frombuffer(zlib.decompress(stored), dtype=np.uint8))
            if 0 < differ < self.min_cohort:
                return (
                    f"it differs from a cohort you queried before by fewer than {self.min_cohort} "
                    "members (differencing)"
                )
        return None

    def record(self, principal: Principal, indexes: np.ndarray) -> str:
        key = digest(indexes)
        if principal.tier != "public":
            con = self.db.con
            with con:
                con.execute(
                    "INSERT OR IGNORE INTO cohort_history VALUES (?, ?, ?, ?)",
                    [principal.key, key, len(indexes), zlib.compress(self._mask(indexes).tobytes())],
                )
        return key

    def _mask(self, indexes: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.n_indexes, dtype=bool)
        mask[indexes] = True
        return np.packbits(mask)


def _members_apart(a: np.ndarray, b: np.ndarray) -> int:
    """Samples in one of two packed membership masks and not in the other (a mask recorded
    before an append is shorter: the appended samples are in neither)."""
    width = max(len(a), len(b))
    return int(np.unpackbits(np.pad(a, (0, width - len(a))) ^ np.pad(b, (0, width - len(b)))).sum())
