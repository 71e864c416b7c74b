"""`GET /api/labels`: the case outcomes (imported and from lead decisions) the model learns from."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from fraudnet.api.deps import ConDep, CtxDep
from fraudnet.api.errors import error_responses
from fraudnet.api.schemas import LabelPageOut
from fraudnet.api.security import UserDep, record_audit
from fraudnet.learning.labels import all_labels, list_labels

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["labels"], responses=error_responses(400, 401))


@router.get("/labels", response_model=LabelPageOut, summary="Labels / 案件结论标签")
def labels(ctx: CtxDep, con: ConDep, principal: UserDep, request: Request,
           entity_type: Annotated[Literal["Person", "Practitioner", "Institution"] | None, Query()] = None,
           origin: Annotated[Literal["import", "decision"] | None, Query()] = None,
           limit: Annotated[int, Query(ge=1, le=100_000)] = 500) -> dict:
    """One label per entity (latest decision wins), newest first; `origin=import` gives imported ones only."""
    frame = list_labels(con, entity_type) if origin == "import" else all_labels(con, entity_type)
    if origin == "decision":
        frame = frame[frame["origin"] == "decision"]
    counts = {f"{t}:{lab}": int(n) for (t, lab), n in frame.groupby(["entity_type", "label"]).size().items()} \
        if len(frame) else {}
    items = [{k: (None if v is None or v != v else v) for k, v in rec.items()}
             for rec in frame.head(limit).to_dict("records")]
    persons = [f"Person:{r['entity_id']}" for r in items if r["entity_type"] == "Person"]
    record_audit(ctx, request, principal, "labels.list", persons[:1000], {"results": len(frame)})
    return {"items": items, "total": len(frame), "counts": counts}
