"""Pure parts of the data layer: page cursors, search patterns, patches, conflicting fields."""

from __future__ import annotations

from uuid import UUID

import pytest

from wedsync_db.data.guests import GuestUpdate
from wedsync_db.data.rows import (
    Row,
    conflicting_fields,
    decode_cursor,
    encode_cursor,
    like_pattern,
)


class Item(Row):
    a: int | None
    b: str


def test_a_cursor_round_trips_and_refuses_what_it_did_not_make() -> None:
    cursor = encode_cursor(["Lovelace", "Ada", UUID(int=7)])
    assert decode_cursor(cursor, 3) == ["Lovelace", "Ada", str(UUID(int=7))]
    for bad in ("", "!!!", encode_cursor(["x"]), "eyJhIjoxfQ"):
        with pytest.raises(ValueError, match="not a page cursor"):
            decode_cursor(bad, 3)


def test_a_search_takes_wildcards_literally() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_a_patch_keeps_only_what_the_caller_set_and_refuses_null_for_required_fields() -> None:
    assert GuestUpdate.model_validate({"email": None, "notes": "n"}).changes() == {
        "email": None,
        "notes": "n",
    }
    with pytest.raises(ValueError, match="rsvp_status cannot be null"):
        GuestUpdate.model_validate({"rsvp_status": None})
    with pytest.raises(ValueError, match="extra"):
        GuestUpdate.model_validate({"version": 3})


def test_conflicting_fields_with_and_without_the_row_read() -> None:
    read = Item(version=1, a=1, b="x")
    current = Item(version=2, a=2, b="x")
    # the row read: a field conflicts when someone else changed it since
    assert conflicting_fields(current, read, {"a": 5, "b": "y"}) == ("a",)
    assert conflicting_fields(current, read, {"b": "y"}) == ()
    # a bare version: a field conflicts when its current value is not the one asked for
    assert conflicting_fields(current, None, {"a": 2, "b": "y"}) == ("b",)
