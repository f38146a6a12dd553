"""The FastAPI application: ``create_app(store_path, settings)``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from genoquery.server import (
    beacon,
    problems,
    routes_association,
    routes_cohorts,
    routes_individual,
    routes_store,
    routes_variants,
    web,
)
from genoquery.server.audit import AuditLog, AuditMiddleware
from genoquery.server.context import Context
from genoquery.server.limits import TimeLimit
from genoquery.server.settings import ENV_SETTINGS, ENV_STORE, Settings
from genoquery.storage.staging import existing_store
from genoquery.version import __version__

MAX_BODY = 4 << 20  # bytes of a request body (a cohort of 100,000 sample IDs fits)
MAX_URL = 16 << 10  # bytes of path + query: longer ones get 414 here, audited (uvicorn's own limit is 65,535)
# What uvicorn (httptools) refuses itself, before the app (so unaudited), with a plain-text 400
# "Invalid HTTP request received.": named in the audit record written when the server starts.
TRANSPORT_LIMITS = {
    "request_target_bytes": 65_535,
    "content_length": "refused unless one run of digits (signs, spaces, lists, duplicates, overflow)",
    "malformed_request": "a request line or header that is not HTTP/1.1 syntax",
}
DESCRIPTION = """Allele frequencies, carriers, genotypes, cohorts and association over one genoquery store,
and a GA4GH Beacon v2. Send `Authorization: Bearer <token>` (from `genoquery tokens create`) for the
registered, controlled or participant tier; without a token you are public. In the public and
registered tiers counts of 1..20 come back as `null` (named in `suppressed`), larger counts are
rounded, and small or near-duplicate cohorts are refused. Every `/api/v1` answer names its shape's version
in `schema` (`genoquery.api/1`: a count is always an integer or null). Errors are
`{"error": {"status", "message"}}`."""


def create_app(store_path: str | os.PathLike, settings: Settings | None = None) -> FastAPI:
    """The server for one store. Opens the store read-only when it starts (``settings.pool``
    connections) and appends every request to ``STORE/audit.jsonl``."""
    path = existing_store(store_path)
    settings = settings or Settings()
    audit = AuditLog(path, settings.audit_fsync_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.context = Context(path, settings)
        try:
            yield
        finally:
            app.state.context.close()
            audit.close()

    app = FastAPI(
        title="genoquery",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # web.install serves /docs and /redoc from packaged assets (no CDN)
        redoc_url=None,
    )
    problems.install(app)
    for module in (routes_store, routes_variants, routes_individual, routes_association, routes_cohorts, beacon):
        app.include_router(module.router)
    web.install(app)  # the variant browser at /, and the offline API docs
    app.add_middleware(TimeLimit, seconds=settings.request_time_s)  # innermost: the deadline of the work
    app.add_middleware(problems.BodyLimit, limit=MAX_BODY, max_url=MAX_URL)
    app.add_middleware(AuditMiddleware, log=audit)  # added last: outermost, so every refusal is audited
    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn workers call (``genoquery serve --workers N``): store and settings from
    the environment the CLI sets."""
    return create_app(Path(os.environ[ENV_STORE]), Settings.from_env())


def serve(
    store_path: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    settings: Settings | None = None,
    trusted_proxy: str | None = None,
) -> None:
    """Run the server with uvicorn until interrupted: ``workers`` processes on uvloop and httptools
    (the C event loop and HTTP parser of ``uvicorn[standard]``), no access log (the audit log has
    every request). The client address (budgets, audit) is the socket's peer: ``X-Forwarded-For``
    and ``X-Forwarded-Proto`` are honoured only from ``trusted_proxy`` (an address, or a
    comma-separated list). Writes one audit record naming the limits uvicorn enforces unaudited."""
    path = existing_store(store_path)
    os.environ[ENV_STORE] = str(path)
    os.environ[ENV_SETTINGS] = (settings or Settings()).to_env()
    _audit_start(path, host, port, workers, trusted_proxy)
    uvicorn.run(
        "genoquery.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        proxy_headers=trusted_proxy is not None,
        forwarded_allow_ips=trusted_proxy,
    )


def _audit_start(path: Path, host: str, port: int, workers: int, trusted_proxy: str | None) -> None:
    """The audit record of a server start (``method`` SERVER, ``endpoint`` start): where it listens,
    the trusted proxy, the app's own limits and those uvicorn enforces before the app sees a request."""
    log = AuditLog(path, 0)
    try:
        log.write(
            {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "token": None,
                "tier": None,
                "client": None,
                "method": "SERVER",
                "endpoint": "start",
                "params": {
                    "version": __version__,
                    "listen": f"{host}:{port}",
                    "workers": workers,
                    "trusted_proxy": trusted_proxy,
                    "max_url_bytes": MAX_URL,
                    "max_body_bytes": MAX_BODY,
                    **{f"unaudited_{k}": v for k, v in TRANSPORT_LIMITS.items()},
                },
                "status": None,
                "rows": None,
                "ms": None,
            }
        )
    finally:
        log.close()
