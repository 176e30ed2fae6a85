"""Organizations (vendors), their members and their CRM clients, in the vendor portal.

Clients are visible to the organization's members only; owners and admins manage members.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
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
http.page_route(
    router,
    "/organizations/{organization_id}/clients",
    Client,
    clients.list_clients,
    "A page of the organization's clients",
    name="list_clients",
    filters=[("status", ClientStatus | None, None), ("search", http.Search, None)],
)


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
