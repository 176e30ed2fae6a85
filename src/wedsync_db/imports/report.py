"""An import's report, as stored in ``ops.imports`` and returned by the CLI and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

ImportStatus = Literal["imported", "failed", "refused"]


class RowError(BaseModel):
    """One problem with one row: its line in the file, the column (``*`` for the row as a
    whole), the value (truncated) and what is wrong."""

    model_config = ConfigDict(frozen=True)

    line: int
    field: str
    value: str | None
    reason: str


class FileFormat(BaseModel):
    """How the file was read."""

    encoding: str
    delimiter: str
    date_order: str
    columns: dict[str, str]
    ignored_columns: list[str]


class ImportReport(BaseModel):
    """What an import did (or, for a dry run, would do).

    ``status``: imported (written, bad rows skipped when asked), failed (bad rows and
    all-or-nothing: nothing written), refused (over the plan: nothing written). ``repeated``:
    the same file with the same options was imported before; this is that import's report.
    """

    id: UUID | None
    kind: Literal["clients", "guests"]
    organization_id: UUID | None
    wedding_id: UUID | None
    actor: UUID
    created_at: datetime | None
    finished_at: datetime | None
    file_name: str | None
    file_sha256: str
    file_bytes: int
    status: ImportStatus
    dry_run: bool = False
    repeated: bool = False
    skip_bad_rows: bool = False
    rows: int
    inserted: int
    updated: int
    unchanged: int
    skipped: int
    error_count: int
    message: str | None
    format: FileFormat
    errors: list[RowError]
    next_errors_cursor: str | None = None

    def summary(self) -> dict[str, Any]:
        """The outcome without ids, times or hash (what two runs of one file share)."""
        return self.model_dump(
            mode="json",
            exclude={"id", "actor", "created_at", "finished_at", "organization_id", "wedding_id"},
        )
