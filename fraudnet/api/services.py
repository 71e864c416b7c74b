"""What the job endpoints run: upload checks and storage, the ingest job and the detection job."""

from __future__ import annotations

import logging
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from fraudnet.api.claims_access import ClaimsAccess
from fraudnet.api.graph_holder import GraphStoreHolder
from fraudnet.api.jobs import JobProgress
from fraudnet.api.lead_queries import LeadQueries
from fraudnet.errors import IngestError, InvalidRequestError

__all__ = ["UploadedFile", "check_upload_names", "save_uploads", "ingest_job", "detect_job", "MAX_UPLOAD_BYTES"]

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 4 * 1024**3
MAX_UPLOAD_FILES = 50


class UploadedFile:
    """A file received by the ingest endpoint: its client-side name and a readable binary stream."""

    def __init__(self, filename: str | None, stream: BinaryIO) -> None:
        self.filename = filename or ""
        self.stream = stream


def check_upload_names(names: Sequence[str]) -> list[tuple[str, str]]:
    """(safe file name, table) per upload; InvalidRequestError (field `files`) for unknown or clashing names."""
    from fraudnet.ingest.readers import SUFFIXES, match_table

    if not names:
        raise InvalidRequestError("no files uploaded; send the contract tables as multipart field 'files'",
                                  field="files")
    if len(names) > MAX_UPLOAD_FILES:
        raise InvalidRequestError(f"{len(names)} files uploaded; at most {MAX_UPLOAD_FILES} per job", field="files")
    out: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for raw in names:
        name = Path(str(raw).replace("\\", "/")).name
        if not name or name in (".", "..") or name != str(raw).replace("\\", "/").split("/")[-1]:
            raise InvalidRequestError(f"file name {raw!r} is not a plain file name", field="files")
        m = match_table(Path(name))
        if m is None:
            known = ", ".join(sorted(SUFFIXES))
            raise InvalidRequestError(
                f"file {name!r} does not name a contract table (mdtrt, setl, fee_list, psn_info, medins_info, …) "
                f"with a known extension ({known}) / 文件名无法识别", field="files")
        table = m[0].name
        if name.lower() in (n.lower() for n in seen):
            raise InvalidRequestError(f"file {name!r} is uploaded twice", field="files")
        seen[name] = table
        out.append((name, table))
    return out


def save_uploads(workspace: Path, files: Sequence[UploadedFile]) -> Path:
    """Check and write the uploads into a fresh folder `<workspace>/uploads/<stamp>-<id>/`; returns it.

    Raises InvalidRequestError (field `files`) for an unknown file name, an empty file or an oversized upload;
    nothing is kept then.
    """
    named = check_upload_names([f.filename for f in files])
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    folder = Path(workspace) / "uploads" / f"{stamp}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=False)
    try:
        total = 0
        for (name, _table), f in zip(named, files, strict=True):
            target = folder / name
            with target.open("wb") as out:
                shutil.copyfileobj(f.stream, out, length=1 << 20)
            size = target.stat().st_size
            total += size
            if size == 0 or (size < 4096 and not target.read_bytes().strip(b" \t\r\n\xef\xbb\xbf")):
                raise InvalidRequestError(f"file {name!r} is empty / 文件为空", field="files")
            if total > MAX_UPLOAD_BYTES:
                raise InvalidRequestError(f"upload is larger than {MAX_UPLOAD_BYTES // 1024**3} GiB", field="files")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str):
        return value.item()
    return value


def _ingest_summary(report: Any) -> dict[str, Any]:
    tables = {name: _plain(t) | {"orphans": dict(t.orphans)} for name, t in report.tables.items()}
    return {
        "ok": bool(report.ok), "files": [_plain(f) for f in report.files], "tables": tables,
        "rows_read": report.rows_read, "rows_loaded": report.rows_loaded, "rows_rejected": report.rows_rejected,
        "already_ingested": list(report.already_ingested), "unrecognised_files": list(report.unrecognised_files),
        "visit_fact_rows": report.visit_fact_rows, "seconds": round(float(report.seconds), 2),
    }


