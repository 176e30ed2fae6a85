"""Organizations (vendors) and their members. Members see their organization and colleagues;
couples see the organizations working on their weddings; owners and admins edit the profile
and manage membership. Organizations are created at signup by service code, and the plan tier
is not the organization's to change, so neither is offered here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field

from wedsync_db.data.rows import (
    ClaimsLike,
    Patch,
    Row,
    Table,
    Target,
    delete_row,
    get_row,
    insert_row,
    patch_of,
    select_rows,
    statement,
    update_row,
    user_scope,
)

Tier = Literal["free", "starter", "professional", "scale", "enterprise"]
MemberRole = Literal["owner", "admin", "member"]


class Organization(Row):
    """An organization as read."""

    id: UUID
    name: str
    slug: str
    tier: Tier
    timezone: str
    created_at: datetime
    updated_at: datetime


class OrganizationUpdate(Patch):
    """Changes to an organization's profile (JSON Merge Patch)."""

    not_null: ClassVar[frozenset[str]] = frozenset({"name", "slug", "timezone"})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]*$")
    timezone: str | None = None


class Member(Row):
    """A member of an organization as read."""

    organization_id: UUID
    user_id: UUID
    role: MemberRole
    created_at: datetime


ORGANIZATIONS = Table("organizations", "organization", ("id",), Organization)
MEMBERS = Table("organization_members", "member", ("organization_id", "user_id"), Member)


async def list_organizations(db: Target, claims: ClaimsLike | None) -> list[Organization]:
    """The organizations the user sees, by name."""
    query = statement("organizations.sql", "list_organizations")
    async with user_scope(db, claims) as s:
        return await select_rows(s, ORGANIZATIONS, query)


async def get_organization(
    db: Target, claims: ClaimsLike | None, organization_id: UUID
) -> Organization:
    """One organization; ``NotFound`` when the user may not see it."""
    async with user_scope(db, claims) as s:
        return await get_row(s, ORGANIZATIONS, (organization_id,))


async def update_organization(
    db: Target,
    claims: ClaimsLike | None,
    organization_id: UUID,
    expected: int | Organization,
    changes: OrganizationUpdate | Mapping[str, Any],
    *,
    merge: bool = False,
) -> Organization:
    """Apply ``changes`` at the version read (owners and admins)."""
    patch = patch_of(OrganizationUpdate, changes)
    async with user_scope(db, claims) as s:
        return await update_row(s, ORGANIZATIONS, (organization_id,), expected, patch, merge=merge)


async def list_members(
    db: Target, claims: ClaimsLike | None, organization_id: UUID
) -> list[Member]:
    """An organization's members, oldest first (colleagues only)."""
    query = statement("organizations.sql", "list_members")
    async with user_scope(db, claims) as s:
        return await select_rows(s, MEMBERS, query, [organization_id])


async def add_member(
    db: Target,
    claims: ClaimsLike | None,
    organization_id: UUID,
    user_id: UUID,
    role: MemberRole = "member",
) -> Member:
    """Add a user to an organization (owners and admins)."""
    values = {"organization_id": organization_id, "user_id": user_id, "role": role}
    async with user_scope(db, claims) as s:
        return await insert_row(s, MEMBERS, values)


async def change_member_role(
    db: Target,
    claims: ClaimsLike | None,
    organization_id: UUID,
    user_id: UUID,
    expected: int | Member,
    role: MemberRole,
) -> Member:
    """Give a member another role at the version read (owners and admins)."""
    async with user_scope(db, claims) as s:
        key = (organization_id, user_id)
        return await update_row(s, MEMBERS, key, expected, {"role": role})


async def remove_member(
    db: Target,
    claims: ClaimsLike | None,
    organization_id: UUID,
    user_id: UUID,
    expected: int | None = None,
) -> None:
    """Remove a member (owners and admins; only at version ``expected`` when given)."""
    async with user_scope(db, claims) as s:
        await delete_row(s, MEMBERS, (organization_id, user_id), expected)
