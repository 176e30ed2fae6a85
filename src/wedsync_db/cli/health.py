"""`wedsync-db health`: one collection, assessed in today's wedding calendar context."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from wedsync_db.cli import common
from wedsync_db.cli.common import err, out
from wedsync_db.db.client import Database
from wedsync_db.db.heartbeat import HeartbeatSnapshot, HeartbeatState
from wedsync_db.errors import DatabaseUnavailable, WedsyncDBError
from wedsync_db.monitor.assess import Assessment, assess_sample
from wedsync_db.monitor.health import health_report
from wedsync_db.ops.actions import with_stored_silences
from wedsync_db.runtime import Target, database_for
from wedsync_db.settings import Settings

# Enough probes per pool for a latency percentile that is not a single sample.
PROBES = 5
EXIT_FAIL = 2
_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def health(
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the full application/health+json document")
    ] = False,
) -> None:
    """Collect once and assess the database now. Exit 0 pass or warn, 2 fail."""
    s = common.settings()
    t = common.target(s)
    doc = common.run(full_report(s, t))
    if json_out:
        common.print_json(doc)
    else:
        print_report(doc)
    raise typer.Exit(EXIT_FAIL if doc["status"] == "fail" else 0)


async def full_report(settings: Settings, target: Target) -> dict[str, Any]:
    """Open the pools, probe them, run every collector once and build the full document."""
    from wedsync_db.monitor import history
    from wedsync_db.monitor.collectors import FULL_PARTS, collect

    database = database_for(settings, target.dsn)
    try:
        await database.open(wait=True, timeout=10.0)
    except DatabaseUnavailable as exc:
        return _document(settings, _unreachable(database, exc), None)
    try:
        for _ in range(PROBES):
            await database.probe_all()
        assessment: Assessment | None = None
        try:
            baseline = None
            with contextlib.suppress(WedsyncDBError):
                # statement differences since the sampler's latest stored capture
                baseline = await history.load_query_baseline(database)
            today = datetime.now(ZoneInfo(settings.timezone)).date()
            snap = await collect(database, parts=FULL_PARTS, query_baseline=baseline, today=today)
            assessment = assess_sample(snap, settings)
        except WedsyncDBError as exc:
            err.print(f"[yellow]collection failed:[/] {escape(str(exc))}")
        return await with_stored_silences(
            database, _document(settings, database.heartbeat_snapshots(), assessment)
        )
    finally:
        await database.close()


def _unreachable(database: Database, error: DatabaseUnavailable) -> dict[str, HeartbeatSnapshot]:
    """Heartbeat records of a failed open: the pool that could not connect says why, the others
    that they were not tried."""
    out: dict[str, HeartbeatSnapshot] = {}
    for name in database.heartbeats:
        state = HeartbeatState(name)
        if error.pool in (None, name):
            state.record_failure(str(error))
        else:
            state.record_failure(f"not tried: the {error.pool} pool could not connect first")
        out[name] = state.snapshot()
    return out


def _document(
    settings: Settings,
    heartbeats: dict[str, HeartbeatSnapshot],
    assessment: Assessment | None,
) -> dict[str, Any]:
    doc = health_report(settings, heartbeats, assessment, full=True, now=datetime.now(UTC))
    if assessment is not None:
        doc["recommendations"] = [r.to_dict() for r in assessment.recommendations]
    return doc


def _quantity(value: Any, unit: str) -> str:
    """A value with its unit, readable in a terminal."""
    if value is None:
        return "-"
    if unit == "bytes" and isinstance(value, int | float):
        return f"{value / 2**30:,.2f} GiB" if value >= 2**30 else f"{value / 2**20:,.1f} MiB"
    if unit == "percent":
        return f"{value:g} %"
    if unit == "transactions" and isinstance(value, int | float) and value >= 10**6:
        return f"{value / 10**6:,.0f} M {unit}"
    if isinstance(value, float):
        return f"{value:,.0f} {unit}" if value.is_integer() else f"{value:,.1f} {unit}"
    return f"{value:,} {unit}" if isinstance(value, int) else f"{value} {unit}"


def print_report(doc: dict[str, Any]) -> None:
    """Rich rendering of the full document."""
    readiness = doc.get("wedding_readiness") or {}
    status = doc["status"]
    weddings = readiness.get("weddings_today")
    heading = (
        f"[{_STYLE[status]}]{status.upper()}[/]  context: {readiness.get('context', '?')}"
        f" ({readiness.get('weekday', '').capitalize()} {readiness.get('local_date', '')}"
        f" {readiness.get('timezone', '')})"
        f"  weddings today: {'unknown' if weddings is None else weddings}"
    )
    out.print(f"wedsync-db health  {heading}")
    table = Table("check", "status", "observed", "limits", "note")
    table.columns[0].no_wrap = True
    for key, entries in doc["checks"].items():
        for entry in entries:
            unit = entry.get("observedUnit", "")
            limits = entry.get("limits") or {}
            component = entry.get("componentId")
            table.add_row(
                f"{key} ({component})" if component else key,
                f"[{_STYLE[entry['status']]}]{entry['status']}[/]",
                _quantity(entry.get("observedValue"), unit),
                ", ".join(f"{k} {_quantity(v, unit)}" for k, v in limits.items()),
                escape(entry.get("output", "")),
            )
    out.print(table)
    freeze = readiness.get("freeze") or {}
    unreachable = any(c["status"] == "fail" for c in doc["checks"].get("postgres:heartbeat", ()))
    for label, key in (
        ("safe migrations", "safe_migration"),
        ("blocking migrations", "blocking_migration"),
    ):
        state = freeze.get(key)
        if state is None:
            continue
        if unreachable:
            out.print(f"{label}: unknown (the database is unreachable)")
            continue
        verdict = "allowed" if state["allowed"] else "[bold red]frozen[/]"
        why = " ".join(state["messages"])
        out.print(f"{label}: {verdict}" + (f" — {escape(why)}" if why else ""))
    if readiness.get("error"):
        err.print(f"[yellow]freeze policy:[/] {escape(readiness['error'])}")
    risks = readiness.get("top_risks") or []
    if risks:
        out.print("top risks:")
        for r in risks:
            line = f"  {r['severity']:<8} {r['key']}: {r['message']}"
            out.print(escape(line))
    recommendations = doc.get("recommendations") or []
    with_sql = [r for r in recommendations if r.get("remedy_sql")]
    if with_sql:
        out.print(
            f"{len(recommendations)} recommendation(s), {len(with_sql)} with remedy SQL "
            "(see --json)",
        )
