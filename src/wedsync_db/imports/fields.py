"""What an import can fill: the fields of clients and guests, and the header names CRM exports
and guest spreadsheets use for them (pure data)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ImportKind = Literal["clients", "guests"]

# a header ignored on purpose with --map "Column=ignore"
IGNORE = "ignore"


def header_key(name: str) -> str:
    """A header as looked up in the aliases: lower case, letters and digits only
    ("E-mail" → "email", "Partner 1 Name" → "partner1name", "+1" → "plus1")."""
    return re.sub(r"[^a-z0-9]", "", name.strip().lower().replace("+", "plus"))


@dataclass(frozen=True)
class Kind:
    """One kind of import: its fields (the staging table's columns, in order), the one it
    cannot do without, its date fields and the header aliases."""

    name: ImportKind
    staging: str
    fields: tuple[str, ...]
    required: str
    dates: frozenset[str]
    aliases: dict[str, str]
    # a name split over two columns: (first part, second part) → field
    joined: tuple[tuple[str, str], str] | None = None

    def field_for(self, header: str) -> str | None:
        """The field a header names, by alias (None: not one we know)."""
        return self.aliases.get(header_key(header))


def _aliases(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for field, names in table.items():
        for name in (field, *names):
            out[header_key(name)] = field
    return out


# first name + last name of the client (one person) make the first partner's name
_FIRST, _LAST = "__first_name", "__last_name"

CLIENTS = Kind(
    name="clients",
    staging="import_client_rows",
    fields=(
        "partner1_name",
        "partner2_name",
        "email",
        "phone",
        "wedding_date",
        "venue",
        "status",
        "external_ref",
        "notes",
    ),
    required="partner1_name",
    dates=frozenset({"wedding_date"}),
    aliases=_aliases(
        {
            "partner1_name": (
                "Partner 1",
                "Partner 1 Name",
                "Partner One",
                "Client",
                "Client Name",
                "Name",
                "Full Name",
                "Contact",
                "Contact Name",
                "Primary Contact",
                "Bride",
                "Couple",
            ),
            "partner2_name": (
                "Partner 2",
                "Partner 2 Name",
                "Partner Two",
                "Partner",
                "Partner Name",
                "Spouse",
                "Fiance",
                "Fiancee",
                "Groom",
                "Second Contact",
            ),
            "email": ("E-mail", "Email Address", "E-mail Address", "Primary Email", "Mail"),
            "phone": ("Phone Number", "Telephone", "Tel", "Mobile", "Cell", "Mobile Phone"),
            "wedding_date": (
                "Wedding Date",
                "Event Date",
                "Date",
                "Ceremony Date",
                "Wedding Day",
                "Date of Wedding",
            ),
            "venue": ("Venue", "Venue Name", "Location", "Ceremony Venue", "Reception Venue"),
            "status": ("Status", "Stage", "Lead Status", "Pipeline Stage", "Booking Status"),
            "external_ref": (
                "External Ref",
                "External ID",
                "ID",
                "Client ID",
                "Contact ID",
                "Record ID",
                "CRM ID",
                "Reference",
                "Ref",
            ),
            "notes": ("Notes", "Note", "Comments", "Comment", "Description", "Details"),
            _FIRST: ("First Name", "First", "Given Name", "Forename"),
            _LAST: ("Last Name", "Last", "Surname", "Family Name"),
        }
    ),
    joined=((_FIRST, _LAST), "partner1_name"),
)

GUESTS = Kind(
    name="guests",
    staging="import_guest_rows",
    fields=(
        "first_name",
        "last_name",
        "email",
        "rsvp_status",
        "dietary_requirements",
        "table_number",
        "plus_one",
        "plus_one_name",
        "notes",
    ),
    required="first_name",
    dates=frozenset(),
    aliases=_aliases(
        {
            "first_name": (
                "First Name",
                "First",
                "Given Name",
                "Forename",
                "Name",
                "Guest",
                "Guest Name",
                "Full Name",
            ),
            "last_name": ("Last Name", "Last", "Surname", "Family Name"),
            "email": ("E-mail", "Email Address", "E-mail Address", "Mail"),
            "rsvp_status": ("RSVP", "RSVP Status", "Attending", "Response", "Status", "Reply"),
            "dietary_requirements": (
                "Dietary",
                "Dietary Requirements",
                "Dietary Needs",
                "Dietary Restrictions",
                "Diet",
                "Allergies",
                "Meal",
            ),
            "table_number": ("Table", "Table Number", "Table No", "Table #", "Table No."),
            "plus_one": ("Plus One", "+1", "Plus 1", "Guest Allowed"),
            "plus_one_name": ("Plus One Name", "+1 Name", "Plus 1 Name", "Guest Of"),
            "notes": ("Notes", "Note", "Comments", "Comment"),
        }
    ),
)

KINDS: dict[str, Kind] = {k.name: k for k in (CLIENTS, GUESTS)}
