"""Weddings: the couple (partners and planners) and the vendors linked to it see a wedding; the
couple edits it. Weddings are created at signup by service code, not here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field

from wedsync_db.data import rows
from wedsync_db.data.rows import ClaimsLike, Page, Target

WeddingStatus = Literal["planning", "confirmed", "completed", "cancelled"]


class Wedding(rows.Row):
    """A wedding as read."""

    id: UUID
    title: str
    wedding_date: date
    venue: str | None
    timezone: str
    status: WeddingStatus
    created_at: datetime
    updated_at: datetime


class WeddingUpdate(rows.Patch):
    """Changes to a wedding (JSON Merge Patch)."""

    not_null: ClassVar[frozenset[str]] = frozenset({"title", "wedding_date", "timezone", "status"})

    title: str | None = Field(default=None, min_length=1)
    wedding_date: date | None = None
    venue: str | None = None
    timezone: str | None = None
    status: WeddingStatus | None = None


WEDDINGS = rows.Table("weddings", "wedding", ("id",), Wedding)


async def list_weddings(
    db: Target,
    claims: ClaimsLike | None,
    *,
    status: WeddingStatus | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[Wedding]:
    """A page of the weddings the user sees, by date."""
    query = rows.statement("weddings.sql", "list_weddings")
    sort = ("wedding_date", "id")
    return await WEDDINGS.page(db, claims, query, [status], limit=limit, cursor=cursor, sort=sort)


async def get_wedding(db: Target, claims: ClaimsLike | None, wedding_id: UUID) -> Wedding:
    """One wedding; ``NotFound`` when the user may not see it."""
    return await WEDDINGS.get(db, claims, (wedding_id,))


async def update_wedding(
    db: Target,
    claims: ClaimsLike | None,
    wedding_id: UUID,
    expected: int | Wedding,
    changes: WeddingUpdate | Mapping[str, Any],
    *,
    merge: bool = False,
) -> Wedding:
    """Apply ``changes`` at the version read (see ``update_guest``)."""
    patch = rows.patch_of(WeddingUpdate, changes)
    return await WEDDINGS.update(db, claims, (wedding_id,), expected, patch, merge)
