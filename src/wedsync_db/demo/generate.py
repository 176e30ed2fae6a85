"""Deterministic demo data: vendors and their CRM, weddings, couples, vendor links and guests.

Pure: everything derives from a seed and a start date; nothing here does I/O. Guests, the bulk
of the rows, are produced lazily so that a large data set streams straight into COPY.
"""

from __future__ import annotations

import itertools
import random
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple
from uuid import UUID

# Bounds keep a typo (an extra zero or two) from filling a laptop's disk.
MAX_ORGANIZATIONS = 50_000
MAX_WEDDINGS = 200_000
MAX_GUESTS_PER_WEDDING = 1_000
MAX_GUESTS = 10_000_000
MAX_SEED = 2**63 - 1

HORIZON_DAYS = 548  # weddings are booked over the next 18 months
PEAK_MONTHS = frozenset(range(5, 11))
PEAK_MONTH_FACTOR = 3.0
# Relative popularity per weekday, Monday first: Saturday alone takes about 60 % of weddings.
WEEKDAY_WEIGHTS = (0.35, 0.35, 0.4, 0.5, 1.2, 5.5, 0.8)

MEMBERS_PER_ORGANIZATION = (1, 5)
VENDORS_PER_WEDDING = (2, 5)
EXTRA_LEADS_PER_ORGANIZATION = (0, 3)
GUESTS_PER_TABLE = 10


# --- rows: field names are the column names, so a row goes to COPY as it is ------------------
class Organization(NamedTuple):
    """A vendor business."""

    id: UUID
    name: str
    slug: str
    tier: str
    timezone: str


class OrganizationMember(NamedTuple):
    """A user working for a vendor."""

    organization_id: UUID
    user_id: UUID
    role: str


class Client(NamedTuple):
    """A couple in a vendor's CRM."""

    organization_id: UUID
    id: UUID
    partner1_name: str
    partner2_name: str | None
    email: str | None
    phone: str | None
    wedding_date: date | None
    venue: str | None
    status: str
    external_ref: str
    notes: str | None


class Wedding(NamedTuple):
    """A wedding owned by its couple."""

    id: UUID
    title: str
    wedding_date: date
    venue: str | None
    timezone: str
    status: str


class WeddingMember(NamedTuple):
    """A partner or planner of a wedding."""

    wedding_id: UUID
    user_id: UUID
    role: str


class WeddingVendor(NamedTuple):
    """A vendor organization working on a wedding: an accepted link, or the couple's request
    that the vendor has not answered yet (its client record is attached on acceptance)."""

    wedding_id: UUID
    organization_id: UUID
    client_id: UUID | None
    service: str
    can_view_guests: bool
    status: str


class Guest(NamedTuple):
    """One guest of a wedding."""

    wedding_id: UUID
    id: UUID
    first_name: str
    last_name: str | None
    email: str | None
    rsvp_status: str
    dietary_requirements: list[str]
    table_number: int | None
    plus_one: bool
    plus_one_name: str | None
    notes: str | None


