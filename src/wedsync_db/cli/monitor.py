"""`wedsync-db metrics …` and `wedsync-db inspect …`: the monitor from the command line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from wedsync_db.cli import common
from wedsync_db.cli.common import JsonOpt, err, out
from wedsync_db.db.client import Database
from wedsync_db.db.queries import load_queries
from wedsync_db.errors import PermissionDenied, QueryError
from wedsync_db.monitor import history
from wedsync_db.monitor.collectors import CollectOptions, collect, hint_for, performance_report
from wedsync_db.monitor.snapshot import Snapshot
from wedsync_db.monitor.state import MonitorState
from wedsync_db.runtime import database_for
from wedsync_db.settings import Settings

T = TypeVar("T")
# rows printed per table in the terminal (--json has them all)
ROWS = 25
BACKUP_QUERIES = load_queries("wedsync_db.monitor", "sql/backups.sql")
INSPECT_QUERIES = load_queries("wedsync_db.cli", "sql/inspect.sql")

metrics_app = typer.Typer(
    help="Metrics now (--json, --prometheus), captured into history, and read back.",
    invoke_without_command=True,
)
inspect_app = typer.Typer(
    help="Reports on the live database, offending rows first (--json on each).",
    no_args_is_help=True,
)


# --- plumbing -----------------------------------------------------------------------------------
def _run(work: Callable[[Settings, Database], Awaitable[T]]) -> T:
    """Open the pools against the configured database, run ``work``, close them."""
    s = common.settings()
    t = common.target(s)

    async def main() -> T:
        async with database_for(s, t.dsn) as db:
            return await work(s, db)

    return common.run(main())


def _collect(
    parts: Sequence[str], options: CollectOptions | None = None
) -> tuple[Settings, Snapshot]:
    async def work(s: Settings, db: Database) -> tuple[Settings, Snapshot]:
        return s, await collect(db, parts=parts, options=options)

    return _run(work)


def _report(
    parts: Sequence[str], json_out: bool, options: CollectOptions | None = None
) -> Snapshot:
    """Collect ``parts``: with --json print them and end the command; else report what failed
    (exit 1 when everything did) and hand the snapshot to the report."""
    _, snap = _collect(parts, options)
    if json_out:
        common.print_json(_part(snap, *parts))
        raise typer.Exit(0)
    _exit_on_errors(snap, parts)
    return snap


def _report_errors(snap: Snapshot) -> None:
    for e in snap.errors:
        err.print(f"[yellow]{e.collector}:[/] {escape(e.message)}")
        err.print(f"  hint: {escape(e.hint)}")


def _exit_on_errors(snap: Snapshot, parts: Sequence[str]) -> None:
    """Exit 1 when every requested collector failed (there is nothing to show)."""
    _report_errors(snap)
    failed = {e.collector for e in snap.errors}
    if failed and failed >= set(parts):
        raise typer.Exit(1)


_size = common.format_bytes


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} s"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    age = datetime.now(UTC) - moment
    hours = age.total_seconds() / 3600
    return f"{hours:,.1f} h ago" if hours < 48 else f"{hours / 24:,.0f} d ago"


def parse_since(value: str, now: datetime) -> datetime:
    """``7d``, ``24h``, ``90m``, ``2w`` before ``now``, or an ISO 8601 time (UTC if naive)."""
    try:
        return history.parse_moment(value, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# --- metrics ------------------------------------------------------------------------------------
@metrics_app.callback()
def metrics(
    ctx: typer.Context,
    json_out: JsonOpt = False,
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Prometheus text format, as GET /metrics")
    ] = False,
) -> None:
    """Collect every metric once and print it (statement figures are differences since the
    last stored capture). Exit 0, or 1 when the database cannot be reached."""
    if ctx.invoked_subcommand is not None:
        return

    async def work(s: Settings, db: Database) -> tuple[MonitorState, Snapshot]:
        await db.probe_all()
        state = MonitorState(s, db, store_history=False)
        return state, await state.capture(source="capture")

    state, snap = _run(work)
    if prometheus:
        typer.echo(state.exporter.render().decode(), nl=False)
        return
    assessment = state.assessment
    if json_out:
        common.print_json(
            {
                "snapshot": snap.to_dict(),
                "metrics": snap.metrics(),
                "assessment": assessment.to_dict() if assessment else None,
            }
        )
        return
    table = Table(
        "metric", "value", title=f"wedsync-db metrics  {snap.captured_at:%Y-%m-%d %H:%M:%S %Z}"
    )
    for name, value in sorted(snap.metrics().items()):
        shown = _size(value) if name.endswith("_bytes") else f"{value:,.4g}"
        table.add_row(name, shown)
    out.print(table)
    _report_errors(snap)
    if assessment is not None:
        out.print(
            f"assessment: {assessment.status} ({assessment.context.level}); "
            f"{len(assessment.recommendations)} recommendation(s): "
            "`wedsync-db inspect recommendations`",
        )


@metrics_app.command("capture")
def metrics_capture(json_out: JsonOpt = False) -> None:
    """Capture one snapshot into the history (ops.metric_snapshots) and purge by retention."""

    async def work(s: Settings, db: Database) -> Snapshot:
        return await MonitorState(s, db).capture(source="capture")

    snap = _run(work)
    if json_out:
        common.print_json({"captured_at": snap.captured_at.isoformat(), "metrics": snap.metrics()})
        return
    _report_errors(snap)
    m = snap.metrics()
    out.print(
        f"captured {len(m)} metrics at {snap.captured_at:%Y-%m-%d %H:%M:%S %Z}"
        f" (database {_size(m.get('database_size_bytes'))},"
        f" {m.get('connections_total', 0):.0f} connections)",
    )


@metrics_app.command("history")
def metrics_history(
    metric: Annotated[str, typer.Argument(help="e.g. database_size_bytes, connections_total")],
    since: Annotated[
        str, typer.Option(help="7d, 24h, 90m or an ISO 8601 time")
    ] = history.DEFAULT_SINCE,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time (default: now)")] = None,
    points: Annotated[
        int, typer.Option(min=2, max=5000, help="At most this many buckets")
    ] = history.DEFAULT_MAX_POINTS,
    json_out: JsonOpt = False,
) -> None:
    """A metric's stored history with its trend and forecast. Exit 1 for an unknown metric."""
    if not history.METRIC_NAME.match(metric):
        common.fail(f"{metric!r} is not a metric name")
    now = datetime.now(UTC)
    start = parse_since(since, now)
    end = parse_since(until, now) if until else now

    async def work(s: Settings, db: Database) -> dict[str, Any]:
        return await history.settings_series_report(db, s, metric, (start, end), points, now)

    try:
        report = _run(work)
    except history.UnknownMetric as exc:
        common.fail(str(exc))
    if json_out:
        common.print_json(report)
        return
    _print_series(report)


