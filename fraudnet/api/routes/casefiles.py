"""Case files (案卷): save a lead's chart with versions, reopen, share, export the referral package."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from fraudnet.api.casefile_schemas import (
    CaseExportIn,
    CaseFileIn,
    CaseFileOut,
    CaseFileSummaryOut,
    CaseVersionIn,
    ShareIn,
)
from fraudnet.api.deps import AuditDep, ClaimsDep, ConDep, EditorDep, RiskDep, ScopedLeadsDep, ScopedStoreDep, UserDep
from fraudnet.api.errors import error_responses
from fraudnet.api.lead_queries import RiskIndex
from fraudnet.api.masking import mask_lead_for, pseudonymise_subgraph
from fraudnet.api.present import LEAD_ID_PATTERN, masked_subgraph
from fraudnet.api.principal import Principal
from fraudnet.api.scope import ScopedLeads
from fraudnet.api.security import record_audit
from fraudnet.claims import casefiles as cf
from fraudnet.exports.casefile import (
    ANX_MEDIA_TYPE,
    PDF_MEDIA_TYPE,
    ChartExport,
    casefile_anx,
    casefile_graphml,
    casefile_pdf,
)
from fraudnet.exports.graphml import GRAPHML_MEDIA_TYPE
from fraudnet.graph.store import GraphQueries
from fraudnet.viz.recipes import case_chart

__all__ = ["router"]

router = APIRouter(prefix="/api/casefiles", tags=["casefiles"], responses=error_responses(400, 401, 404))

CaseId = Annotated[str, Path(pattern=r"^CF[0-9A-F]{16}$", description="Case file id, e.g. CF3A…")]
_MEDIA = {"pdf": PDF_MEDIA_TYPE, "graphml": GRAPHML_MEDIA_TYPE, "anx": ANX_MEDIA_TYPE}
_FILE_RESPONSES = {200: {"description": "The referral file", "content": {m: {} for m in _MEDIA.values()}}}


def _entities(lead: dict[str, Any], cid: str | None = None) -> list[str]:
    return ([f"CaseFile:{cid}"] if cid else []) + [f"Lead:{lead['lead_id']}"] + [
        f"Person:{p}" for p in lead.get("persons") or []]


@router.get("", response_model=list[CaseFileSummaryOut], summary="Case files I may open / 我的案卷")
def list_casefiles(con: ConDep, principal: UserDep, leads: ScopedLeadsDep,
                   lead_id: Annotated[str | None, Query(pattern=LEAD_ID_PATTERN)] = None) -> list[dict]:
    """Own case files, those shared with me (all for admins), newest first; optionally of one lead."""
    return [m for m in cf.list_casefiles(con, principal.user, principal.role, lead_id)
            if leads.get(m["lead_id"]) is not None]


@router.post("", response_model=CaseFileOut, status_code=201, responses=error_responses(403, 503),
             summary="Save a chart as a new case file / 保存案卷")
def create_casefile(body: CaseFileIn, claims: ClaimsDep, audit: AuditDep, con: ConDep, leads: ScopedLeadsDep,
                    principal: EditorDep, request: Request) -> dict:
    lead = leads.require(body.lead_id)
    with claims.writing():
        out = cf.create_casefile(con, body.lead_id, body.title, principal.user, body.state.model_dump(),
                                 body.comment)
    record_audit(audit, request, principal, "casefile.create", _entities(lead, out["casefile_id"]),
                 {"version": 1, "nodes": len(body.state.nodes)}, status_code=201)
    return out


@router.get("/{casefile_id}", response_model=CaseFileOut, summary="Open a case file / 打开案卷")
def get_casefile(casefile_id: CaseId, audit: AuditDep, con: ConDep, leads: ScopedLeadsDep, principal: UserDep,
                 request: Request, version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> dict:
    out = cf.get_casefile(con, casefile_id, principal.user, principal.role, version)
    lead = leads.require(out["lead_id"])
    record_audit(audit, request, principal, "casefile.read", _entities(lead, casefile_id), {"version": out["version"]})
    return out


@router.post("/{casefile_id}/versions", response_model=CaseFileOut, responses=error_responses(403, 503),
             summary="Save a new version / 保存新版本")
def save_version(casefile_id: CaseId, body: CaseVersionIn, claims: ClaimsDep, audit: AuditDep, con: ConDep,
                 leads: ScopedLeadsDep, principal: EditorDep, request: Request) -> dict:
    meta = cf.get_casefile(con, casefile_id, principal.user, principal.role)
    lead = leads.require(meta["lead_id"])
    with claims.writing():
        out = cf.save_version(con, casefile_id, principal.user, principal.role, body.state.model_dump(),
                              body.comment, body.title)
    record_audit(audit, request, principal, "casefile.save", _entities(lead, casefile_id),
                 {"version": out["version"], "nodes": len(body.state.nodes)})
    return out


@router.post("/{casefile_id}/share", response_model=CaseFileOut, responses=error_responses(403, 503),
             summary="Share with colleagues / 共享案卷")
def share(casefile_id: CaseId, body: ShareIn, claims: ClaimsDep, audit: AuditDep, con: ConDep,
          leads: ScopedLeadsDep, principal: UserDep, request: Request) -> dict:
    """The owner (or an admin) shares the file; colleagues see it with their own role's masking and scope."""
    meta = cf.get_casefile(con, casefile_id, principal.user, principal.role)
    lead = leads.require(meta["lead_id"])
    with claims.writing():
        out = cf.share_casefile(con, casefile_id, principal.user, principal.role, body.users)
    record_audit(audit, request, principal, "casefile.share", _entities(lead, casefile_id), {"users": body.users})
    return out


