"""A vendor's CRM clients: visible to and edited by its organization's members in the vendor
portal only (the couple app never sees them)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from wedsync_db.data.rows import (
    ClaimsLike,
    Page,
    Patch,
    Row,
    Table,
    Target,
    delete_row,
    get_row,
    insert_row,
    like_pattern,
    patch_of,
    select_page,
    statement,
    update_row,
    user_scope,
)

ClientStatus = Literal["lead", "booked", "completed", "cancelled"]


class Client(Row):
    """A client as read."""

    organization_id: UUID
    id: UUID
    partner1_name: str
    partner2_name: str | None
    email: str | None
    phone: str | None
    wedding_date: date | None
    venue: str | None
    status: ClientStatus
    external_ref: str | None
    notes: str | None
    created_at: datetime
    updated_at: datetime


class ClientCreate(BaseModel):
    """A new client; what is left out takes the database's default."""

    model_config = ConfigDict(extra="forbid")

    partner1_name: str = Field(min_length=1)
    partner2_name: str | None = None
    email: str | None = None
    phone: str | None = None
    wedding_date: date | None = None
    venue: str | None = None
    status: ClientStatus = "lead"
    external_ref: str | None = None
    notes: str | None = None


class ClientUpdate(Patch):
    """Changes to a client (JSON Merge Patch)."""

    not_null: ClassVar[frozenset[str]] = frozenset({"partner1_name", "status"})

    partner1_name: str | None = Field(default=None, min_length=1)
    partner2_name: str | None = None
    email: str | None = None
    phone: str | None = None
    wedding_date: date | None = None
    venue: str | None = None
    status: ClientStatus | None = None
    external_ref: str | None = None
    notes: str | None = None


CLIENTS = Table("clients", "client", ("organization_id", "id"), Client)


async def list_clients(
    db: Target,
    claims: ClaimsLike | None,
    organization_id: UUID,
    *,
    status: ClientStatus | None = None,
    search: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[Client]:
    """A page of an organization's clients by first partner's name; ``search`` matches the
    partners' names and the email (case-insensitive)."""
    pattern = None if search is None else like_pattern(search)
    async with user_scope(db, claims) as s:
        return await select_page(
            s,
            CLIENTS,
            statement("clients.sql", "list_clients"),
            [organization_id, status, pattern],
            limit=limit,
            cursor=cursor,
            sort=("partner1_name", "id"),
        )


async def get_client(
    db: Target, claims: ClaimsLike | None, organization_id: UUID, client_id: UUID
) -> Client:
    """One client; ``NotFound`` when the user may not see it."""
    async with user_scope(db, claims) as s:
        return await get_row(s, CLIENTS, (organization_id, client_id))


async def create_client(
    db: Target,
    claims: ClaimsLike | None,
    organization_id: UUID,
    client: ClientCreate | Mapping[str, Any],
) -> Client:
    """Add a client to an organization's CRM (its members, in the vendor portal)."""
    new = client if isinstance(client, ClientCreate) else ClientCreate.model_validate(client)
    values = {"organization_id": organization_id, **new.model_dump(exclude_unset=True)}
    async with user_scope(db, claims) as s:
        return await insert_row(s, CLIENTS, values)


async def update_client(
    db: Target,
    claims: ClaimsLike | None,
    organization_id: UUID,
    client_id: UUID,
    expected: int | Client,
    changes: ClientUpdate | Mapping[str, Any],
    *,
    merge: bool = False,
) -> Client:
    """Apply ``changes`` at the version read (see ``update_guest``)."""
    patch = patch_of(ClientUpdate, changes)
    async with user_scope(db, claims) as s:
        key = (organization_id, client_id)
        return await update_row(s, CLIENTS, key, expected, patch, merge=merge)


async def delete_client(
    db: Target,
    claims: ClaimsLike | None,
    organization_id: UUID,
    client_id: UUID,
    expected: int | None = None,
) -> None:
    """Remove a client (only at version ``expected`` when given)."""
    async with user_scope(db, claims) as s:
        await delete_row(s, CLIENTS, (organization_id, client_id), expected)
