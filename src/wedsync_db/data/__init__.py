"""Typed access to the application's rows, always in a user scope (RLS is the only gate).

One module per entity: pydantic models (read, create, update) and async functions that take a
``Database`` and the user's claims, or an open user ``Session`` and ``None``. Updates name the
version they read (optimistic concurrency, see ``data.rows``).
"""

from wedsync_db.data.rows import Page, Patch, Row
from wedsync_db.errors import NotFound, StaleVersion

__all__ = ["NotFound", "Page", "Patch", "Row", "StaleVersion"]
