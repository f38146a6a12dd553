"""Errors as JSON: ``{"error": {"status": ..., "message": ...}}``, with the right 4xx status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from genoquery.errors import GenoqueryError, NotFoundError, QueryError, RegionError, TimeLimitError
from genoquery.server.beacon_meta import error_response

log = logging.getLogger("genoquery.server")
RETRY_AFTER_S = 10  # of a request stopped at its time limit (503)
# The status of each user-facing error class, most specific first; any other GenoqueryError is 409.
STATUSES = ((NotFoundError, 404), (QueryError, 400), (RegionError, 400))


class ApiError(Exception):
    """An answer the caller can act on: ``status`` (4xx) and a message saying what and how."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def error_body(status: int, message: str) -> dict:
    return {"error": {"status": status, "message": message}}


def status_of(err: GenoqueryError) -> int:
    """The HTTP status of a user-facing error: 503 for the time limit, else by :data:`STATUSES`."""
    if isinstance(err, TimeLimitError):
        return 503
    return next((code for kind, code in STATUSES if isinstance(err, kind)), 409)


def _json(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The error as JSON; under ``/beacon/`` as a Beacon error response."""
    if request.url.path.startswith("/beacon/"):
        return JSONResponse(error_response(status, message), status_code=status, headers=headers)
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def _validation_message(err: RequestValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{where or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


class BodyLimit:
    """ASGI middleware answering 413 in JSON for a request body over ``limit`` bytes: at once when
    Content-Length says so, else (a chunked body) when the bytes read pass the limit; and 414 for a
    path and query over ``max_url`` bytes (below uvicorn's own 65,535, which is refused unaudited)."""

    def __init__(self, app, limit: int, max_url: int | None = None) -> None:
        self.app, self.limit, self.max_url = app, limit, max_url

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            url = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
            if self.max_url is not None and url > self.max_url:
                message = (
                    f"URL of {url} bytes is over the limit of {self.max_url} (path and query); "
                    "define a long cohort with POST /api/v1/cohorts and use its name"
                )
                await JSONResponse(error_body(414, message), status_code=414)(scope, receive, send)
                return
            length = dict(scope["headers"]).get(b"content-length", b"0")
            if not length.isdigit() or int(length) > self.limit:
                status = 413 if length.isdigit() else 400
                response = JSONResponse(
                    error_body(
                        status, f"request body over {self.limit} bytes" if status == 413 else "malformed Content-Length"
                    ),
                    status_code=status,
                )
                await response(scope, receive, send)
                return
            received = 0

            async def limited():
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                if received > self.limit:  # an HTTPException: FastAPI passes it through body parsing
                    raise HTTPException(413, f"request body over {self.limit} bytes")
                return message

            await self.app(scope, limited, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """Map every error to JSON: ours, the library's (4xx), validation (422), and bugs (500, no traceback)."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, err: ApiError) -> JSONResponse:
        return _json(request, err.status, err.message, err.headers)

    @app.exception_handler(GenoqueryError)
    async def _library(request: Request, err: GenoqueryError) -> JSONResponse:
        return _json(request, status_of(err), str(err))

    @app.exception_handler(TimeLimitError)  # the most specific handler wins: before GenoqueryError's
    async def _time_limit(request: Request, err: TimeLimitError) -> JSONResponse:
        return _json(request, 503, str(err), {"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> JSONResponse:
        return _json(request, 422, _validation_message(err))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return _json(request, err.status_code, str(err.detail), getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _json(request, 500, "internal server error (a bug: it is in the server log)")
