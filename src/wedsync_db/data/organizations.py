"""Organizations (vendors) and their members. Members see their organization and colleagues;
couples see the organizations working on their weddings; owners and admins edit the profile
and manage membership. Organizations are created at signup by service code, and the plan tier
is not the organization's to change, so neither is offered here."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from wedsync_db.data import rows
from wedsync_db.data.rows import ClaimsLike, Target

Tier = Literal["free", "starter", "professional", "scale", "enterprise"]
MemberRole = Literal["owner", "admin", "member"]


class Organization(rows.Row):
    """An organization as read."""

    id: UUID
    name: str
    slug: str
    tier: Tier
    timezone: str
    created_at: datetime
    updated_at: datetime


class OrganizationUpdate(rows.Patch):
    """Changes to an organization's profile (JSON Merge Patch)."""

    not_null: ClassVar[frozenset[str]] = frozenset({"name", "slug", "timezone"})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]*$")
    timezone: str | None = None


class MemberUpdate(rows.Patch):
    """A member's new role (owners and admins change it)."""

    not_null: ClassVar[frozenset[str]] = frozenset({"role"})

    role: MemberRole | None = None


class Member(rows.Row):
    """A member of an organization as read."""

    organization_id: UUID
    user_id: UUID
    role: MemberRole
    created_at: datetime


ORGANIZATIONS = rows.Table(
    "organizations", "organization", ("id",), Organization, OrganizationUpdate
)
MEMBERS = rows.Table(
    "organization_members", "member", ("organization_id", "user_id"), Member, MemberUpdate
)

# keys: (organization_id,) and (organization_id, user_id); see rows.Table
get_organization, update_organization = ORGANIZATIONS.get, ORGANIZATIONS.update
update_member, remove_member = MEMBERS.update, MEMBERS.delete


async def list_organizations(db: Target, claims: ClaimsLike | None) -> list[Organization]:
    """The organizations the user sees, by name."""
    query = rows.statement("organizations.sql", "list_organizations")
    return await ORGANIZATIONS.select(db, claims, query)


async def list_members(
    db: Target, claims: ClaimsLike | None, organization_id: UUID
) -> list[Member]:
    """An organization's members, oldest first (colleagues only)."""
    query = rows.statement("organizations.sql", "list_members")
    return await MEMBERS.select(db, claims, query, [organization_id])


async def add_member(
    db: Target,
    claims: ClaimsLike | None,
    organization_id: UUID,
    user_id: UUID,
    role: MemberRole = "member",
) -> Member:
    """Add a user to an organization (owners and admins)."""
    values = {"organization_id": organization_id, "user_id": user_id, "role": role}
    return await MEMBERS.insert(db, claims, values)
