"""Plan usage across all organizations, for the metrics document (totals and how many
organizations are at or over a limit; never per-organization rows)."""

from __future__ import annotations

from typing import Any

from wedsync_db.db.client import Database
from wedsync_db.db.queries import load_queries
from wedsync_db.errors import WedsyncDBError


async def plan_usage_summary(db: Database) -> dict[str, Any]:
    """Counts from the usage counters; ``{"error": ...}`` when they cannot be read."""
    query = load_queries("wedsync_db.monitor", "sql/plan_usage.sql")["plan_usage_summary"]
    try:
        async with db.service(reason="metrics: plan usage") as s:
            rows = await s.fetch_dicts(query.sql)
    except WedsyncDBError as exc:
        return {"error": f"plan usage could not be read: {exc}"}
    return {k: int(v) for k, v in rows[0].items()}