def _package(risk: RiskIndex, con: Any, store: GraphQueries, leads: ScopedLeads, principal: Principal, lead: dict,
             state: dict, title: str, fmt: str, casefile_id: str | None, version: int | None) -> tuple[bytes, dict]:
    """The referral file for `principal`: data read again, masked for their role, ids opaque for viewers."""
    nodes = state.get("nodes") or []
    sub = case_chart(lead, [n["id"] for n in nodes], [n["id"] for n in nodes if n.get("hidden")], store, con)
    shown = masked_subgraph(sub, principal, risk.table())
    detail = dict(lead)
    detail["evidence_visits"] = leads.evidence_visits(lead.get("evidence") or [])
    detail = mask_lead_for(detail, principal)
    opaque = pseudonymise_subgraph(shown, principal)
    renamed = dict(zip((n.id for n in shown.nodes), (n.id for n in opaque.nodes), strict=True))
    renamed_edges = dict(zip((e.id for e in shown.edges), (e.id for e in opaque.edges), strict=True))
    pos = {renamed[n["id"]]: (float(n["x"]), float(n["y"])) for n in nodes if n["id"] in renamed}
    x = ChartExport(lead=detail, chart=opaque, positions=pos, user=principal.user, at=datetime.now(), title=title,
                    lang=state.get("lang") or "zh",
                    node_notes={renamed[n["id"]]: n["note"] for n in nodes if n.get("note") and n["id"] in renamed},
                    edge_notes={renamed_edges[e["id"]]: e["note"] for e in state.get("edge_notes") or []
                                if e["id"] in renamed_edges},
                    notes=state.get("notes") or "", casefile_id=casefile_id, version=version)
    if fmt == "pdf":
        data = casefile_pdf(x, detail["evidence_visits"])
    elif fmt == "anx":
        data = casefile_anx(x)
    else:
        data = casefile_graphml(x)
    return data, {"format": fmt, "nodes": len(opaque.nodes), "edges": len(opaque.edges), "bytes": len(data)}


def _file(data: bytes, stem: str, fmt: str) -> Response:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Response(data, media_type=_MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{stem}-{stamp}.{fmt}"'})


@router.get("/{casefile_id}/export", summary="Referral package of a case file / 导出移送材料",
            response_class=Response, responses=_FILE_RESPONSES)
def export_casefile(casefile_id: CaseId, audit: AuditDep, risk: RiskDep, con: ConDep, store: ScopedStoreDep,
                    leads: ScopedLeadsDep, principal: UserDep, request: Request,
                    format: Literal["pdf", "graphml", "anx"] = "pdf",
                    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> Response:
    """PDF (chart, legend, title, lead id, date, user, evidence, explanations, notes), GraphML with positions and
    annotations, or i2 Analyst's Notebook .anx XML."""
    out = cf.get_casefile(con, casefile_id, principal.user, principal.role, version)
    lead = leads.require(out["lead_id"])
    data, detail = _package(risk, con, store, leads, principal, lead, out["state"], out["title"], format,
                            casefile_id, out["version"])
    record_audit(audit, request, principal, "casefile.export", _entities(lead, casefile_id),
                 {**detail, "version": out["version"]})
    return _file(data, f"fraudnet-{casefile_id}-v{out['version']}", format)


@router.post("/export", summary="Referral package of an unsaved chart / 导出当前图",
             response_class=Response, responses=_FILE_RESPONSES)
def export_chart(body: CaseExportIn, audit: AuditDep, risk: RiskDep, con: ConDep, store: ScopedStoreDep,
                 leads: ScopedLeadsDep, principal: UserDep, request: Request) -> Response:
    lead = leads.require(body.lead_id)
    data, detail = _package(risk, con, store, leads, principal, lead, body.state.model_dump(), body.title,
                            body.format, None, None)
    record_audit(audit, request, principal, "chart.export", _entities(lead), detail)
    return _file(data, f"fraudnet-{body.lead_id}", body.format)
