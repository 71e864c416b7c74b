"""Request and response schemas of the case-file API (`/api/casefiles`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fraudnet.api.present import LEAD_ID_PATTERN

__all__ = ["ChartNodeState", "ChartEdgeNote", "ChartState", "CaseFileIn", "CaseVersionIn", "ShareIn",
           "CaseExportIn", "CaseFileOut", "CaseFileSummaryOut", "CaseVersionOut", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("pdf", "graphml", "anx")
_ID = r"^[A-Za-z]+:[^\x00-\x1f\x7f]{1,240}$"


class ChartNodeState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID, max_length=260)
    x: float = Field(ge=-1e7, le=1e7)
    y: float = Field(ge=-1e7, le=1e7)
    pinned: bool = False
    hidden: bool = False
    note: str | None = Field(default=None, max_length=2000)


class ChartEdgeNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=3, max_length=600)
    note: str = Field(max_length=2000)


class ChartState(BaseModel):
    """What the chart looked like: node ids with positions and flags, annotations, notes, view settings."""

    model_config = ConfigDict(extra="forbid")

    nodes: list[ChartNodeState] = Field(default_factory=list, max_length=6000)
    edge_notes: list[ChartEdgeNote] = Field(default_factory=list, max_length=2000)
    notes: str = Field(default="", max_length=20000)
    layout: str | None = Field(default=None, max_length=30)
    zoom: float | None = Field(default=None, ge=0.001, le=100)
    pan: dict[str, float] | None = None
    time_window: list[str] | None = Field(default=None, max_length=2)
    lang: Literal["zh", "en"] = "zh"


class CaseFileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_id: str = Field(pattern=LEAD_ID_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    state: ChartState
    comment: str | None = Field(default=None, max_length=500)


class CaseVersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: ChartState
    comment: str | None = Field(default=None, max_length=500)
    title: str | None = Field(default=None, min_length=1, max_length=200)


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]] = Field(
        min_length=1, max_length=20)


class CaseExportIn(BaseModel):
    """An unsaved chart to export (the same package as a saved case file gives)."""

    model_config = ConfigDict(extra="forbid")

    lead_id: str = Field(pattern=LEAD_ID_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    state: ChartState
    format: Literal["pdf", "graphml", "anx"] = "pdf"


class CaseVersionOut(BaseModel):
    version: int
    saved_by: str
    saved_at: datetime
    comment: str | None = None


class CaseFileSummaryOut(BaseModel):
    casefile_id: str
    lead_id: str
    title: str
    owner: str
    created_at: datetime
    updated_at: datetime
    latest_version: int
    shared_with: list[str]


class CaseFileOut(CaseFileSummaryOut):
    version: int
    state: ChartState
    versions: list[CaseVersionOut]
