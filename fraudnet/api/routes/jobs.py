"""Background jobs: ingest uploaded files, run detection, and follow their progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Path, Request, UploadFile

from fraudnet.api.deps import (
    AdminDep,
    AuditDep,
    ClaimsDep,
    EditorDep,
    GraphDep,
    JobsDep,
    LeadsDep,
    SettingsDep,
    UserDep,
)
from fraudnet.api.errors import error_responses
from fraudnet.api.schemas import DetectIn, JobCreatedOut, JobListOut, JobOut
from fraudnet.api.security import record_audit
from fraudnet.api.services import UploadedFile, detect_job, ingest_job, save_uploads

__all__ = ["router"]

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=error_responses(400, 401, 403))


@router.post("/ingest", response_model=JobCreatedOut, status_code=202, summary="Ingest uploaded files / 上传导入")
def start_ingest(settings: SettingsDep, claims: ClaimsDep, graph: GraphDep, jobs: JobsDep, audit: AuditDep,
                 principal: AdminDep, request: Request,
                 files: Annotated[list[UploadFile], File(description="contract tables, e.g. mdtrt.csv, setl.csv")]
                 ) -> dict:
    """Upload contract tables (multipart field `files`, named as the contract's tables) and ingest them in the
    background; then follow `GET /api/jobs/{job_id}`. Admins only."""
    folder = save_uploads(settings.workspace, [UploadedFile(f.filename, f.file) for f in files])
    names = sorted(p.name for p in folder.iterdir())
    job = jobs.submit("ingest", principal.user, ingest_job(claims, graph, folder))
    record_audit(audit, request, principal, "job.ingest", [], {"job_id": job.job_id, "files": names}, 202)
    return {"job_id": job.job_id}


@router.post("/detect", response_model=JobCreatedOut, status_code=202, summary="Run detection / 运行检测")
def start_detect(claims: ClaimsDep, graph: GraphDep, leads: LeadsDep, jobs: JobsDep, audit: AuditDep,
                 principal: EditorDep, request: Request, body: DetectIn | None = None) -> dict:
    """Run all detectors (or `only` these kinds) in the background; decisions on leads are kept."""
    only = [k for k in (body.only or []) if k] if body else []
    if only:
        from fraudnet.detectors.registry import resolve_kinds

        resolve_kinds(only)  # InvalidRequestError (400, field "only") for an unknown kind
    job = jobs.submit("detect", principal.user, detect_job(claims, graph, leads, only or None))
    record_audit(audit, request, principal, "job.detect", [], {"job_id": job.job_id, "only": only}, 202)
    return {"job_id": job.job_id}


@router.get("/{job_id}", response_model=JobOut, responses=error_responses(404), summary="One job / 任务状态")
def get_job(job_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,40}$")], jobs: JobsDep, principal: UserDep) -> dict:
    """State (queued, running, succeeded, failed), progress 0–1, message, result summary or error."""
    return jobs.get(job_id).to_dict()


@router.get("", response_model=JobListOut, summary="All jobs / 任务列表")
def list_jobs(jobs: JobsDep, principal: UserDep) -> dict:
    """Jobs of this server process, newest first."""
    return {"items": [j.to_dict() for j in jobs.list()]}
