"""`wedsync-db ops …`: cancel or terminate a backend, EXPLAIN a top statement, silence a check.
Every action needs a reason and is recorded in ops.operator_actions."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from wedsync_db.cli import common
from wedsync_db.cli.common import JsonOpt, out
from wedsync_db.db.client import Database
from wedsync_db.ops import actions
from wedsync_db.ops.silences import parse_duration, required_reason
from wedsync_db.runtime import database_for

app = typer.Typer(
    help="Operator actions: cancel or terminate a backend, EXPLAIN a top statement, silence a "
    "health check for a while. Each needs a reason and is recorded.",
    no_args_is_help=True,
)

T = TypeVar("T")
EXIT_REFUSED = 2
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Why (required; recorded with the action)")
]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who acts (default: cli:<login name>)")
]


def _actor(actor: str | None) -> str:
    return actor.strip() if actor and actor.strip() else f"cli:{getpass.getuser()}"


def _with_db(work: Callable[[Database], Awaitable[T]], *, json_out: bool = False) -> T:
    """Run ``work`` against the configured database; a refused action exits 2, errors 1."""
    s = common.settings()
    t = common.target(s)

    async def run() -> T:
        async with database_for(s, t.dsn) as db:
            return await work(db)

    with common.handled(json_errors=json_out):
        try:
            return asyncio.run(run())
        except actions.ActionRefused as exc:
            if json_out:
                common.print_json(
                    {
                        "error": {
                            "type": type(exc).__name__,
                            "message": str(exc),
                            "exit": EXIT_REFUSED,
                        }
                    }
                )
            common.fail(str(exc), EXIT_REFUSED)


def _reason(reason: str | None, what: str) -> str:
    """The reason given, or exit 1 before anything connects."""
    with common.handled():
        return required_reason(reason, what)


def _emit(json_out: bool, data: dict[str, Any], text: str) -> None:
    """``data`` as JSON with --json, else ``text``."""
    if json_out:
        common.print_json(data)
    else:
        out.print(escape(text))


def _signal(
    pid: int, action: actions.SignalAction, reason: str | None, actor: str | None, json_out: bool
) -> None:
    text = _reason(reason, f"{action} a backend")
    done = _with_db(
        lambda db: actions.signal_backend(db, pid, action, reason=text, actor=_actor(actor)),
        json_out=json_out,
    )
    summary = (
        f"{action} pid {done.pid} ({done.backend_user or '?'}, "
        f"{done.application_name or 'no application name'}): {done.result}; recorded as "
        f"action {done.id}"
    )
    _emit(json_out, done.to_dict(), summary)


def _signal_command(action: actions.SignalAction, doc: str) -> Callable[..., None]:
    def command(
        pid: Annotated[int, typer.Argument(help="Backend pid (from inspect connections / locks)")],
        reason: ReasonOpt = None,
        actor: ActorOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        _signal(pid, action, reason, actor, json_out)

    command.__doc__ = doc
    return command


app.command("cancel")(
    _signal_command("cancel", "Cancel the statement a backend of this database is running.")
)
app.command("terminate")(
    _signal_command("terminate", "Terminate a backend's session (its transaction rolls back).")
)


@app.command("explain")
def explain_cmd(
    queryid: Annotated[int, typer.Argument(help="Query id, as inspect queries shows it")],
    analyze: Annotated[
        bool,
        common.flag("--analyze", "Run the statement (in a transaction rolled back)"),
    ] = False,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Value of $1, $2… in order (repeat the option)"),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """EXPLAIN a statement of pg_stat_statements: planned only (a generic plan when it has
    parameters, PostgreSQL 16+), or with --analyze run inside a rolled-back transaction."""
    result = _with_db(
        lambda db: actions.explain_statement(
            db, queryid, analyze=analyze, params=param or None, json_format=json_out
        ),
        json_out=json_out,
    )
    if json_out:
        common.print_json(result.to_dict())
        return
    out.print(escape(result.query))
    note = "generic plan" if result.generic_plan else "plan"
    if result.analyze:
        note += " with ANALYZE (the statement ran; rolled back)"
    out.print(f"[dim]{note}[/]")
    for line in result.plan:
        out.print(escape(line))


@app.command("silence")
def silence_cmd(
    check_id: Annotated[str, typer.Argument(help="Check key of the health report")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1h30m, 3d")],
    reason: ReasonOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Keep a check from driving the overall health status until the silence expires."""
    with common.handled(json_errors=json_out):
        length = parse_duration(duration)
    text = _reason(reason, "silence a check")
    silence = _with_db(
        lambda db: actions.silence_check(db, check_id, length, reason=text, actor=_actor(actor)),
        json_out=json_out,
    )
    until = silence.until.isoformat()
    _emit(
        json_out, silence.to_dict(), f"{silence.check_id} silenced until {until}: {silence.reason}"
    )


@app.command("unsilence")
def unsilence_cmd(
    check_id: Annotated[str, typer.Argument(help="Check key of the health report")],
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Lift a check's silence."""
    lifted = _with_db(
        lambda db: actions.unsilence_check(db, check_id, actor=_actor(actor)), json_out=json_out
    )
    _emit(
        json_out,
        {"lifted": lifted.to_dict() if lifted else None},
        f"{check_id}: " + ("silence lifted" if lifted else "was not silenced"),
    )


@app.command("silences")
def silences_cmd(json_out: JsonOpt = False) -> None:
    """The checks silenced now."""
    silences = _with_db(actions.active_silences, json_out=json_out)
    if json_out:
        common.print_json({"silences": [s.to_dict() for s in silences]})
        return
    if not silences:
        out.print("no check is silenced")
        return
    table = Table("check", "until", "by", "reason")
    for s in silences:
        table.add_row(s.check_id, s.until.isoformat(timespec="seconds"), s.actor, s.reason)
    out.print(table)


@app.command("actions")
def actions_cmd(
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """The operator actions recorded (cancel, terminate, silence, unsilence)."""
    rows: list[dict[str, Any]] = _with_db(
        lambda db: actions.recent_actions(db, limit), json_out=json_out
    )
    if json_out:
        common.print_json({"actions": rows})
        return
    table = Table("when", "actor", "action", "target", "reason", "result")
    for r in rows:
        target = f"pid {r['pid']}" if r["pid"] is not None else str(r["check_id"])
        table.add_row(r["acted_at"][:19], r["actor"], r["action"], target, r["reason"], r["result"])
    out.print(table)