def _print_series(report: dict[str, Any]) -> None:
    metric = report["metric"]
    fmt = _size if metric.endswith("_bytes") else (lambda v: f"{v:,.4g}")
    table = Table("at", "mean", "min", "max", "samples", title=f"{metric} since {report['since']}")
    rows = report["points"]
    for p in rows[-ROWS:]:
        table.add_row(p["at"], fmt(p["value"]), fmt(p["min"]), fmt(p["max"]), str(p["samples"]))
    out.print(table)
    if len(rows) > ROWS:
        out.print(f"(last {ROWS} of {len(rows)} points; --json for all)")
    f = report["forecast"]
    if f["rate_per_day"] is None:
        out.print(f"trend: {f['reason']}")
    else:
        out.print(f"trend: {fmt(f['rate_per_day'])} per day (r² {f['r_squared'] or 0:.2f})")
        for label, value in f["projections"].items():
            out.print(f"  {label.replace('_', ' ')}: {fmt(value)}")
        if f["budget"] is not None:
            days = f["days_until_budget"]
            reach = f"in {days:,.0f} days" if days is not None else f"never ({f['reason']})"
            out.print(f"  disk budget {fmt(f['budget'])} reached {reach}")
    sat = report.get("saturday_peak")
    if sat:
        if sat["predicted_peak"] is None:
            out.print(f"Saturday peaks: {sat['reason']}")
        else:
            out.print(
                f"Saturday peaks change {sat['weekly_change']:+,.1f} a week; predicted peak on "
                f"{sat['next_saturday']}: {sat['predicted_peak']:,.0f}",
            )


