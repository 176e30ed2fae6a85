"""wedsync-db: WedSync's PostgreSQL schema, tenant isolation, clients, migrations and health."""

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

__version__ = "0.1.0"

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
