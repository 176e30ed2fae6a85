"""Organizations (vendors), their members and their CRM clients, in the vendor portal.

Clients are visible to the organization's members only; owners and admins manage members.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from wedsync_db.api.v1 import http
from wedsync_db.api.v1.deps import Context, UserClaims
from wedsync_db.data import clients, organizations, vendor_links
from wedsync_db.data.clients import Client, ClientCreate, ClientStatus, ClientUpdate
from wedsync_db.data.organizations import (
    Member,
    MemberRole,
    MemberUpdate,
    Organization,
    OrganizationUpdate,
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


@router.get(
    "/organizations/{organization_id}", summary="One organization", response_model=Organization
)
async def get_organization(ctx: Context, claims: UserClaims, organization_id: UUID) -> Response:
    row = await organizations.get_organization(ctx.database, claims, (organization_id,))
    return http.row_response(row)


@router.patch(
    "/organizations/{organization_id}",
    summary="Change an organization's profile (owners and admins, If-Match)",
    response_model=Organization,
    openapi_extra=http.patch_doc(OrganizationUpdate),
)
async def patch_organization(
    request: Request, ctx: Context, claims: UserClaims, organization_id: UUID
) -> Response:
    expected = http.expected(request, Organization, (organization_id,))
    changes = await http.body(request, OrganizationUpdate)
    row = await organizations.update_organization(
        ctx.database, claims, (organization_id,), expected, changes, merge=http.merge_flag(request)
    )
    return http.row_response(row)


@router.get(
    "/organizations/{organization_id}/vendor-links",
    summary="The organization's wedding links and requests",
    response_model=http.ListOf[VendorLink],
)
async def list_links(ctx: Context, claims: UserClaims, organization_id: UUID) -> Response:
    links = await vendor_links.list_links(ctx.database, claims, organization_id=organization_id)
    return http.rows_response(links, VendorLink)


# --- members ------------------------------------------------------------------------------------
@router.get(
    "/organizations/{organization_id}/members",
    summary="The organization's members",
    response_model=http.ListOf[Member],
)
async def list_members(ctx: Context, claims: UserClaims, organization_id: UUID) -> Response:
    found = await organizations.list_members(ctx.database, claims, organization_id)
    return http.rows_response(found, Member)


@router.post(
    "/organizations/{organization_id}/members",
    summary="Add a member (owners and admins)",
    status_code=201,
    response_model=Member,
    openapi_extra=http.documented(NewMember),
)
async def add_member(
    request: Request, ctx: Context, claims: UserClaims, organization_id: UUID
) -> Response:
    new = await http.body(request, NewMember)
    row = await organizations.add_member(
        ctx.database, claims, organization_id, new.user_id, new.role
    )
    return http.row_response(row, status=201)


@router.patch(
    "/organizations/{organization_id}/members/{user_id}",
    summary="Change a member's role (owners and admins, If-Match)",
    response_model=Member,
    openapi_extra=http.patch_doc(MemberUpdate),
)
async def patch_member(
    request: Request, ctx: Context, claims: UserClaims, organization_id: UUID, user_id: UUID
) -> Response:
    expected = http.expected(request, Member, (organization_id, user_id))
    changes = await http.body(request, MemberUpdate)
    row = await organizations.update_member(
        ctx.database, claims, (organization_id, user_id), expected, changes
    )
    return http.row_response(row)


@router.delete(
    "/organizations/{organization_id}/members/{user_id}",
    summary="Remove a member (If-Match)",
    status_code=204,
    openapi_extra=http.IF_MATCH_DOC,
)
async def remove_member(
    request: Request, ctx: Context, claims: UserClaims, organization_id: UUID, user_id: UUID
) -> Response:
    expected = http.expected_version(request)
    await organizations.remove_member(ctx.database, claims, (organization_id, user_id), expected)
    return Response(status_code=204)


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


@router.post(
    "/organizations/{organization_id}/clients",
    summary="Add a client (plan limits apply: 402)",
    status_code=201,
    response_model=Client,
    openapi_extra=http.documented(ClientCreate),
)
async def create_client(
    request: Request, ctx: Context, claims: UserClaims, organization_id: UUID
) -> Response:
    client = await http.body(request, ClientCreate)
    row = await clients.create_client(ctx.database, claims, organization_id, client)
    return http.row_response(row, status=201)


@router.get(
    "/organizations/{organization_id}/clients/{client_id}",
    summary="One client",
    response_model=Client,
)
async def get_client(
    ctx: Context, claims: UserClaims, organization_id: UUID, client_id: UUID
) -> Response:
    row = await clients.get_client(ctx.database, claims, (organization_id, client_id))
    return http.row_response(row)


@router.patch(
    "/organizations/{organization_id}/clients/{client_id}",
    summary="Change a client (JSON Merge Patch, If-Match)",
    response_model=Client,
    openapi_extra=http.patch_doc(ClientUpdate),
)
async def patch_client(
    request: Request, ctx: Context, claims: UserClaims, organization_id: UUID, client_id: UUID
) -> Response:
    expected = http.expected(request, Client, (organization_id, client_id))
    changes = await http.body(request, ClientUpdate)
    row = await clients.update_client(
        ctx.database,
        claims,
        (organization_id, client_id),
        expected,
        changes,
        merge=http.merge_flag(request),
    )
    return http.row_response(row)


@router.delete(
    "/organizations/{organization_id}/clients/{client_id}",
    summary="Remove a client (If-Match)",
    status_code=204,
    openapi_extra=http.IF_MATCH_DOC,
)
async def delete_client(
    request: Request, ctx: Context, claims: UserClaims, organization_id: UUID, client_id: UUID
) -> Response:
    expected = http.expected_version(request)
    await clients.delete_client(ctx.database, claims, (organization_id, client_id), expected)
    return Response(status_code=204)