# --- inspect ------------------------------------------------------------------------------------
@inspect_app.command("connections")
def inspect_connections(
    min_seconds: Annotated[
        float, typer.Option(help="List statements / idle transactions older than this")
    ] = 5.0,
    json_out: JsonOpt = False,
) -> None:
    """Connections by audience and state; long statements and idle open transactions."""
    snap = _report(
        ("server", "connections"), json_out, CollectOptions(activity_min_seconds=min_seconds)
    )
    c = snap.connections
    if c is None:
        return
    common.print_table(
        [
            common.Col("audience", kind="id"),
            common.Col("state", kind="id"),
            common.Col("connections"),
            common.Col("waiting on locks", drop=2),
            common.Col("oldest transaction", drop=1),
        ],
        [
            [
                g.audience,
                g.state,
                str(g.connections),
                str(g.waiting_on_locks),
                _seconds(g.longest_transaction_seconds),
            ]
            for g in c.groups
        ],
    )
    if snap.server is not None:
        usable = snap.server.max_usable_connections
        out.print(
            f"{c.total} of {usable} usable connections ({c.total / usable:.0%}); "
            f"max_connections {snap.server.max_connections}",
        )
    for title, rows in (
        ("idle in transaction", c.idle_in_transaction),
        ("long-running statements", c.long_running),
    ):
        if not rows:
            continue
        common.print_table(
            [
                common.Col("pid", kind="id"),
                common.Col("audience", kind="id", drop=3),
                common.Col("application", kind="text", drop=4),
                common.Col("for"),
                common.Col("in transaction", drop=2),
                common.Col("query", kind="flex", min_width=24),
            ],
            [
                [
                    str(a.pid),
                    a.audience,
                    escape(a.application_name),
                    _seconds(a.seconds),
                    _seconds(a.transaction_seconds),
                    a.query or "",
                ]
                for a in rows[:ROWS]
            ],
            title=title,
        )


