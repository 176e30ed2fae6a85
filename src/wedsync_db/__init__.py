"""wedsync-db: WedSync's PostgreSQL schema, tenant isolation, clients, migrations and health."""

import importlib.metadata

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

try:  # read once: the installed distribution's version (pyproject.toml)
    __version__ = importlib.metadata.version("wedsync-db")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source tree not installed
    __version__ = "0+unknown"

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
