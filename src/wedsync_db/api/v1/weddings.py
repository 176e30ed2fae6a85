"""Weddings, their guest lists and their vendor links, as the calling user sees them.

A wedding or guest the user may not see is 404 (never 403: its existence does not leak); a
guest list is a vendor's only through an accepted link with guest access.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from wedsync_db.api.v1 import http
from wedsync_db.api.v1.deps import Context, UserClaims
from wedsync_db.data import guests, vendor_links, weddings
from wedsync_db.data.guests import Guest, GuestCreate, RsvpStatus
from wedsync_db.data.vendor_links import LinkRequest, VendorLink
from wedsync_db.data.weddings import Wedding, WeddingStatus

router = APIRouter(tags=["weddings"])


class RsvpRequest(BaseModel):
    """One RSVP status for many guests."""

    model_config = ConfigDict(extra="forbid")

    guest_ids: list[UUID] = Field(min_length=1, max_length=1000)
    status: RsvpStatus


class VendorRequest(LinkRequest):
    """A couple's request to an organization to work on its wedding."""

    organization_id: UUID


class LinkAnswerRequest(BaseModel):
    """An organization accepting a request, optionally with its client record of the couple."""

    model_config = ConfigDict(extra="forbid")

    client_id: UUID | None = None


# --- weddings -----------------------------------------------------------------------------------
http.page_route(
    router,
    "/weddings",
    Wedding,
    weddings.list_weddings,
    "The weddings the user sees",
    name="list_weddings",
    filters=[("status", WeddingStatus | None, None)],
)


# --- guests -------------------------------------------------------------------------------------
http.page_route(
    router,
    "/weddings/{wedding_id}/guests",
    Guest,
    guests.list_guests,
    "A page of a wedding's guests",
    name="list_guests",
    filters=[
        ("rsvp", Annotated[list[RsvpStatus] | None, Query(description="RSVP status(es)")], None),
        ("dietary", Annotated[str | None, Query(max_length=200)], None),
        ("table", Annotated[int | None, Query(gt=0)], None),
        ("search", http.Search, None),
    ],
)


@router.post(
    "/weddings/{wedding_id}/guests/rsvp",
    summary="Set one RSVP status on many guests (those changed are returned)",
    response_model=http.ListOf[Guest],
    openapi_extra=http.documented(RsvpRequest),
)
async def bulk_rsvp(
    request: Request, ctx: Context, claims: UserClaims, wedding_id: UUID
) -> Response:
    answer = await http.body(request, RsvpRequest)
    changed = await guests.bulk_rsvp(
        ctx.database, claims, wedding_id, answer.guest_ids, answer.status
    )
    return http.rows_response(changed, Guest)


# --- vendor links -------------------------------------------------------------------------------
http.create_route(
    router,
    "/weddings/{wedding_id}/vendors",
    VendorRequest,
    VendorLink,
    lambda db, claims, wedding, ask: vendor_links.request_link(
        db,
        claims,
        wedding,
        ask.organization_id,
        ask.model_dump(exclude_unset=True, exclude={"organization_id"}),
    ),
    "Ask an organization to work on the wedding (the couple)",
    name="request_vendor",
)


@router.post(
    "/weddings/{wedding_id}/vendors/{organization_id}/accept",
    summary="Accept a request (a member of the organization, If-Match)",
    response_model=VendorLink,
    openapi_extra={**http.documented(LinkAnswerRequest), **http.IF_MATCH_DOC},
)
async def accept_vendor(
    request: Request, ctx: Context, claims: UserClaims, wedding_id: UUID, organization_id: UUID
) -> Response:
    expected = http.expected(request, VendorLink, (wedding_id, organization_id))
    answer = await http.body(request, LinkAnswerRequest)
    row = await vendor_links.accept_link(
        ctx.database, claims, wedding_id, organization_id, expected, client_id=answer.client_id
    )
    return http.row_response(row)


@router.post(
    "/weddings/{wedding_id}/vendors/{organization_id}/decline",
    summary="Decline a request (a member of the organization, If-Match)",
    response_model=VendorLink,
    openapi_extra=http.IF_MATCH_DOC,
)
async def decline_vendor(
    request: Request, ctx: Context, claims: UserClaims, wedding_id: UUID, organization_id: UUID
) -> Response:
    expected = http.expected(request, VendorLink, (wedding_id, organization_id))
    row = await vendor_links.decline_link(
        ctx.database, claims, wedding_id, organization_id, expected
    )
    return http.row_response(row)


http.row_routes(router, "/weddings/{wedding_id}", weddings.WEDDINGS, patch="Change a wedding")
http.row_routes(
    router,
    "/weddings/{wedding_id}/guests/{guest_id}",
    guests.GUESTS,
    patch="Change a guest",
    delete="Remove a guest",
)
http.row_routes(
    router,
    "/weddings/{wedding_id}/vendors/{organization_id}",
    vendor_links.LINKS,
    patch="Change a link: the couple its service and guest access, the organization its client "
    "record",
    delete="End a link or withdraw a request",
)
http.create_route(
    router, "/weddings/{wedding_id}/guests", GuestCreate, Guest, guests.create_guest, "Add a guest"
)
http.list_route(
    router,
    "/weddings/{wedding_id}/vendors",
    VendorLink,
    lambda db, claims, wedding: vendor_links.list_links(db, claims, wedding_id=wedding),
    "A wedding's vendor links and requests",
)