def ingest_job(claims: ClaimsAccess, graph: GraphStoreHolder, folder: Path) -> Callable[[JobProgress], dict[str, Any]]:
    """The body of an ingest job over an uploaded folder.

    The ingest is transactional per table and loads nothing when a required table or column is missing; a
    failed ingest raises IngestError with the report's messages (the job then reports them) and leaves the
    graph store as it was. The uploaded files are deleted when the job ends (they carry raw identifiers).
    """

    def run(progress: JobProgress) -> dict[str, Any]:
        from fraudnet.ingest.pipeline import ingest_folder

        store = claims.job_store()
        try:
            progress.stage(0.0, 0.8, f"ingesting {len(list(folder.iterdir()))} file(s) / 导入中")
            report = ingest_folder(folder, store, progress=progress)
            summary = _ingest_summary(report)
            if not report.ok:
                problems = list(report.errors)
                if report.missing_tables:
                    problems.append("missing required table(s): " + ", ".join(report.missing_tables))
                if report.missing_columns:
                    problems.extend(f"{f}: required column '{c}' is missing" for f, c in report.missing_columns)
                raise IngestError("ingest failed / 导入失败: " + "; ".join(problems))
            progress.stage(0.8, 1.0, "updating the graph store / 更新图数据")
            summary.update(_plain(graph.refresh_after_ingest(store, progress)))
            return summary
        finally:
            # The uploads hold raw identifiers (certno, mob) that the claims store keeps only hashed.
            shutil.rmtree(folder, ignore_errors=True)

    return run


def detect_job(claims: ClaimsAccess, graph: GraphStoreHolder, leads: LeadQueries,
               only: list[str] | None) -> Callable[[JobProgress], dict[str, Any]]:
    """The body of a detection job: run the detectors, store the leads (keeping decisions), sync Neo4j."""

    def run(progress: JobProgress) -> dict[str, Any]:
        from fraudnet.claims.leads import LeadStore
        from fraudnet.detectors import registry

        cur = claims.job_store().con  # the job thread's own cursor
        progress.stage(0.0, 0.85, "running detectors / 运行检测")
        outcome = registry.run_detectors(cur, only=only, progress=progress)
        found, kinds, timings = _unpack_detection(outcome, only)
        progress.stage(0.85, 0.95, "saving leads / 保存线索")
        with claims.writing(timeout=300):
            try:
                coverage = {k: timings[k] for k in ("abstained", "skipped")}
                saved = LeadStore(cur).save_run(found, kinds, coverage=coverage)
            finally:
                leads.changed()
        result: dict[str, Any] = {"leads": len(found), "saved": _plain(saved), "kinds": kinds,
                                  "by_kind": dict(Counter(lead.kind for lead in found)),
                                  "by_severity": dict(Counter(lead.severity for lead in found)),
                                  **_plain(timings)}
        store = graph.store
        if store.syncs_leads:
            progress.stage(0.95, 1.0, "syncing leads to Neo4j / 同步线索到 Neo4j")
            rows, _ = LeadStore(cur).list(kind=None, active_only=False, limit=100_000)
            ids = {lead.lead_id for lead in found}
            status = {r["lead_id"]: r["status"] for r in rows if r["lead_id"] in ids}
            dicts = [lead.to_dict() | {"status": status.get(lead.lead_id, "new")} for lead in found]
            result["neo4j_synced"] = store.sync_leads(dicts)
        return result

    return run


def _unpack_detection(outcome: Any, only: list[str] | None) -> tuple[list[Any], list[str], dict[str, Any]]:
    """(leads, kinds run, timings, errors and what the data did not support) of a `registry.DetectionRun`.

    `abstained` (kind → requirement → institutions left out and why) and `skipped` (kind → why not run) say
    where a detector could not look: no lead there is not a clean bill.
    """
    leads = list(outcome)
    kinds = list(getattr(outcome, "kinds", None) or (only or []))
    info = {"timings": dict(getattr(outcome, "timings", {}) or {}),
            "errors": dict(getattr(outcome, "errors", {}) or {}),
            "abstained": dict(getattr(outcome, "abstained", {}) or {}),
            "skipped": dict(getattr(outcome, "skipped", {}) or {}),
            "seconds": getattr(outcome, "seconds", None)}
    # A detector that failed produced no leads: its kind is left out so that its old leads are not retired.
    kinds = [k for k in kinds if k not in info["errors"]]
    return leads, sorted(set(kinds) | {lead.kind for lead in leads}), info
