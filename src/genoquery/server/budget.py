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

Use is counted per slot of ``budget_window_s / SLOTS`` seconds (one row per caller and slot),
so a charge is one small transaction whatever the use (0.03 ms of CPU; a row per unit made
counting the window grow with it). A unit leaves the window between ``budget_window_s`` and
``budget_window_s`` + one slot after it was spent: never early.
"""

from __future__ import annotations

import math
import random
import time

from genoquery.server.auth import Principal
from genoquery.server.problems import ApiError
from genoquery.server.state import AccessDb

SLOTS = 60  # slots per window


class Budget:
    def __init__(self, db: AccessDb, limit: int, window_s: float) -> None:
        self.db, self.limit, self.window_s = db, limit, window_s
        self.slot_s = window_s / SLOTS

    def charge(self, principal: Principal) -> None:
        """Spend one unit of ``principal``'s budget, or refuse (429) when none is left."""
        if not principal.aggregate_only:
            return
        now = time.time()
        slot = int(now // self.slot_s)
        con = self.db.con
        with con:  # one transaction: concurrent workers cannot both take the last unit
            con.execute(
                "INSERT INTO budget_spent VALUES (?, ?, 1) ON CONFLICT DO UPDATE SET used = used + 1",
                [principal.key, slot],
            )
            used, oldest = self._use(principal, slot)
            if used > self.limit:
                con.rollback()
                retry = max(1, math.ceil((oldest + SLOTS + 1) * self.slot_s - now))
                raise ApiError(
                    429,
                    f"query budget spent: {self.limit} answers about rare alleles per "
                    f"{self.window_s:g} s; try again in {retry} s",
                    {"Retry-After": str(retry)},
                )
            if random.random() < 0.001:  # forget slots that left the window now and then
                con.execute("DELETE FROM budget_spent WHERE slot < ?", [slot - SLOTS])

    def remaining(self, principal: Principal) -> int | None:
        if not principal.aggregate_only:
            return None
        return max(0, self.limit - self._use(principal, int(time.time() // self.slot_s))[0])

    def _use(self, principal: Principal, slot: int) -> tuple[int, int | None]:
        """Units ``principal`` spent in the window ending in ``slot``, and the window's oldest used slot."""
        return self.db.con.execute(
            "SELECT coalesce(sum(used), 0), min(slot) FROM budget_spent WHERE principal = ? AND slot >= ?",
            [principal.key, slot - SLOTS],
        ).fetchone()
