"""The change feed's records and errors (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from wedsync_db.errors import WedsyncDBError
from wedsync_db.jsonable import JSON_TEXT, NOT_JSON, to_json


@dataclass(frozen=True)
class Change:
    """One recorded change: ``seq`` is its number in its stream (the cursor and the SSE id).

    The row's data is not part of it: read the row through the data API or ``as_user``."""

    stream: UUID = field(metadata=NOT_JSON)
    seq: int
    entity: str
    op: str
    key: dict[str, Any]
    changed: tuple[str, ...] | None
    wedding_id: UUID | None = field(metadata=JSON_TEXT)
    organization_id: UUID | None = field(metadata=JSON_TEXT)
    version: int | None
    changed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the SSE data and the poll response items): ``seq`` is its ``id``."""
        out: dict[str, Any] = to_json(self)
        return {"id": out.pop("seq"), **out}

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":"))


class CursorExpired(WedsyncDBError):
    """Changes after the cursor were pruned (older than the retention): the reader must read
    the current state again and continue from the stream's head."""

    def __init__(self, stream: UUID, after: int, pruned_through: int) -> None:
        self.stream = stream
        self.after = after
        self.pruned_through = pruned_through
        super().__init__(
            f"change {after} of stream {stream} is older than the feed's retention (changes up "
            f"to {pruned_through} were pruned): reload the current state, then follow the feed "
            "from its head"
        )


class CursorAhead(WedsyncDBError, ValueError):
    """The cursor names a change the stream has not recorded."""

    def __init__(self, stream: UUID, after: int, head: int) -> None:
        self.stream = stream
        self.after = after
        self.head = head
        super().__init__(
            f"stream {stream} has recorded {head} change(s), so there is no change {after} to "
            "continue after: use a change id this feed gave"
        )


def check_cursor(stream: UUID, after: int, head: int, pruned_through: int) -> None:
    """Raise CursorExpired when changes after ``after`` were pruned, CursorAhead when the
    stream has not recorded change ``after`` (its head is ``head``)."""
    if after < pruned_through:
        raise CursorExpired(stream, after, pruned_through)
    if after > head:
        raise CursorAhead(stream, after, head)


class SubscriberTooSlow(WedsyncDBError):
    """A subscriber left too many changes unread; it reconnects from its last change id."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"more than {limit} changes waited for this subscriber: reconnect with the last "
            "change id received"
        )
