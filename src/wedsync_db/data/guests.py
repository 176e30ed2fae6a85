"""Guests of a wedding: the couple reads and edits its list; a vendor reads it only through an
accepted link with guest access (to anyone else the list does not exist: ``NotFound``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field

from wedsync_db.data import rows
from wedsync_db.data.rows import ClaimsLike, Page, Target

RsvpStatus = Literal["pending", "accepted", "declined", "maybe"]


class Guest(rows.Row):
    """A guest as read (``version`` names this state of the row in an update)."""

    wedding_id: UUID
    id: UUID
    first_name: str
    last_name: str | None
    email: str | None
    rsvp_status: RsvpStatus
    dietary_requirements: list[str]
    table_number: int | None
    plus_one: bool
    plus_one_name: str | None
    notes: str | None
    created_at: datetime
    updated_at: datetime


class GuestUpdate(rows.Patch):
    """Changes to a guest (JSON Merge Patch: null clears a nullable field)."""

    not_null: ClassVar[frozenset[str]] = frozenset(
        {"first_name", "rsvp_status", "dietary_requirements", "plus_one"}
    )

    first_name: str | None = Field(default=None, min_length=1)
    last_name: str | None = None
    email: str | None = None
    rsvp_status: RsvpStatus | None = None
    dietary_requirements: list[str] | None = None
    table_number: int | None = Field(default=None, gt=0)
    plus_one: bool | None = None
    plus_one_name: str | None = None
    notes: str | None = None


class GuestCreate(GuestUpdate):
    """A new guest: a first name, and what else is known (the rest takes the defaults)."""

    first_name: str = Field(min_length=1)


GUESTS = rows.Table("guests", "guest", ("wedding_id", "id"), Guest, GuestUpdate)

# key: (wedding_id, guest_id); see rows.Table
get_guest, update_guest, delete_guest = GUESTS.get, GUESTS.update, GUESTS.delete


async def list_guests(
    db: Target,
    claims: ClaimsLike | None,
    wedding_id: UUID,
    *,
    rsvp: RsvpStatus | Sequence[RsvpStatus] | None = None,
    dietary: str | None = None,
    table: int | None = None,
    search: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[Guest]:
    """A page of a wedding's guests in (last name, first name, id) order. Pass the page's
    ``next_cursor`` to read the next one: every row present throughout is read exactly once,
    whatever is inserted meanwhile. ``search`` matches names and email (case-insensitive)."""
    statuses = [rsvp] if isinstance(rsvp, str) else (list(rsvp) if rsvp is not None else None)
    pattern = None if search is None else rows.like_pattern(search)
    params = [wedding_id, statuses, dietary, table, pattern]
    query = rows.statement("guests.sql", "list_guests")
    sort = ("last_name", "first_name", "id")
    return await GUESTS.page(db, claims, query, params, limit=limit, cursor=cursor, sort=sort)


async def create_guest(
    db: Target, claims: ClaimsLike | None, wedding_id: UUID, guest: GuestCreate | Mapping[str, Any]
) -> Guest:
    """Add a guest to a wedding's list (the couple only: RLS refuses anyone else)."""
    values = {"wedding_id": wedding_id, **rows.patch_of(GuestCreate, guest)}
    return await GUESTS.insert(db, claims, values)


async def bulk_rsvp(
    db: Target,
    claims: ClaimsLike | None,
    wedding_id: UUID,
    guest_ids: Sequence[UUID],
    status: RsvpStatus,
) -> list[Guest]:
    """Set one RSVP status on many guests in one statement, whatever their versions (the status
    is the only field written, so nothing else a concurrent edit changed is overwritten).
    Returns the guests changed; ids the user may not change are left out."""
    query = rows.statement("guests.sql", "bulk_rsvp")
    return await GUESTS.select(db, claims, query, [status, wedding_id, list(guest_ids)])
