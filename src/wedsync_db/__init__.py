"""wedsync-db: WedSync's PostgreSQL schema, tenant isolation, clients, migrations and health."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wedsync_db.db.client import Claims, Database
    from wedsync_db.db.session import Session
    from wedsync_db.errors import (
        Conflict,
        DatabaseUnavailable,
        PermissionDenied,
        PoolExhausted,
        WedsyncDBError,
    )
    from wedsync_db.settings import Settings, load_settings

    __version__: str

# the public names, each imported from its module on first use (the command line and the
# modules that need none of them start without the client and its pools)
_EXPORTS = {
    "Claims": "wedsync_db.db.client",
    "Database": "wedsync_db.db.client",
    "Session": "wedsync_db.db.session",
    "Conflict": "wedsync_db.errors",
    "DatabaseUnavailable": "wedsync_db.errors",
    "PermissionDenied": "wedsync_db.errors",
    "PoolExhausted": "wedsync_db.errors",
    "WedsyncDBError": "wedsync_db.errors",
    "Settings": "wedsync_db.settings",
    "load_settings": "wedsync_db.settings",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib import metadata

        try:  # the installed distribution's version (pyproject.toml)
            value: Any = metadata.version("wedsync-db")
        except metadata.PackageNotFoundError:  # pragma: no cover - not installed
            value = "0+unknown"
    elif name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'wedsync_db' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "Claims",
    "Conflict",
    "Database",
    "DatabaseUnavailable",
    "PermissionDenied",
    "PoolExhausted",
    "Session",
    "Settings",
    "WedsyncDBError",
    "__version__",
    "load_settings",
]
