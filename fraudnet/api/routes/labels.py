"""`GET /api/labels`: the case outcomes (imported and from lead decisions) the model learns from;
`GET /api/model/scores` and `GET /api/model/versions`: the learned ranking and its versions."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from fraudnet.api.deps import AuditDep, ConDep, ScopesDep, SettingsDep, UserDep
from fraudnet.api.errors import error_responses
from fraudnet.api.schemas import LabelPageOut
from fraudnet.api.security import record_audit
from fraudnet.learning.labels import all_labels, list_labels
from fraudnet.learning.model import list_versions
from fraudnet.learning.scoring import model_entity_scores

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["labels"], responses=error_responses(400, 401))


@router.get("/labels", response_model=LabelPageOut, summary="Labels / 案件结论标签")
def labels(audit: AuditDep, scopes: ScopesDep, con: ConDep, principal: UserDep, request: Request,
           entity_type: Annotated[Literal["Person", "Practitioner", "Institution"] | None, Query()] = None,
           origin: Annotated[Literal["import", "decision"] | None, Query()] = None,
           limit: Annotated[int, Query(ge=1, le=100_000)] = 500) -> dict:
    """One label per entity (latest decision wins), newest first; `origin=import` gives imported ones only."""
    frame = list_labels(con, entity_type) if origin == "import" else all_labels(con, entity_type)
    if origin == "decision":
        frame = frame[frame["origin"] == "decision"]
    frame = scopes.entity_frame(principal, frame)  # a token limited to regions or cases sees those only
    counts = {f"{t}:{lab}": int(n) for (t, lab), n in frame.groupby(["entity_type", "label"]).size().items()} \
        if len(frame) else {}
    items = [{k: (None if v is None or v != v else v) for k, v in rec.items()}
             for rec in frame.head(limit).to_dict("records")]
    persons = [f"Person:{r['entity_id']}" for r in items if r["entity_type"] == "Person"]
    record_audit(audit, request, principal, "labels.list", persons[:1000], {"results": len(frame)})
    return {"items": items, "total": len(frame), "counts": counts}


def _plain(rec: dict) -> dict:
    return {k: (None if v is None or (isinstance(v, float) and v != v) else v) for k, v in rec.items()}


@router.get("/model/scores", summary="Entities by expected recovery / 按预期追回排序的实体")
def model_scores(audit: AuditDep, scopes: ScopesDep, con: ConDep, principal: UserDep, request: Request,
                 entity_type: Annotated[Literal["Person", "Practitioner", "Institution"] | None, Query()] = None,
                 limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict:
    """Model probability, amount at risk, expected recovery (their product) and the unsupervised risk beside it,
    with the top contributing features in Chinese and English; highest expected recovery first."""
    frame = scopes.entity_frame(principal, model_entity_scores(con))
    if entity_type:
        frame = frame[frame["entity_type"] == entity_type]
    items = [_plain(r) for r in frame.head(limit).to_dict("records")]
    for r in items:
        if isinstance(r.get("top_features"), str):
            r["top_features"] = json.loads(r["top_features"])
    persons = [f"Person:{r['entity_id']}" for r in items if r["entity_type"] == "Person"]
    if persons:
        record_audit(audit, request, principal, "model.scores", persons[:1000], {"results": len(items)})
    return {"items": items, "total": len(frame)}


@router.get("/model/versions", summary="Model versions / 模型版本")
def model_versions(settings: SettingsDep, principal: UserDep) -> list[dict]:
    """Every trained version with its training data range and evaluation figures; `current` is the one in use."""
    return list_versions(settings.workspace)
