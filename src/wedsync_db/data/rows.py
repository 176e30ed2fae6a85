"""What every entity of the data layer shares: the user scope, versioned updates, keyset cursors.

Every function runs in a user scope (``db.as_user(claims)`` or a ``Session`` such a scope
opened), so row level security is the only gate. A row the user cannot see is ``NotFound``; a
visible row whose version moved on is ``StaleVersion``; a visible row the user may not change
is ``PermissionDenied``.

Conflicting fields. When the caller passes the row it read (not just its version), the
conflicting fields are the changed fields whose current value differs from the value the
caller read: someone else changed them meanwhile. With a bare version the old values are
unknown, but the change feed's outbox (migration 0011) records the columns every update of
guests, weddings, vendor links and clients changed: while it still holds every version after
the one named, the conflicting fields are the changed fields those updates changed (unless
already to the value asked for). Otherwise
(organizations and members, which the feed does not record, or a version older than the feed's
retention) they are the changed fields whose current value differs from the requested one (a
field someone else already set to the same value is no conflict).

``merge=True`` applies the changes as a JSON Merge Patch onto the current version when none of
the changed fields conflicts, up to ``MERGE_ATTEMPTS`` times (each attempt is one more update
naming the version just read).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar

from psycopg import sql
from pydantic import BaseModel, ConfigDict, model_validator

from wedsync_db.db.client import Claims, Database
from wedsync_db.db.queries import load_queries
from wedsync_db.db.session import Session
from wedsync_db.errors import NotFound, PermissionDenied, StaleVersion

M = TypeVar("M", bound="Row")
ClaimsLike = Claims | Mapping[str, Any]
Target = Database | Session

MERGE_ATTEMPTS = 5


@contextlib.asynccontextmanager
async def user_scope(target: Target, claims: ClaimsLike | None) -> AsyncIterator[Session]:
    """The user session to run in: a new ``as_user`` scope of a Database, or an open one."""
    if isinstance(target, Session):
        if claims is not None:
            raise ValueError("an open Session already has its claims; pass None")
        if target.pool != "user":
            raise ValueError("the data layer runs only in user scopes (db.as_user)")
        yield target
        return
    if claims is None:
        raise ValueError("a Database needs the user's claims")
    async with target.as_user(claims) as session:
        yield session


class Row(BaseModel):
    """A row as read: its fields are the columns every statement returns."""

    model_config = ConfigDict(frozen=True)

    version: int


class Patch(BaseModel):
    """Changes to a row, as a JSON Merge Patch: a field left out stays as it is, a field given
    as null becomes NULL (refused for the columns in ``not_null``), unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    not_null: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _refuse_null(self) -> Self:
        for name in sorted(self.model_fields_set & self.not_null):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the caller set, and only those."""
        return self.model_dump(exclude_unset=True)


P = TypeVar("P", bound=Patch)


def patch_of(model: type[P], changes: P | Mapping[str, Any]) -> dict[str, Any]:
    """The fields a caller gave as a ``model`` or a mapping ``model`` validates."""
    patch = changes if isinstance(changes, model) else model.model_validate(changes)
    return patch.changes()


@dataclass(frozen=True)
class Table(Generic[M]):
    """An entity's table: its name, primary key columns, read model (whose fields are the
    columns every statement returns) and patch model (what a caller may change).

    Its methods run in a user scope of ``db`` with ``claims`` (or in the open user Session
    given as ``db``, claims None); ``key`` is the primary key's values in ``keys`` order."""

    name: str
    what: str
    keys: tuple[str, ...]
    model: type[M]
    patch: type[Patch]

    @functools.cached_property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.model.model_fields)

    def render(self, query: str, changed: Sequence[str] = ()) -> str:
        """A statement of ``sql/rows.sql`` (or another file's, given as its text) for this table."""
        return _render(self.name, self.keys, self.columns, query, tuple(changed))

    async def get(self, db: Target, claims: ClaimsLike | None, key: Sequence[Any]) -> M:
        """One row; ``NotFound`` when it does not exist or the user may not see it."""
        async with user_scope(db, claims) as s:
            return await get_row(s, self, key)

    async def update(
        self,
        db: Target,
        claims: ClaimsLike | None,
        key: Sequence[Any],
        expected: int | M,
        changes: Patch | Mapping[str, Any],
        *,
        merge: bool = False,
    ) -> M:
        """Apply ``changes`` (a patch model, or a mapping it validates) if the row still has
        the version read: ``expected`` is that version, or the row as read, which lets
        conflicts be told precisely. Stale → ``StaleVersion``; invisible → ``NotFound``;
        read-only → ``PermissionDenied``; ``merge`` rebases edits of other fields."""
        patch = changes if isinstance(changes, Patch) else self.patch.model_validate(changes)
        async with user_scope(db, claims) as s:
            return await update_row(s, self, key, expected, patch.changes(), merge=merge)

    async def delete(
        self, db: Target, claims: ClaimsLike | None, key: Sequence[Any], expected: int | None = None
    ) -> None:
        """Delete the row, only at version ``expected`` unless None (errors as ``update``)."""
        async with user_scope(db, claims) as s:
            await delete_row(s, self, key, expected)

    async def insert(self, db: Target, claims: ClaimsLike | None, values: Mapping[str, Any]) -> M:
        """A new row from column values the caller validated."""
        async with user_scope(db, claims) as s:
            return await insert_row(s, self, values)

    async def select(
        self, db: Target, claims: ClaimsLike | None, query: str, params: Sequence[Any] = ()
    ) -> list[M]:
        async with user_scope(db, claims) as s:
            return await select_rows(s, self, query, params)

    async def page(
        self,
        db: Target,
        claims: ClaimsLike | None,
        query: str,
        params: Sequence[Any],
        *,
        limit: int,
        cursor: str | None,
        sort: tuple[str, ...],
    ) -> Page[M]:
        """A page of ``query``, a statement whose parameters are ``params``, then the values
        of the ``sort`` fields after which the page starts (NULLs on the first page) and the
        row limit. It orders by those fields, a nullable one as ``coalesce(field, '')`` (the
        cursor holds NULL as ''), the last one unique. One row more than ``limit`` is
        fetched, to know whether a next page exists."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        after = [None] * len(sort) if cursor is None else decode_cursor(cursor, len(sort))
        async with user_scope(db, claims) as s:
            rows = await select_rows(s, self, query, [*params, *after, limit + 1])
        if len(rows) <= limit:
            return Page(rows, None)
        last = rows[limit - 1]
        return Page(rows[:limit], encode_cursor([getattr(last, f) or "" for f in sort]))


def statement(filename: str, name: str) -> str:
    """A named statement of one of the data layer's ``sql/*.sql`` files."""
    return load_queries("wedsync_db.data", f"sql/{filename}")[name].sql