# --- vocabulary ---------------------------------------------------------------------------------
FIRST_NAMES = (
    "Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophia", "Grace", "Mia", "Poppy", "Ella",
    "Freya", "Florence", "Chloé", "Zoë", "Aoife", "Siobhán", "Niamh", "Léa", "Camille", "Giulia",
    "Sofia", "Lucía", "Inês", "Ingrid", "Astrid", "Hannah", "Charlotte", "Eleanor", "Priya",
    "Aisha", "Noah", "Oliver", "George", "Arthur", "Leo", "Harry", "Oscar", "Jack", "Thomas",
    "James", "William", "Henry", "Freddie", "Alfie", "Theo", "Finn", "Rory", "Callum", "Seán",
    "Cian", "Lucas", "Louis", "Mathieu", "Matteo", "Lorenzo", "Javier", "Mateo", "João", "Lars",
    "Søren", "Jakob", "Felix", "Arjun", "Omar", "Kwame", "Daniel", "Sam", "Alex", "Robyn", "Jamie",
)  # fmt: skip
SURNAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Patel", "Khan", "Hughes", "Edwards", "Murphy", "O'Brien", "Kelly",
    "Byrne", "MacDonald", "Campbell", "Stewart", "Fraser", "Dubois", "Martin", "Moreau", "Rossi",
    "Russo", "Bianchi", "García", "Fernández", "Silva", "Santos", "Müller", "Schmidt", "Jansen",
    "de Vries", "Andersson", "Nielsen", "Novak", "Kowalski", "Okafor", "Mensah", "Ahmed", "Begum",
)  # fmt: skip
PLACES = (
    "Ashcombe", "Bramley", "Hartwell", "Kingsbury", "Langley", "Elmstead", "Thornbury",
    "Willowbrook", "Rosedale", "Highcliffe", "Fairholme", "Oakhurst", "Glenmore", "Kilcarra",
    "Ardbeg", "Penrose", "Trevellas", "Cotswold", "Harrowgate", "Lydford", "Castlemaine",
    "Stanway", "Bellhaven", "Marlow", "Aldwick", "Brackenridge", "Saint-Émilion", "Fontaine",
    "Montalcino", "Sorrento", "Sintra", "Ronda",
)  # fmt: skip
ADJECTIVES = (
    "Golden", "Silver", "Wild", "Little", "Velvet", "Ivory", "Honey", "Amber", "Copper",
    "Evergreen", "Gilded", "Sage", "Blushing", "Midsummer", "Moonlit", "Rustic", "Hidden",
)  # fmt: skip
NOUNS = (
    "Oak", "Fern", "Meadow", "Heather", "Thistle", "Lantern", "Swallow", "Hare", "Magpie",
    "Acorn", "Poppy", "Juniper", "Lark", "Ivy", "Bramble", "Willow", "Peony", "Foxglove",
)  # fmt: skip

# name templates per service: {first}, {surname}, {place}, {adj}, {noun}, {noun2}
ORGANIZATION_NAMES: dict[str, tuple[str, ...]] = {
    "photographer": (
        "{surname} Photography", "{adj} {noun} Photography", "{first} {surname} Photography",
        "{noun} & {noun2} Studio", "{adj} Hour Photography",
    ),
    "videographer": ("{adj} Reel Films", "{surname} Wedding Films", "{noun} Motion Pictures"),
    "venue": (
        "{place} Manor", "{place} Hall", "The Barn at {place}", "{place} Castle",
        "{place} House", "The {noun} at {place}", "{place} Estate",
    ),
    "caterer": (
        "{surname} & Co Catering", "The {adj} Table", "The {noun} Kitchen", "{place} Feasts",
    ),
    "florist": (
        "{adj} Blooms", "{noun} & {noun2} Florals", "{first}'s Flowers", "Wild {noun} Flowers",
    ),
    "band": ("The {adj} {noun}s", "{place} Swing Band", "The {surname} Quartet"),
    "dj": ("DJ {first} {surname}", "{adj} Beats", "{place} Discos"),
    "cake": ("{first}'s Cakes", "{adj} Crumb Bakery", "{noun} Cake Company"),
    "planner": ("{first} {surname} Weddings", "{adj} Day Planning", "{place} Wedding Planners"),
    "hair_makeup": ("{first} {surname} Bridal Beauty", "{adj} Glow Hair & Make-up"),
    "stationery": ("{adj} Ink Stationery", "{noun} Press"),
    "transport": ("{place} Wedding Cars", "{adj} Carriage Company"),
}  # fmt: skip
# How common each service is among vendors, and how likely a couple shares its guest list
# with it (caterers need dietary needs, stationers the place cards, photographers rarely).
SERVICE_WEIGHTS = {
    "photographer": 18, "venue": 14, "caterer": 12, "florist": 11, "band": 7, "cake": 7,
    "dj": 6, "planner": 6, "videographer": 6, "hair_makeup": 6, "stationery": 4, "transport": 3,
}  # fmt: skip
GUEST_ACCESS = {
    "photographer": 0.3, "venue": 0.7, "caterer": 0.9, "florist": 0.2, "band": 0.25, "cake": 0.4,
    "dj": 0.3, "planner": 0.95, "videographer": 0.25, "hair_makeup": 0.3, "stationery": 0.85,
    "transport": 0.3,
}  # fmt: skip
# Small data sets still get a mix: the first vendors cover the core services.
CORE_SERVICES = ("venue", "photographer", "caterer", "florist", "band", "planner")

