"""Per-token query budgets against membership inference on rare alleles.

Shringarpure & Bustamante (2015) showed that a few thousand yes/no questions about rare
alleles reveal whether a person's genome is in a beacon; Raisaro et al. (2017) bound the
questions each user may ask. Here every answer of the public or registered tier that
touches an allele with AC 1..``max_suppressed`` in the store (a variant lookup or search,
frequencies, a Beacon query, an association row) costs one unit of the caller's budget:
``Settings.budget`` units per ``budget_window_s`` per token (per client address without a
token). Past it the server answers 429 until old units leave the window. Controlled and
participant tokens are not budgeted (they may see individual data anyway). Use is kept in
the access database, so all workers share one budget.
"""

from __future__ import annotations

import random
import time

from genoquery.server.auth import Principal
from genoquery.server.problems import ApiError
from genoquery.server.state import AccessDb


class Budget:
    def __init__(self, db: AccessDb, limit: int, window_s: float) -> None:
        self.db, self.limit, self.window_s = db, limit, window_s

    def charge(self, principal: Principal) -> None:
        """Spend one unit of ``principal``'s budget, or refuse (429) when none is left."""
        if not principal.aggregate_only:
            return
        now = time.time()
        con = self.db.con
        with con:  # one transaction: concurrent workers cannot both take the last unit
            con.execute("INSERT INTO budget_use VALUES (?, ?)", [principal.key, now])
            used, oldest = con.execute("SELECT count(*), min(at) FROM budget_use WHERE principal = ? AND at >= ?",
                                       [principal.key, now - self.window_s]).fetchone()
            if used > self.limit:
                con.rollback()
                retry = max(1, int(oldest + self.window_s - now))
                raise ApiError(429, f"query budget spent: {self.limit} answers about rare alleles per "
                               f"{self.window_s:g} s; try again in {retry} s", {"Retry-After": str(retry)})
            if random.random() < 0.001:  # forget units older than the window now and then
                con.execute("DELETE FROM budget_use WHERE at < ?", [now - self.window_s])

    def remaining(self, principal: Principal) -> int | None:
        if not principal.aggregate_only:
            return None
        used = self.db.con.execute("SELECT count(*) FROM budget_use WHERE principal = ? AND at >= ?",
                                   [principal.key, time.time() - self.window_s]).fetchone()[0]
        return max(0, self.limit - used)
