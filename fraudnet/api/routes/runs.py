"""Screening runs (每日筛查): the latest run's report, earlier runs, the watched drop folder, a run on request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from fraudnet.api.deps import AdminDep, AuditDep, ConDep, EditorDep
from fraudnet.api.errors import error_responses
from fraudnet.api.principal import Principal
from fraudnet.api.run_schemas import RunListOut, RunReportOut, WatchOut
from fraudnet.api.schemas import JobCreatedOut
from fraudnet.api.security import record_audit
from fraudnet.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from fraudnet.screening.runs import RunStore

__all__ = ["router"]

router = APIRouter(prefix="/api/runs", tags=["screening"], responses=error_responses(401, 403, 404))

RunId = Annotated[str, Path(pattern=r"^S[0-9]{14}-[0-9a-f]{6}$", description="Run id, e.g. S20260301020000-1a2b3c")]


async def _whole_workspace(principal: EditorDep) -> Principal:
    """Run reports count leads across the whole workspace: not for tokens limited to regions or cases."""
    if principal.scope is not None:
        raise PermissionDeniedError(f"a token limited to {principal.scope.describe()} may not read screening runs "
                                    "(they cover the whole workspace) / 受限令牌无权查看全局筛查报告")
    return principal


ReaderDep = Annotated[Principal, Depends(_whole_workspace)]


def _watcher(request: Request) -> Any:
    return getattr(request.app.state, "screening", None)


@router.get("", response_model=RunListOut, summary="Screening runs / 筛查运行记录")
def list_runs(con: ConDep, principal: ReaderDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
    """The latest screening runs, newest first (counts of new red and orange leads)."""
    return {"items": RunStore(con).list(limit)}


@router.get("/latest", response_model=RunReportOut, summary="The latest screening run / 最近一次筛查报告")
def latest_run(con: ConDep, principal: ReaderDep) -> dict:
    """What came in, what was quarantined, the new red/orange leads by kind and institution, notices sent."""
    report = RunStore(con).latest()
    if report is None:
        raise NotFoundError("no screening run yet (fraudnet serve --watch DIR, or fraudnet watch DIR) / 尚无筛查记录")
    return report


@router.get("/watch", response_model=WatchOut, summary="The watched drop folder / 投放目录监视状态")
def watch_status(request: Request, principal: ReaderDep) -> dict:
    watcher = _watcher(request)
    if watcher is None:
        raise NotFoundError("this server watches no drop folder (start it with --watch DIR) / 未配置投放目录")
    return watcher.status()


@router.post("", response_model=JobCreatedOut, status_code=202, responses=error_responses(400),
             summary="Screen the drop folder now / 立即筛查")
def run_now(request: Request, audit: AuditDep, principal: AdminDep) -> dict:
    """Queue one screening cycle of the watched folder as a job (follow it at `GET /api/jobs/{job_id}`). Admins."""
    watcher = _watcher(request)
    if watcher is None:
        raise InvalidRequestError("this server watches no drop folder (start it with --watch DIR) / 未配置投放目录",
                                  field="watch")
    job = watcher.trigger("request", principal.user)
    record_audit(audit, request, principal, "screening.run", [], {"job_id": job.job_id}, 202)
    return {"job_id": job.job_id}


@router.get("/{run_id}", response_model=RunReportOut, summary="One screening run / 筛查报告")
def get_run(run_id: RunId, con: ConDep, principal: ReaderDep) -> dict:
    report = RunStore(con).get(run_id)
    if report is None:
        raise NotFoundError(f"screening run {run_id!r} not found / 筛查记录不存在")
    return report
