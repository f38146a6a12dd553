"""Disclosure control for the public and registered tiers (All of Us dissemination rule).

No participant count of 1..``max_suppressed`` (20) is released, nor a number it can be
derived from:

- **Counts.** AC, AN, genotype counts, carriers, cohort, case and control counts: 0 is
  released as 0 for the whole store (what a Beacon says anyway) and withheld for a cohort or
  group (it would tell every member's genotype), 1..20 is ``None`` (JSON ``null``, and the cell is named in the
  row's ``suppressed`` list), larger counts randomly rounded to a multiple of ``rounding`` (10), never below the
  first multiple above 20. The rounding direction is drawn from an HMAC of the store's
  secret, the cohort's membership digest and the cell, so asking again gives the same
  answer (no averaging) while different cohorts get independent errors; a count shown on two
  pages (a participant's view and the public variant page) is rounded under one key. AF is
  recomputed from the released AC and AN.
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

import functools
import hashlib
import hmac
import math
import zlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genoquery.server.auth import Principal, Tier
from genoquery.server.problems import ApiError
from genoquery.server.settings import Settings
from genoquery.server.state import AccessDb

GENOTYPE_CELLS = ("ac", "n_het", "n_hom_alt", "n_hemi")
STAT_CELLS = ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing")
TEST_COUNTS = frozenset(
    {"n", "n_cases", "n_controls", "ac", "an", "mac", "n_carriers", "case_ac", "n_variants"}
    | {"carrier_cases", "carrier_controls", "noncarrier_cases", "noncarrier_controls"}
)
"""Counts of participants or alleles in test rows (association, PheWAS, carrier tables)."""
TEST_STATISTICS = frozenset({"beta", "se", "statistic", "p", "odds_ratio", "p_bonferroni", "q_bh", "firth", "test"})
"""Values computed from the carriers: released only with every count of their row."""
DESCRIPTIVE = frozenset(
    {"variant_key", "contig", "pos", "ref", "alt", "id", "allele", "phenotype", "model", "condition"}
)
"""Columns of test rows that describe the question, not the participants."""
COMPLEMENTS = (("an", "ac"), ("ancestry_an", "ancestry_ac"), ("n", "n_carriers"))
"""(whole, part) pairs: ``whole - part`` (REF copies, non-carriers) counts people too."""
SEPARATED = frozenset({"firth_separated", "separated"})
"""Statuses saying the carriers are all cases or all controls (a 2x2 cell of 0): withheld."""


def digest(indexes: np.ndarray) -> str:
    """A cohort's membership digest: SHA-256 of its sorted sample indexes."""
    return hashlib.sha256(np.asarray(indexes, dtype=np.int64).tobytes()).hexdigest()[:32]


def significant(value: float | bool | str | None, digits: int = 2) -> float | bool | str | None:
    if value is None or isinstance(value, bool | str) or not math.isfinite(value) or value == 0:
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


