"""Check silences (pure): a silenced check keeps its measured status in the health document
but no longer drives the overall status, until the silence expires."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wedsync_db.errors import WedsyncDBError
from wedsync_db.monitor.assess import worst

# A forgotten silence must not hide a check for good.
MAX_SILENCE = timedelta(days=30)
# The heartbeat is what says the database is reachable at all: it is never silenced.
UNSILENCEABLE = frozenset({"postgres:heartbeat"})
_CHECK_ID = re.compile(r"^[a-z][a-zA-Z0-9_-]*:[a-zA-Z][a-zA-Z0-9_-]*$")
_DURATION_PART = re.compile(r"(\d+)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class InvalidSilence(WedsyncDBError, ValueError):
    """A silence was asked for with a bad check id, duration or reason."""


@dataclass(frozen=True)
class Silence:
    """One silence as stored in ops.check_silences."""

    check_id: str
    reason: str
    actor: str
    silenced_at: datetime
    until: datetime

    def active(self, now: datetime) -> bool:
        """True until the silence expires."""
        return now < self.until

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "check_id": self.check_id,
            "reason": self.reason,
            "actor": self.actor,
            "silenced_at": self.silenced_at.isoformat(),
            "until": self.until.isoformat(),
        }


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``1h30m``, ``7d`` as a timedelta, at most :data:`MAX_SILENCE`."""
    value = text.strip().lower()
    parts = _DURATION_PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise InvalidSilence(f"{text!r} is not a duration: use e.g. 30m, 2h, 1h30m or 3d")
    duration = timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in parts))
    if duration <= timedelta(0):
        raise InvalidSilence("a silence must last longer than zero seconds")
    if duration > MAX_SILENCE:
        raise InvalidSilence(f"a silence lasts at most {MAX_SILENCE.days} days; renew it later")
    return duration


def validate_check_id(check_id: str) -> str:
    """The check id (``component:measurement``, as keyed in the health report) or an error."""
    value = check_id.strip()
    if not _CHECK_ID.match(value):
        raise InvalidSilence(
            f"{check_id!r} is not a check id: use the key of the health report, "
            "e.g. postgres:collectors"
        )
    if value in UNSILENCEABLE:
        raise InvalidSilence(
            f"{value} says whether the database is reachable; it is never silenced"
        )
    return value


def required_reason(reason: str | None, what: str) -> str:
    """The reason stripped, or an error saying that ``what`` needs one."""
    text = (reason or "").strip()
    if not text:
        raise InvalidSilence(f"a reason is required to {what} (--reason TEXT)")
    return text


def apply_silences(
    doc: Mapping[str, Any], silences: Iterable[Silence], now: datetime
) -> dict[str, Any]:
    """The health document with every actively silenced check marked ``silenced`` and left out
    of the overall status (and of the full document's ``output``); the rest is unchanged.

    A check of the public summary (status only) gets ``"silenced": true``; one of the full
    document gets the silence's reason, actor and end.
    """
    active = {s.check_id: s for s in silences if s.active(now)}
    checks: Mapping[str, list[dict[str, Any]]] = doc.get("checks") or {}
    hit = sorted(k for k in checks if k in active and k not in UNSILENCEABLE)
    if not hit:
        return dict(doc)
    out = dict(doc)
    marked: dict[str, list[dict[str, Any]]] = {}
    for key, entries in checks.items():
        if key not in hit:
            marked[key] = entries
            continue
        s = active[key]
        detail: Any = {"reason": s.reason, "by": s.actor, "until": s.until.isoformat()}
        marked[key] = [{**e, "silenced": True if set(e) == {"status"} else detail} for e in entries]
    out["checks"] = marked
    driving = [(k, e["status"]) for k, v in marked.items() if k not in hit for e in v]
    out["status"] = worst(status for _, status in driving)
    if "output" in out:
        failing = sorted({k for k, status in driving if status == "fail"})
        if failing:
            out["output"] = "failing: " + ", ".join(failing)
        else:
            del out["output"]
    if any(set(e) != {"status", "silenced"} for v in marked.values() for e in v):
        out["silenced"] = hit
    return out
