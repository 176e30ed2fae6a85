"""Weddings: the couple (partners and planners) and the vendors linked to it see a wedding; the
couple edits it. Weddings are created at signup by service code, not here."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal
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


WEDDINGS = rows.Table("weddings", "wedding", ("id",), Wedding, WeddingUpdate)

# key: (wedding_id,); see rows.Table
get_wedding, update_wedding = WEDDINGS.get, WEDDINGS.update


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