@inspect_app.command("queries")
def inspect_queries(
    top: Annotated[int, typer.Option(min=1, max=500, help="Statements to show")] = 20,
    include_own: Annotated[
        bool,
        common.flag(
            "--include-own",
            "Also list this tool's own statements (monitoring, migrations, maintenance)",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Top statements by total time since the statistics were reset (ops.performance_report),
    flagged when slower on average than the wedding-day latency limit. The statements this
    tool runs itself (as the service pool's login, without a role) are left out unless
    --include-own; their time still counts in the share of the total."""

    async def work(s: Settings, db: Database) -> tuple[list[dict[str, Any]], int] | str:
        try:
            own: set[str] = set()
            if not include_own:
                async with db.ops(reason="inspect queries") as session:
                    found = await session.fetch_tuples(INSPECT_QUERIES["own_statements"].sql)
                own = {queryid for (queryid,) in found}
            rows = await performance_report(db, top_n=top + len(own))
        except (QueryError, PermissionDenied) as exc:
            # pg_stat_statements missing or not loaded: say how to enable it
            return f"{exc}\nhint: {hint_for('queries', exc, 0)}"
        shown = [r for r in rows if r["queryid"] not in own]
        return shown[:top], len(rows) - len(shown)

    result = _run(work)
    if isinstance(result, str):
        common.fail(escape(result))
    rows, hidden = result
    if json_out:
        common.print_json(
            {
                "captured_at": datetime.now(UTC).isoformat(),
                "queries": rows,
                "own_statements_left_out": hidden,
                "errors": [],
            }
        )
        return
    common.print_table(
        [
            common.Col("queryid", drop=4),
            common.Col("calls", drop=2),
            common.Col("total"),
            common.Col("mean"),
            common.Col("share", drop=3),
            common.Col("wedding-day risk"),
            common.Col("query", kind="flex", min_width=30),
        ],
        [
            [
                str(r["queryid"]),
                f"{r['calls']:,}",
                f"{r['total_ms']:,.0f} ms",
                f"{r['mean_ms'] or 0:,.2f} ms",
                f"{(r['share_of_total'] or 0):.0%}",
                "[bold red]yes[/]" if r["wedding_day_risk"] else "no",
                r["query"] or "",
            ]
            for r in rows
        ],
    )
    if hidden:
        out.print(
            f"{hidden} of this tool's own statements left out (--include-own lists them)",
        )


@inspect_app.command("tables")
def inspect_tables(json_out: JsonOpt = False) -> None:
    """The largest tables with their index, TOAST and dead-row figures."""
    snap = _report(("storage", "maintenance"), json_out)
    dead = {
        (t.schema_name, t.table_name): t
        for t in (snap.maintenance.tables if snap.maintenance else ())
    }
    st = snap.storage
    if st is None:
        return
    rows = []
    for t in st.largest[:ROWS]:
        m = dead.get((t.schema_name, t.table_name))
        rows.append(
            [
                escape(f"{t.schema_name}.{t.table_name}"),
                _size(t.total_bytes),
                _size(t.table_bytes),
                _size(t.index_bytes),
                _size(t.toast_bytes),
                f"{t.estimated_rows:,}",
                f"{m.dead_tuples:,}" if m else "-",
                _when(m.last_vacuum) if m else "-",
            ]
        )
    common.print_table(
        [
            common.Col("table", kind="id"),
            common.Col("total"),
            common.Col("heap", drop=3),
            common.Col("indexes", drop=2),
            common.Col("toast", drop=4),
            common.Col("rows (est.)"),
            common.Col("dead rows", drop=1),
            common.Col("last vacuum", drop=5),
        ],
        rows,
    )
    out.print(
        f"database {_size(st.database_bytes)}; {st.table_count} tables: "
        f"{_size(st.tables_bytes)} of data, {_size(st.indexes_bytes)} of indexes",
    )


@inspect_app.command("indexes")
def inspect_indexes(json_out: JsonOpt = False) -> None:
    """Invalid, unused, duplicate and missing indexes and unindexed foreign keys, with the SQL
    that fixes each (ops.index_recommendations)."""
    snap = _report(("indexes",), json_out)
    advice = snap.indexes or ()
    common.print_table(
        [
            common.Col("kind", kind="id"),
            common.Col("table", kind="id"),
            common.Col("index", kind="id", drop=3),
            common.Col("size", drop=1),
            common.Col("detail", kind="text", drop=2),
            common.Col("remedy", kind="text"),
        ],
        [
            [
                a.kind,
                escape(f"{a.schema_name}.{a.table_name}"),
                escape(a.index_name or "-"),
                _size(a.size_bytes),
                escape(a.detail),
                escape(a.remedy or "-"),
            ]
            for a in advice
        ],
        empty="no index advice",
    )


@inspect_app.command("locks")
def inspect_locks(json_out: JsonOpt = False) -> None:
    """Who blocks whom (one row per waiting session and lock holder), and locks per mode."""
    snap = _report(("locks",), json_out)
    lk = snap.locks
    if lk is None:
        return
    if lk.blocking:
        common.print_table(
            [
                common.Col("waiting pid", kind="id"),
                common.Col("waits", drop=1),
                common.Col("lock", kind="id", drop=3),
                common.Col("relation", kind="id", drop=2),
                common.Col("blocked by", kind="id"),
                common.Col("holder state", kind="id", drop=4),
                common.Col("holder in transaction", drop=5),
                common.Col("waiting query", kind="flex", drop=6, min_width=20),
                common.Col("holder query", kind="flex", min_width=20),
            ],
            [
                [
                    str(b.blocked_pid),
                    _seconds(b.wait_seconds),
                    b.mode or "-",
                    escape(b.relation or "-"),
                    str(b.blocking_pid),
                    b.blocking_state,
                    _seconds(b.blocking_transaction_seconds),
                    b.blocked_query or "",
                    b.blocking_query or "",
                ]
                for b in lk.blocking[:ROWS]
            ],
        )
    else:
        out.print("no session is waiting for a lock")
    modes = ", ".join(
        f"{m} {n}" + (f" (+{lk.waiting.get(m, 0)} waiting)" if lk.waiting.get(m) else "")
        for m, n in sorted(lk.granted.items())
    )
    out.print(f"locks held: {modes or 'none'}")


@inspect_app.command("vacuum")
def inspect_vacuum(json_out: JsonOpt = False) -> None:
    """Dead rows and autovacuum state per table, transaction-ID wraparound, sequences filling
    up (ops.table_maintenance_report)."""
    snap = _report(("maintenance", "database"), json_out)
    m = snap.maintenance
    if m is not None:
        common.print_table(
            [
                common.Col("table", kind="id"),
                common.Col("live"),
                common.Col("dead"),
                common.Col("dead %", drop=1),
                common.Col("vacuum at", drop=4),
                common.Col("autovacuum due"),
                common.Col("analyze due", drop=3),
                common.Col("last vacuum", drop=5),
                common.Col("last analyze", drop=6),
                common.Col("xid age", drop=2),
            ],
            [
                [
                    escape(f"{t.schema_name}.{t.table_name}"),
                    f"{t.live_tuples:,}",
                    f"{t.dead_tuples:,}",
                    f"{(t.dead_fraction or 0):.0%}",
                    f"{t.vacuum_threshold:,}",
                    "[yellow]yes[/]" if t.autovacuum_due else "no",
                    "yes" if t.analyze_due else "no",
                    _when(t.last_vacuum) + ("" if t.autovacuum_enabled else " (autovacuum off)"),
                    _when(t.last_analyze),
                    f"{t.xid_age:,}" if t.xid_age is not None else "-",
                ]
                for t in m.tables[:ROWS]
            ],
        )
        out.print(
            f"{m.dead_tuples:,} dead rows in {m.table_count} tables; {m.tables_due} due for "
            "autovacuum",
        )
        if m.sequences:
            common.print_table(
                [
                    common.Col("sequence", kind="id"),
                    common.Col("type", kind="id", drop=3),
                    common.Col("last value", drop=2),
                    common.Col("max", drop=4),
                    common.Col("used"),
                    common.Col("feeds", kind="id", drop=1),
                ],
                [
                    [
                        escape(f"{q.schema_name}.{q.sequence_name}"),
                        q.data_type,
                        f"{q.last_value:,}",
                        f"{q.max_value:,}",
                        f"{q.used_fraction:.1%}",
                        escape(q.owned_by or "-"),
                    ]
                    for q in m.sequences
                ],
            )
    db = snap.database
    if db is not None and db.xid_ages:
        worst = max(db.xid_ages, key=lambda x: x.xid_age)
        out.print(
            f"wraparound: {db.xid_remaining:,} transaction IDs left "
            f"(oldest: {worst.database}, age {worst.xid_age:,})",
        )


@inspect_app.command("security")
def inspect_security(json_out: JsonOpt = False) -> None:
    """Tenant tables without (forced) RLS, policies on tables with RLS off, SECURITY DEFINER
    functions without a fixed search_path, claim helpers called once per row."""
    snap = _report(("security",), json_out)
    findings = snap.security or ()
    common.print_table(
        [
            common.Col("rule", kind="id"),
            common.Col("object", kind="id"),
            common.Col("detail", kind="text", drop=2),
            common.Col("remedy", kind="text", drop=1),
        ],
        [[f.rule, escape(f.object), escape(f.detail), escape(f.remedy or "-")] for f in findings],
        empty="no security findings",
    )


@inspect_app.command("recommendations")
def inspect_recommendations(json_out: JsonOpt = False) -> None:
    """Everything collected, assessed in today's calendar context: what to do, most severe
    first, with the SQL remedy where there is one."""

    async def work(s: Settings, db: Database) -> MonitorState:
        await db.probe_all()
        state = MonitorState(s, db, store_history=False)
        await state.capture(source="capture")
        return state

    state = _run(work)
    assessment = state.assessment
    if assessment is None:
        common.fail("the assessment could not be computed; see `wedsync-db metrics --json`")
    if json_out:
        common.print_json(
            {
                "status": assessment.status,
                "context": assessment.context.to_dict(),
                "recommendations": [r.to_dict() for r in assessment.recommendations],
            }
        )
        return
    out.print(
        f"status {assessment.status} in a {assessment.context.level} context "
        f"({assessment.context.describe()})",
    )
    if not assessment.recommendations:
        out.print("no recommendations")
        return
    rows = []
    for r in assessment.recommendations:
        objects = "\n".join(escape(o) for o in r.objects[:5])
        if len(r.objects) > 5:
            objects += f"\n… {len(r.objects) - 5} more"
        remedy = escape(r.remedy) + (f"\n[dim]{escape(r.remedy_sql)}[/]" if r.remedy_sql else "")
        rows.append([r.severity, escape(r.key), escape(r.title), objects, remedy])
    common.print_table(
        [
            common.Col("severity", kind="id", drop=3),
            common.Col("key", kind="id"),
            common.Col("what", kind="text"),
            common.Col("objects", kind="text", drop=2),
            common.Col("remedy", kind="text", drop=1),
        ],
        rows,
    )


@inspect_app.command("backups")
def inspect_backups(
    json_out: JsonOpt = False,
    limit: Annotated[int, typer.Option(min=1, help="Recent backups and verifications shown")] = 10,
) -> None:
    """WAL archiving, the newest good backup and verification as the database records them,
    the backup:* health checks of this environment, and the recent backup events
    (the files themselves: `wedsync-db backup list`)."""

    async def work(s: Settings, db: Database) -> tuple[Snapshot, Any, list[dict[str, Any]]]:
        snap = await collect(db, parts=("backups",))
        assessment = MonitorState(s, db, store_history=False).assess(snap)
        events: list[dict[str, Any]] = []
        if snap.backups is not None and snap.backups.events_recorded:
            async with db.ops(reason="inspect backups") as session:
                events = await session.fetch_dicts(
                    BACKUP_QUERIES["recent_events"].sql, {"limit": limit}
                )
        checks = [c for c in assessment.checks if c.key.startswith("backup:")]
        return snap, checks, events

    snap, checks, events = _run(work)
    if json_out:
        data = _part(snap, "backups")
        data["checks"] = [c.to_dict() | {"key": c.key} for c in checks]
        data["events"] = events
        common.print_json(data)
        return
    _exit_on_errors(snap, ("backups",))
    bk = snap.backups
    if bk is None:
        return
    if bk.provider_managed:
        archiving = "provider-managed (no archiving, no REPLICATION: the provider's backups)"
    elif bk.archiving:
        archiving = f"on, {bk.archived_count:,} segments archived, {bk.failed_count:,} failures"
        if bk.archive_failing:
            archiving += " [red](the newest attempt FAILED)[/]"
    else:
        archiving = "off: `wedsync-db backup setup`"
    out.print(f"WAL archiving      {archiving}")
    out.print(f"last archived      {_when(bk.last_archived_time)}")
    out.print(f"last good backup   {_when(bk.last_backup_at)}")
    verified = _when(bk.last_verified_at)
    if bk.last_verified_kind:
        verified += f" ({bk.last_verified_kind})"
    out.print(f"last verified      {verified}")
    for c in checks:
        colour = {"pass": "green", "warn": "yellow", "fail": "red"}[c.status]
        out.print(f"{c.key:<23}[{colour}]{c.status}[/] {escape(c.output)}".rstrip())
    if not events:
        out.print("no backups recorded in this database yet")
        return
    common.print_table(
        [
            common.Col("finished (UTC)", kind="id"),
            common.Col("backup", kind="id"),
            common.Col("action", kind="id"),
            common.Col("kind", kind="id", drop=2),
            common.Col("status", kind="id"),
            common.Col("took", drop=3),
            common.Col("RPO", drop=1),
            common.Col("actor", kind="text", drop=4),
        ],
        [
            [
                f"{e['finished_at'].astimezone(UTC):%m-%d %H:%M:%S}",
                escape(e["backup_id"]),
                e["action"],
                e["kind"],
                e["status"] if e["status"] == "ok" else f"[red]{e['status']}[/]",
                _seconds(e["duration_s"]),
                _seconds(e["rpo_seconds"]),
                escape(e["actor"]),
            ]
            for e in events
        ],
    )


def _part(snap: Snapshot, *names: str) -> Any:
    """Parts of the snapshot, JSON-ready, with the errors of their collectors: every report
    is one object, ``{"captured_at": …, <part>: …, "errors": […]}``."""
    data = snap.to_dict()
    return {
        "captured_at": data["captured_at"],
        **{name: data.get(name) for name in names},
        "errors": [e for e in data["errors"] if e["collector"] in names],
    }


__all__ = ["inspect_app", "metrics_app", "parse_since"]
