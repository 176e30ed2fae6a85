"""The data API under ``/api/v1``: the applications' rows, in the calling user's scope.

Each area has its own module and ``APIRouter``; :func:`router` joins them. The operator routes
(``/api/database``, ``/health``) are separate and take the service key instead.
"""

from __future__ import annotations

from fastapi import APIRouter

from wedsync_db.api.v1 import changes, imports, organizations, weddings

PREFIX = "/api/v1"


def router() -> APIRouter:
    """Every data API route, under ``/api/v1``."""
    root = APIRouter(prefix=PREFIX)
    for module in (organizations, weddings, changes, imports):
        root.include_router(module.router)
    return root