def _placeholders(count: int) -> sql.Composed:
    return sql.SQL(", ").join([sql.Placeholder()] * count)


def _match(keys: Sequence[str]) -> sql.Composed:
    return sql.SQL(" and ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in keys)


@functools.cache
def _render(
    table: str,
    keys: tuple[str, ...],
    columns: tuple[str, ...],
    query: str,
    changed: tuple[str, ...],
) -> str:
    queries = load_queries("wedsync_db.data", "sql/rows.sql")
    text = queries[query].sql if query in queries else query
    parts = {
        "table": sql.Identifier(table),
        "columns": sql.SQL(", ").join(map(sql.Identifier, columns)),
        "key_match": _match(keys),
        "names": sql.SQL(", ").join(map(sql.Identifier, changed)),
        "values": _placeholders(len(changed)),
        "assignments": sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(c)) for c in changed
        ),
    }
    return sql.SQL(text).format(**parts).as_string(None)


def _read(model: type[M], row: tuple[Any, ...] | None, columns: Sequence[str]) -> M | None:
    return None if row is None else model.model_validate(dict(zip(columns, row, strict=True)))


async def select_rows(
    s: Session, table: Table[M], query: str, params: Sequence[Any] = ()
) -> list[M]:
    """Rows of ``table`` returned by ``query`` (a statement that selects ``{columns}``)."""
    rows = await s.fetch_tuples(table.render(query), params)
    return [table.model.model_validate(dict(zip(table.columns, r, strict=True))) for r in rows]


async def get_row(s: Session, table: Table[M], key: Sequence[Any]) -> M:
    """One row by primary key; ``NotFound`` when absent or invisible."""
    rows = await s.fetch_tuples(table.render("select_row"), list(key))
    row = _read(table.model, rows[0] if rows else None, table.columns)
    if row is None:
        raise NotFound(table.what)
    return row


