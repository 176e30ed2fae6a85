"""Bulk import over HTTP: a CSV file uploaded (multipart, field ``file``) into an organization's
clients or a wedding's guests, in the calling user's scope, and the reports of earlier imports.

The body is read only after the token is verified, and bounded by ``WEDSYNC_IMPORT_MAX_BYTES``
(the upload is spooled to a temporary file, never held in memory whole). Answers: 201 imported
(``Location`` names the report), 200 the earlier report of an identical file or a dry run, 422
rows with errors (nothing written) or a file that cannot be read, 402 over the plan.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from wedsync_db.api.problems import problem
from wedsync_db.api.v1 import http
from wedsync_db.api.v1.deps import Context, UserClaims
from wedsync_db.errors import ImportRefused
from wedsync_db.imports.csvfile import parse_map
from wedsync_db.imports.fields import ImportKind
from wedsync_db.imports.report import ImportReport
from wedsync_db.imports.service import ImportOptions, read_report, run_import

router = APIRouter(tags=["imports"])

# the upload routes, which take WEDSYNC_IMPORT_MAX_BYTES instead of WEDSYNC_MAX_BODY_BYTES
IMPORT_UPLOADS = re.compile(r"/api/v1/(organizations|weddings)/[^/]+/imports/?")

MapQuery = Annotated[
    list[str] | None,
    Query(alias="map", description="COLUMN=FIELD (or COLUMN=ignore), repeatable"),
]
DryRunQuery = Annotated[bool, Query(description="Check and count; write nothing")]
SkipQuery = Annotated[bool, Query(description="Import the good rows (default: all or nothing)")]
OrderQuery = Annotated[
    Literal["auto", "dmy", "mdy"], Query(description="Day or month first in dates like 03/04/27")
]
ErrorsAfter = Annotated[str | None, Query(description="The previous page's next_errors_cursor")]
ErrorsLimit = Annotated[int, Query(ge=1, le=1000, description="Errors per page")]

UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The earlier report of an identical file, or a dry run's report"},
    402: {"description": "The file would take the plan over its limit; nothing was written"},
    422: {"description": "Rows with errors (nothing written), or a file that cannot be read"},
}


@dataclass
class UploadQuery:
    """An upload's options, from its query string."""

    column_map: MapQuery = None
    dry_run: DryRunQuery = False
    skip_bad_rows: SkipQuery = False
    date_order: OrderQuery = "auto"


Upload = Annotated[UploadQuery, Depends()]


def _import_routes(kind: ImportKind, parents: str, parent: str) -> None:
    """The upload and report routes of one kind of import, below ``/<parents>/{<parent>}``."""
    path = f"/{parents}/{{{parent}}}/imports"

    async def upload(
        request: Request, ctx: Context, claims: UserClaims, query: UploadQuery, **ids: UUID
    ) -> Response:
        return await _upload(request, ctx, claims, kind, ids[parent], query)

    async def report(
        ctx: Context, claims: UserClaims, errors_after: str | None, limit: int, **ids: UUID
    ) -> Response:
        return await _report(ctx, claims, kind, ids[parent], ids["import_id"], errors_after, limit)

    upload_query = [("query", Upload, inspect.Parameter.empty)]
    router.add_api_route(
        path,
        http.with_signature(upload, [parent], with_request=True, extra=upload_query),
        methods=["POST"],
        summary=f"Import {kind} from a CSV file (multipart field `file`)",
        status_code=201,
        response_model=ImportReport,
        responses=RESPONSES,
        openapi_extra=UPLOAD_DOC,
        name=f"import_{kind}",
    )
    page = [("errors_after", ErrorsAfter, None), ("limit", ErrorsLimit, 100)]
    router.add_api_route(
        f"{path}/{{import_id}}",
        http.with_signature(report, [parent, "import_id"], with_request=False, extra=page),
        methods=["GET"],
        summary=f"A {kind} import's report and a page of its errors",
        response_model=ImportReport,
        name=f"get_{kind}_import",
    )


def _json(report: ImportReport, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        report.model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def _upload(
    request: Request,
    ctx: Context,
    claims: UserClaims,
    kind: ImportKind,
    target: UUID,
    query: UploadQuery,
) -> Response:
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return problem(422, "No file", "send the CSV file as the multipart form field 'file'")
        try:
            options = ImportOptions(
                column_map=parse_map(query.column_map or []),
                dry_run=query.dry_run,
                skip_bad_rows=query.skip_bad_rows,
                date_order=query.date_order,
                file_name=upload.filename,
            )
            report = await run_import(ctx.database, claims, kind, target, upload.file, options)
        except ImportRefused as exc:
            return problem(422, "File cannot be imported", str(exc))
    if report.status == "failed":
        return _problem_with(report, 422, "Rows with errors")
    if report.status == "refused":
        return _problem_with(report, 402, "Plan limit reached")
    if report.repeated or report.dry_run or report.id is None:
        return _json(report, 200)
    prefix = "organizations" if kind == "clients" else "weddings"
    location = f"/api/v1/{prefix}/{target}/imports/{report.id}"
    return _json(report, 201, {"Location": location})


def _problem_with(report: ImportReport, status: int, title: str) -> JSONResponse:
    return problem(status, title, report.message, report=report.model_dump(mode="json"))


async def _report(
    ctx: Context,
    claims: UserClaims,
    kind: ImportKind,
    target: UUID,
    import_id: UUID,
    errors_after: str | None,
    limit: int,
) -> Response:
    try:
        report = await read_report(
            ctx.database, claims, kind, target, import_id, errors_after=errors_after, limit=limit
        )
    except ValueError as exc:
        return problem(400, "Bad cursor", str(exc))
    return _json(report, 200)


_import_routes("clients", "organizations", "organization_id")
_import_routes("guests", "weddings", "wedding_id")
