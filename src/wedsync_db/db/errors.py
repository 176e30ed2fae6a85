"""Conversion of driver errors into wedsync_db exceptions (the one driver boundary)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import psycopg
import psycopg_pool
from psycopg import errors as pgerr

from wedsync_db import errors

# raised by wedsync.verified_claims() when claims are not signed with the database's key
CLAIMS_REJECTED = "WS401"
# raised by wedsync.refuse_over_limit() (the usage triggers); the detail is JSON with the limit
PLAN_LIMIT_EXCEEDED = "WS402"

_CONFLICTS = (
    pgerr.UniqueViolation,
    pgerr.ForeignKeyViolation,
    pgerr.ExclusionViolation,
    pgerr.SerializationFailure,
    pgerr.DeadlockDetected,
)


def convert(exc: BaseException, *, pool: str = "database", timeout: float = 0.0) -> BaseException:
    """Map a psycopg / psycopg_pool exception onto our hierarchy (others pass through)."""
    if isinstance(exc, errors.WedsyncDBError):
        return exc
    if isinstance(exc, psycopg_pool.TooManyRequests):
        return errors.PoolExhausted(pool, timeout)
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return errors.PoolExhausted(pool, timeout)
    if isinstance(exc, psycopg_pool.PoolClosed):
        return errors.DatabaseUnavailable(f"the {pool} pool is closed")
    if not isinstance(exc, psycopg.Error):
        return exc
    if exc.sqlstate == PLAN_LIMIT_EXCEEDED:
        return _plan_limit(exc)
    message = _message(exc)
    if isinstance(exc, pgerr.InsufficientPrivilege) or exc.sqlstate == CLAIMS_REJECTED:
        return errors.PermissionDenied(message)
    if isinstance(exc, _CONFLICTS):
        return errors.Conflict(message, constraint=exc.diag.constraint_name)
    if isinstance(exc, pgerr.LockNotAvailable):
        return errors.LockTimeout(message, exc.sqlstate)
    if isinstance(exc, pgerr.QueryCanceled):
        return errors.StatementTimeout(message, exc.sqlstate)
    if _unavailable(exc):
        return errors.DatabaseUnavailable(f"database unavailable: {message}")
    return errors.QueryError(message, exc.sqlstate)


# SQLSTATEs that mean "try again later", not "your statement is wrong": class 08 (connection
# exception), operator intervention (shutdown, crash of another backend, cannot connect now,
# database dropped) and too many connections.
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "57P05", "53300"})


def _unavailable(exc: psycopg.Error) -> bool:
    state = exc.sqlstate
    if state is None:
        # no SQLSTATE: the client lost or could not make the connection
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return state.startswith("08") or state in _UNAVAILABLE_STATES


def _plan_limit(exc: psycopg.Error) -> errors.PlanLimitExceeded:
    try:
        detail = json.loads(exc.diag.message_detail or "{}")
    except ValueError:
        detail = None
    if not isinstance(detail, dict):  # a WS402 raised by other SQL: its message, numbers unknown
        detail = {}
    return errors.PlanLimitExceeded(
        str(detail.get("limit", "")),
        int(detail.get("current", 0)),
        int(detail.get("maximum", 0)),
        exc.diag.message_primary,
    )


def _message(exc: psycopg.Error) -> str:
    # first line only: the server's message never contains the connection password
    text = str(exc).strip().splitlines()
    primary = text[0] if text else type(exc).__name__
    detail = exc.diag.message_detail if exc.sqlstate else None
    return f"{primary} ({detail})" if detail else primary


@contextlib.contextmanager
def wrap_errors(pool: str = "database", timeout: float = 0.0) -> Iterator[None]:
    """Re-raise driver errors as wedsync_db errors with the original as __cause__."""
    try:
        yield
    except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
        converted = convert(exc, pool=pool, timeout=timeout)
        if converted is exc:
            raise
        raise converted from exc


@contextlib.asynccontextmanager
async def awrap_errors(pool: str = "database", timeout: float = 0.0) -> AsyncIterator[None]:
    """Async variant of :func:`wrap_errors`."""
    with wrap_errors(pool, timeout):
        yield