TIERS = {"free": 40, "starter": 28, "professional": 18, "scale": 9, "enterprise": 5}
TIMEZONES = {
    "Europe/London": 55, "Europe/Dublin": 10, "Europe/Paris": 8, "Europe/Rome": 6,
    "Europe/Madrid": 5, "Europe/Lisbon": 4, "Europe/Amsterdam": 4, "Europe/Berlin": 4,
    "Europe/Athens": 2, "Europe/Stockholm": 2,
}  # fmt: skip
# Reserved for documentation and fiction (RFC 2606, Ofcom's 07700 900xxx range): demo data
# can never reach a real inbox or phone.
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "inbox.example")
PHONE_PREFIX = "+44 7700 900"

DIETARY = ("vegetarian", "vegan", "gluten-free", "dairy-free", "nut allergy", "halal",
           "kosher", "pescatarian", "shellfish allergy", "no pork")  # fmt: skip
DIETARY_WEIGHTS = (30, 12, 14, 8, 6, 7, 3, 10, 4, 6)
GUEST_NOTES = (
    "Needs step-free access",
    "Travelling from abroad",
    "Bringing a high chair",
    "Staying at the venue",
    "Arriving after the ceremony",
    "Seat away from the speakers",
)
CLIENT_NOTES = (
    "Met at the spring wedding fair",
    "Wants a second shooter",
    "Prefers WhatsApp",
    "Budget confirmed",
    "Referred by a past couple",
    "Asked for a tasting",
)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", folded.lower())


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by hyphens (the organizations.slug format)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-") or "vendor"


# email-safe spellings, computed once
_FIRST_ASCII = {n: _ascii(n) for n in FIRST_NAMES}
_SURNAME_ASCII = {n: _ascii(n) for n in SURNAMES}


# --- size and outputs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoSize:
    """How much to generate, validated on construction (ValueError names the argument)."""

    organizations: int
    weddings: int
    guests_per_wedding: int
    seed: int = 0

    def __post_init__(self) -> None:
        _check("organizations", self.organizations, 1, MAX_ORGANIZATIONS)
        _check("weddings", self.weddings, 1, MAX_WEDDINGS)
        _check("guests per wedding", self.guests_per_wedding, 1, MAX_GUESTS_PER_WEDDING)
        _check("seed", self.seed, 0, MAX_SEED)
        if self.guests > MAX_GUESTS:
            raise ValueError(
                f"weddings × guests per wedding must be at most {MAX_GUESTS:,} "
                f"(got {self.guests:,}); lower one of them"
            )

    @property
    def guests(self) -> int:
        """Total guests."""
        return self.weddings * self.guests_per_wedding


def _check(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:,} and {high:,}, got {value:,}")


@dataclass(frozen=True)
class DemoSamples:
    """Ids to try ``as_user`` with: vendors with and without guest access, a partner."""

    vendor_user_id: UUID
    vendor_organization_id: UUID
    vendor_wedding_id: UUID
    couple_user_id: UUID
    couple_wedding_id: UUID
    # None when every link grants guest access (possible with a single organization)
    restricted_user_id: UUID | None
    restricted_organization_id: UUID | None
    restricted_wedding_id: UUID | None


TableRows = tuple[str, tuple[str, ...], Iterable[Sequence[object]]]


@dataclass(frozen=True)
class DemoData:
    """Every generated row; guests are produced on demand by :meth:`guests`."""

    size: DemoSize
    today: date
    organizations: tuple[Organization, ...]
    organization_members: tuple[OrganizationMember, ...]
    clients: tuple[Client, ...]
    weddings: tuple[Wedding, ...]
    wedding_members: tuple[WeddingMember, ...]
    wedding_vendors: tuple[WeddingVendor, ...]
    samples: DemoSamples

    def guests(self) -> Iterator[Guest]:
        """The guests of every wedding, generated lazily (the same rows on every call)."""
        rng = random.Random(f"wedsync-demo:{self.size.seed}:guests")
        for wedding in self.weddings:
            yield from _wedding_guests(rng, wedding, self.size.guests_per_wedding, self.today)

    def tables(self) -> Iterator[TableRows]:
        """(table, columns, rows) in foreign-key order, ready for COPY."""
        yield "organizations", Organization._fields, self.organizations
        yield "organization_members", OrganizationMember._fields, self.organization_members
        yield "clients", Client._fields, self.clients
        yield "weddings", Wedding._fields, self.weddings
        yield "wedding_members", WeddingMember._fields, self.wedding_members
        yield "wedding_vendors", WeddingVendor._fields, self.wedding_vendors
        yield "guests", Guest._fields, self.guests()


