"""Response schemas of the screening runs API (`/api/runs`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fraudnet.api.schemas import LocalDateTime

__all__ = ["RunSummaryOut", "RunListOut", "RunReportOut", "WatchOut"]


class RunSummaryOut(BaseModel):
    run_id: str
    started_at: LocalDateTime
    finished_at: LocalDateTime | None = None
    status: str = Field(description="ok, failed")
    trigger: str | None = Field(None, description="schedule, files, request, manual")
    folder: str | None = None
    new_red: int = 0
    new_orange: int = 0


class RunListOut(BaseModel):
    items: list[RunSummaryOut]


class RunReportOut(BaseModel):
    """One screening run: `ingest` (files, rows loaded and quarantined), `detection` (ran or why not, seconds, leads
    saved), `new_leads` (red/orange counts by kind and by institution, the new red leads with `response_due_at`),
    `graph` (Neo4j or embedded refresh), `notifications` (webhook / e-mail outcome)."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    status: str
    trigger: str | None = None
    folder: str | None = None
    started_at: LocalDateTime
    finished_at: LocalDateTime | None = None
    seconds: float | None = None
    ingest: dict[str, Any] = Field(default_factory=dict)
    detection: dict[str, Any] = Field(default_factory=dict)
    new_leads: dict[str, Any] = Field(default_factory=dict)
    notifications: dict[str, Any] = Field(default_factory=dict)


class WatchOut(BaseModel):
    folder: str
    cron: str
    next_scheduled: LocalDateTime
    poll_seconds: float
    response_hours: float
    last_job: str | None = None
