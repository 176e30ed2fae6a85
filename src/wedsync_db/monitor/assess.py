"""Health assessment (pure): a snapshot + calendar context + thresholds → verdict.

:func:`assess` reads the collectors' records in a :class:`Snapshot` and returns the status,
health+json checks keyed ``component:measurement``, alerts and recommendations. Nothing here
does I/O, so every rule is tested with plain records. The pools' heartbeats are judged by
:mod:`wedsync_db.monitor.health` when the document is rendered (they are fresher than any
sample).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from wedsync_db.calendar import CalendarContext, ContextLevel, calendar_context
from wedsync_db.jsonable import JsonRecord
from wedsync_db.monitor.snapshot import (
    BlockingPair,
    CollectorError,
    SessionActivity,
    Snapshot,
    TableMaintenance,
)
from wedsync_db.monitor.thresholds import (
    Thresholds,
    thresholds_from_settings,
    wedding_day_query_mean_ms,
)
from wedsync_db.settings import Settings

Status = Literal["pass", "warn", "fail"]
Severity = Literal["critical", "warning", "info"]

STATUS_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe of several statuses (pass when empty)."""
    out: Status = "pass"
    for s in statuses:
        if STATUS_RANK[s] > STATUS_RANK[out]:
            out = s
    return out


# --- output -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One health+json check entry under ``key`` (``component:measurement``)."""

    key: str
    status: Status
    observed_value: float | int | None
    observed_unit: str
    time: datetime
    context: ContextLevel | str
    output: str = ""
    component_id: str | None = None
    limits: Mapping[str, float | int] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The health+json form (``output`` only when not passing)."""
        entry: dict[str, Any] = {}
        if self.component_id:
            entry["componentId"] = self.component_id
        entry["componentType"] = "datastore"
        entry["observedValue"] = self.observed_value
        entry["observedUnit"] = self.observed_unit
        entry["status"] = self.status
        entry["time"] = self.time.isoformat()
        entry["context"] = self.context
        if self.limits:
            entry["limits"] = dict(self.limits)
        if self.output and self.status != "pass":
            entry["output"] = self.output
        entry.update(self.details)
        return entry


@dataclass(frozen=True)
class Alert(JsonRecord):
    """A check that is not passing, in one sentence."""

    key: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class Recommendation(JsonRecord):
    """Something to do, keyed stably (``index.unused:public.guests_foo_idx``) across samples."""

    key: str
    severity: Severity
    title: str
    objects: tuple[str, ...]
    remedy: str
    remedy_sql: str | None = None


@dataclass(frozen=True)
class Assessment:
    """The verdict for one sample."""

    status: Status
    context: CalendarContext
    thresholds: Thresholds
    evaluated_at: datetime
    checks: tuple[Check, ...]
    alerts: tuple[Alert, ...]
    recommendations: tuple[Recommendation, ...]

    def checks_by_key(self) -> dict[str, list[dict[str, Any]]]:
        """health+json ``checks``: key → list of entries."""
        out: dict[str, list[dict[str, Any]]] = {}
        for check in self.checks:
            out.setdefault(check.key, []).append(check.to_dict())
        return out

    def top_risks(self, limit: int = 5) -> list[dict[str, Any]]:
        """The most severe alerts and recommendations (alerts first at equal severity)."""
        items: list[tuple[int, int, str, dict[str, Any]]] = []
        for a in self.alerts:
            entry = {"kind": "alert", **a.to_dict()}
            items.append((-SEVERITY_RANK[a.severity], 0, a.key, entry))
        for r in self.recommendations:
            entry = {
                "kind": "recommendation",
                "key": r.key,
                "severity": r.severity,
                "message": r.title,
            }
            items.append((-SEVERITY_RANK[r.severity], 1, r.key, entry))
        items.sort(key=lambda t: t[:3])
        return [t[3] for t in items[:limit]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the metrics API and ``--json``)."""
        return {
            "status": self.status,
            "context": self.context.to_dict(),
            "evaluated_at": self.evaluated_at.isoformat(),
            "checks": self.checks_by_key(),
            "alerts": [a.to_dict() for a in self.alerts],
            "recommendations": [r.to_dict() for r in self.recommendations],
        }


# --- helpers ------------------------------------------------------------------------------------
def _at_or_above(value: float, warn: float, fail: float) -> Status:
    return "fail" if value >= fail else "warn" if value >= warn else "pass"


def _below(value: float, warn: float, fail: float) -> Status:
    return "fail" if value < fail else "warn" if value < warn else "pass"