# --- generation ---------------------------------------------------------------------------------
def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def _weighted(weights: dict[str, int]) -> tuple[list[str], list[float]]:
    keys = list(weights)
    return keys, list(itertools.accumulate(float(weights[k]) for k in keys))


def wedding_day_weights(
    today: date, *, days: int = HORIZON_DAYS, peak_months: frozenset[int] = PEAK_MONTHS
) -> list[tuple[date, float]]:
    """Relative chance of a wedding on each of the next ``days`` days (Saturdays, peak months)."""
    result = []
    for offset in range(days):
        day = today + timedelta(days=offset)
        weight = WEEKDAY_WEIGHTS[day.weekday()]
        if day.month in peak_months:
            weight *= PEAK_MONTH_FACTOR
        result.append((day, weight))
    return result


class _OrganizationState:
    """Per-organization bookkeeping while generating: CRM numbering and a member to sample."""

    __slots__ = ("next_ref", "org", "prefix", "service", "user_id")

    def __init__(self, org: Organization, service: str, user_id: UUID) -> None:
        self.org = org
        self.service = service
        self.user_id = user_id
        self.prefix = "".join(w[0] for w in re.findall(r"[A-Za-z]+", org.name)[:4]).upper()
        self.next_ref = 1

    def external_ref(self, year: int) -> str:
        ref = f"{self.prefix or 'CL'}-{year}-{self.next_ref:05d}"
        self.next_ref += 1
        return ref


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(SURNAMES)


def _email(rng: random.Random, first: str, last: str) -> str:
    local = f"{_FIRST_ASCII[first]}.{_SURNAME_ASCII[last]}"
    if rng.random() < 0.5:
        local += str(rng.randint(1, 99))
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def _phone(rng: random.Random) -> str:
    return f"{PHONE_PREFIX}{rng.randrange(1000):03d}"


def _organization_name(rng: random.Random, service: str) -> str:
    noun, noun2 = rng.sample(NOUNS, 2)
    return rng.choice(ORGANIZATION_NAMES[service]).format(
        first=rng.choice(FIRST_NAMES),
        surname=rng.choice(SURNAMES),
        place=rng.choice(PLACES),
        adj=rng.choice(ADJECTIVES),
        noun=noun,
        noun2=noun2,
    )


def _organizations(
    rng: random.Random, count: int
) -> tuple[list[_OrganizationState], list[OrganizationMember]]:
    services, service_cum = _weighted(SERVICE_WEIGHTS)
    tiers, tier_cum = _weighted(TIERS)
    zones, zone_cum = _weighted(TIMEZONES)
    states: list[_OrganizationState] = []
    members: list[OrganizationMember] = []
    slugs: set[str] = set()
    for i in range(count):
        if i < len(CORE_SERVICES):
            service = CORE_SERVICES[i]
        else:
            service = rng.choices(services, cum_weights=service_cum)[0]
        name = _organization_name(rng, service)
        # the random suffix keeps slugs unique across runs with different seeds
        slug = f"{slugify(name)}-{rng.getrandbits(32):08x}"
        while slug in slugs:
            slug = f"{slugify(name)}-{rng.getrandbits(32):08x}"
        slugs.add(slug)
        org = Organization(
            id=_uuid(rng),
            name=name,
            slug=slug,
            tier=rng.choices(tiers, cum_weights=tier_cum)[0],
            timezone=rng.choices(zones, cum_weights=zone_cum)[0],
        )
        owner = _uuid(rng)
        members.append(OrganizationMember(org.id, owner, "owner"))
        for _ in range(rng.randint(*MEMBERS_PER_ORGANIZATION) - 1):
            role = "admin" if rng.random() < 0.3 else "member"
            members.append(OrganizationMember(org.id, _uuid(rng), role))
        states.append(_OrganizationState(org, service, owner))
    return states, members


