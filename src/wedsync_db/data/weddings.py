"""Weddings: the couple (partners and planners) and the vendors linked to it see a wedding; the
couple edits it. Weddings are created at signup by service code, not here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field

from wedsync_db.data.rows import (
    ClaimsLike,
    Page,
    Patch,
    Row,
    Table,
    Target,
    get_row,
    patch_of,
    select_page,
    statement,
    update_row,
    user_scope,
)

WeddingStatus = Literal["planning", "confirmed", "completed", "cancelled"]


class Wedding(Row):
    """A wedding as read."""

    id: UUID
    title: str
    wedding_date: date
    venue: str | None
    timezone: str
    status: WeddingStatus
    created_at: datetime
    updated_at: datetime


class WeddingUpdate(Patch):
    """Changes to a wedding (JSON Merge Patch)."""

    not_null: ClassVar[frozenset[str]] = frozenset({"title", "wedding_date", "timezone", "status"})

    title: str | None = Field(default=None, min_length=1)
    wedding_date: date | None = None
    venue: str | None = None
    timezone: str | None = None
    status: WeddingStatus | None = None


WEDDINGS = Table("weddings", "wedding", ("id",), Wedding)


async def list_weddings(
    db: Target,
    claims: ClaimsLike | None,
    *,
    status: WeddingStatus | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[Wedding]:
    """A page of the weddings the user sees, by date."""
    async with user_scope(db, claims) as s:
        return await select_page(
            s,
            WEDDINGS,
            statement("weddings.sql", "list_weddings"),
            [status],
            limit=limit,
            cursor=cursor,
            sort=("wedding_date", "id"),
        )


async def get_wedding(db: Target, claims: ClaimsLike | None, wedding_id: UUID) -> Wedding:
    """One wedding; ``NotFound`` when the user may not see it."""
    async with user_scope(db, claims) as s:
        return await get_row(s, WEDDINGS, (wedding_id,))


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
    patch = patch_of(WeddingUpdate, changes)
    async with user_scope(db, claims) as s:
        return await update_row(s, WEDDINGS, (wedding_id,), expected, patch, merge=merge)