ROUNDED_KEPT = 1 << 17  # rounded counts remembered per index (~25 MB)


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
        # keyed once: a copy per count skips HMAC's key setup (3.1 us a count against 4.3 us)
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)
        # the same counts recur across answers (a common variant's AC in every participant's view)
        self._rounded = functools.lru_cache(maxsize=ROUNDED_KEPT)(self._round)
        self.haploid_contigs = haploid_contigs  # contigs with haploid calls: there n_hemi counts people
        self.everyone = digest(active)
        self.floor = (self.limit // max(self.rounding, 1) + 1) * max(self.rounding, 1)

    def small(self, n) -> bool:
        return n is not None and 1 <= n <= self.limit

    def count(self, n: int | None, key: str) -> int | None:
        """One released count: 0, ``None`` for 1..20 (withheld: the caller names it in ``suppressed``),
        or ``n`` randomly rounded (keyed by ``key``)."""
        if n is None or n == 0:
            return n
        if self.small(n):
            return None
        r = self.rounding
        if r <= 1 or n % r == 0:
            return int(n)
        return self._rounded(int(n), key)

    def _round(self, n: int, key: str) -> int:
        """``n`` rounded to a multiple of the rounding base, up with probability ``(n % r) / r``
        drawn from an HMAC of ``key``: the same count under the same key always rounds alike."""
        r = self.rounding
        mac = self._keyed.copy()
        mac.update(key.encode())
        u = int.from_bytes(mac.digest()[:8], "big") / 2**64
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
        hidden.update(c for c in STAT_CELLS if c in row and row[c] and out[c] is None)  # every null count is named
        if "af" in row:
            released_an = out.get("an")
            out["af"] = None if "af" in hidden or not released_an else out["ac"] / released_an
        # a structural 0 (n_hemi off the haploid contigs, n_missing) stays 0; in the whole store every 0 does
        hidden = {c for c in hidden if c in row and (row[c] != 0 or (not whole and c in cells) or c == "af")}
        for cell in hidden & set(STAT_CELLS):
            out[cell] = None
        out["suppressed"] = sorted(hidden)
        return out

    def counts(self, row: dict, cells: Sequence[str], key: str) -> tuple[dict, set[str]]:
        """The ``cells`` of ``row`` as released, and those withheld: 0..20, or a count whose
        complement in the row (AN - AC, N - carriers) is 1..20 (REF copies or non-carriers are
        counts of people too). ``key`` + cell keys the rounding."""
        hidden = {c for c in cells if row[c] is not None and 0 <= row[c] <= self.limit}
        for whole, part in COMPLEMENTS:
            if part in cells and row.get(whole) is not None and row[part] is not None:
                if 0 <= row[whole] - row[part] <= self.limit:
                    hidden.add(part)
        return {c: None if c in hidden else self.count(row[c], key + c) for c in cells}, hidden

    def count_columns(
        self, cells: dict[str, pa.Array], row_keys: list[str], suffixes: dict[str, str]
    ) -> tuple[dict[str, list], dict]:
        """:meth:`counts` of many rows at once: ``cells`` maps a count column to its integer
        values (nulls allowed); row i's count in column c is rounded under the key
        ``row_keys[i] + suffixes[c]`` (made only for the counts that are rounded). Returns each
        column released (a list: None where withheld or null) and its withheld mask."""
        values = {c: pc.fill_null(a, -1).to_numpy().astype(np.int64) for c, a in cells.items()}
        known = {c: np.asarray(a.is_valid()) for c, a in cells.items()}
        hidden = {c: known[c] & (v >= 0) & (v <= self.limit) for c, v in values.items()}
        for whole, part in COMPLEMENTS:
            if part in cells and whole in cells:
                rest = values[whole] - values[part]
                hidden[part] |= known[whole] & known[part] & (rest >= 0) & (rest <= self.limit)
        released = {}
        for c, v in values.items():
            out = v.tolist()
            for i in np.flatnonzero(~known[c] | hidden[c]).tolist():
                out[i] = None
            if self.rounding > 1:
                suffix, rounded = suffixes[c], self._rounded
                for i in np.flatnonzero(known[c] & ~hidden[c] & (v % self.rounding != 0)).tolist():
                    out[i] = rounded(out[i], row_keys[i] + suffix)
            released[c] = out
        return released, hidden

    def table_row(self, row: dict, cohort: str | None, ident: str, min_mac: int | None = None) -> dict:
        """A row of counts and test statistics as released. Only known columns leave: descriptive
        ones as they are, counts (:data:`TEST_COUNTS`) of 0..20 withheld (a 0 among cases or
        carriers tells each one's status) and the others rounded by :meth:`count`; when any count
        is withheld, or the fit separated the carriers (a 2x2 cell of 0), the row's statistics,
        AF and status are withheld too, else statistics are given to 2 significant digits. A row
        whose released MAC is under ``min_mac`` is not tested (status ``too_few_carriers``), so
        bisecting ``min_mac`` finds the rounded MAC, never the exact one."""
        released, hidden = self.counts(row, [c for c in row if c in TEST_COUNTS], f"{cohort}|{ident}|")
        out = {c: row[c] for c in row if c in DESCRIPTIVE} | released
        withheld = set(hidden)
        if row.get("status") in SEPARATED:
            withheld.add("status")
        untested = not withheld and min_mac is not None and isinstance(out.get("mac"), int) and out["mac"] < min_mac
        if "status" in row:
            out["status"] = "suppressed" if withheld else ("too_few_carriers" if untested else row["status"])
        stats = [c for c in row if c in TEST_STATISTICS]
        for cell in stats:
            out[cell] = None if withheld or untested else significant(row[cell])
        if "af" in row:
            an, ac = out.get("an"), out.get("ac")
            out["af"] = ac / an if not withheld and isinstance(an, int) and isinstance(ac, int) and an else None
            if out["af"] is None and row["af"] is not None:
                withheld.add("af")
        out["suppressed"] = sorted(withheld | (set(stats) if withheld else set()))
        return out

    # ------------------------------------------------------------------ cohorts

    def check_cohort(self, principal: Principal, indexes: np.ndarray, definition: str) -> str:
        """Refuse (403, :data:`REFUSAL`) a cohort too small or too close to an earlier one; else
        record it and return its digest. ``definition``: the question that chose it (a filter,
        a saved cohort's name, or a group of a breakdown)."""
        if self.problem(principal, indexes, definition):
            raise ApiError(403, self.refusal)
        return self.record(principal, indexes, definition)

    @property
    def refusal(self) -> str:
        """The one message for every refused cohort: which rule refused it would tell about its
        members (empty against small, small against close)."""
        return (
            f"cohort refused by disclosure control: below the controlled tier a cohort must match at least "
            f"{self.min_cohort} samples, leave out at least {self.min_cohort}, and differ by at least "
            f"{self.min_cohort} from every cohort you asked about with another definition"
        )

    def problem(self, principal: Principal, indexes: np.ndarray, definition: str) -> bool:
        """Whether the cohort breaks a rule: fewer than ``min_cohort`` members; or a symmetric
        difference of 0..``min_cohort - 1`` members with the whole store or with a cohort this
        token asked about under another definition (equal membership under a new definition
        would answer "does the difference match anyone?")."""
        size = len(indexes)
        if size < self.min_cohort or self.n_samples - size < self.min_cohort:
            return True
        if principal.tier == Tier.PUBLIC:
            return False
        mask = self._mask(indexes)
        asked = dict(
            self.db.con.execute(
                "SELECT digest, count(*) FILTER (WHERE definition = ?) FROM cohort_definitions "
                "WHERE principal = ? GROUP BY digest",
                [definition, principal.key],
            ).fetchall()
        )
        history = self.db.con.execute(  # fetched whole: an unfinished read would hold a stale snapshot
            "SELECT digest, members FROM cohort_history WHERE principal = ?", [principal.key]
        ).fetchall()
        for digest, stored in history:
            differ = _members_apart(mask, np.frombuffer(zlib.decompress(stored), dtype=np.uint8))
            if differ < self.min_cohort and not (differ == 0 and asked.get(digest, 0)):
                return True
        return False

    def record(self, principal: Principal, indexes: np.ndarray, definition: str) -> str:
        key = digest(indexes)
        if principal.tier != Tier.PUBLIC:
            con = self.db.con
            with con:
                con.execute(
                    "INSERT OR IGNORE INTO cohort_history VALUES (?, ?, ?, ?)",
                    [principal.key, key, len(indexes), zlib.compress(self._mask(indexes).tobytes())],
                )
                con.execute(
                    "INSERT OR REPLACE INTO cohort_definitions VALUES (?, ?, ?)", [principal.key, definition, key]
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
