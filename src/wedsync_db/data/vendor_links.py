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


class LinkAnswer(rows.Patch):
    """The organization's answer to a request, and the client record it may attach."""

    status: Literal["accepted", "declined"]
    client_id: UUID | None = None


class LinkRequest(LinkUpdate):
    """A couple's request to an organization (a client id is never the couple's to give)."""

    client_id: None = None


LINKS = rows.Table(
    "wedding_vendors", "vendor link", ("wedding_id", "organization_id"), VendorLink, LinkUpdate
)

# key: (wedding_id, organization_id); see rows.Table. A member of the organization withdraws
# (owners and admins) and the couple ends a link with revoke_link, a request too.
get_link, update_link, revoke_link = LINKS.get, LINKS.update, LINKS.delete


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
    answer = LinkAnswer(status="accepted")
    if client_id is not None:
        answer = LinkAnswer(status="accepted", client_id=client_id)
    return await LINKS.update(db, claims, (wedding_id, organization_id), expected, answer)


async def decline_link(
    db: Target,
    claims: ClaimsLike | None,
    wedding_id: UUID,
    organization_id: UUID,
    expected: int | VendorLink,
) -> VendorLink:
    """A member of the organization declines a request (once)."""
    answer = LinkAnswer(status="declined")
    return await LINKS.update(db, claims, (wedding_id, organization_id), expected, answer)