def quote_ident(name: str) -> str:
    """Quote an identifier for remedy SQL unless it is a plain lower-case name."""
    plain = name.replace("_", "a").isalnum() and name == name.lower() and not name[:1].isdigit()
    return name if plain and name.isascii() else '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A SQL string literal for remedy SQL."""
    return "'" + value.replace("'", "''") + "'"


def qualified(schema: str, name: str) -> str:
    """``schema.name`` with each part quoted when needed."""
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _qualified_dotted(name: str) -> str:
    schema, dot, rest = name.partition(".")
    return qualified(schema, rest) if dot else quote_ident(name)


def _short(query: str, limit: int = 80) -> str:
    text = " ".join(query.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _severity(status: Status) -> Severity:
    return "critical" if status == "fail" else "warning"


def _pct(value: float) -> float:
    return round(value * 100.0, 2)


# --- assessment ---------------------------------------------------------------------------------
class _Builder:
    """Accumulates checks and recommendations for one assessment."""

    def __init__(self, context: CalendarContext, thresholds: Thresholds, now: datetime) -> None:
        self.context = context
        self.t = thresholds
        self.now = now
        self.checks: list[Check] = []
        self.recommendations: dict[str, Recommendation] = {}

    def check(
        self,
        key: str,
        status: Status,
        value: float | int | None,
        unit: str,
        output: str = "",
        *,
        component_id: str | None = None,
        limits: Mapping[str, float | int] | None = None,
        details: Mapping[str, Any] | None = None,
        limits_of: str | None = None,
    ) -> None:
        if output and status != "pass":
            output = f"{output} ({limits_of or self.t.level} limits)"
        self.checks.append(
            Check(
                key=key,
                status=status,
                observed_value=value,
                observed_unit=unit,
                time=self.now,
                context=limits_of or self.t.level,
                output=output,
                component_id=component_id,
                limits=dict(limits or {}),
                details=dict(details or {}),
            )
        )

    def unavailable(
        self, key: str, unit: str, inp: Snapshot, collector: str, collected: object
    ) -> bool:
        """Report ``key`` as unavailable (warn, no value) when ``collector`` failed and so
        ``collected`` (its record) is missing: a failed collector is not a pass. True then."""
        error = next((e for e in inp.errors if e.collector == collector), None)
        if error is None or collected is not None:
            return False
        self.checks.append(
            Check(
                key=key,
                status="warn",
                observed_value=None,
                observed_unit=unit,
                time=self.now,
                context=self.t.level,
                output=f"data unavailable: the {collector} collector failed ({error.message})",
                details={"unavailable": True},
            )
        )
        return True

    def recommend(
        self,
        key: str,
        severity: Severity,
        title: str,
        objects: Iterable[str],
        remedy: str,
        remedy_sql: str | None = None,
    ) -> None:
        """Add a recommendation; a second one under the same key merges into the first."""
        objs = tuple(objects)
        existing = self.recommendations.get(key)
        if existing is None:
            self.recommendations[key] = Recommendation(
                key, severity, title, objs, remedy, remedy_sql
            )
            return
        sql_parts = [s for s in (existing.remedy_sql, remedy_sql) if s]
        self.recommendations[key] = Recommendation(
            key=key,
            severity=max(existing.severity, severity, key=SEVERITY_RANK.__getitem__),
            title=existing.title,
            objects=existing.objects + tuple(o for o in objs if o not in existing.objects),
            remedy=existing.remedy,
            remedy_sql="\n".join(dict.fromkeys(sql_parts)) or None,
        )


def assess(
    snap: Snapshot, context: CalendarContext, thresholds: Thresholds, *, now: datetime
) -> Assessment:
    """Judge one sample against the limits of the calendar context it was taken in."""
    b = _Builder(context, thresholds, now)
    inp = snap
    _connections(b, inp)
    _cache(b, inp)
    _activity(b, inp)
    _locks(b, inp)
    _counters(b, inp)
    _wraparound(b, inp)
    _sequences(b, inp)
    _replication(b, inp)
    _dead_tuples(b, inp)
    _size(b, inp)
    _indexes(b, inp)
    _security(b, inp)
    _slow_queries(b, inp)
    _backups(b, inp)
    _feed(b, inp)
    _collectors(b, inp)
    checks = tuple(b.checks)
    alerts = tuple(
        Alert(key=c.key, severity=_severity(c.status), message=c.output or f"{c.key} {c.status}")
        for c in checks
        if c.status != "pass"
    )
    recommendations = tuple(
        sorted(b.recommendations.values(), key=lambda r: (-SEVERITY_RANK[r.severity], r.key))
    )
    return Assessment(
        status=worst(c.status for c in checks),
        context=context,
        thresholds=thresholds,
        evaluated_at=now,
        checks=checks,
        alerts=alerts,
        recommendations=recommendations,
    )


def assess_sample(snap: Snapshot, settings: Settings) -> Assessment:
    """Judge a snapshot in the calendar context of its capture time, with the limits
    ``settings`` choose (disk budget, environment)."""
    context = calendar_context(
        snap.captured_at,
        settings.timezone,
        settings.peak_months,
        snap.weddings_today or 0,
    )
    thresholds = thresholds_from_settings(context.level, settings)
    return assess(snap, context, thresholds, now=snap.captured_at)


def _connections(b: _Builder, inp: Snapshot) -> None:
    usable = inp.server.max_usable_connections if inp.server else 0
    if usable <= 0:
        return
    t, c = b.t, inp.connections
    total = c.total if c else 0
    used = total / usable
    status = _at_or_above(used, t.connection_warn_fraction, t.connection_fail_fraction)
    audiences = c.by_audience if c else {}
    by_audience = dict(sorted(audiences.items(), key=lambda kv: (-kv[1], kv[0])))
    b.check(
        "postgres:connections",
        status,
        _pct(used),
        "percent",
        f"{total} of {usable} usable connections in use "
        f"({used:.0%}); warn at {t.connection_warn_fraction:.0%}, "
        f"fail at {t.connection_fail_fraction:.0%}",
        limits={
            "warn": _pct(t.connection_warn_fraction),
            "fail": _pct(t.connection_fail_fraction),
        },
        details={"byAudience": by_audience},
    )
    if status != "pass":
        b.recommend(
            "connections.utilization",
            _severity(status),
            f"Connection utilization at {used:.0%}",
            (f"{aud}: {n}" for aud, n in by_audience.items()),
            "Find the audience holding the most connections; route it through the pooler or "
            "lower its pool size, and end idle sessions before raising max_connections.",
            "SELECT application_name, state, count(*) FROM pg_stat_activity "
            "GROUP BY 1, 2 ORDER BY 3 DESC;",
        )


def _cache(b: _Builder, inp: Snapshot) -> None:
    t = b.t
    worst_status: Status = "pass"
    for component, ratio in (("tables", inp.cache_hit_ratio), ("indexes", inp.index_hit_ratio)):
        if ratio is None:
            continue
        status = _below(ratio, t.cache_hit_warn_ratio, t.cache_hit_fail_ratio)
        worst_status = worst((worst_status, status))
        b.check(
            "postgres:cacheHitRatio",
            status,
            _pct(ratio),
            "percent",
            f"{component} cache hit ratio {ratio:.2%}; warn below "
            f"{t.cache_hit_warn_ratio:.0%}, fail below {t.cache_hit_fail_ratio:.0%}",
            component_id=component,
            limits={"warn": _pct(t.cache_hit_warn_ratio), "fail": _pct(t.cache_hit_fail_ratio)},
        )
    if worst_status != "pass":
        b.recommend(
            "cache.hit_ratio",
            _severity(worst_status),
            "Reads are missing the buffer cache",
            (),
            "The working set no longer fits in shared_buffers: look for sequential scans of "
            "large tables (see the index advice) before raising shared_buffers or memory.",
        )


def _sessions_over(
    b: _Builder,
    key: str,
    sessions: Iterable[SessionActivity],
    limits: tuple[float, float],
    describe: Callable[[int, float], str],
    advice: tuple[str, str, str, str],
) -> None:
    """A check on the longest of ``sessions`` (seconds) and advice naming each one over the
    warn limit; ``advice`` is (key, title, remedy, remedy SQL with ``{pid}``)."""
    warn, fail = limits
    listed = list(sessions)
    over = sorted((a for a in listed if a.seconds >= warn), key=lambda a: -a.seconds)
    longest = max((a.seconds for a in listed), default=0.0)
    b.check(
        key,
        _at_or_above(longest, warn, fail),
        round(longest, 1),
        "s",
        describe(len(over), longest),
        limits={"warn": warn, "fail": fail},
        details={"count": len(over)},
    )
    rec_key, title, remedy, remedy_sql = advice
    for a in over:
        b.recommend(
            rec_key,
            _severity(_at_or_above(a.seconds, warn, fail)),
            title,
            [
                f"pid {a.pid} ({a.application_name or 'unknown'}, {a.seconds:.0f} s): "
                f"{_short(a.query)}"
            ],
            remedy,
            remedy_sql.format(pid=a.pid),
        )


def _activity(b: _Builder, inp: Snapshot) -> None:
    activity = (
        "postgres:longRunningQueries",
        "postgres:idleInTransaction",
        "postgres:transactionAge",
    )
    if all([b.unavailable(key, "s", inp, "connections", inp.connections) for key in activity]):
        return  # the connections collector failed: each check says so
    t, c = b.t, inp.connections
    _sessions_over(
        b,
        "postgres:longRunningQueries",
        c.long_running if c else (),
        (t.long_query_warn_s, t.long_query_fail_s),
        lambda n, longest: (
            f"{n} statement(s) running longer than {t.long_query_warn_s:.0f} s, "
            f"the longest {longest:.0f} s (fail at {t.long_query_fail_s:.0f} s)"
        ),
        (
            "activity.long_running_query",
            "Long-running statements",
            "Check what the statement waits for (EXPLAIN it, look at its locks); cancel it if it "
            "is stuck, then fix the query or its index.",
            "SELECT pg_cancel_backend({pid});",
        ),
    )
    _sessions_over(
        b,
        "postgres:idleInTransaction",
        c.idle_in_transaction if c else (),
        (t.idle_in_transaction_warn_s, t.idle_in_transaction_fail_s),
        lambda n, longest: (
            f"{n} session(s) idle in an open transaction for more than "
            f"{t.idle_in_transaction_warn_s:.0f} s, the longest {longest:.0f} s"
        ),
        (
            "activity.idle_in_transaction",
            "Sessions idle inside an open transaction",
            "The client opened a transaction and stopped talking; it keeps its locks and holds "
            "back vacuum. Terminate it and fix the client (or set "
            "idle_in_transaction_session_timeout).",
            "SELECT pg_terminate_backend({pid});",
        ),
    )

    # oldest open transaction
    oldest = c.longest_transaction_seconds if c else None
    if oldest is not None:
        age = oldest
        status: Status = "warn" if age >= t.transaction_age_warn_s else "pass"
        b.check(
            "postgres:transactionAge",
            status,
            round(age, 1),
            "s",
            f"oldest open transaction {age:.0f} s; warn at {t.transaction_age_warn_s:.0f} s",
            limits={"warn": t.transaction_age_warn_s},
        )


def _locks(b: _Builder, inp: Snapshot) -> None:
    if inp.locks is None:
        return  # not collected: nothing to judge
    t = b.t
    chains: tuple[BlockingPair, ...] = inp.locks.blocking
    waiting = inp.connections.waiting_on_locks if inp.connections else 0
    longest = max((c.wait_seconds for c in chains), default=0.0)
    status = _at_or_above(longest, t.lock_wait_warn_s, t.lock_wait_fail_s)
    b.check(
        "postgres:lockWaits",
        status,
        round(longest, 1),
        "s",
        f"{waiting} session(s) waiting on locks, the longest for {longest:.0f} s; "
        f"warn at {t.lock_wait_warn_s:.0f} s, fail at {t.lock_wait_fail_s:.0f} s",
        limits={"warn": t.lock_wait_warn_s, "fail": t.lock_wait_fail_s},
        details={"waitingSessions": waiting},
    )
    blockers: dict[int, list[BlockingPair]] = {}
    for c in chains:
        if c.wait_seconds >= t.lock_wait_warn_s:
            blockers.setdefault(c.blocking_pid, []).append(c)
    for pid, chain in sorted(blockers.items()):
        wait = max(c.wait_seconds for c in chain)
        relation = next((c.relation for c in chain if c.relation), None)
        b.recommend(
            "locks.blocking",
            _severity(_at_or_above(wait, t.lock_wait_warn_s, t.lock_wait_fail_s)),
            "Sessions blocked behind another session's lock",
            [
                f"pid {pid} blocks {len(chain)} session(s) for up to {wait:.0f} s"
                + (f" on {relation}" if relation else "")
                + f": {_short(chain[0].blocking_query)}"
            ],
            "Find out why the blocking session holds its lock (an open transaction, a migration "
            "without lock_timeout); end it if it cannot finish soon.",
            f"SELECT pg_terminate_backend({pid});",
        )


def _counters(b: _Builder, inp: Snapshot) -> None:
    t, d = b.t, inp.deltas
    deadlocks = d.deadlocks if d else None
    temp_bytes = d.temp_bytes if d else None
    if deadlocks is not None:
        status: Status = "warn" if deadlocks > 0 else "pass"
        b.check(
            "postgres:deadlocks",
            status,
            deadlocks,
            "deadlocks",
            f"{deadlocks} deadlock(s) since the previous sample",
        )
        if status != "pass":
            b.recommend(
                "locks.deadlocks",
                "warning",
                "Deadlocks detected",
                (),
                "Two code paths lock the same rows in different orders; the server log names "
                "the statements (log_lock_waits helps). Lock rows in a fixed order.",
            )
    if temp_bytes is not None:
        status = "warn" if temp_bytes >= t.temp_bytes_warn else "pass"
        b.check(
            "postgres:tempFiles",
            status,
            temp_bytes,
            "bytes",
            f"{temp_bytes / 2**20:.0f} MiB of temporary files since the previous "
            f"sample; warn at {t.temp_bytes_warn / 2**20:.0f} MiB",
            limits={"warn": t.temp_bytes_warn},
        )
        if status != "pass":
            b.recommend(
                "queries.temp_files",
                "warning",
                "Sorts and hashes spill to disk",
                (),
                "Find the statements with temp_blks_written in pg_stat_statements; add an index "
                "for their ORDER BY / GROUP BY or raise work_mem for them alone.",
            )
    rollback_ratio = inp.rollback_ratio
    if rollback_ratio is not None:
        b.check("postgres:rollbackRatio", "pass", _pct(rollback_ratio), "percent")


def _wraparound(b: _Builder, inp: Snapshot) -> None:
    left = inp.database.xid_remaining if inp.database else None
    if left is None:
        return
    t = b.t
    status = _below(left, t.wraparound_warn_xids_left, t.wraparound_fail_xids_left)
    b.check(
        "postgres:wraparound",
        status,
        left,
        "transactions",
        f"{left:,} transaction IDs left before wraparound; warn below "
        f"{t.wraparound_warn_xids_left:,}, fail below {t.wraparound_fail_xids_left:,}",
        limits={"warn": t.wraparound_warn_xids_left, "fail": t.wraparound_fail_xids_left},
    )
    if status != "pass":
        b.recommend(
            "maintenance.wraparound",
            _severity(status),
            "Transaction ID wraparound is approaching",
            (),
            "Anti-wraparound autovacuum is not keeping up: end long transactions and abandoned "
            "replication slots or prepared transactions, then freeze the oldest tables.",
            "VACUUM (FREEZE, VERBOSE);",
        )


def _sequences(b: _Builder, inp: Snapshot) -> None:
    if inp.maintenance is None:
        return  # not collected: nothing to judge
    t = b.t
    sequences = [
        (f"{q.schema_name}.{q.sequence_name}", q.used_fraction) for q in inp.maintenance.sequences
    ]
    near = sorted(
        (q for q in sequences if q[1] > t.sequence_warn_fraction), key=lambda q: (-q[1], q[0])
    )
    top = near[0][1] if near else max((used for _, used in sequences), default=0)
    status: Status = "fail" if top > t.sequence_fail_fraction else "warn" if near else "pass"
    b.check(
        "postgres:sequences",
        status,
        _pct(top),
        "percent",
        f"{len(near)} sequence(s) more than {t.sequence_warn_fraction:.0%} used, the fullest "
        f"at {top:.1%}",
        limits={"warn": _pct(t.sequence_warn_fraction), "fail": _pct(t.sequence_fail_fraction)},
    )
    for name, used in near:
        sev: Severity = "critical" if used > t.sequence_fail_fraction else "warning"
        b.recommend(
            f"sequence.exhaustion:{name}",
            sev,
            f"Sequence {name} is {used:.1%} used",
            [name],
            "Widen the sequence and the column it feeds to bigint before it runs out; the "
            "column change rewrites the table, so plan it outside peak season.",
            f"ALTER SEQUENCE {_qualified_dotted(name)} AS bigint;",
        )


def _replication(b: _Builder, inp: Snapshot) -> None:
    t, r = b.t, inp.replication
    inactive_slots = tuple(s.slot_name for s in (r.slots if r else ()) if not s.active)
    lag = r.lag_seconds if r else None
    if lag is not None:
        status = _at_or_above(lag, t.replication_lag_warn_s, t.replication_lag_fail_s)
        b.check(
            "postgres:replicationLag",
            status,
            round(lag, 3),
            "s",
            f"replica {lag:.1f} s behind; warn at {t.replication_lag_warn_s:.0f} s, "
            f"fail at {t.replication_lag_fail_s:.0f} s",
            limits={"warn": t.replication_lag_warn_s, "fail": t.replication_lag_fail_s},
        )
    if inactive_slots:
        b.check(
            "postgres:replicationSlots",
            "warn",
            len(inactive_slots),
            "slots",
            f"{len(inactive_slots)} inactive replication slot(s) retaining WAL: "
            + ", ".join(sorted(inactive_slots)),
        )
    for slot in sorted(inactive_slots):
        b.recommend(
            f"replication.inactive_slot:{slot}",
            "warning",
            f"Replication slot {slot} is inactive",
            [slot],
            "An inactive slot keeps WAL (and the xmin horizon) until its consumer returns; drop "
            "it if the consumer is gone.",
            f"SELECT pg_drop_replication_slot({quote_literal(slot)});",
        )


def _dead_tuples(b: _Builder, inp: Snapshot) -> None:
    if inp.maintenance is None:
        return  # not collected: nothing to judge
    t = b.t
    flagged: list[tuple[TableMaintenance, float]] = []
    # the highest dead share among tables large enough to matter
    worst_share = 0.0
    # ages are counted from the capture that read the tables
    captured = inp.full_captured_at or inp.captured_at
    for m in inp.maintenance.tables:
        total = m.dead_tuples + m.live_tuples
        share = m.dead_tuples / total if total else 0.0
        if m.dead_tuples < t.dead_tuple_min_rows:
            continue
        worst_share = max(worst_share, share)
        if share >= t.dead_tuple_warn_fraction:
            flagged.append((m, share))
    flagged.sort(key=lambda x: (-x[0].dead_tuples, x[0].schema_name, x[0].table_name))
    b.check(
        "postgres:deadTuples",
        "warn" if flagged else "pass",
        _pct(worst_share),
        "percent",
        f"{len(flagged)} table(s) with more than {t.dead_tuple_warn_fraction:.0%} dead rows: "
        + ", ".join(f"{m.schema_name}.{m.table_name}" for m, _ in flagged[:5]),
        limits={"warn": _pct(t.dead_tuple_warn_fraction)},
        details={"count": len(flagged)},
    )
    for m, share in flagged:
        name = f"{m.schema_name}.{m.table_name}"
        vacuumed = (
            "never autovacuumed"
            if m.last_vacuum is None
            else f"last autovacuumed {(captured - m.last_vacuum).total_seconds() / 3600:.1f} h ago"
        )
        b.recommend(
            f"maintenance.vacuum:{name}",
            "warning",
            f"{name} is {share:.0%} dead rows",
            [f"{name} ({m.dead_tuples:,} dead, {m.live_tuples:,} live, {vacuumed})"],
            "Autovacuum is behind on this table: vacuum it now (VACUUM does not block reads or "
            "writes) and lower its autovacuum_vacuum_scale_factor.",
            f"VACUUM (ANALYZE) {qualified(m.schema_name, m.table_name)};",
        )


def _size(b: _Builder, inp: Snapshot) -> None:
    t = b.t
    if inp.storage is None:
        return
    size = inp.storage.database_bytes
    if t.disk_budget_bytes is None:
        b.check("postgres:databaseSize", "pass", size, "bytes")
        return
    used = size / t.disk_budget_bytes
    status = _at_or_above(used, t.disk_warn_fraction, t.disk_fail_fraction)
    b.check(
        "postgres:databaseSize",
        status,
        size,
        "bytes",
        f"database is {used:.0%} of the {t.disk_budget_bytes / 2**30:.0f} GiB disk budget",
        limits={
            "warn": round(t.disk_budget_bytes * t.disk_warn_fraction),
            "fail": round(t.disk_budget_bytes * t.disk_fail_fraction),
        },
    )


_INDEX_SEVERITY: dict[str, Severity] = {"invalid": "warning", "missing": "warning"}
_INDEX_TITLES: dict[str, str] = {
    "unused": "Unused index",
    "duplicate": "Duplicate index",
    "invalid": "Invalid index",
    "missing": "Table read mostly by sequential scans",
    "unindexed_fk": "Foreign key without an index",
}
_INDEX_REMEDIES: dict[str, str] = {
    "unused": "Never used since statistics were reset: drop it to speed up writes (check the "
    "replicas use it neither).",
    "duplicate": "Another index covers the same columns: drop this one.",
    "invalid": "A failed CREATE INDEX CONCURRENTLY left it behind; it is maintained on every "
    "write but never used. Drop and rebuild it.",
    "missing": "Add an index for the columns the frequent queries filter on.",
    "unindexed_fk": "Deleting or updating a parent row scans this table; index the foreign "
    "key columns.",
}


def _indexes(b: _Builder, inp: Snapshot) -> None:
    if inp.indexes is None:
        return  # not collected: nothing to judge
    advice = inp.indexes
    invalid = [i for i in advice if i.kind == "invalid"]
    b.check(
        "postgres:indexes",
        "warn" if invalid else "pass",
        len(advice),
        "advice",
        f"{len(invalid)} invalid index(es): "
        + ", ".join(f"{i.schema_name}.{i.index_name}" for i in invalid),
    )
    for item in advice:
        name = (
            f"{item.schema_name}.{item.index_name}"
            if item.index_name
            else f"{item.schema_name}.{item.table_name}"
        )
        obj = name if not item.detail else f"{name}: {item.detail}"
        b.recommend(
            f"index.{item.kind}:{name}",
            _INDEX_SEVERITY.get(item.kind, "info"),
            f"{_INDEX_TITLES.get(item.kind, item.kind.replace('_', ' ').capitalize())}: {name}",
            [obj],
            _INDEX_REMEDIES.get(item.kind, item.detail),
            item.remedy,
        )


# security lints through which SQL in a user scope gains more than its user's privileges
ESCALATION_RULES = frozenset(
    {
        "security_definer_search_path_mutable",
        "security_definer_search_path_without_pg_temp",
        "security_definer_owned_by_superuser",
        "temp_granted_to_public",
        "claims_unsigned",
    }
)


def _security(b: _Builder, inp: Snapshot) -> None:
    if inp.security is None:
        return  # not collected: nothing to judge
    findings = sorted(inp.security, key=lambda f: (f.rule, f.object))
    b.check(
        "postgres:security",
        "warn" if findings else "pass",
        len(findings),
        "findings",
        f"{len(findings)} security finding(s): " + ", ".join(sorted({f.rule for f in findings})),
    )
    for f in findings:
        # row-level security gaps expose one tenant's rows to another; the escalation paths
        # turn a user scope into its owner's (or another user's) privileges
        critical = "rls" in f.rule.lower() or f.rule in ESCALATION_RULES
        severity: Severity = "critical" if critical else "warning"
        b.recommend(
            f"security.{f.rule}:{f.object}",
            severity,
            f"{f.rule.replace('_', ' ')}: {f.object}",
            [f.object],
            f.detail,
            f.remedy,
        )


def _slow_queries(b: _Builder, inp: Snapshot) -> None:
    if b.unavailable("postgres:slowQueries", "ms", inp, "queries", inp.queries):
        return
    t = b.t
    wedding_limit = wedding_day_query_mean_ms()
    window = inp.queries.window if inp.queries else None
    statements = window.top if window else ()
    called = [q for q in statements if q.calls > 0]
    over = [q for q in called if q.mean_ms > t.query_mean_warn_ms]
    slowest = max((q.mean_ms for q in called), default=0.0)
    b.check(
        "postgres:slowQueries",
        "warn" if over else "pass",
        round(slowest, 3),
        "ms",
        f"{len(over)} statement(s) averaging more than {t.query_mean_warn_ms:.0f} ms",
        limits={"warn": t.query_mean_warn_ms},
        details={"count": len(over)},
    )
    for q in sorted(statements, key=lambda q: (-q.total_ms, q.queryid)):
        if q.mean_ms <= wedding_limit:
            continue
        severity: Severity = "warning" if q.mean_ms > t.query_mean_warn_ms else "info"
        b.recommend(
            f"query.slow:{q.queryid}",
            severity,
            f"Query {q.queryid} averages {q.mean_ms:.0f} ms: a wedding-day risk "
            f"(over {wedding_limit:.0f} ms)",
            [f"{q.queryid}: {_short(q.query)} ({q.calls} calls, {q.mean_ms:.0f} ms mean)"],
            "EXPLAIN (ANALYZE, BUFFERS) the statement with realistic parameters; add the index "
            "it needs or narrow what it reads before the next Saturday.",
        )


def _hours(seconds: float) -> str:
    hours = seconds / 3600.0
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _backups(b: _Builder, inp: Snapshot) -> None:
    """backup:lastVerifiedAge (the newest backup a restore proved good) and
    backup:walArchiving; limits by environment, not by calendar."""
    bk, t = inp.backups, b.t
    if bk is None:
        return
    env = t.environment
    warn_h, fail_h = t.backup_verified_warn_hours, t.backup_verified_fail_hours
    age = inp.age_seconds(bk.last_verified_at)
    if env == "development" and not bk.in_use and age is None:
        return  # development without backups set up: nothing to judge
    limits = {k: v * 3600.0 for k, v in (("warn", warn_h), ("fail", fail_h)) if v is not None}
    if age is None:
        status: Status = "fail" if fail_h is not None else "warn"
        output = (
            "every verification so far FAILED (`wedsync-db backup list`)"
            if bk.latest_verification_failed
            else "no backup has been verified yet: run `wedsync-db backup verify ID`"
        )
    else:
        status = "pass"
        if fail_h is not None and age >= fail_h * 3600.0:
            status = "fail"
        elif warn_h is not None and age >= warn_h * 3600.0:
            status = "warn"
        output = (
            f"the newest verified backup ({bk.last_verified_kind or 'backup'}) is {_hours(age)} old"
            + (f"; warn at {warn_h:g} h" if warn_h is not None else "")
            + (f", fail at {fail_h:g} h" if fail_h is not None else "")
        )
        if bk.latest_verification_failed:
            status = "fail" if status == "fail" else "warn"
            output = "the latest verification FAILED (`wedsync-db backup list`); " + output
    component = None
    if bk.provider_managed:
        # the provider's backups cannot be seen from here: never a pass
        component = "provider-managed"
        status = "fail" if status == "fail" else "warn"
        output = (
            "provider-managed: physical backups and point-in-time recovery are the provider's "
            "and cannot be verified from here; "
            + (
                output.replace("backup has", "logical export has")
                if age is None
                else output + " (logical export)"
            )
        )
    b.check(
        "backup:lastVerifiedAge",
        status,
        None if age is None else round(age, 1),
        "s",
        output,
        component_id=component,
        limits=limits,
        limits_of=env,
    )
    if not bk.provider_managed and bk.in_use:
        failing = bk.archive_failing
        b.check(
            "backup:walArchiving",
            ("warn" if env == "development" else "fail") if failing else "pass",
            None,
            "",
            "the WAL archiver's newest attempt failed: point-in-time recovery stops at the "
            "last archived segment (see the server log; is the archive directory writable "
            "and not full?)"
            if failing
            else "",
            limits_of=env,
        )
    if status != "pass":
        b.recommend(
            "backup.verify",
            _severity(status) if not bk.provider_managed else "warning",
            "Backups are not proven restorable",
            ["backup"],
            "A backup counts once a restore proved it: `wedsync-db backup create` then "
            "`wedsync-db backup verify ID` (`wedsync-db up` does both on a schedule outside "
            "development; WEDSYNC_BACKUP_EVERY_HOURS, WEDSYNC_BACKUP_VERIFY_EVERY_HOURS)."
            + (
                " On a managed database take logical exports: `wedsync-db backup create --logical`."
                if bk.provider_managed
                else ""
            ),
        )


def _feed(b: _Builder, inp: Snapshot) -> None:
    """feed:oldestChangeAge: the sampler prunes the outbox to the retention every hour, so a
    change older than twice the retention means pruning has stopped (the outbox only grows)."""
    fd = inp.feed
    if fd is None:
        return
    retention = b.t.feed_retention_hours * 3600.0
    age = inp.age_seconds(fd.oldest_change_at)
    behind = age is not None and age > 2 * retention
    b.check(
        "feed:oldestChangeAge",
        "warn" if behind else "pass",
        None if age is None else round(age, 1),
        "s",
        f"the change feed holds changes {_hours(age or 0.0)} old, beyond twice its retention "
        f"of {_hours(retention)}: is the sampler (`wedsync-db up`) pruning it?"
        if behind
        else "",
        limits={"warn": 2 * retention},
        details={
            "changes": fd.changes,
            "bytes": fd.bytes,
            "streams": fd.streams,
            "watermark_lag_xids": fd.watermark_lag_xids,
            "oldest_writer_seconds": fd.oldest_writer_seconds,
        },
    )


def _collectors(b: _Builder, inp: Snapshot) -> None:
    errors: list[CollectorError] = sorted(inp.errors, key=lambda e: e.collector)
    b.check(
        "postgres:collectors",
        "warn" if errors else "pass",
        len(errors),
        "failed",
        "; ".join(f"{e.collector}: {e.message}" for e in errors),
    )
    for e in errors:
        b.recommend(
            f"collector:{e.collector}",
            "info",
            f"The {e.collector} collector could not run",
            [e.collector],
            e.hint or e.message,
        )
