"""Request and response models of the HTTP API (see the API section of the project notes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from fraudnet.graph.model import MAX_NODE_CAP

__all__ = [
    "ErrorOut", "HealthOut", "Neo4jStatus", "MeOut", "NodeOut", "EdgeOut", "SubgraphOut", "LeadSummaryOut",
    "LeadPageOut", "KindCountOut", "NoteOut", "HistoryOut", "EvidenceVisitOut", "LeadOut", "StatusIn", "AssignIn",
    "NoteIn", "ProfileOut", "RiskOut", "EntityOut", "TimelineEventOut", "TimelineOut", "EntityLeadsOut",
    "PathOut", "PathsOut", "SubgraphIn", "SearchHitOut", "SearchOut", "CypherIn", "CypherOut", "JobOut",
    "JobCreatedOut", "JobListOut", "DetectIn", "AuditEntryOut", "AuditOut", "SubgraphExportIn",
]

MAX_SUBGRAPH_MEMBERS = 1000

# Claims times are local times without a UTC offset (as in the bureau's exports): ISO 8601 `yyyy-MM-ddTHH:mm:ss`.
# RFC 3339 `date-time` requires an offset, so the schema names the format `local-date-time` instead.
LocalDateTime = Annotated[datetime, WithJsonSchema({
    "type": "string", "format": "local-date-time",
    "description": "ISO 8601 local date-time without offset, e.g. 2025-03-01T08:30:00"})]


class ErrorOut(BaseModel):
    """Error body: a code, a message naming the offending value, and the parameter at fault."""

    error: str
    message: str
    field: str | None = None


class ProjectionStatus(BaseModel):
    """The in-memory projection of Neo4j's entity graph that answers ego networks (`graph.neo4j_projection`)."""

    state: Literal["off", "reading", "ready", "failed"]
    nodes: int | None = None
    edges: int | None = None
    stamp: str | None = Field(None, description="load stamp the projection was read under")
    read_seconds: float | None = None
    age_seconds: float | None = None
    error: str | None = None


class Neo4jStatus(BaseModel):
    configured: bool
    reachable: bool
    uri: str
    projection: ProjectionStatus | None = None


class HealthOut(BaseModel):
    status: str
    version: str
    store: Literal["embedded", "neo4j"]
    neo4j: Neo4jStatus
    graph_workers: int = Field(0, description="worker processes answering ego networks (0: the server itself)")


class MeOut(BaseModel):
    user: str
    role: Literal["admin", "investigator", "viewer"]
    scope: dict[str, list[str]] | None = None  # {"regions": [...], "cases": [...]} for a limited token


class NodeOut(BaseModel):
    id: str
    type: str
    key: str
    label: str
    props: dict[str, Any] = Field(default_factory=dict)
    risk: float | None = None


class EdgeOut(BaseModel):
    id: str
    type: str
    source: str
    target: str
    visits: int = 0
    amount: float = 0.0
    first: LocalDateTime | None = None
    last: LocalDateTime | None = None
    props: dict[str, Any] = Field(default_factory=dict)


class SubgraphOut(BaseModel):
    nodes: list[NodeOut]
    edges: list[EdgeOut]
    truncated: bool = False


class LeadSummaryOut(BaseModel):
    lead_id: str
    kind: str
    severity: Literal["red", "orange", "yellow"]
    score: float
    persons: list[str]
    practitioners: list[str]
    institutions: list[str]
    evidence_count: int
    amount_at_risk: float
    period_start: LocalDateTime | None = None
    period_end: LocalDateTime | None = None
    explanation_zh: str | None = None
    explanation_en: str | None = None
    status: str
    assignee: str | None = None
    model_probability: float | None = Field(None, description="learned fraud probability (when a model is trained)")
    expected_recovery: float | None = Field(None, description="model probability × amount at risk")
    response_due_at: LocalDateTime | None = Field(
        None, description="red leads: on site by this time (UTC; first seen + FRAUDNET_RESPONSE_HOURS, default 5 h)")
    overdue: bool = Field(False, description="a red lead past its response time with no decision yet")


class LeadPageOut(BaseModel):
    items: list[LeadSummaryOut]
    total: int
    page: int
    page_size: int


class KindCountOut(BaseModel):
    kind: str
    count: int
    red: int = 0
    orange: int = 0
    yellow: int = 0


class NoteOut(BaseModel):
    user: str | None = None
    text: str
    at: LocalDateTime


class HistoryOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    user: str | None = None
    at: LocalDateTime
    action: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    comment: str | None = None


class EvidenceVisitOut(BaseModel):
    mdtrt_id: str
    begntime: LocalDateTime | None = None
    endtime: LocalDateTime | None = None
    med_type: str | None = None
    psn_no: str | None = None
    fixmedins_code: str | None = None
    atddr_no: str | None = None
    dise_codg: str | None = None
    dise_name: str | None = None
    medfee_sumamt: float | None = None
    fund_pay_sumamt: float | None = None


