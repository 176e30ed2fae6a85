"""Vendor links: which organizations work on a wedding. A couple requests a link; a member of
the organization accepts or declines it once (and may attach its own client record); until it
is accepted neither side sees the other's data. The couple decides the service and whether the
vendor sees guests; the couple ends a link, the organization's owners and admins withdraw from
it. Migration 0005 enforces all of this (RLS and ``wedsync.guard_vendor_link``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from wedsync_db.data import rows
from wedsync_db.data.rows import ClaimsLike, Target

LinkStatus = Literal["requested", "accepted", "declined"]


class VendorLink(rows.Row):
    """A link as read."""

    wedding_id: UUID
    organization_id: UUID
    client_id: UUID | None
    service: str
    can_view_guests: bool
    status: LinkStatus
    requested_by: UUID | None
    requested_at: datetime
    responded_by: UUID | None
    responded_at: datetime | None
    created_at: datetime


class LinkUpdate(rows.Patch):
    """What may change on a link: the couple's service and guest access, the organization's
    client record (the database refuses either side the other's fields)."""

    not_null: ClassVar[frozenset[str]] = frozenset({"service", "can_view_guests"})

    service: str | None = None
    can_view_guests: bool | None = None
    client_id: UUID | None = None


class LinkRequest(LinkUpdate):
    """A couple's request to an organization (a client id is never the couple's to give)."""

    client_id: None = None


LINKS = rows.Table("wedding_vendors", "vendor link", ("wedding_id", "organization_id"), VendorLink)


async def list_links(
    db: Target,
    claims: ClaimsLike | None,
    *,
    wedding_id: UUID | None = None,
    organization_id: UUID | None = None,
) -> list[VendorLink]:
    """The links the user sees (requests included), of one wedding or organization if given."""
    query = rows.statement("weddings.sql", "list_links")
    params = [wedding_id, wedding_id, organization_id, organization_id]
    return await LINKS.select(db, claims, query, params)


async def get_link(
    db: Target, claims: ClaimsLike | None, wedding_id: UUID, organization_id: UUID
) -> VendorLink:
    """One link; ``NotFound`` when the user is on neither side of it."""
    return await LINKS.get(db, claims, (wedding_id, organization_id))


async def request_link(
    db: Target,
    claims: ClaimsLike | None,
    wedding_id: UUID,
    organization_id: UUID,
    request: LinkRequest | Mapping[str, Any] | None = None,
) -> VendorLink:
    """The couple asks an organization to work on its wedding (a request until accepted)."""
    values = rows.patch_of(LinkRequest, request or {})
    key = {"wedding_id": wedding_id, "organization_id": organization_id}
    return await LINKS.insert(db, claims, {**key, **values})


async def accept_link(
    db: Target,
    claims: ClaimsLike | None,
    wedding_id: UUID,
    organization_id: UUID,
    expected: int | VendorLink,
    *,
    client_id: UUID | None = None,
) -> VendorLink:
    """A member of the organization accepts a request (once), optionally attaching its client
    record of the couple."""
    changes: dict[str, Any] = {"status": "accepted"}
    if client_id is not None:
        changes["client_id"] = client_id
    return await LINKS.update(db, claims, (wedding_id, organization_id), expected, changes)


async def decline_link(
    db: Target,
    claims: ClaimsLike | None,
    wedding_id: UUID,
    organization_id: UUID,
    expected: int | VendorLink,
) -> VendorLink:
    """A member of the organization declines a request (once)."""
    key = (wedding_id, organization_id)
    return await LINKS.update(db, claims, key, expected, {"status": "declined"})


async def update_link(
    db: Target,
    claims: ClaimsLike | None,
    wedding_id: UUID,
    organization_id: UUID,
    expected: int | VendorLink,
    changes: LinkUpdate | Mapping[str, Any],
    *,
    merge: bool = False,
) -> VendorLink:
    """Change a link's service, guest access (the couple) or client record (the vendor)."""
    patch = rows.patch_of(LinkUpdate, changes)
    return await LINKS.update(db, claims, (wedding_id, organization_id), expected, patch, merge)


async def revoke_link(
    db: Target,
    claims: ClaimsLike | None,
    wedding_id: UUID,
    organization_id: UUID,
    expected: int | None = None,
) -> None:
    """End a link: the couple, or the organization's owners and admins (a request too)."""
    await LINKS.delete(db, claims, (wedding_id, organization_id), expected)
