"""Organizations (vendors), their members and their CRM clients, in the vendor portal.

Clients are visible to the organization's members only; owners and admins manage members.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from wedsync_db.api.v1 import http
from wedsync_db.api.v1.deps import Context, UserClaims
from wedsync_db.data import clients, organizations, vendor_links
from wedsync_db.data.clients import Client, ClientCreate, ClientStatus
from wedsync_db.data.organizations import (
    Member,
    MemberRole,
    Organization,
)
from wedsync_db.data.vendor_links import VendorLink

router = APIRouter(tags=["organizations"])

Limit = Annotated[int, Query(ge=1, le=1000, description="Rows per page")]
Cursor = Annotated[str | None, Query(description="The previous page's next_cursor")]


class NewMember(BaseModel):
    """A user to add to the organization, with a role."""

    model_config = ConfigDict(extra="forbid")

    user_id: UUID
    role: MemberRole = "member"


# --- organizations ------------------------------------------------------------------------------
@router.get(
    "/organizations",
    summary="The organizations the user sees",
    response_model=http.ListOf[Organization],
)
async def list_organizations(ctx: Context, claims: UserClaims) -> Response:
    found = await organizations.list_organizations(ctx.database, claims)
    return http.rows_response(found, Organization)


# --- members ------------------------------------------------------------------------------------
http.create_route(
    router,
    "/organizations/{organization_id}/members",
    NewMember,
    Member,
    lambda db, claims, org, new: organizations.add_member(db, claims, org, new.user_id, new.role),
    "Add a member (owners and admins)",
    name="add_member",
)


# --- clients ------------------------------------------------------------------------------------
@router.get(
    "/organizations/{organization_id}/clients",
    summary="A page of the organization's clients",
    response_model=http.PageOf[Client],
)
async def list_clients(
    ctx: Context,
    claims: UserClaims,
    organization_id: UUID,
    status: ClientStatus | None = None,
    search: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    page = await clients.list_clients(
        ctx.database,
        claims,
        organization_id,
        status=status,
        search=search,
        limit=limit,
        cursor=cursor,
    )
    return http.page_response(page, Client)


http.row_routes(
    router,
    "/organizations/{organization_id}",
    organizations.ORGANIZATIONS,
    patch="Change an organization's profile (owners and admins)",
)
http.row_routes(
    router,
    "/organizations/{organization_id}/members/{user_id}",
    organizations.MEMBERS,
    patch="Change a member's role (owners and admins)",
    delete="Remove a member",
    merge=False,
)
http.row_routes(
    router,
    "/organizations/{organization_id}/clients/{client_id}",
    clients.CLIENTS,
    patch="Change a client",
    delete="Remove a client",
)
http.create_route(
    router,
    "/organizations/{organization_id}/clients",
    ClientCreate,
    Client,
    clients.create_client,
    "Add a client (plan limits apply: 402)",
)
http.list_route(
    router,
    "/organizations/{organization_id}/vendor-links",
    VendorLink,
    lambda db, claims, org: vendor_links.list_links(db, claims, organization_id=org),
    "The organization's wedding links and requests",
)
http.list_route(
    router,
    "/organizations/{organization_id}/members",
    Member,
    organizations.list_members,
    "The organization's members",
)
