"""The application/health+json document (pure): cached heartbeats + the latest assessment.

The public summary carries only statuses; the full document (service key) adds observed values,
limits and the wedding readiness section. Nothing here queries the database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from wedsync_db import __version__
from wedsync_db.calendar import CalendarContext, calendar_context
from wedsync_db.db.heartbeat import HeartbeatSnapshot
from wedsync_db.migrate.freeze import FreezeConfig, FreezeDecision, freeze_decision
from wedsync_db.monitor.assess import Assessment, Status, worst
from wedsync_db.monitor.thresholds import NORMAL, Thresholds, thresholds_from_settings
from wedsync_db.settings import Settings

__all__ = [
    "HealthCheck",
    "HealthDocument",
    "HealthInputs",
    "Status",
    "health_document",
    "health_report",
    "heartbeat_checks",
    "http_status",
    "wedding_readiness",
    "worst",
]


class HealthCheck(BaseModel):
    """One entry under a check key (the public summary carries ``status`` alone)."""

    model_config = ConfigDict(extra="allow")

    status: Status
    component_id: str | None = Field(None, alias="componentId")
    component_type: str | None = Field(None, alias="componentType")
    observed_value: float | int | None = Field(None, alias="observedValue")
    observed_unit: str | None = Field(None, alias="observedUnit")
    time: str | None = Field(None, description="ISO 8601")
    context: str | None = Field(None, description="the calendar context whose limits applied")
    limits: dict[str, float] | None = None
    output: str | None = Field(None, description="why the check is not passing")


class HealthDocument(BaseModel):
    """The application/health+json document (the response schema of the health endpoint)."""

    model_config = ConfigDict(extra="allow")

    status: Status
    version: str = Field(description="the installed wedsync-db version")
    release_id: str = Field(alias="releaseId")
    service_id: str = Field(alias="serviceId")
    description: str
    output: str | None = Field(None, description="the failing check keys (full report)")
    checks: dict[str, list[HealthCheck]] = Field(description="keyed component:measurement")
    wedding_readiness: dict[str, object] | None = Field(
        None, description="context, weddings today, freeze state, top risks (full report)"
    )


def heartbeat_checks(
    heartbeats: Mapping[str, HeartbeatSnapshot],
    now: datetime,
    thresholds: Thresholds = NORMAL,
    stale_after: float | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """health+json checks for each pool's heartbeat: reachability and latency (p95).

    ``stale_after``: seconds without a successful probe (or with one probe still waiting) after
    which a pool fails even though its latest completed probe passed: a frozen server leaves a
    probe hanging and nothing else would change the cached answer.
    """
    reach: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    for name, hb in sorted(heartbeats.items()):
        when = (hb.last_probe or now).isoformat()
        stale = hb.stale(now, stale_after) if stale_after is not None else None
        if hb.last_probe is not None and hb.consecutive_failures >= (
            thresholds.heartbeat_failures_fail
        ):
            reach_status: Status = "fail"
            output = f"{hb.consecutive_failures} consecutive failed probe(s): {hb.last_error}"
        elif stale is not None:
            reach_status = "fail"
            output = stale
        elif hb.last_probe is None:
            reach_status = "warn"
            output = "no heartbeat yet"
        else:
            reach_status = "pass"
            output = ""
        entry: dict[str, Any] = {
            "componentId": f"{name}-pool",
            "componentType": "datastore",
            "observedValue": hb.consecutive_failures,
            "observedUnit": "failures",
            "status": reach_status,
            "time": when,
            "context": thresholds.level,
        }
        if output:
            entry["output"] = output
        reach.append(entry)
        p95 = hb.p95_ms
        if math.isnan(p95):
            continue
        warn_ms, fail_ms = thresholds.heartbeat_warn_ms, thresholds.heartbeat_fail_ms
        lat_status: Status = "fail" if p95 >= fail_ms else "warn" if p95 >= warn_ms else "pass"
        lat: dict[str, Any] = {
            "componentId": f"{name}-pool",
            "componentType": "datastore",
            "observedValue": round(p95, 3),
            "observedUnit": "ms",
            "status": lat_status,
            "time": when,
            "context": thresholds.level,
            "limits": {"warn": warn_ms, "fail": fail_ms},
            "p50": round(hb.p50_ms, 3),
            "p99": round(hb.p99_ms, 3),
        }
        if lat_status != "pass":
            lat["output"] = (
                f"heartbeat p95 {p95:.0f} ms; warn at {warn_ms:.0f} ms, fail at {fail_ms:.0f} ms "
                f"({thresholds.level} limits)"
            )
        latency.append(lat)
    checks: dict[str, list[dict[str, Any]]] = {"postgres:heartbeat": reach}
    if latency:
        checks["postgres:responseTime"] = latency
    return checks


@dataclass(frozen=True)
class HealthInputs:
    """Everything the document is built from; all of it already in memory."""

    heartbeats: Mapping[str, HeartbeatSnapshot]
    assessment: Assessment | None
    # the limits of the current calendar context (the heartbeat is judged now, not at sampling)
    thresholds: Thresholds
    now: datetime
    # seconds after which a sample is too old to trust (None: never)
    max_sample_age: float | None = None
    # seconds without a successful heartbeat after which a pool fails (None: never)
    heartbeat_stale_after: float | None = None


def wedding_readiness(
    context: CalendarContext,
    freeze: FreezeConfig,
    now: datetime,
    assessment: Assessment | None,
    *,
    weddings_known: bool = True,
) -> dict[str, Any]:
    """Context level, weddings today, the freeze for a safe and a blocking migration, top risks."""
    weddings = context.weddings_today
    safe = freeze_decision(now, freeze, weddings_today=weddings, blocking=False)
    blocking = freeze_decision(now, freeze, weddings_today=weddings, blocking=True)

    def freeze_state(decision: FreezeDecision) -> dict[str, Any]:
        return {
            "allowed": decision.allowed,
            "active": decision.active,
            "reasons": list(decision.reasons),
            "messages": list(decision.messages),
        }

    return {
        "context": context.level,
        "local_date": context.local_date.isoformat(),
        "weekday": context.weekday_name,
        "timezone": context.timezone,
        "weddings_today": weddings if weddings_known else None,
        "freeze_mode": freeze.mode,
        "freeze": {
            "safe_migration": freeze_state(safe),
            "blocking_migration": freeze_state(blocking),
        },
        "top_risks": assessment.top_risks(5) if assessment is not None else [],
        "sampled_at": assessment.evaluated_at.isoformat() if assessment is not None else None,
    }


def health_document(
    inputs: HealthInputs,
    *,
    version: str,
    full: bool,
    readiness: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The health+json document; without ``full`` only the statuses (nothing internal)."""
    checks: dict[str, list[dict[str, Any]]] = {}
    assessment = inputs.assessment
    if assessment is not None:
        checks.update(assessment.checks_by_key())
        if inputs.max_sample_age is not None:
            age = (inputs.now - assessment.evaluated_at).total_seconds()
            if age > inputs.max_sample_age:
                checks["monitor:sampleAge"] = [
                    {
                        "componentType": "component",
                        "observedValue": round(age, 1),
                        "observedUnit": "s",
                        "status": "warn",
                        "time": inputs.now.isoformat(),
                        "output": f"the latest sample is {age:.0f} s old; the sampler may be "
                        "stuck, so the checks below may be stale",
                    }
                ]
    checks.update(
        heartbeat_checks(
            inputs.heartbeats, inputs.now, inputs.thresholds, inputs.heartbeat_stale_after
        )
    )
    status = worst(c["status"] for entries in checks.values() for c in entries)
    doc: dict[str, Any] = {
        "status": status,
        "version": version,
        "releaseId": version,
        "serviceId": "wedsync-db",
        "description": "WedSync core database",
    }
    if not full:
        doc["checks"] = {k: [{"status": c["status"]} for c in v] for k, v in checks.items()}
        return doc
    failing = sorted(k for k, v in checks.items() if any(c["status"] == "fail" for c in v))
    if failing:
        doc["output"] = "failing: " + ", ".join(failing)
    doc["checks"] = checks
    if readiness is not None:
        doc["wedding_readiness"] = dict(readiness)
    return doc