class LeadOut(LeadSummaryOut):
    evidence: list[str]
    features: dict[str, Any] = Field(default_factory=dict)
    active: bool = True
    supersedes: list[str] = Field(default_factory=list)
    first_seen: LocalDateTime | None = None
    last_seen: LocalDateTime | None = None
    notes: list[NoteOut] = Field(default_factory=list)
    history: list[HistoryOut] = Field(default_factory=list)
    evidence_visits: list[EvidenceVisitOut] = Field(default_factory=list)
    detector_version: str | None = None
    param_hash: str | None = None
    batch_from: int | None = None
    batch_to: int | None = None
    raised: dict[str, Any] | None = Field(None, description="the lead as first raised (frozen): detector, version, "
                                                             "parameter hash, model, batches, score, explanation")
    provenance_zh: str | None = None
    provenance_en: str | None = None
    model_version: str | None = None
    model_explanation_zh: str | None = None
    model_explanation_en: str | None = None
    raised_model_version: str | None = None
    raised_model_probability: float | None = None


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["new", "reviewing", "confirmed", "dismissed", "referred"]
    comment: str | None = Field(default=None, max_length=4000)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: str | None = Field(default=None, max_length=64)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=10_000)


class ProfileOut(BaseModel):
    id: str
    type: str
    key: str
    label: str
    props: dict[str, Any] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(default_factory=dict)


class RiskOut(BaseModel):
    score: float = 0.0
    leads: int = 0
    amount_at_risk: float = 0.0
    top_kinds: list[str] = Field(default_factory=list)
    model_probability: float | None = Field(None, description="the trained model's fraud probability, if any")
    expected_recovery: float | None = Field(None, description="model probability × amount at risk")
    model_explanation_zh: str | None = None
    model_explanation_en: str | None = None


class EntityOut(BaseModel):
    profile: ProfileOut
    risk: RiskOut


class TimelineEventOut(BaseModel):
    mdtrt_id: str
    begntime: LocalDateTime
    endtime: LocalDateTime | None = None
    med_type: str | None = None
    psn_no: str | None = None
    fixmedins_code: str | None = None
    atddr_no: str | None = None
    dise_codg: str | None = None
    medfee_sumamt: float = 0.0
    fund_pay_sumamt: float = 0.0


class TimelineOut(BaseModel):
    node_id: str
    items: list[TimelineEventOut]
    limit: int


class EntityLeadsOut(BaseModel):
    node_id: str
    items: list[LeadSummaryOut]


class PathOut(BaseModel):
    nodes: list[str]
    edges: list[EdgeOut]


class PathsOut(BaseModel):
    paths: list[PathOut]
    nodes: list[NodeOut]


class SubgraphIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node_ids: list[str] = Field(min_length=1, max_length=MAX_SUBGRAPH_MEMBERS)
    include_visits: bool = True
    since: datetime | None = None
    until: datetime | None = None


class SubgraphExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node_ids: list[str] = Field(min_length=1, max_length=MAX_SUBGRAPH_MEMBERS)
    format: Literal["graphml", "json"] = "graphml"
    include_visits: bool = True


class SearchHitOut(BaseModel):
    id: str
    type: str
    key: str
    label: str
    matched: Literal["key", "name"]


class SearchOut(BaseModel):
    query: str
    items: list[SearchHitOut]


class CypherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=20_000)
    params: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(default=1000, ge=1, le=10_000)


class CypherOut(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


class JobOut(BaseModel):
    job_id: str
    kind: Literal["ingest", "detect", "screening"]
    state: Literal["queued", "running", "succeeded", "failed"]
    progress: float = Field(ge=0.0, le=1.0)
    message: str = ""
    result: dict[str, Any] | None = None
    error: str | None = None
    user: str
    created_at: LocalDateTime
    started_at: LocalDateTime | None = None
    finished_at: LocalDateTime | None = None


class JobCreatedOut(BaseModel):
    job_id: str


class JobListOut(BaseModel):
    items: list[JobOut]


class DetectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    only: list[str] | None = Field(default=None, max_length=100)


class AuditEntryOut(BaseModel):
    seq: int
    at: LocalDateTime
    user: str
    role: str | None = None
    action: str
    method: str | None = None
    path: str | None = None
    status_code: int | None = None
    entities: list[str]
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditChainOut(BaseModel):
    """What `verify=true` found (`fraudnet.claims.audit.verify_audit`)."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None
    keyed_from: int | None = None
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None


class AuditOut(BaseModel):
    items: list[AuditEntryOut]
    chain_ok: bool | None = None
    chain: AuditChainOut | None = None


class LabelOut(BaseModel):
    """One case outcome the model learns from (`fraudnet.learning.labels`)."""

    entity_type: Literal["Person", "Practitioner", "Institution"]
    entity_id: str
    label: Literal["fraud", "clean"]
    decided_at: str | None = Field(None, description="yyyy-mm-dd")
    source: str | None = None
    note: str | None = None
    origin: Literal["import", "decision"]
    decided_by: str | None = None


class LabelPageOut(BaseModel):
    items: list[LabelOut]
    total: int
    counts: dict[str, int] = Field(default_factory=dict, description="'<type>:<label>' → labels")


__all__ += ["MAX_NODE_CAP", "MAX_SUBGRAPH_MEMBERS", "LabelOut", "LabelPageOut"]
