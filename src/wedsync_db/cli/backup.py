"""`wedsync-db backup …`: set up archiving, take, list, verify, restore and prune backups."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from wedsync_db.backup import service
from wedsync_db.backup.repository import BackupMeta
from wedsync_db.cli import common
from wedsync_db.cli.common import err, out
from wedsync_db.runtime import Target, backup_context, backup_repository
from wedsync_db.settings import Settings

app = typer.Typer(
    help="Physical backups with point-in-time recovery (logical exports for managed databases), "
    "verified by restoring them.",
    no_args_is_help=True,
)

EXIT_VERIFY_FAILED = 2
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]


def _setup() -> tuple[Settings, Target]:
    s = common.settings()
    return s, common.target(s)


@app.command("setup")
def setup_cmd() -> None:
    """Turn on WAL archiving into the repository (restarts the embedded server; says when a
    self-hosted server needs a restart)."""
    s, t = _setup()

    async def run() -> list[str]:
        return await service.setup(await backup_context(s, t))

    for note in common.run(run()):
        out.print(escape(note))


@app.command("create")
def create_cmd(
    incremental: Annotated[
        bool, typer.Option("--incremental", help="Only what changed since the newest backup")
    ] = False,
    logical: Annotated[
        bool,
        typer.Option("--logical", help="A pg_dump export (for a managed database)"),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Take a backup and record its content fingerprint and restore point."""
    s, t = _setup()

    async def run() -> BackupMeta:
        return await service.create(
            await backup_context(s, t), incremental=incremental, logical=logical
        )

    meta = common.run(run(), json_errors=json_out)
    if json_out:
        common.print_json(meta.to_dict())
        return
    out.print(
        f"backup {meta.id} ({meta.kind}) complete: {common.format_bytes(meta.size_bytes)}, "
        f"{len(meta.fingerprint)} tables fingerprinted",
    )


@app.command("list")
def list_cmd(json_out: JsonOpt = False) -> None:
    """Every backup in the repository, oldest first; only complete ones are good."""
    s = common.settings()
    backups = backup_repository(s).all()
    if json_out:
        common.print_json({"backups": [b.to_dict() for b in backups]})
        return
    if not backups:
        out.print(f"no backups in {s.effective_backup_dir}")
        return
    table = Table("kind", "status", "finished (UTC)", "size", "verified")
    table.add_column("id", no_wrap=True)  # first, as the column everything else names
    table.columns.insert(0, table.columns.pop())
    for b in backups:
        verified = b.details.get("last_verification") or {}
        kind = b.kind if b.parent is None else f"incr of …{b.parent[-6:]}"
        table.add_row(
            b.id,
            kind,
            b.status if b.good else f"[red]{b.status}[/]",
            f"{b.finished_at:%Y-%m-%d %H:%M}" if b.finished_at else "-",
            common.format_bytes(b.size_bytes),
            ("ok " if verified.get("ok") else "[red]FAILED[/] ")
            + verified.get("at", "")[5:16].replace("T", " ")
            if verified
            else "never",
        )
    out.print(table)


@app.command("verify")
def verify_cmd(
    backup_id: Annotated[str, typer.Argument(help="The backup to check (see `backup list`)")],
    json_out: JsonOpt = False,
) -> None:
    """Check manifests, restore into a scratch directory on a free port, run pg_amcheck and
    compare the fingerprint. Exit 2 when the backup fails."""
    s, t = _setup()

    async def run() -> service.Verification:
        return await service.verify(await backup_context(s, t), backup_id)

    try:
        result = common.run(run(), json_errors=json_out)
    except KeyError as exc:
        common.fail(str(exc.args[0]))
    if json_out:
        common.print_json(result.to_dict())
    else:
        for step in result.steps:
            out.print(f"  ✓ {escape(step)}")
        for problem in result.problems:
            err.print(f"  [red]✗[/] {escape(problem)}")
        verdict = "good" if result.ok else "[bold red]FAILED[/]"
        out.print(f"backup {backup_id}: {verdict} ({result.duration_s:.1f} s)")
    if not result.ok:
        raise typer.Exit(EXIT_VERIFY_FAILED)


@app.command("restore")
def restore_cmd(
    into: Annotated[Path, typer.Option("--into", help="A new or empty directory")],
    to: Annotated[
        str, typer.Option("--to", help="ISO-8601 time with offset, or `latest`")
    ] = "latest",
    port: Annotated[int | None, typer.Option("--port", help="Port on 127.0.0.1 (free one)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Restore the newest backup before TIME and replay the archive up to TIME, then start the
    copy on 127.0.0.1 (it keeps running; stop it with pg_ctl)."""
    target_time: datetime | None = None
    if to != "latest":
        try:
            target_time = datetime.fromisoformat(to)
        except ValueError:
            common.fail(f"--to {to!r}: not an ISO-8601 time (e.g. 2026-12-01T10:30:00+00:00)")
        if target_time.tzinfo is None:
            common.fail("--to needs a timezone offset (e.g. 2026-12-01T10:30:00+00:00)")
    s, t = _setup()

    async def run() -> service.Restored:
        return await service.restore(
            await backup_context(s, t), into=into, to=target_time, port=port
        )

    try:
        restored = common.run(run(), json_errors=json_out)
    except LookupError as exc:
        common.fail(str(exc))
    info: dict[str, Any] = {
        "backup": restored.backup.id,
        "target": restored.target,
        "data_dir": str(restored.data_dir),
        "port": restored.port,
        "dsn": restored.dsn,
    }
    info["stop"] = restored.stop_command
    if json_out:
        common.print_json(info)
        return
    out.print(
        f"restored backup {restored.backup.id} up to {restored.target}\n"
        f"  running on {restored.dsn}\n"
        f"  stop it with: {restored.stop_command}",
    )


@app.command("prune")
def prune_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Remove backups and WAL older than the retention window (the profile's days) that no
    point in time within it needs."""
    s, t = _setup()
    days = s.effective_backup_retention_days

    async def run() -> Any:
        return await service.prune(await backup_context(s, t), retention_days=days, dry_run=dry_run)

    plan = common.run(run(), json_errors=json_out)
    data = {
        "retention_days": days,
        "dry_run": dry_run,
        "remove": [b.id for b in plan.remove],
        "keep": [b.id for b in plan.keep],
        "oldest_wal_needed": plan.oldest_wal_needed,
        "wal_segments_removed": len(plan.wal_remove),
    }
    if json_out:
        common.print_json(data)
        return
    verb = "would remove" if dry_run else "removed"
    out.print(
        f"{verb} {len(plan.remove)} backup(s) and {len(plan.wal_remove)} WAL segment(s); "
        f"kept {len(plan.keep)} (retention {days} days)",
    )