def http_status(status: Status) -> int:
    """200 for pass and warn (still serving), 503 for fail."""
    return 503 if status == "fail" else 200


def health_report(
    settings: Settings,
    heartbeats: Mapping[str, HeartbeatSnapshot],
    assessment: Assessment | None,
    *,
    full: bool,
    now: datetime,
    version: str | None = None,
    max_sample_age: float | None = None,
    heartbeat_stale_after: float | None = None,
) -> dict[str, Any]:
    """The health+json document of the API and of ``wedsync-db health``, from data already in
    memory: the heartbeats now, and the latest assessment when there is one.

    Without a sample (or with one from another local day) the clock alone decides the calendar
    context and the weddings count is unknown until the next sample.
    """
    context = assessment.context if assessment is not None else None
    weddings_known = context is not None
    if context is None or context.local_date != now.astimezone(ZoneInfo(settings.timezone)).date():
        context = calendar_context(now, settings.timezone, settings.peak_months, 0)
        weddings_known = False
    thresholds = (
        assessment.thresholds
        if assessment is not None and assessment.thresholds.level == context.level
        else thresholds_from_settings(context.level, settings)
    )
    inputs = HealthInputs(
        heartbeats, assessment, thresholds, now, max_sample_age, heartbeat_stale_after
    )
    readiness = (
        wedding_readiness(
            context,
            FreezeConfig.from_settings(settings),
            now,
            assessment,
            weddings_known=weddings_known,
        )
        if full
        else None
    )
    return health_document(inputs, version=version or __version__, full=full, readiness=readiness)
