"""The data API's HTTP conventions: rows with their ETag, pages, If-Match, documented bodies.

Every row carries its ``version``; a single row's response has ``ETag: "<version>"``. PATCH
and DELETE need ``If-Match`` with that tag: none → 428, a stale one → 412 with the current
row and the conflicting fields in the problem body (see ``api.problems``).

The rows this process served one by one are remembered (a row at a version never changes, so
what is remembered is never wrong): a PATCH naming such a version is then compared field by
field with what its client read, which tells the conflicting fields exactly and lets
``?merge=true`` rebase an edit of other fields. For a version this process did not serve
(another worker did, or it was forgotten) the data layer's rule for a bare version applies.
"""

from __future__ import annotations

import functools
import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from fastapi import HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter

from wedsync_db.api.limits import read_body
from wedsync_db.api.problems import etag_of
from wedsync_db.data import clients, guests, organizations, vendor_links, weddings
from wedsync_db.data.rows import Page, Patch, Row

M = TypeVar("M", bound=Row)
B = TypeVar("B", bound=BaseModel)
_ETAG = re.compile(r'\s*"(\d{1,18})"\s*')

# the primary key columns of each entity's rows, to remember and recall them
_KEYS: dict[type[Row], tuple[str, ...]] = {
    table.model: table.keys
    for table in (
        guests.GUESTS,
        weddings.WEDDINGS,
        clients.CLIENTS,
        organizations.ORGANIZATIONS,
        organizations.MEMBERS,
        vendor_links.LINKS,
    )
}
REMEMBERED_ROWS = 10_000
_served: OrderedDict[tuple[type[Row], tuple[str, ...], int], Row] = OrderedDict()


def _remember(row: Row) -> None:
    keys = _KEYS.get(type(row))
    if keys is None:
        return
    _served[(type(row), tuple(str(getattr(row, k)) for k in keys), row.version)] = row
    while len(_served) > REMEMBERED_ROWS:
        _served.popitem(last=False)


def expected(request: Request, model: type[M], key: Sequence[Any]) -> int | M:
    """What ``If-Match`` names: the row as this process served it at that version when
    remembered, else the bare version (see the module docstring)."""
    version = expected_version(request)
    row = _served.get((model, tuple(str(k) for k in key), version))
    return row if isinstance(row, model) else version


class PageOf(BaseModel, Generic[M]):
    """A page of rows; pass ``next_cursor`` as ``cursor`` for the next page (null: the last)."""

    items: list[M]
    next_cursor: str | None


class ListOf(BaseModel, Generic[M]):
    """Rows (every one of them: such lists are small)."""

    items: list[M]


@functools.cache
def _adapter(model: type[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def row_response(row: Row, status: int = 200) -> Response:
    """One row as JSON, with its ETag (and remembered, see the module docstring)."""
    _remember(row)
    body = _adapter(type(row)).dump_json(row)
    headers = {"ETag": etag_of(row.version)}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def rows_response(rows: Sequence[Row], model: type[Row]) -> Response:
    """A list of rows as ``{"items": [...]}``."""
    items = _adapter(list[model]).dump_json(list(rows))  # type: ignore[valid-type]
    return Response(b'{"items":' + items + b"}", media_type="application/json")


def page_response(page: Page[Any], model: type[Row]) -> Response:
    """A page of rows as ``{"items": [...], "next_cursor": ...}``."""
    items = _adapter(list[model]).dump_json(page.rows)  # type: ignore[valid-type]
    cursor = json.dumps(page.next_cursor).encode()
    body = b'{"items":' + items + b',"next_cursor":' + cursor + b"}"
    return Response(body, media_type="application/json")


def expected_version(request: Request) -> int:
    """The version ``If-Match`` names: 428 when absent, 400 when it is not one of our tags."""
    header = request.headers.get("if-match")
    if header is None:
        raise HTTPException(
            status_code=428,
            detail="If-Match is required: send the ETag of the row as you read it",
        )
    found = _ETAG.fullmatch(header)
    if found is None:
        raise HTTPException(
            status_code=400,
            detail='If-Match must be one ETag of this API, as "<version>" (not *, W/ or a list)',
        )
    return int(found.group(1))


def merge_flag(request: Request) -> bool:
    """``?merge=true``: rebase the changes onto a newer version when no changed field
    conflicts (JSON Merge Patch semantics)."""
    return request.query_params.get("merge", "false").lower() in ("1", "true", "yes")


async def body(request: Request, model: type[B]) -> B:
    """The JSON body as ``model``, read after authentication (unknown fields refused)."""
    return await read_body(request, model)


def documented(model: type[BaseModel], *, merge_patch: bool = False) -> dict[str, Any]:
    """``openapi_extra`` declaring the request body a route reads itself."""
    schema = {"application/json": {"schema": model.model_json_schema()}}
    if merge_patch:
        schema["application/merge-patch+json"] = schema["application/json"]
    return {"requestBody": {"required": True, "content": schema}}


def patch_doc(model: type[Patch]) -> dict[str, Any]:
    """``openapi_extra`` of a PATCH: a merge patch body and the If-Match header."""
    extra = documented(model, merge_patch=True)
    extra["parameters"] = [
        {
            "name": "If-Match",
            "in": "header",
            "required": True,
            "description": 'The ETag of the row as read ("<version>")',
            "schema": {"type": "string"},
        }
    ]
    return extra


IF_MATCH_DOC: dict[str, Any] = {"parameters": patch_doc(Patch)["parameters"]}