async def insert_row(s: Session, table: Table[M], values: Mapping[str, Any]) -> M:
    """A new row from the given column values (RLS decides whether the user may add it)."""
    names = tuple(values)
    rows = await s.fetch_tuples(table.render("insert_row", names), [values[n] for n in names])
    row = _read(table.model, rows[0], table.columns)
    assert row is not None
    return row


# the change feed's name and stream column of each entity it records (migration 0011)
FEED_ENTITIES = {
    "guests": ("guest", "wedding_id"),
    "weddings": ("wedding", "id"),
    "wedding_vendors": ("vendor_link", "wedding_id"),
    "clients": ("client", "organization_id"),
}


async def changed_since(
    s: Session, table: Table[M], key: Sequence[Any], version: int, current: int
) -> frozenset[str] | None:
    """The columns the updates after ``version`` (up to ``current``) changed, from the change
    feed; None when the feed does not record this entity or no longer holds every version."""
    recorded = FEED_ENTITIES.get(table.name)
    if recorded is None:
        return None
    entity, stream_column = recorded
    keys = dict(zip(table.keys, key, strict=True))
    row_key = json.dumps({k: str(v) for k, v in keys.items()})
    query = statement("feed.sql", "changed_since")
    found = await s.fetch_tuples(query, [keys[stream_column], entity, row_key, version, current])
    versions, columns = found[0]
    return frozenset(columns) if versions == current - version else None


def conflicting_fields(
    current: Row, read: Row | None, changes: Mapping[str, Any]
) -> tuple[str, ...]:
    """The changed fields someone else changed since ``read`` (see the module docstring for a
    bare version, ``read`` None)."""
    if read is not None:
        return tuple(f for f in changes if getattr(current, f) != getattr(read, f))
    return tuple(f for f in changes if getattr(current, f) != changes[f])


async def update_row(
    s: Session,
    table: Table[M],
    key: Sequence[Any],
    expected: int | M,
    changes: Mapping[str, Any],
    *,
    merge: bool = False,
) -> M:
    """Apply ``changes`` to the row if it still has the expected version (the version, or the
    row as read). An update that changes nothing keeps the version."""
    read: Row | None = None if isinstance(expected, int) else expected
    version = expected if isinstance(expected, int) else expected.version
    first = version
    if not changes:
        return await get_row(s, table, key)
    names = tuple(changes)
    statement = table.render("update_row", names)
    values = [changes[n] for n in names]
    for _ in range(MERGE_ATTEMPTS):
        rows = await s.fetch_tuples(statement, [*values, *key, version])
        if rows:
            row = _read(table.model, rows[0], table.columns)
            assert row is not None
            return row
        current = await get_row(s, table, key)
        if current.version == version:
            raise PermissionDenied(f"this user may read but not change this {table.what}")
        history = None
        if read is None:
            history = await changed_since(s, table, key, version, current.version)
        if history is not None:
            # changed by someone else, and not already to the value asked for
            conflicts = tuple(
                f for f in changes if f in history and getattr(current, f) != changes[f]
            )
        else:
            conflicts = conflicting_fields(current, read, changes)
        if not merge or conflicts:
            raise StaleVersion(table.what, current, conflicts, first)
        read, version = current, current.version
    raise StaleVersion(table.what, await get_row(s, table, key), (), first)


async def delete_row(
    s: Session, table: Table[M], key: Sequence[Any], expected: int | None = None
) -> None:
    """Delete the row (only at the expected version, when one is given)."""
    if await s.execute(table.render("delete_row"), [*key, expected]):
        return
    current = await get_row(s, table, key)
    if expected is None or current.version == expected:
        raise PermissionDenied(f"this user may read but not delete this {table.what}")
    raise StaleVersion(table.what, current, (), expected)


def like_pattern(text: str) -> str:
    """An ILIKE pattern matching ``text`` anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def encode_cursor(values: Sequence[Any]) -> str:
    """An opaque page cursor from the sort key of a page's last row."""
    text = json.dumps([str(v) if v is not None else None for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str | None]:
    """The sort key a cursor holds; ``ValueError`` for anything this module did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a page cursor") from None
    if not isinstance(values, list) or len(values) != size:
        raise ValueError("not a page cursor")
    if not all(v is None or isinstance(v, str) for v in values):
        raise ValueError("not a page cursor")
    return values


@dataclass(frozen=True)
class Page(Generic[M]):
    """One page of rows and the cursor of the next page (None on the last)."""

    rows: list[M]
    next_cursor: str | None
