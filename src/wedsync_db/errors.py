"""One exception hierarchy for the whole package.

Driver errors are converted at the `db/` boundary and keep the original as ``__cause__``.
"""

from __future__ import annotations


class WedsyncDBError(Exception):
    """Root of every error raised by wedsync_db."""


class ConfigError(WedsyncDBError):
    """A setting is missing or unsafe; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


class EmbeddedServerError(WedsyncDBError):
    """The embedded PostgreSQL server could not be initialised, started or stopped."""


class DatabaseUnavailable(WedsyncDBError):
    """The database cannot be reached (connection refused, server shutting down, timeouts)."""

    def __init__(self, message: str, *, pool: str | None = None) -> None:
        # the pool whose connection failed, when one is to blame
        self.pool = pool
        super().__init__(message)


class PoolExhausted(DatabaseUnavailable):
    """No connection could be checked out in time; callers should retry later."""

    def __init__(self, pool: str, timeout: float, *, waiting: int | None = None) -> None:
        """``waiting``: refused at once, no time spent waiting, because that many requests
        were already waiting; None: no connection came free within ``timeout`` seconds."""
        self.pool = pool
        self.timeout = timeout
        if waiting is not None:
            message = (
                f"the {pool} pool refused the request at once: {waiting} requests were already "
                "waiting (WEDSYNC_POOL_MAX_WAITING); retry later or raise the connection budget"
            )
        else:
            message = (
                f"the {pool} pool had no free connection within {timeout:g}s; "
                "retry later or raise the connection budget"
            )
        super().__init__(message, pool=pool)


class InvalidClaims(WedsyncDBError, ValueError):
    """User claims were malformed, so no scope was opened."""


class PermissionDenied(WedsyncDBError):
    """The database refused the operation for the current role (RLS, grants)."""


class Conflict(WedsyncDBError):
    """A uniqueness, foreign-key or optimistic-concurrency conflict."""

    def __init__(self, message: str, constraint: str | None = None) -> None:
        self.constraint = constraint
        super().__init__(message)


class PlanLimitExceeded(WedsyncDBError):
    """A write would take an organization's (or a wedding's) usage beyond its plan's maximum
    (SQLSTATE WS402); nothing was written."""

    def __init__(self, limit: str, current: int, maximum: int, message: str | None = None) -> None:
        self.limit = limit
        self.current = current
        self.maximum = maximum
        super().__init__(
            message
            or f"plan limit reached: {limit} is at {current} of {maximum}; "
            "upgrade the plan or remove some first"
        )


class ImportRefused(WedsyncDBError):
    """An import file cannot be imported at all (not text, no header, a required column
    missing, a column map that names nothing); the message says what to change."""


class NotFound(WedsyncDBError):
    """The row does not exist or the current user cannot see it (the two are never told apart,
    so a row's existence does not leak to someone without access)."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} not found")


class StaleVersion(Conflict):
    """An update or delete named a version the row no longer has: ``current`` is the row as it
    is now, ``conflicting_fields`` the changed fields that someone else changed meanwhile."""

    def __init__(
        self, what: str, current: object, conflicting_fields: tuple[str, ...], expected: int
    ) -> None:
        self.what = what
        self.current = current
        self.conflicting_fields = conflicting_fields
        self.expected = expected
        version = getattr(current, "version", None)
        fields = ", ".join(conflicting_fields) or "none"
        super().__init__(
            f"{what} changed since version {expected} (now {version}); conflicting fields: {fields}"
        )


class QueryError(WedsyncDBError):
    """Any other error reported by the server for a statement."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        self.sqlstate = sqlstate
        super().__init__(message)


class LockTimeout(QueryError):
    """A statement gave up waiting for a lock (SQLSTATE 55P03)."""


class StatementTimeout(QueryError):
    """A statement ran longer than its statement_timeout (SQLSTATE 57014)."""


class MigrationError(WedsyncDBError):
    """Base class for migration failures."""


class MigrationFileError(MigrationError):
    """A migration file is malformed (bad name, duplicate version, unsplittable SQL)."""


class DriftDetected(MigrationError):
    """Applied history and files on disk disagree."""


class MigrationRefused(MigrationError):
    """Lint or policy refused to run the pending migrations."""


class MigrationFrozen(MigrationError):
    """The freeze policy forbids running these migrations now."""


class MigrationLockHeld(MigrationError):
    """Another migration run holds the advisory lock."""


class MigrationFailed(MigrationError):
    """A migration file failed; its transaction was rolled back."""


class BackupError(WedsyncDBError):
    """A backup, verification, restore or prune could not be done; the message says why."""


class BackupVerificationFailed(BackupError):
    """A backup was checked and found wanting (manifest, amcheck or fingerprint)."""
