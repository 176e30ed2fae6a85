"""Running an import: the file streams into the staging area with COPY, SQL validates it, and
the importing user's scope writes clients or guests with INSERT … SELECT / UPDATE (RLS decides).

1. The user's scope sees the target (else ``NotFound``), returns the earlier report of an
   identical import, and opens the import (RLS refuses a target the user may not write).
2. A service scope COPYs the rows into ``ops.import_*_rows``, stamped with the import and its
   actor (user roles may neither COPY into an RLS table nor create temporary tables); the file
   is parsed in a worker thread, one chunk ahead of the COPY, so memory holds two chunks.
3. The user's scope, under a transaction-level advisory lock on the target: the rows' errors
   (SQL), the plan room (before anything is written), then UPDATE of the changed matched rows
   and INSERT of the new ones, the report, and the staged rows deleted. A dry run counts
   instead of writing and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any, Literal
from uuid import UUID

from wedsync_db.db.bulk import copy_csv
from wedsync_db.db.client import Claims, Database
from wedsync_db.db.queries import load_queries
from wedsync_db.db.session import Session
from wedsync_db.errors import NotFound
from wedsync_db.imports import csvfile
from wedsync_db.imports.csvfile import OpenedFile, ReadOptions, ReadStats
from wedsync_db.imports.fields import KINDS, ImportKind, Kind
from wedsync_db.imports.report import FileFormat, ImportReport, RowError

# errors in a report as returned (GET …/imports/{id} pages through the rest)
REPORT_ERRORS = 100
# an import still staging this long after it began was stopped (the largest file the size
# limit admits imports in minutes; a failed run cleans up after itself at once)
ABANDONED_AFTER = timedelta(hours=1)
_FRAGMENTS = ("valid", "matches", "next", "update", "insert")


@dataclass(frozen=True)
class ImportOptions:
    """What the caller chose: an explicit column map (header or ``#N`` → field or ignore), a
    dry run, skipping bad rows instead of all-or-nothing, the date order (auto: from the
    target's timezone) and the file's name for the report."""

    column_map: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    skip_bad_rows: bool = False
    date_order: Literal["auto", "dmy", "mdy"] = "auto"
    file_name: str | None = None


Progress = Callable[[ReadStats, int, int], None]


@functools.cache
def statement(name: str, kind: str | None = None) -> str:
    """A statement of ``sql/imports.sql`` with its fragments pasted in: ``{client_valid}``
    and the like by name, and in a statement shared by both kinds ``{valid}`` and the like
    as the fragments of ``kind`` (client or guest)."""
    queries = load_queries("wedsync_db.imports", "sql/imports.sql")
    text = queries[name].sql
    for prefix in ("client", "guest"):
        for fragment in _FRAGMENTS:
            sql = queries[f"{prefix}_{fragment}"].sql
            text = text.replace(f"{{{prefix}_{fragment}}}", sql)
            if prefix == kind:
                text = text.replace(f"{{{fragment}}}", sql)
    return text


def _prefix(kind: Kind) -> str:
    return kind.name.rstrip("s")


def _target_name(kind: Kind) -> str:
    return "organization" if kind.name == "clients" else "wedding"


async def run_import(
    db: Database,
    claims: Claims | Mapping[str, Any],
    kind_name: ImportKind,
    target: UUID,
    binary: IO[bytes],
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a CSV file of ``kind_name`` (clients into organization ``target``, guests into
    wedding ``target``) as the user of ``claims``; the report says what happened.

    ``ImportRefused`` for a file that cannot be imported at all, ``NotFound`` for a target the
    user does not see, ``PermissionDenied`` for one the user may not write."""
    options = options or ImportOptions()
    kind = KINDS[kind_name]
    user = Claims.coerce(claims)
    explicit = dict(options.column_map)
    facts = await asyncio.to_thread(csvfile.examine, binary)
    opened = await asyncio.to_thread(csvfile.open_file, binary, kind, explicit, facts)
    what = _target_name(kind)
    async with db.as_user(user) as s:
        zone = await s.fetch_val(statement(f"{what}_timezone"), [target])
        if zone is None:
            raise NotFound(what)
        order = options.date_order if options.date_order != "auto" else None
        order = order or csvfile.date_order_for(zone)
        chosen = {
            "map": sorted(explicit.items()),
            "skip_bad_rows": options.skip_bad_rows,
            "date_order": order,
        }
        options_key = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()
        file_format = FileFormat(
            encoding=facts.encoding,
            delimiter=opened.dialect.delimiter,
            date_order=order,
            columns=opened.plan.mapping,
            ignored_columns=list(opened.plan.ignored),
        )
        keys = {"kind": kind.name, "target": target, "sha256": facts.sha256}
        if not options.dry_run:
            earlier = await s.fetch_val(
                statement("earlier_import"), {**keys, "options_key": options_key}
            )
            if earlier is not None:
                report = await read_report(s, None, kind.name, target, earlier)
                return report.model_copy(update={"repeated": True})
        import_id: UUID = await s.fetch_val(
            statement("open_import"),
            {
                **keys,
                "organization": target if kind.name == "clients" else None,
                "wedding": target if kind.name == "guests" else None,
                "file_name": (options.file_name or "")[:255] or None,
                "size": facts.size,
                "options": json.dumps(chosen),
                "options_key": options_key,
                "format": file_format.model_dump_json(),
            },
        )
    try:
        await _stage(db, opened, kind, import_id, ReadOptions(order, zone), progress)
        async with db.as_user(user) as s:
            report = await _decide_and_write(s, kind, import_id, target, opened, options)
    except Exception as exc:
        async with db.service(reason="bulk import stopped") as s:
            if options.dry_run:
                await s.execute(statement("forget_import"), [import_id])
            else:
                await s.execute(statement("abandon_import"), [_first_line(exc), import_id])
            await s.execute(statement(f"clear_{_prefix(kind)}_rows"), [import_id])
        raise
    if options.dry_run:
        async with db.service(reason="bulk import dry run") as s:
            await s.execute(statement("forget_import"), [import_id])
    return report.model_copy(
        update={"dry_run": options.dry_run, "skip_bad_rows": options.skip_bad_rows}
    )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


async def _stage(
    db: Database,
    opened: OpenedFile,
    kind: Kind,
    import_id: UUID,
    read: ReadOptions,
    progress: Progress | None,
) -> None:
    """COPY the file's rows into the staging table (service scope: see the module docstring)."""
    columns = ("line", "bad_field", "bad_value", "bad_reason", *kind.fields)
    total = opened.facts.size

    def tick() -> None:
        if progress is not None:
            progress(opened.stats, min(_position(opened.binary), total), total)

    async with db.service(reason="bulk import staging") as s:
        stamped = await s.fetch_tuples(statement("stage_settings"), [import_id])
        if not stamped:
            raise NotFound("import")
        chunks = _prefetched(csvfile.staged_chunks(opened, read))
        await copy_csv(s, ("ops", kind.staging), columns, chunks, tick)
    tick()


def _position(binary: IO[bytes]) -> int:
    try:
        return binary.tell()
    except (OSError, ValueError):
        return 0


async def _prefetched(chunks: Iterator[str]) -> AsyncIterator[str]:
    """The chunks, each parsed in a worker thread while the previous one is being sent."""
    pending = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
            yield chunk
    finally:
        if not pending.done():
            pending.cancel()


async def _decide_and_write(
    s: Session,
    kind: Kind,
    import_id: UUID,
    target: UUID,
    opened: OpenedFile,
    options: ImportOptions,
) -> ImportReport:
    prefix = _prefix(kind)
    params = {"import": import_id, "target": target, "fields": opened.plan.present}
    await s.execute(statement("write_settings"))
    # one import at a time per target: the counts and the plan room hold until COMMIT
    await s.fetch_val(
        "select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(%s, 0))",
        [f"wedsync.import:{target}"],
    )
    await s.execute(statement(f"{prefix}_errors"), params)
    await s.execute(statement(f"{prefix}_conflicts"), params)
    summary = await s.fetch_tuples(statement("error_summary"), [import_id])
    error_count, error_lines = summary[0]
    rows = opened.stats.rows
    valid = rows - error_lines
    status: Literal["imported", "failed", "refused"] = "imported"
    message: str | None = None
    inserted = updated = unchanged = skipped = 0
    new = matched = changed = 0
    if error_lines and not options.skip_bad_rows:
        status = "failed"
        message = (
            f"{error_lines:,} of {rows:,} rows have errors, so nothing was written: fix them, "
            "or import the other rows with --skip-bad-rows"
        )
    else:
        room = await s.fetch_tuples(statement("import_room"), [kind.name, target])
        limited = bool(room) and room[0][1] is not None
        if limited or options.dry_run:
            # what writing would do (a real run without a limit learns it from the writes)
            counts = await s.fetch_tuples(statement(f"{prefix}_counts"), params)
            new, matched, changed = counts[0]
        if limited and room[0][0] + new > room[0][1]:
            current, maximum = room[0]
            status = "refused"
            per = "" if kind.name == "clients" else " on this wedding"
            message = (
                f"this file would add {new:,} {kind.name}; your plan allows "
                f"{max(0, maximum - current):,} more{per} ({current:,} of {maximum:,} used): "
                "nothing was written"
            )
    if status == "imported":
        skipped = error_lines
        if options.dry_run:
            inserted, updated, unchanged = new, changed, matched - changed
        else:
            written = await s.fetch_tuples(statement("write_rows", prefix), params)
            updated, inserted = written[0]
            unchanged = valid - inserted - updated
        if options.dry_run:
            message = "dry run: nothing was written"
    elif options.dry_run:
        message = f"dry run: {message}"
    await s.execute(
        statement("finish_import"),
        {
            "import": import_id,
            "status": status,
            "rows": rows,
            "inserted": inserted,
            "updated": updated,
            "unchanged": unchanged,
            "skipped": skipped,
            "error_count": error_count,
            "message": message,
        },
    )
    await s.execute(statement(f"clear_{prefix}_rows"), [import_id])
    return await read_report(s, None, kind.name, target, import_id)


async def read_report(
    db: Database | Session,
    claims: Claims | Mapping[str, Any] | None,
    kind: ImportKind,
    target: UUID,
    import_id: UUID,
    *,
    errors_after: str | None = None,
    limit: int = REPORT_ERRORS,
) -> ImportReport:
    """An import's report with a page of its errors (after the cursor ``errors_after``);
    ``NotFound`` when the user does not see it."""
    if isinstance(db, Session):
        return await _read_report(db, kind, target, import_id, errors_after, limit)
    assert claims is not None
    async with db.as_user(claims) as s:
        return await _read_report(s, kind, target, import_id, errors_after, limit)


def _cursor_of(line: int, field_name: str) -> str:
    return f"{line}:{field_name}"


def _parse_cursor(cursor: str | None) -> tuple[int, str]:
    if cursor is None:
        return (-1, "")
    line, sep, field_name = cursor.partition(":")
    if not sep or not line.isdigit():
        raise ValueError("not an errors cursor (use next_errors_cursor of the report)")
    return (int(line), field_name)


async def _read_report(
    s: Session,
    kind: ImportKind,
    target: UUID,
    import_id: UUID,
    errors_after: str | None,
    limit: int,
) -> ImportReport:
    rows = await s.fetch_dicts(
        statement("get_import"), {"import": import_id, "kind": kind, "target": target}
    )
    if not rows:
        raise NotFound("import")
    row = rows[0]
    line, field_name = _parse_cursor(errors_after)
    found = await s.fetch_tuples(
        statement("import_errors"), [import_id, line, field_name, limit + 1]
    )
    errors = [RowError(line=r[0], field=r[1], value=r[2], reason=r[3]) for r in found[:limit]]
    cursor = _cursor_of(errors[-1].line, errors[-1].field) if len(found) > limit else None
    chosen = row.pop("options") or {}
    fmt = FileFormat.model_validate(row.pop("format"))
    return ImportReport(
        **row,
        skip_bad_rows=bool(chosen.get("skip_bad_rows")),
        format=fmt,
        errors=errors,
        next_errors_cursor=cursor,
    )


@dataclass(frozen=True)
class CleanUp:
    """What one clean-up did: imports found abandoned, row errors pruned."""

    abandoned: int
    errors_pruned: int


async def clean_up(db: Database, *, abandoned_before: datetime, errors_before: datetime) -> CleanUp:
    """Fail the imports still staging since before ``abandoned_before`` (their process
    stopped: a failed run cleans up after itself) and delete their staged rows; delete the
    row errors of imports finished before ``errors_before``."""
    async with db.service(reason="bulk import clean-up") as s:
        abandoned = await s.fetch_val(
            statement("abandon_stale_imports"), {"before": abandoned_before}
        )
        pruned = await s.fetch_val(statement("prune_import_errors"), {"before": errors_before})
    return CleanUp(int(abandoned or 0), int(pruned or 0))


def exit_status(report: ImportReport) -> int:
    """0 imported (or would be), 2 failed or refused (nothing written)."""
    return 0 if report.status == "imported" else 2


__all__: Sequence[str] = (
    "CleanUp",
    "ImportOptions",
    "clean_up",
    "exit_status",
    "read_report",
    "run_import",
)
