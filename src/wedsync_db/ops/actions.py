"""Operator actions on the live database: cancel or terminate a backend (audited, with a
reason), EXPLAIN a statement tracked by pg_stat_statements, and silence a health check."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from wedsync_db.db import direct
from wedsync_db.db.client import Database
from wedsync_db.db.queries import statements
from wedsync_db.db.session import Session
from wedsync_db.errors import QueryError, WedsyncDBError
from wedsync_db.monitor.collectors import hint_for
from wedsync_db.ops.silences import (
    Silence,
    apply_silences,
    required_reason,
    validate_check_id,
)

log = logging.getLogger(__name__)

SignalAction = Literal["cancel", "terminate"]
# pg_terminate_backend waits this long for the backend to exit before reporting it still runs
TERMINATE_WAIT_MS = 5_000
# EXPLAIN ANALYZE runs the statement: bounded, whatever the statement does
EXPLAIN_TIMEOUT_S = 30.0
# the background read of the silences gives up after this long
READ_BOUND_S = 3.0
# what EXPLAIN accepts (and what pg_stat_statements holds besides utility commands)
_EXPLAINABLE = frozenset(
    {"select", "insert", "update", "delete", "merge", "with", "values", "table"}
)
_PARAMETER = re.compile(r"\$(\d+)")
_LEADING_COMMENTS = re.compile(r"^(\s+|--[^\n]*\n|/\*.*?\*/)*", re.DOTALL)
# errors raised by ops.signal_backend()
_NOT_FOUND, _REFUSED = "WS404", "WS409"


class BackendNotFound(WedsyncDBError):
    """No backend (or tracked statement) has the id asked for."""


class ActionRefused(WedsyncDBError):
    """The action is not allowed on this target (the tool's own connection, another
    database, a server process, a statement EXPLAIN cannot take)."""


class ExplainNeedsParameters(ActionRefused):
    """The statement has parameters and their values were not given where they are needed."""


_sql = statements("wedsync_db.ops", "sql/actions.sql")


@dataclass(frozen=True)
class BackendAction:
    """An audit row of ops.operator_actions for a cancel or terminate."""

    id: int
    acted_at: datetime
    actor: str
    action: str
    reason: str
    pid: int
    backend_user: str | None
    application_name: str | None
    query_excerpt: str | None
    result: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "acted_at": self.acted_at.isoformat()}


def _mapped(exc: QueryError) -> WedsyncDBError:
    if exc.sqlstate == _NOT_FOUND:
        return BackendNotFound(str(exc))
    if exc.sqlstate == _REFUSED:
        return ActionRefused(str(exc))
    return exc


async def signal_backend(
    db: Database,
    pid: int,
    action: SignalAction,
    *,
    reason: str | None,
    actor: str,
    terminate_wait_ms: int = TERMINATE_WAIT_MS,
) -> BackendAction:
    """Cancel the running statement of (or terminate) backend ``pid`` of this database and
    record it with what the backend was doing. Runs as service_role through
    ops.signal_backend(), owned by wedsync_ops (pg_signal_backend)."""
    text = required_reason(reason, f"{action} a backend")
    params = {
        "pid": pid,
        "action": action,
        "reason": text,
        "actor": actor,
        "wait_ms": terminate_wait_ms,
    }
    try:
        async with db.service(f"ops {action} backend {pid}") as s:
            row = await s.fetch_one(_sql("signal_backend"), params, row=BackendAction)
    except QueryError as exc:
        raise _mapped(exc) from exc
    assert row is not None  # the function returns its audit row or raises
    return row


async def recent_actions(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """The newest operator actions (cancel, terminate, silence, unsilence), newest first."""
    async with db.service("ops audit") as s:
        rows = await s.fetch_dicts(_sql("recent_actions"), {"limit": limit})
    return [{**r, "acted_at": r["acted_at"].isoformat()} for r in rows]


# --- silences -----------------------------------------------------------------------------------
async def silence_check(
    db: Database, check_id: str, duration: timedelta, *, reason: str | None, actor: str
) -> Silence:
    """Silence ``check_id`` for ``duration`` (replacing an earlier silence) and record it."""
    key = validate_check_id(check_id)
    text = required_reason(reason, "silence a check")
    params = {"check_id": key, "reason": text, "actor": actor, "seconds": duration.total_seconds()}
    async with db.service(f"ops silence {key}") as s:
        row = await s.fetch_one(_sql("silence_check"), params, row=Silence)
    assert row is not None
    return row


async def unsilence_check(
    db: Database, check_id: str, *, actor: str, reason: str | None = None
) -> Silence | None:
    """Lift the silence of ``check_id``; None when it had none."""
    key = check_id.strip()
    params = {"check_id": key, "actor": actor, "reason": (reason or "").strip() or "lifted"}
    async with db.service(f"ops unsilence {key}") as s:
        return await s.fetch_one(_sql("unsilence_check"), params, row=Silence)


async def active_silences(db: Database) -> list[Silence]:
    """The silences that have not expired."""
    async with db.service("ops silences") as s:
        return await _read_silences(s)


async def _read_silences(s: Session) -> list[Silence]:
    return await s.fetch_all(_sql("active_silences"), row=Silence)


async def with_stored_silences(db: Database, doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with the database's active silences applied (unchanged when they cannot be read,
    e.g. before migration 0007)."""
    try:
        silences = await active_silences(db)
    except WedsyncDBError as exc:
        log.debug("silences not applied: %s", exc)
        return dict(doc)
    return apply_silences(doc, silences, datetime.now(UTC))


