"""The data API's HTTP conventions: rows with their ETag, pages, If-Match, documented bodies.

Every row carries its ``version``; a single row's response has ``ETag: "<version>"``. PATCH
and DELETE need ``If-Match`` with that tag: none → 428, a stale one → 412 with the current
row and the conflicting fields in the problem body (see ``api.problems``).

The rows this process served one by one are remembered (a row at a version never changes, so
what is remembered is never wrong): a PATCH naming such a version is then compared field by
field with what its client read, which tells the conflicting fields exactly and lets
``?merge=true`` rebase an edit of other fields. For a version this process did not serve
(another worker did, or it was forgotten) the data layer's rule for a bare version applies
(the change feed's record of later updates, see ``data.rows``).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter

from wedsync_db.api.limits import read_body
from wedsync_db.api.problems import etag_of
from wedsync_db.api.v1.deps import Context, UserClaims
from wedsync_db.data import clients, guests, organizations, vendor_links, weddings
from wedsync_db.data.rows import Page, Patch, Row, Table

M = TypeVar("M", bound=Row)
B = TypeVar("B", bound=BaseModel)
Limit = Annotated[int, Query(ge=1, le=1000, description="Rows per page")]
Cursor = Annotated[str | None, Query(description="The previous page's next_cursor")]
Search = Annotated[str | None, Query(min_length=1, max_length=200)]
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


MERGE_DOC = (
    "`?merge=true` rebases the changes onto a newer version when no changed field conflicts."
)


def with_signature(
    handler: Any,
    names: Sequence[str],
    *,
    with_request: bool,
    extra: Sequence[tuple[str, Any, Any]] = (),
) -> Any:
    """``handler`` declaring (for FastAPI) the context, the user's claims and the uuid path
    parameters ``names`` (and the request first when asked), then the ``extra`` parameters
    as (name, annotation, default; ``inspect.Parameter.empty`` for none)."""
    empty = inspect.Parameter.empty
    fixed: list[tuple[str, Any, Any]] = [("ctx", Context, empty), ("claims", UserClaims, empty)]
    if with_request:
        fixed.insert(0, ("request", Request, empty))
    fixed += [(n, UUID, empty) for n in names]
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter(n, keyword, annotation=a, default=d) for n, a, d in [*fixed, *extra]
    ]
    handler.__signature__ = inspect.Signature(params, return_annotation=Response)
    return handler


def list_route(
    router: APIRouter,
    path: str,
    model: type[Row],
    fetch: Callable[..., Awaitable[Sequence[Row]]],
    summary: str,
) -> None:
    """GET ``path`` (one uuid parameter): every row ``fetch(db, claims, parent)`` returns."""
    (name,) = re.findall(r"{(\w+)}", path)

    async def get(ctx: Any, claims: Any, **parent: UUID) -> Response:
        return rows_response(await fetch(ctx.database, claims, parent[name]), model)

    router.add_api_route(
        path,
        with_signature(get, [name], with_request=False),
        methods=["GET"],
        summary=summary,
        response_model=ListOf[model],  # type: ignore[valid-type]
        name=f"list_{name}_{model.__name__.lower()}",
    )


def page_route(
    router: APIRouter,
    path: str,
    model: type[Row],
    fetch: Callable[..., Awaitable[Page[Any]]],
    summary: str,
    *,
    name: str,
    filters: Sequence[tuple[str, Any, Any]] = (),
) -> None:
    """GET ``path``: a page of ``fetch(db, claims, *uuid path parameters, **query)``, the query
    being the ``filters`` (as ``with_signature``'s extra parameters), ``limit`` and ``cursor``."""
    names = re.findall(r"{(\w+)}", path)

    async def get(ctx: Any, claims: Any, **params: Any) -> Response:
        parents = [params.pop(n) for n in names]
        return page_response(await fetch(ctx.database, claims, *parents, **params), model)

    paging = [("limit", Limit, 100), ("cursor", Cursor, None)]
    router.add_api_route(
        path,
        with_signature(get, names, with_request=False, extra=[*filters, *paging]),
        methods=["GET"],
        summary=summary,
        response_model=PageOf[model],  # type: ignore[valid-type]
        name=name,
    )


def create_route(
    router: APIRouter,
    path: str,
    new: type[BaseModel],
    model: type[Row],
    create: Callable[..., Awaitable[Row]],
    summary: str,
    *,
    name: str | None = None,
) -> None:
    """POST ``path`` (one uuid parameter, the parent's id): ``create(db, claims, parent, body)``
    answers 201 with the new row (``name``: the route's, by default ``create_<model>``)."""
    (parent_name,) = re.findall(r"{(\w+)}", path)

    async def post(request: Request, ctx: Any, claims: Any, **parent: UUID) -> Response:
        given = await body(request, new)
        row = await create(ctx.database, claims, parent[parent_name], given)
        return row_response(row, status=201)

    router.add_api_route(
        path,
        with_signature(post, [parent_name], with_request=True),
        methods=["POST"],
        summary=summary,
        status_code=201,
        response_model=model,
        openapi_extra=documented(new),
        name=name or f"create_{model.__name__.lower()}",
    )


def row_routes(
    router: APIRouter,
    path: str,
    table: Table[Any],
    *,
    patch: str | None = None,
    delete: str | None = None,
    merge: bool = True,
) -> None:
    """GET (and, when given their summaries, PATCH and DELETE) of one row of ``table`` at
    ``path``, whose parameters are the table's primary key columns in order."""
    names = re.findall(r"{(\w+)}", path)
    if len(names) != len(table.keys):
        raise ValueError(f"{path} does not name every key of {table.name}")
    model, what = table.model, table.what

    async def get(ctx: Any, claims: Any, **key: UUID) -> Response:
        return row_response(await table.get(ctx.database, claims, [key[n] for n in names]))

    async def change(request: Request, ctx: Any, claims: Any, **key: UUID) -> Response:
        values = [key[n] for n in names]
        expected_row = expected(request, model, values)
        changes = await body(request, table.patch)
        flag = merge and merge_flag(request)
        row = await table.update(ctx.database, claims, values, expected_row, changes, merge=flag)
        return row_response(row)

    async def remove(request: Request, ctx: Any, claims: Any, **key: UUID) -> Response:
        version = expected_version(request)
        await table.delete(ctx.database, claims, [key[n] for n in names], version)
        return Response(status_code=204)

    def add(method: str, handler: Any, summary: str, **route: Any) -> None:
        # the writes read If-Match (and the PATCH its body) from the request
        router.add_api_route(
            path,
            with_signature(handler, names, with_request=method != "GET"),
            methods=[method],
            summary=summary,
            name=f"{method.lower()}_{table.name}",
            **route,
        )

    add("GET", get, f"One {what}", response_model=model)
    if patch is not None:
        add(
            "PATCH",
            change,
            f"{patch} (JSON Merge Patch, If-Match)",
            description=MERGE_DOC if merge else None,
            response_model=model,
            openapi_extra=patch_doc(table.patch),
        )
    if delete is not None:
        add("DELETE", remove, f"{delete} (If-Match)", status_code=204, openapi_extra=IF_MATCH_DOC)
