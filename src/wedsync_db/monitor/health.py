"""The application/health+json document, built from cached heartbeat data (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from wedsync_db.db.heartbeat import HeartbeatSnapshot

Status = Literal["pass", "warn", "fail"]
_ORDER: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}


def worst(statuses: list[Status]) -> Status:
    """The most severe of several statuses (pass when empty)."""
    out: Status = "pass"
    for s in statuses:
        if _ORDER[s] > _ORDER[out]:
            out = s
    return out


@dataclass(frozen=True)
class LatencyThresholds:
    """Heartbeat latency limits in milliseconds (SPEC §6; tightened on wedding days)."""

    warn_ms: float = 200.0
    fail_ms: float = 500.0


def heartbeat_checks(
    heartbeats: Mapping[str, HeartbeatSnapshot],
    now: datetime,
    thresholds: LatencyThresholds = LatencyThresholds(),
) -> dict[str, list[dict[str, Any]]]:
    """health+json checks for each pool's heartbeat: reachability and latency."""
    reach: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    for name, hb in sorted(heartbeats.items()):
        if hb.last_probe is None:
            reach_status: Status = "warn"
            output = "no heartbeat yet"
        elif hb.consecutive_failures:
            reach_status = "fail"
            output = f"{hb.consecutive_failures} consecutive failed probe(s): {hb.last_error}"
        else:
            reach_status = "pass"
            output = ""
        entry: dict[str, Any] = {
            "componentId": f"{name}-pool",
            "componentType": "datastore",
            "observedValue": hb.consecutive_failures,
            "observedUnit": "failures",
            "status": reach_status,
            "time": (hb.last_probe or now).isoformat(),
        }
        if output:
            entry["output"] = output
        reach.append(entry)
        p95 = hb.p95_ms
        if math.isnan(p95):
            continue
        lat_status: Status = (
            "fail" if p95 >= thresholds.fail_ms else "warn" if p95 >= thresholds.warn_ms else "pass"
        )
        latency.append(
            {
                "componentId": f"{name}-pool",
                "componentType": "datastore",
                "observedValue": round(p95, 3),
                "observedUnit": "ms",
                "status": lat_status,
                "time": (hb.last_probe or now).isoformat(),
                "p50": round(hb.p50_ms, 3),
                "p99": round(hb.p99_ms, 3),
            }
        )
    checks = {"postgres:heartbeat": reach}
    if latency:
        checks["postgres:responseTime"] = latency
    return checks


def health_document(
    checks: Mapping[str, list[dict[str, Any]]],
    *,
    version: str,
    full: bool,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the document; without ``full`` only the overall status and check statuses."""
    status = worst([c["status"] for entries in checks.values() for c in entries])
    doc: dict[str, Any] = {
        "status": status,
        "version": version.split(".")[0],
        "releaseId": version,
        "serviceId": "wedsync-db",
        "description": "WedSync core database",
    }
    if full:
        doc["checks"] = {k: list(v) for k, v in checks.items()}
        if extra:
            doc.update(extra)
    else:
        doc["checks"] = {
            k: [{"status": c["status"], "componentId": c.get("componentId")} for c in v]
            for k, v in checks.items()
        }
    return doc
