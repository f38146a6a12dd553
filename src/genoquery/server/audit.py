"""The append-only audit log ``STORE/audit.jsonl``: one JSON line per request.

Each line: ``time`` (UTC), ``token`` (name, or ``anonymous``), ``tier``, ``client``, ``method``,
``endpoint`` (path), ``params`` (query and path parameters, and a POST body's fields),
``status``, ``rows`` (rows or sites returned, when the answer has rows) and ``ms``. Every
uvicorn worker appends to the file opened with ``O_APPEND``, one ``write`` per line, so lines
never interleave; a background thread fsyncs every ``audit_fsync_s`` (0: after each line).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

from genoquery.server.problems import ApiError
from genoquery.storage.staging import existing_store

AUDIT_FILE = "audit.jsonl"
MAX_PARAM = 500  # characters kept of one parameter value


class AuditLog:
    def __init__(self, store: Path, fsync_s: float) -> None:
        self.path = store / AUDIT_FILE
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_mode & 0o077:  # an older store's log: tokens, clients, parameters
            os.fchmod(self._fd, 0o600)
        self._fsync_s = fsync_s
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self._thread = None
        if fsync_s > 0:
            self._thread = threading.Thread(target=self._syncer, name="audit-fsync", daemon=True)
            self._thread.start()

    def write(self, record: dict) -> None:
        os.write(self._fd, (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode())
        if self._fsync_s > 0:
            self._dirty.set()
        else:
            os.fsync(self._fd)

    def _syncer(self) -> None:
        while not self._closed.is_set():
            if self._dirty.wait(0.5):
                self._dirty.clear()
                os.fsync(self._fd)
                self._closed.wait(self._fsync_s)

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join()
        os.fsync(self._fd)
        os.close(self._fd)


def _clip(value: str) -> str:
    return value if len(value) <= MAX_PARAM else value[:MAX_PARAM] + "..."


class AuditMiddleware:
    """ASGI middleware writing one audit line per HTTP request, after the response is sent.
    Handlers leave ``principal``, ``rows`` and ``body`` (POST fields) in ``request.state``; a
    request refused before its handler (URL or body too long, unknown path) is attributed to the
    token of its ``Authorization`` header here. It must be the outermost middleware."""

    def __init__(self, app, log: AuditLog) -> None:
        self.app, self.log = app, log

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            state = scope.get("state") or {}
            principal = state.get("principal") or _principal(scope)
            params = {
                k: _clip(v)
                for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            }
            params.update({k: _clip(str(v)) for k, v in (state.get("body") or {}).items()})
            client = scope.get("client")
            self.log.write(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "token": principal.name if principal else None,
                    "tier": principal.tier if principal else None,
                    "client": client[0] if client else None,
                    "method": scope["method"],
                    "endpoint": scope["path"],
                    "params": params,
                    "status": status,
                    "rows": state.get("rows"),
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                }
            )


def _principal(scope):  # -> Principal | None
    """Who sent a request that no handler saw: the token of its ``Authorization`` header (None
    without one, or for an unknown or malformed token)."""
    authorization = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
    app = scope.get("app")
    context = getattr(getattr(app, "state", None), "context", None)
    if authorization is None or context is None:
        return None
    try:
        return context.auth.principal(authorization.decode("latin-1"), "")
    except ApiError:
        return None


def read(store: str | Path) -> Iterator[dict]:
    """The audit log's records, oldest first (none if the server never ran)."""
    path = existing_store(store) / AUDIT_FILE
    if not path.exists():
        return
    with path.open() as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