class SilenceBook:
    """The active silences kept in memory for the health endpoint, which never queries on the
    request path: read in the background when older than ``max_age`` seconds, on a connection
    of its own (a pooled one used just before an outage would skip the pool's liveness check
    and turn the heartbeat's next probe into a long wait)."""

    def __init__(self, dsn: Callable[[], str], db: Database, max_age: float = 10.0) -> None:
        # the DSN is looked up when first needed
        self._dsn = dsn
        self._db = db
        self.max_age = max_age
        self._silences: tuple[Silence, ...] = ()
        self._loaded_at = float("-inf")
        self._task: asyncio.Task[None] | None = None

    def current(self) -> tuple[Silence, ...]:
        """The silences as last read; starts a background read when they are old."""
        stale = time.monotonic() - self._loaded_at > self.max_age
        if stale and self._reachable() and (self._task is None or self._task.done()):
            with contextlib.suppress(RuntimeError):  # no running loop: keep what we have
                self._task = asyncio.get_running_loop().create_task(self.refresh())
        return self._silences

    def _reachable(self) -> bool:
        # not while the heartbeat sees the server failing or hanging: a read then would only
        # hold a connection the pool needs to recover (the silences in memory stay)
        beat = self._db.heartbeat_snapshots().get("service")
        return beat is None or (beat.healthy and beat.in_flight_since is None)

    async def refresh(self) -> None:
        """Read the active silences now (kept as they were when the read fails)."""
        try:
            async with asyncio.timeout(READ_BOUND_S):
                async with direct.connect(self._dsn(), connect_timeout=READ_BOUND_S) as s:
                    self._silences = tuple(await _read_silences(s))
        except (WedsyncDBError, TimeoutError) as exc:
            log.debug("silences not refreshed: %s", exc)
        self._loaded_at = time.monotonic()

    def apply(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """``doc`` with the silences in memory applied."""
        return apply_silences(doc, self.current(), datetime.now(UTC))


# --- EXPLAIN ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExplainResult:
    """The plan of one tracked statement."""

    queryid: int
    query: str
    analyze: bool
    generic_plan: bool
    # the plan: lines of text, or the JSON document of FORMAT JSON
    plan: Any
    rolled_back: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class _RolledBack(Exception):
    def __init__(self, result: ExplainResult) -> None:
        self.result = result


def statement_kind(query: str) -> str:
    """The first keyword of a statement, after leading comments (pure)."""
    rest = _LEADING_COMMENTS.sub("", query, count=1)
    match = re.match(r"[A-Za-z]+", rest)
    return match.group(0).lower() if match else ""


def parameter_count(query: str) -> int:
    """The highest ``$n`` placeholder of a normalised statement (pure)."""
    return max((int(n) for n in _PARAMETER.findall(query)), default=0)


def explain_plan_options(
    query: str,
    *,
    server_major: int,
    analyze: bool,
    params: Sequence[str] | None,
    json_format: bool,
) -> tuple[list[str], bool]:
    """The EXPLAIN options for ``query`` and whether the plan is generic (pure); refuses what
    cannot be explained as asked."""
    kind = statement_kind(query)
    if kind not in _EXPLAINABLE:
        raise ActionRefused(
            f"a {kind.upper() or 'utility'} statement has no plan to EXPLAIN; only SELECT, "
            "INSERT, UPDATE, DELETE, MERGE and VALUES do"
        )
    needed = parameter_count(query)
    given = len(params or ())
    if given and given != needed:
        raise ExplainNeedsParameters(
            f"the statement has {needed} parameter(s) and {given} value(s) were given"
        )
    generic = needed > 0 and not given
    if generic and analyze:
        raise ExplainNeedsParameters(
            f"the statement has {needed} parameter(s) ($1..${needed}): --analyze runs it, so "
            "give their values (--param VALUE, once per parameter)"
        )
    if generic and server_major < 16:
        raise ExplainNeedsParameters(
            f"the statement has {needed} parameter(s) ($1..${needed}) and PostgreSQL "
            f"{server_major} cannot plan it without their values (EXPLAIN (GENERIC_PLAN) needs "
            "PostgreSQL 16): give them with --param VALUE, once per parameter"
        )
    options = ["analyze", "buffers"] if analyze else []
    if generic:
        options.append("generic_plan")
    options.append("format json" if json_format else "format text")
    return options, generic


def _bound(query: str) -> str:
    """``$n`` placeholders as the driver's named ones (literal ``%`` escaped)."""
    return _PARAMETER.sub(lambda m: f"%(p{m.group(1)})s", query.replace("%", "%%"))


async def explain_statement(
    db: Database,
    queryid: int,
    *,
    analyze: bool = False,
    params: Sequence[str] | None = None,
    json_format: bool = False,
    timeout_s: float = EXPLAIN_TIMEOUT_S,
) -> ExplainResult:
    """EXPLAIN the statement ``queryid`` of pg_stat_statements as service_role, in a transaction
    that is always rolled back and under a statement timeout. Without ``analyze`` the statement
    is only planned; with it, it runs (and its effects are rolled back)."""
    try:
        async with db.service(f"ops explain {queryid}") as s:
            try:
                query = await s.fetch_val(_sql("statement_text"), {"queryid": queryid})
            except QueryError as exc:
                if "pg_stat_statements" not in str(exc):
                    raise
                raise ActionRefused(hint_for("explain", exc, 0)) from exc
            if query is None:
                raise BackendNotFound(
                    f"no statement with queryid {queryid} in pg_stat_statements of this "
                    "database; `wedsync-db inspect queries` lists them"
                )
            major = int(await s.fetch_val(_sql("server_version")))
            options, generic = explain_plan_options(
                query, server_major=major, analyze=analyze, params=params, json_format=json_format
            )
            await s.execute(
                "select set_config('statement_timeout', %s, true), "
                "set_config('lock_timeout', %s, true)",
                (f"{int(timeout_s * 1000)}", f"{int(min(timeout_s, 5.0) * 1000)}"),
            )
            statement = f"explain ({', '.join(options)}) "
            if params:
                values = {f"p{i}": v for i, v in enumerate(params, start=1)}
                rows = await s.fetch_tuples(statement + _bound(query), values)
            else:
                rows = await s.fetch_tuples(statement + query)
            plan: Any = rows[0][0] if json_format else [r[0] for r in rows]
            raise _RolledBack(ExplainResult(queryid, query, analyze, generic, plan, True))
    except _RolledBack as done:
        return done.result
