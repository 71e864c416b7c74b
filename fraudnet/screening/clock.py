"""The response clock of a red lead: on site within `response_hours` of the warning (default 5 h)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["OPEN_STATUSES", "response_clock", "next_deadline", "utc_now"]

# A red lead's clock runs until a decision: confirmed, dismissed or referred stop it.
OPEN_STATUSES = ("new", "reviewing")


def utc_now() -> datetime:
    """Now as the lead store writes times (UTC, naive)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _naive(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def response_clock(lead: dict[str, Any], hours: float, now: datetime | None = None) -> dict[str, Any]:
    """`response_due_at` (first seen + `hours`) and `overdue` (past it with no decision yet) of a red lead; None and
    False for orange and yellow leads, which carry no clock."""
    first = _naive(lead.get("first_seen"))
    if lead.get("severity") != "red" or first is None:
        return {"response_due_at": None, "overdue": False}
    due = first + timedelta(hours=hours)
    now = _naive(now) or utc_now()
    return {"response_due_at": due, "overdue": (lead.get("status") or "new") in OPEN_STATUSES and now >= due}


def next_deadline(con: Any, hours: float, now: datetime | None = None) -> datetime | None:
    """The earliest response deadline still ahead among open red leads (when the next one becomes overdue)."""
    now = _naive(now) or utc_now()
    rows = con.execute("SELECT min(first_seen) FROM leads WHERE active AND severity = 'red' AND list_contains($open, "
                       "status) AND first_seen > $since", {"open": list(OPEN_STATUSES),
                                                           "since": now - timedelta(hours=hours)}).fetchall()
    first = rows[0][0] if rows else None
    return None if first is None else _naive(first) + timedelta(hours=hours)