def _pick_vendors(
    rng: random.Random, states: Sequence[_OrganizationState], venue: int | None
) -> list[int]:
    """2–5 distinct organizations for one wedding, preferring distinct services."""
    wanted = min(len(states), rng.randint(*VENDORS_PER_WEDDING))
    picks = [venue] if venue is not None else []
    services = {states[venue].service} if venue is not None else set()
    pool = rng.sample(range(len(states)), min(len(states), wanted + 4))
    for j in pool:
        if len(picks) < wanted and j not in picks and states[j].service not in services:
            picks.append(j)
            services.add(states[j].service)
    for j in pool:
        if len(picks) < wanted and j not in picks:
            picks.append(j)
    return picks


def _venue_name(rng: random.Random) -> str:
    return _organization_name(rng, "venue")


def generate_demo(
    size: DemoSize, today: date, *, peak_months: frozenset[int] = PEAK_MONTHS
) -> DemoData:
    """All demo rows for ``size``, weddings from ``today`` on; same inputs, same rows."""
    rng = random.Random(f"wedsync-demo:{size.seed}")
    states, org_members = _organizations(rng, size.organizations)
    venues = [i for i, s in enumerate(states) if s.service == "venue"]

    days, day_weights = zip(*wedding_day_weights(today, peak_months=peak_months), strict=True)
    day_cum = list(itertools.accumulate(day_weights))
    dates = rng.choices(days, cum_weights=day_cum, k=size.weddings)

    clients: list[Client] = []
    weddings: list[Wedding] = []
    wedding_members: list[WeddingMember] = []
    links: list[WeddingVendor] = []
    couple_user_id: UUID | None = None
    restricted: tuple[UUID, UUID, UUID] | None = None
    granted: tuple[UUID, UUID, UUID] | None = None

    for index, wedding_date in enumerate(dates):
        (first1, last1), (first2, last2) = _person(rng), _person(rng)
        venue_index = rng.choice(venues) if venues and rng.random() < 0.8 else None
        if venue_index is not None:
            venue, timezone = states[venue_index].org.name, states[venue_index].org.timezone
        else:
            venue, timezone = _venue_name(rng), "Europe/London"
        days_left = (wedding_date - today).days
        roll = rng.random()
        if roll < 0.02:
            status = "cancelled"
        elif roll < (0.85 if days_left < 120 else 0.3):
            status = "confirmed"
        else:
            status = "planning"
        wedding = Wedding(
            id=_uuid(rng),
            title=f"{first1} {last1} & {first2} {last2}",
            wedding_date=wedding_date,
            venue=venue,
            timezone=timezone,
            status=status,
        )
        weddings.append(wedding)

        partner = _uuid(rng)
        wedding_members.append(WeddingMember(wedding.id, partner, "partner"))
        wedding_members.append(WeddingMember(wedding.id, _uuid(rng), "partner"))
        if rng.random() < 0.2:
            wedding_members.append(WeddingMember(wedding.id, _uuid(rng), "planner"))
        if couple_user_id is None:
            couple_user_id = partner

        couple_email = _email(rng, first1, last1)
        couple_phone = _phone(rng)
        for position, j in enumerate(_pick_vendors(rng, states, venue_index)):
            state = states[j]
            if index == 0 and position < 2:
                # the first wedding always shows both cases for the sample ids
                can_view = position == 0
            else:
                can_view = rng.random() < GUEST_ACCESS[state.service]
            if status == "cancelled":
                client_status = "cancelled"
            else:
                client_status = "booked" if rng.random() < 0.85 else "lead"
            if index == 0 and position < 2:
                client_status = "booked"
            # a lead is a couple's request the vendor has not accepted yet
            link_status = "requested" if client_status == "lead" else "accepted"
            client = Client(
                organization_id=state.org.id,
                id=_uuid(rng),
                partner1_name=f"{first1} {last1}",
                partner2_name=f"{first2} {last2}",
                email=couple_email,
                phone=couple_phone if rng.random() < 0.7 else None,
                wedding_date=wedding_date,
                venue=venue,
                status=client_status,
                external_ref=state.external_ref(wedding_date.year),
                notes=rng.choice(CLIENT_NOTES) if rng.random() < 0.15 else None,
            )
            clients.append(client)
            links.append(
                WeddingVendor(
                    wedding.id,
                    state.org.id,
                    client.id if link_status == "accepted" else None,
                    state.service,
                    can_view,
                    link_status,
                )
            )
            sample = (state.user_id, state.org.id, wedding.id)
            if link_status == "accepted" and can_view and granted is None:
                granted = sample
            if link_status == "accepted" and not can_view and restricted is None:
                restricted = sample

    # leads that never became weddings on the platform: enquiries and past couples
    for state in states:
        for _ in range(rng.randint(*EXTRA_LEADS_PER_ORGANIZATION)):
            (first1, last1), (first2, last2) = _person(rng), _person(rng)
            when = today + timedelta(days=rng.randint(-365, HORIZON_DAYS))
            status = "completed" if when < today else rng.choice(("lead", "lead", "cancelled"))
            clients.append(
                Client(
                    organization_id=state.org.id,
                    id=_uuid(rng),
                    partner1_name=f"{first1} {last1}",
                    partner2_name=f"{first2} {last2}" if rng.random() < 0.9 else None,
                    email=_email(rng, first1, last1) if rng.random() < 0.9 else None,
                    phone=_phone(rng) if rng.random() < 0.5 else None,
                    wedding_date=when if rng.random() < 0.8 else None,
                    venue=_venue_name(rng) if rng.random() < 0.5 else None,
                    status=status,
                    external_ref=state.external_ref(when.year),
                    notes=rng.choice(CLIENT_NOTES) if rng.random() < 0.3 else None,
                )
            )

    # at least one organization and one wedding exist, so the first link always grants access
    assert granted is not None and couple_user_id is not None
    samples = DemoSamples(
        vendor_user_id=granted[0],
        vendor_organization_id=granted[1],
        vendor_wedding_id=granted[2],
        couple_user_id=couple_user_id,
        couple_wedding_id=weddings[0].id,
        restricted_user_id=restricted[0] if restricted else None,
        restricted_organization_id=restricted[1] if restricted else None,
        restricted_wedding_id=restricted[2] if restricted else None,
    )
    return DemoData(
        size=size,
        today=today,
        organizations=tuple(s.org for s in states),
        organization_members=tuple(org_members),
        clients=tuple(clients),
        weddings=tuple(weddings),
        wedding_members=tuple(wedding_members),
        wedding_vendors=tuple(links),
        samples=samples,
    )


