"""API tokens and tiers.

A token is ``gq_`` + 32 random bytes (URL-safe base64), shown once by ``genoquery tokens
create``; the access database keeps only its SHA-256. Tiers, from least to most:
``public`` (no token: whole-cohort aggregates, Beacon boolean/count), ``registered``
(aggregates over filter-expression cohorts), ``controlled`` (individual-level data);
``participant`` tokens name one sample and see that person's data only.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from genoquery.errors import GenoqueryError
from genoquery.query.store import open as open_store
from genoquery.server.problems import ApiError
from genoquery.server.state import AccessDb, connect


class Tier(StrEnum):
    """Access tiers (All of Us: public, registered, controlled) and a participant's own view."""

    PUBLIC = "public"
    REGISTERED = "registered"
    CONTROLLED = "controlled"
    PARTICIPANT = "participant"


TOKEN_TIERS = (Tier.REGISTERED, Tier.CONTROLLED, Tier.PARTICIPANT)  # public needs no token
AGGREGATE_TIERS = (Tier.PUBLIC, Tier.REGISTERED)  # counts under disclosure control only
RANK = {Tier.PUBLIC: 0, Tier.REGISTERED: 1, Tier.CONTROLLED: 2}  # what require() compares


@dataclass(frozen=True)
class Principal:
    """Who is asking: ``name`` (token name, or ``anonymous``), ``tier``, and for budgets and
    cohort history a ``key`` (token id, or the client address when anonymous)."""

    name: str
    tier: Tier
    key: str
    sample_id: str | None = None

    @property
    def aggregate_only(self) -> bool:
        return self.tier in AGGREGATE_TIERS


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(store: str | Path, tier: str, name: str, sample_id: str | None = None) -> str:
    """Create a token and return its secret (stored only hashed). A participant token needs the
    ``sample_id`` of a sample of the store; names are unique among active tokens."""
    if tier not in TOKEN_TIERS:
        raise GenoqueryError(f"unknown tier {tier!r}; choose {', '.join(TOKEN_TIERS)} (public needs no token)")
    if (tier == Tier.PARTICIPANT) != (sample_id is not None):
        raise GenoqueryError("a participant token needs --sample SAMPLE_ID, and only a participant token takes one")
    if not name.strip():
        raise GenoqueryError("give the token a --name (who or what uses it)")
    if sample_id is not None:
        _check_sample(store, sample_id)
    secret = "gq_" + secrets.token_urlsafe(32)
    con = connect(store)
    try:
        with con:
            if con.execute("SELECT 1 FROM tokens WHERE name = ? AND revoked_at IS NULL", [name]).fetchone():
                raise GenoqueryError(f"an active token is already named {name!r}; revoke it or choose another name")
            con.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, NULL)",
                [secrets.token_hex(8), name, tier, sample_id, _digest(secret), _now()],
            )
    finally:
        con.close()
    return secret


def _check_sample(store: str | Path, sample_id: str) -> None:
    with open_store(store) as s:
        s.cohort([sample_id])  # a QueryError names an unknown ID


def list_tokens(store: str | Path) -> list[dict]:
    """Every token (never its secret): name, tier, sample_id, created_at, revoked_at."""
    con = connect(store)
    try:
        cur = con.execute("SELECT name, tier, sample_id, created_at, revoked_at FROM tokens ORDER BY created_at")
        columns = [c[0] for c in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def revoke_token(store: str | Path, name: str) -> None:
    """Revoke the active token of that name (a running server stops accepting it within ``token_cache_s``)."""
    con = connect(store)
    try:
        with con:
            if not con.execute(
                "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", [_now(), name]
            ).rowcount:
                raise GenoqueryError(f"no active token named {name!r} (see 'genoquery tokens list')")
    finally:
        con.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Authenticator:
    """Turns an ``Authorization: Bearer`` header into a :class:`Principal` (cached briefly)."""

    def __init__(self, db: AccessDb, cache_s: float) -> None:
        self.db, self.cache_s = db, cache_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def principal(self, authorization: str | None, client: str) -> Principal:
        if authorization is None:
            return Principal("anonymous", Tier.PUBLIC, f"anonymous@{client}")
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(
                401,
                "malformed Authorization header; send 'Authorization: Bearer <token>'",
                {"WWW-Authenticate": "Bearer"},
            )
        found = self._lookup(_digest(secret.strip()))
        if found is None:
            raise ApiError(401, "unknown or revoked token", {"WWW-Authenticate": "Bearer"})
        return found

    def _lookup(self, digest: str) -> Principal | None:
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        row = self.db.con.execute(
            "SELECT token_id, name, tier, sample_id FROM tokens WHERE secret_sha256 = ? AND revoked_at IS NULL",
            [digest],
        ).fetchone()
        found = None if row is None else Principal(row[1], Tier(row[2]), row[0], row[3])
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now, found)
        return found


def require(principal: Principal, tier: str, what: str) -> None:
    """Refuse (403) unless ``principal``'s tier reaches ``tier`` (participant tokens reach none)."""
    if principal.tier == Tier.PARTICIPANT or RANK[principal.tier] < RANK[tier]:
        hint = "send a token" if principal.tier == Tier.PUBLIC else "ask for a token of that tier"
        raise ApiError(
            403 if principal.tier != Tier.PUBLIC else 401,
            f"{what} needs the {tier} tier; you have {principal.tier} ({hint})",
            {"WWW-Authenticate": "Bearer"} if principal.tier == Tier.PUBLIC else None,
        )
