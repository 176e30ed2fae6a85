"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from wedsync_db import errors

PROBLEM_JSON = "application/problem+json"

# status code, title, Retry-After seconds
_MAP: list[tuple[type[errors.WedsyncDBError], int, str, int | None]] = [
    (errors.PoolExhausted, 503, "Connection pool exhausted", 1),
    (errors.DatabaseUnavailable, 503, "Database unavailable", 5),
    (errors.PermissionDenied, 403, "Permission denied", None),
    (errors.InvalidClaims, 401, "Invalid claims", None),
    (errors.NotFound, 404, "Not found", None),
    (errors.StaleVersion, 412, "Precondition failed: the row changed", None),
    (errors.PlanLimitExceeded, 402, "Plan limit reached", None),
    (errors.Conflict, 409, "Conflict", None),
    (errors.MigrationFrozen, 423, "Migrations are frozen", None),
    (errors.MigrationLockHeld, 409, "Another migration run holds the lock", 30),
    (errors.DriftDetected, 422, "Migration drift", None),
    (errors.MigrationRefused, 422, "Migration refused by lint", None),
    (errors.MigrationFileError, 422, "Invalid migration files", None),
    (errors.MigrationFailed, 500, "Migration failed", None),
    (errors.LockTimeout, 503, "Lock timeout", 2),
    (errors.StatementTimeout, 503, "Statement timeout", 2),
    (errors.ConfigError, 500, "Configuration error", None),
]


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _details(exc: errors.WedsyncDBError) -> tuple[dict[str, Any], dict[str, str]]:
    """The structured members of an error's problem body, and its extra headers."""
    if isinstance(exc, errors.StaleVersion):
        current = exc.current
        body: dict[str, Any] = {
            "expected_version": exc.expected,
            "conflicting_fields": list(exc.conflicting_fields),
        }
        headers: dict[str, str] = {}
        if isinstance(current, BaseModel):
            body["current"] = current.model_dump(mode="json")
            version = getattr(current, "version", None)
            if isinstance(version, int):
                headers["ETag"] = etag_of(version)
        return body, headers
    if isinstance(exc, errors.PlanLimitExceeded):
        return {"limit": exc.limit, "current": exc.current, "maximum": exc.maximum}, {}
    if isinstance(exc, errors.NotFound):
        return {"resource": exc.what}, {}
    return {}, {}


def etag_of(version: int) -> str:
    """The entity tag of a row at ``version`` (strong: one version, one representation)."""
    return f'"{version}"'


def error_response(exc: errors.WedsyncDBError, **extra: Any) -> JSONResponse:
    """Map one of our exceptions to its HTTP problem."""
    for cls, status, title, retry in _MAP:
        if isinstance(exc, cls):
            body, headers = _details(exc)
            if retry:
                headers["Retry-After"] = str(retry)
            return problem(status, title, str(exc), headers=headers or None, **body, **extra)
    return problem(500, "Database error", str(exc), **extra)


def install(app: FastAPI) -> None:
    """Register the exception handlers."""

    async def wedsync_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.WedsyncDBError)
        return error_response(exc)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers) if exc.headers else None
        detail = exc.detail if isinstance(exc.detail, str) else None
        title = {
            401: "Unauthorized",
            403: "Forbidden",
            402: "Plan limit reached",
            404: "Not found",
            405: "Method not allowed",
            412: "Precondition failed",
            413: "Content too large",
            428: "Precondition required",
            429: "Too many requests",
        }.get(exc.status_code, "HTTP error")
        return problem(exc.status_code, title, detail, headers=headers)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        issues = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(i['loc']) or 'request'}: {i['msg']}" for i in issues)
        return problem(422, "Invalid request", detail or "the request is invalid", errors=issues)

    app.add_exception_handler(errors.WedsyncDBError, wedsync_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