_RSVP = ("pending", "accepted", "declined", "maybe")
# Close to the day most invitations have been answered; a year out most have not.
_RSVP_SOON = tuple(itertools.accumulate((0.12, 0.68, 0.15, 0.05)))
_RSVP_LATER = tuple(itertools.accumulate((0.55, 0.30, 0.08, 0.07)))
_DIETARY_CUM = tuple(itertools.accumulate(DIETARY_WEIGHTS))


def _wedding_guests(
    rng: random.Random, wedding: Wedding, count: int, today: date
) -> Iterator[Guest]:
    rsvp_cum = _RSVP_SOON if (wedding.wedding_date - today).days < 90 else _RSVP_LATER
    random_ = rng.random
    last = rng.choice(SURNAMES)
    seated = 0
    for _ in range(count):
        first = rng.choice(FIRST_NAMES)
        # guests arrive in households: about half share the previous guest's surname
        if random_() >= 0.45:
            last = rng.choice(SURNAMES)
        r = random_()
        rsvp = _RSVP[
            0 if r < rsvp_cum[0] else 1 if r < rsvp_cum[1] else 2 if r < rsvp_cum[2] else 3
        ]
        r = random_()
        if r < 0.72:
            dietary: list[str] = []
        elif r < 0.95:
            dietary = rng.choices(DIETARY, cum_weights=_DIETARY_CUM)
        else:
            dietary = sorted(set(rng.choices(DIETARY, cum_weights=_DIETARY_CUM, k=2)))
        table = None
        if rsvp in ("accepted", "maybe") and random_() < 0.8:
            table = 1 + seated // GUESTS_PER_TABLE
            seated += 1
        plus_one = random_() < 0.15
        plus_one_name = None
        if plus_one and random_() < 0.6:
            plus_one_name = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
        yield Guest(
            wedding_id=wedding.id,
            id=_uuid(rng),
            first_name=first,
            last_name=last,
            email=_email(rng, first, last) if random_() < 0.75 else None,
            rsvp_status=rsvp,
            dietary_requirements=dietary,
            table_number=table,
            plus_one=plus_one,
            plus_one_name=plus_one_name,
            notes=rng.choice(GUEST_NOTES) if random_() < 0.05 else None,
        )
