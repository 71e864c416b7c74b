"""The response clock in the API's lead answers: `response_due_at` and `overdue` on red leads, and the lead page
cache renewed when a deadline passes (cached items carry `overdue`, which changes with time alone)."""

from __future__ import annotations

import threading
import weakref
from datetime import datetime
from typing import Any

from fraudnet.screening.clock import next_deadline, response_clock, utc_now
from fraudnet.screening.settings import response_hours

__all__ = ["with_clock", "renew_at_deadlines"]


def with_clock(lead: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """`lead` with its response clock (FRAUDNET_RESPONSE_HOURS, default 5 h) added."""
    lead.update(response_clock(lead, response_hours(), now))
    return lead


class _Deadlines:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: Any = None
        self.next: datetime | None = None


_GUARDS: weakref.WeakKeyDictionary[Any, _Deadlines] = weakref.WeakKeyDictionary()
_GUARDS_LOCK = threading.Lock()


def renew_at_deadlines(queries: Any) -> None:
    """Drop the cached lead pages of `queries` (`LeadQueries`) once the next response deadline has passed."""
    with _GUARDS_LOCK:
        guard = _GUARDS.setdefault(queries, _Deadlines())
    with guard.lock:
        if guard.version != queries.version:
            guard.version = queries.version
            guard.next = next_deadline(queries.store.con, response_hours())
        if guard.next is not None and utc_now() >= guard.next:
            queries.changed()
            guard.version = queries.version
            guard.next = next_deadline(queries.store.con, response_hours())
