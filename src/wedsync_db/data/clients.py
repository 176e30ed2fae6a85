"""A vendor's CRM clients: visible to and edited by its organization's members in the vendor
portal only (the couple app never sees them)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field

from wedsync_db.data import rows
from wedsync_db.data.rows import ClaimsLike, Page, Target

ClientStatus = Literal["lead", "booked", "completed", "cancelled"]


class Client(rows.Row):
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


class ClientUpdate(rows.Patch):
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


class ClientCreate(ClientUpdate):
    """A new client: the first partner's name, and what else is known."""

    partner1_name: str = Field(min_length=1)


CLIENTS = rows.Table("clients", "client", ("organization_id", "id"), Client, ClientUpdate)

# key: (organization_id, client_id); see rows.Table
get_client, update_client, delete_client = CLIENTS.get, CLIENTS.update, CLIENTS.delete


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
    pattern = None if search is None else rows.like_pattern(search)
    query = rows.statement("clients.sql", "list_clients")
    params, sort = [organization_id, status, pattern], ("partner1_name", "id")
    return await CLIENTS.page(db, claims, query, params, limit=limit, cursor=cursor, sort=sort)


async def create_client(
    db: Target,
    claims: ClaimsLike | None,
    organization_id: UUID,
    client: ClientCreate | Mapping[str, Any],
) -> Client:
    """Add a client to an organization's CRM (its members, in the vendor portal)."""
    values = {"organization_id": organization_id, **rows.patch_of(ClientCreate, client)}
    return await CLIENTS.insert(db, claims, values)
