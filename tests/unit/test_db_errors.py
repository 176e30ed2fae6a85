"""Mapping of psycopg / psycopg_pool exceptions onto the wedsync_db hierarchy (pure)."""

from __future__ import annotations

import psycopg
import psycopg_pool
import pytest
from psycopg import errors as pgerr

from wedsync_db import errors
from wedsync_db.db.errors import awrap_errors, convert, wrap_errors

# our error for each server error class
MAPPED: dict[type[Exception], tuple[type[psycopg.Error], ...]] = {
    errors.PermissionDenied: (pgerr.InsufficientPrivilege,),
    errors.Conflict: (
        pgerr.UniqueViolation,
        pgerr.ForeignKeyViolation,
        pgerr.ExclusionViolation,
        pgerr.SerializationFailure,
        pgerr.DeadlockDetected,
    ),
    errors.LockTimeout: (pgerr.LockNotAvailable,),
    errors.StatementTimeout: (pgerr.QueryCanceled,),
    errors.DatabaseUnavailable: (pgerr.AdminShutdown, pgerr.CannotConnectNow),
    errors.QueryError: (pgerr.SyntaxError, pgerr.CheckViolation, pgerr.UndefinedTable),
}


@pytest.mark.parametrize(
    ("driver", "ours"), [(driver, ours) for ours, drivers in MAPPED.items() for driver in drivers]
)
def test_server_errors_map_by_class(driver: type[psycopg.Error], ours: type[Exception]) -> None:
    converted = convert(driver("server said no"))
    assert type(converted) is ours
    assert "server said no" in str(converted)


@pytest.mark.parametrize(
    "driver",
    [
        pgerr.ConnectionException,
        pgerr.AdminShutdown,
        pgerr.CannotConnectNow,
        pgerr.ConnectionFailure,
        pgerr.CrashShutdown,
        pgerr.TooManyConnections,
    ],
)
def test_server_side_unavailability_means_unavailable(driver: type[psycopg.Error]) -> None:
    # e.g. 57P02 reaches every session when another backend crashes: retry later, not a 500
    assert isinstance(convert(driver("terminating connection")), errors.DatabaseUnavailable)


@pytest.mark.parametrize(
    ("driver", "sqlstate"),
    [
        (pgerr.LockNotAvailable, "55P03"),
        (pgerr.QueryCanceled, "57014"),
        (pgerr.CheckViolation, "23514"),
    ],
)
def test_query_errors_keep_the_sqlstate(driver: type[psycopg.Error], sqlstate: str) -> None:
    converted = convert(driver("x"))
    assert isinstance(converted, errors.QueryError)
    assert converted.sqlstate == sqlstate


def test_client_side_connection_errors_mean_unavailable() -> None:
    converted = convert(psycopg.OperationalError("connection failed: Connection refused"))
    assert isinstance(converted, errors.DatabaseUnavailable)
    assert "Connection refused" in str(converted)


def test_pool_errors() -> None:
    timeout = convert(psycopg_pool.PoolTimeout("no connection"), pool="user", timeout=0.5)
    assert isinstance(timeout, errors.PoolExhausted)
    assert isinstance(timeout, errors.DatabaseUnavailable)
    assert timeout.pool == "user" and timeout.timeout == 0.5
    assert "0.5s" in str(timeout)
    queue_full = convert(psycopg_pool.TooManyRequests("queue full"), pool="user", timeout=1)
    assert isinstance(queue_full, errors.PoolExhausted)
    closed = convert(psycopg_pool.PoolClosed("closed"), pool="service")
    assert type(closed) is errors.DatabaseUnavailable
    assert "service" in str(closed)


def test_a_conflict_without_server_details_has_no_constraint() -> None:
    converted = convert(pgerr.UniqueViolation("duplicate"))
    assert isinstance(converted, errors.Conflict)
    assert converted.constraint is None


def test_our_own_and_foreign_exceptions_pass_through_unchanged() -> None:
    ours = errors.PermissionDenied("nope")
    assert convert(ours) is ours
    foreign = KeyError("x")
    assert convert(foreign) is foreign


def test_only_the_first_line_of_the_message_is_kept() -> None:
    converted = convert(pgerr.SyntaxError('syntax error at "selec"\nLINE 1: selec 1\n        ^'))
    assert str(converted) == 'syntax error at "selec"'


def test_wrap_errors_keeps_the_cause() -> None:
    original = pgerr.InsufficientPrivilege("permission denied for table guests")
    with pytest.raises(errors.PermissionDenied) as info, wrap_errors():
        raise original
    assert info.value.__cause__ is original


async def test_awrap_errors_keeps_the_cause() -> None:
    original = pgerr.LockNotAvailable("could not obtain lock")
    with pytest.raises(errors.LockTimeout) as info:
        async with awrap_errors("user"):
            raise original
    assert info.value.__cause__ is original


def test_wrap_errors_leaves_unrelated_exceptions_alone() -> None:
    with pytest.raises(ZeroDivisionError), wrap_errors():
        raise ZeroDivisionError


def test_every_wedsync_error_shares_one_root() -> None:
    for cls in (
        errors.ConfigError,
        errors.EmbeddedServerError,
        errors.DatabaseUnavailable,
        errors.PoolExhausted,
        errors.InvalidClaims,
        errors.PermissionDenied,
        errors.Conflict,
        errors.QueryError,
        errors.LockTimeout,
        errors.StatementTimeout,
        errors.MigrationError,
    ):
        assert issubclass(cls, errors.WedsyncDBError)


def test_pool_exhausted_tells_a_refusal_from_a_wait() -> None:
    refused = errors.PoolExhausted("user", 5.0, waiting=200)
    assert "refused the request at once: 200 requests were already waiting" in str(refused)
    waited = errors.PoolExhausted("user", 5.0)
    assert "no free connection within 5s" in str(waited) and "waiting" not in str(waited)
    assert not hasattr(waited, "waiting")
