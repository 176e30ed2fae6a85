"""The health+json document: public summary vs full report, status codes. Pure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from monitor_facts import advice, facts
from wedsync_db.api.app import create_app
from wedsync_db.api.context import AppContext
from wedsync_db.api.routes_health import RenderedHealth, health_report
from wedsync_db.calendar import CalendarContext, calendar_context
from wedsync_db.db.heartbeat import HeartbeatSnapshot, HeartbeatState
from wedsync_db.migrate.freeze import FreezeConfig
from wedsync_db.monitor.assess import Assessment, assess
from wedsync_db.monitor.health import (
    HealthDocument,
    HealthInputs,
    health_document,
    heartbeat_checks,
    http_status,
    wedding_readiness,
)
from wedsync_db.monitor.snapshot import SecurityFinding, Snapshot
from wedsync_db.monitor.thresholds import thresholds_for
from wedsync_db.settings import Settings

LONDON = "Europe/London"
PEAK = frozenset(range(5, 11))
TUESDAY_FEBRUARY = datetime(2026, 2, 10, 12, tzinfo=UTC)
SATURDAY_JUNE = datetime(2026, 6, 13, 11, tzinfo=UTC)
WEDNESDAY_FEBRUARY = datetime(2026, 2, 11, 12, tzinfo=UTC)
PRODUCTION = FreezeConfig(timezone=LONDON, mode="enforce")


def heartbeat(
    latencies: tuple[float, ...] = (2.0, 3.0), failures: int = 0, at: datetime = TUESDAY_FEBRUARY
) -> HeartbeatSnapshot:
    state = HeartbeatState("service")
    for ms in latencies:
        state.record_success(ms, at)
    for _ in range(failures):
        state.record_failure("connection refused", at)
    return state.snapshot()


def context_at(now: datetime, weddings: int = 0) -> CalendarContext:
    return calendar_context(now, LONDON, PEAK, weddings)


def sample(inp: Snapshot, now: datetime = TUESDAY_FEBRUARY, weddings: int = 0) -> Assessment:
    ctx = context_at(now, weddings)
    return assess(inp, ctx, thresholds_for(ctx.level), now=now)


def inputs(
    assessment: Assessment | None,
    hb: dict[str, HeartbeatSnapshot] | None = None,
    now: datetime = TUESDAY_FEBRUARY,
    max_sample_age: float | None = None,
) -> HealthInputs:
    ctx = assessment.context if assessment else context_at(now)
    return HealthInputs(
        heartbeats=hb if hb is not None else {"service": heartbeat(), "user": heartbeat()},
        assessment=assessment,
        thresholds=thresholds_for(ctx.level),
        now=now,
        max_sample_age=max_sample_age,
    )


def walk_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from walk_keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_keys(v)


BUSY = facts(
    connections_total=70,
    connections_max_usable=100,
    connections_by_audience={"vendor": 40, "couple": 25, "service": 5},
    cache_hit_ratio=0.995,
    index_advice=(advice("unused", "public", "guests", "guests_foo_idx", "", None),),
    security_findings=(SecurityFinding("rls_disabled", "public.notes", "no RLS", None),),
)


def test_public_summary_carries_statuses_only() -> None:
    doc = health_document(inputs(sample(BUSY)), version="0.1.0", full=False)
    assert doc["status"] == "warn"  # the security finding
    assert doc["version"] == "0.1.0"
    assert doc["releaseId"] == "0.1.0"
    assert doc["serviceId"] == "wedsync-db"
    assert "wedding_readiness" not in doc
    assert "output" not in doc
    keys = set(walk_keys(doc["checks"]))
    leaked = keys - {"status"} - set(doc["checks"])
    assert not leaked, leaked
    assert doc["checks"]["postgres:connections"] == [{"status": "pass"}]
    assert doc["checks"]["postgres:security"] == [{"status": "warn"}]


def test_full_report_has_observed_values_and_wedding_readiness() -> None:
    assessment = sample(BUSY)
    ready = wedding_readiness(assessment.context, PRODUCTION, TUESDAY_FEBRUARY, assessment)
    doc = health_document(inputs(assessment), version="0.1.0", full=True, readiness=ready)
    (conn,) = doc["checks"]["postgres:connections"]
    assert conn["observedValue"] == 70.0
    assert conn["observedUnit"] == "percent"
    assert conn["context"] == "normal"
    # every audience, the busiest first
    assert conn["byAudience"] == {
        "vendor": 40, "couple": 25, "service": 5, "ops": 0, "other": 0, "pool": 0
    }  # fmt: skip
    assert {"time", "status"} <= set(conn)
    readiness = doc["wedding_readiness"]
    assert readiness["context"] == "normal"
    assert readiness["weddings_today"] == 0
    assert readiness["freeze"]["safe_migration"]["allowed"] is True
    assert readiness["freeze"]["blocking_migration"]["allowed"] is True
    # a tenant table without RLS outranks the warning it raises
    assert [r["key"] for r in readiness["top_risks"]] == [
        "security.rls_disabled:public.notes",
        "postgres:security",
        "index.unused:public.guests_foo_idx",
    ]
    assert len(readiness["top_risks"]) <= 5


def test_readiness_freeze_on_a_saturday_and_on_a_weekday_with_weddings() -> None:
    saturday = context_at(SATURDAY_JUNE)
    ready = wedding_readiness(saturday, PRODUCTION, SATURDAY_JUNE, None)
    assert ready["context"] == "wedding-day"
    assert ready["freeze"]["safe_migration"]["allowed"] is False
    assert ready["freeze"]["blocking_migration"]["allowed"] is False
    assert ready["top_risks"] == []

    weekday = context_at(WEDNESDAY_FEBRUARY, weddings=2)
    ready = wedding_readiness(weekday, PRODUCTION, WEDNESDAY_FEBRUARY, None)
    assert ready["weddings_today"] == 2
    assert ready["freeze"]["safe_migration"]["allowed"] is True
    blocking = ready["freeze"]["blocking_migration"]
    assert blocking["allowed"] is False
    assert blocking["reasons"] == ["wedding-day"]

    unknown = wedding_readiness(
        context_at(WEDNESDAY_FEBRUARY), PRODUCTION, WEDNESDAY_FEBRUARY, None, weddings_known=False
    )
    assert unknown["weddings_today"] is None


def test_without_a_sample_the_heartbeat_decides() -> None:
    doc = health_document(inputs(None), version="0.1.0", full=True)
    assert doc["status"] == "pass"
    assert set(doc["checks"]) == {"postgres:heartbeat", "postgres:responseTime"}

    down = {"service": heartbeat(failures=3), "user": heartbeat()}
    doc = health_document(inputs(None, down), version="0.1.0", full=True)
    assert doc["status"] == "fail"
    assert doc["output"] == "failing: postgres:heartbeat"
    failing = [c for c in doc["checks"]["postgres:heartbeat"] if c["status"] == "fail"]
    assert failing[0]["componentId"] == "service-pool"
    assert "connection refused" in failing[0]["output"]
    assert http_status(doc["status"]) == 503


def test_no_probe_yet_is_a_warning() -> None:
    blank = HeartbeatState("service").snapshot()
    doc = health_document(inputs(None, {"service": blank}), version="0.1.0", full=False)
    assert doc["status"] == "warn"


def test_the_heartbeat_is_judged_once_when_the_document_is_rendered() -> None:
    # the sample carries no heartbeat checks: the live heartbeat is the only one judged
    assessment = sample(facts(connections_total=10, connections_max_usable=100))
    assert not {c.key for c in assessment.checks} & {"postgres:heartbeat", "postgres:responseTime"}
    doc = health_document(inputs(assessment), version="0.1.0", full=True)
    assert doc["status"] == "pass"
    assert len(doc["checks"]["postgres:heartbeat"]) == 2
    assert all(c["observedValue"] < 10 for c in doc["checks"]["postgres:responseTime"])


def test_heartbeat_latency_limits_tighten_on_a_wedding_day() -> None:
    hb = {"service": heartbeat((150.0,) * 20, at=SATURDAY_JUNE)}
    normal = heartbeat_checks(hb, TUESDAY_FEBRUARY, thresholds_for("normal"))
    wedding = heartbeat_checks(hb, SATURDAY_JUNE, thresholds_for("wedding-day"))
    assert normal["postgres:responseTime"][0]["status"] == "pass"
    (entry,) = wedding["postgres:responseTime"]
    assert entry["status"] == "warn"
    assert entry["context"] == "wedding-day"
    assert "wedding-day limits" in entry["output"]


def test_failing_sample_fails_the_document() -> None:
    assessment = sample(facts(connections_total=99, connections_max_usable=100))
    doc = health_document(inputs(assessment), version="0.1.0", full=False)
    assert doc["status"] == "fail"
    assert http_status(doc["status"]) == 503


def test_a_stale_sample_is_reported() -> None:
    assessment = sample(facts())
    later = TUESDAY_FEBRUARY + timedelta(minutes=10)
    doc = health_document(
        inputs(assessment, now=later, max_sample_age=180), version="0.1.0", full=True
    )
    assert doc["status"] == "warn"
    assert doc["checks"]["monitor:sampleAge"][0]["observedValue"] == 600.0
    fresh = health_document(inputs(assessment, max_sample_age=180), version="0.1.0", full=True)
    assert "monitor:sampleAge" not in fresh["checks"]


@pytest.mark.parametrize(("status", "code"), [("pass", 200), ("warn", 200), ("fail", 503)])
def test_status_codes(status: Any, code: int) -> None:
    assert http_status(status) == code


def test_rendered_document_is_reused_within_its_ttl() -> None:
    calls: list[bool] = []

    def render() -> tuple[bytes, int]:
        calls.append(True)
        return b"{}", 200

    cache = RenderedHealth(ttl=60.0)
    assert cache.get(False, render) == (b"{}", 200)
    assert cache.get(False, render) == (b"{}", 200)
    assert len(calls) == 1
    cache.get(True, render)  # the full document is cached separately
    assert len(calls) == 2
    expired = RenderedHealth(ttl=0.0)
    expired.get(False, render)
    expired.get(False, render)
    assert len(calls) == 4


# --- the route's assembly from the app context (no server, no database) ---------------------
class _Database:
    heartbeat_stale_after = 35.0

    def __init__(self, heartbeats: dict[str, HeartbeatSnapshot]) -> None:
        self._heartbeats = heartbeats

    def heartbeat_snapshots(self) -> dict[str, HeartbeatSnapshot]:
        return self._heartbeats


def app_context(assessment: Assessment | None) -> AppContext:
    now = datetime.now(UTC)
    ctx = SimpleNamespace(
        settings=Settings(_env_file=None, timezone=LONDON, env="production", service_key="k"),
        database=_Database({"service": heartbeat(at=now), "user": heartbeat(at=now)}),
        monitor=SimpleNamespace(assessment=assessment),
        extras={},
    )
    return cast(AppContext, ctx)


def test_the_route_reads_the_monitors_latest_assessment() -> None:
    now = datetime.now(UTC)
    context = calendar_context(now, LONDON, PEAK, 3)
    busy = facts(connections_total=70, connections_max_usable=100)
    assessment = assess(busy, context, thresholds_for(context.level), now=now)
    full = health_report(app_context(assessment), full=True)
    (conn,) = full["checks"]["postgres:connections"]
    # three weddings today: wedding-day limits, so 70 % warns
    assert conn["context"] == "wedding-day"
    assert conn["status"] == "warn"
    assert full["status"] == "warn"
    readiness = full["wedding_readiness"]
    assert readiness["weddings_today"] == 3
    assert readiness["freeze"]["blocking_migration"]["allowed"] is False
    assert readiness["top_risks"][0]["key"] == "postgres:connections"
    summary = health_report(app_context(assessment), full=False)
    assert summary["checks"]["postgres:connections"] == [{"status": "warn"}]


def test_the_route_without_a_sample_answers_from_the_heartbeat() -> None:
    report = health_report(app_context(None), full=True)
    assert set(report["checks"]) == {"postgres:heartbeat", "postgres:responseTime"}
    assert report["wedding_readiness"]["weddings_today"] is None


def test_a_sample_from_yesterday_does_not_count_its_weddings() -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    context = calendar_context(yesterday, LONDON, PEAK, 4)
    old = assess(facts(), context, thresholds_for(context.level), now=yesterday)
    report = health_report(app_context(old), full=True)
    assert report["wedding_readiness"]["weddings_today"] is None
    assert report["checks"]["monitor:sampleAge"][0]["status"] == "warn"


# --- a heartbeat that stopped answering -----------------------------------------------------------
def test_a_pool_whose_probe_hangs_fails_once_the_probe_outlives_the_limit() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    state = HeartbeatState(pool="user")
    state.record_success(2.0, at=now - timedelta(seconds=31))
    state.probe_started(at=now - timedelta(seconds=1))
    fresh = heartbeat_checks({"user": state.snapshot()}, now, stale_after=35.0)
    assert fresh["postgres:heartbeat"][0]["status"] == "pass"
    # 36 s after the last success, with the probe still waiting: failing, and saying why
    later = now + timedelta(seconds=5)
    stale = heartbeat_checks({"user": state.snapshot()}, later, stale_after=35.0)
    entry = stale["postgres:heartbeat"][0]
    assert entry["status"] == "fail"
    assert "no successful probe for 36 s" in entry["output"]


def test_a_probe_stuck_longer_than_the_limit_fails_even_after_a_recent_success() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    state = HeartbeatState(pool="service")
    state.record_success(2.0, at=now - timedelta(seconds=2))
    state.probe_started(at=now - timedelta(seconds=2))
    snap = state.snapshot()
    assert snap.stale(now, 1.5) == "a probe has had no answer for 2 s"
    # the probe ends (either way) and the stuck state clears
    state.record_success(3.0, at=now)
    assert state.snapshot().stale(now, 1.5) is None


# --- the documented response schema -----------------------------------------------------------
def test_every_rendered_document_matches_the_documented_schema() -> None:
    assessment = sample(BUSY)
    ready = wedding_readiness(assessment.context, PRODUCTION, TUESDAY_FEBRUARY, assessment)
    down = {"service": heartbeat(failures=3)}
    for doc in (
        health_document(inputs(assessment), version="0.1.0", full=False),
        health_document(inputs(assessment), version="0.1.0", full=True, readiness=ready),
        health_document(inputs(None, down), version="0.1.0", full=True),
    ):
        parsed = HealthDocument.model_validate(doc)
        # the model reads the document as it is, field for field
        assert parsed.model_dump(by_alias=True, exclude_unset=True) == doc


def test_the_openapi_gives_the_health_route_its_schema() -> None:
    database, runner = cast(Any, SimpleNamespace()), cast(Any, SimpleNamespace())
    settings = Settings(_env_file=None, service_key="k" * 32)
    app = create_app(settings, database=database, runner=runner, manage_database=False)
    spec = app.openapi()
    responses = spec["paths"]["/api/database/health"]["get"]["responses"]
    ref = {"$ref": "#/components/schemas/HealthDocument"}
    for code in ("200", "503"):
        assert responses[code]["content"] == {"application/health+json": {"schema": ref}}
    properties = spec["components"]["schemas"]["HealthDocument"]["properties"]
    assert {"status", "version", "releaseId", "checks", "wedding_readiness"} <= set(properties)
    metrics = spec["paths"]["/api/database/metrics"]["get"]["responses"]["200"]["content"]
    assert metrics["application/json"]["schema"] == {"$ref": "#/components/schemas/MetricsDocument"}
