"""Background jobs (ingest uploads, detection runs) with progress, summaries and errors.

Jobs run one at a time on a worker thread (they write to the claims store); each request only enqueues and
answers `{job_id}`. A job's function gets a `JobProgress` to report `(fraction 0–1, message)`; its return value
becomes the job's `result`, an exception its `error` (state `failed`). Jobs are kept in memory for the life of
the server process; their effects (rows, leads, audit entries) are in the claims store.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fraudnet.errors import FraudnetError, NotFoundError

__all__ = ["Job", "JobManager", "JobProgress", "JOB_KINDS"]

log = logging.getLogger(__name__)

JOB_KINDS = ("ingest", "detect", "screening")
MAX_KEPT_JOBS = 500


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Job:
    """One background job and where it stands."""

    job_id: str
    kind: str
    user: str
    state: str = "queued"
    progress: float = 0.0
    message: str = ""
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("job_id", "kind", "state", "progress", "message", "result", "error",
                                              "user", "created_at", "started_at", "finished_at")}


class JobProgress:
    """Progress reporter handed to a job function; also usable as the library's `progress` callback.

    Accepts `(fraction)`, `(message)`, `(fraction, message)`, `(done, total)`, `(done, total, message)`,
    `(message, done, total)` or keyword forms (`fraction=`, `done=`, `total=`, `message=`), and maps them
    into the stage range set by `stage(lo, hi)`.
    """

    def __init__(self, job: Job, lock: threading.Lock) -> None:
        self._job = job
        self._lock = lock
        self._lo, self._hi = 0.0, 1.0

    def stage(self, lo: float, hi: float, message: str | None = None) -> None:
        """Map later fractions into [lo, hi] of the whole job."""
        self._lo, self._hi = max(0.0, min(1.0, lo)), max(0.0, min(1.0, hi))
        self._set(self._lo, message)

    def _set(self, overall: float | None, message: str | None) -> None:
        with self._lock:
            if overall is not None:
                self._job.progress = round(max(self._job.progress, min(1.0, max(0.0, overall))), 4)
            if message:
                self._job.message = str(message)[:500]

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        fraction: float | None = kwargs.get("fraction")
        message: str | None = kwargs.get("message") or kwargs.get("stage") or kwargs.get("name")
        done, total = kwargs.get("done"), kwargs.get("total")
        nums = [a for a in args if isinstance(a, int | float) and not isinstance(a, bool)]
        texts = [a for a in args if isinstance(a, str)]
        if texts and not message:
            message = " ".join(texts)
        if len(nums) >= 2 and done is None:
            done, total = nums[0], nums[1]
        elif len(nums) == 1 and fraction is None:
            fraction = float(nums[0]) if 0.0 <= float(nums[0]) <= 1.0 else None
        if fraction is None and done is not None and total:
            fraction = float(done) / float(total)
        overall = None if fraction is None else self._lo + (self._hi - self._lo) * max(0.0, min(1.0, fraction))
        self._set(overall, message)


class JobManager:
    """Runs submitted jobs one at a time on a background thread."""

    def __init__(self, workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fraudnet-job")
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def submit(self, kind: str, user: str, fn: Callable[[JobProgress], dict[str, Any]],
               on_done: Callable[[Job], None] | None = None) -> Job:
        """Queue `fn(progress) -> result dict`; returns the queued job."""
        if kind not in JOB_KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        job = Job(job_id="J" + uuid.uuid4().hex[:15].upper(), kind=kind, user=user, message="queued / 排队中")
        with self._lock:
            self._jobs[job.job_id] = job
            self._trim()
        self._pool.submit(self._run, job, fn, on_done)
        return job

    def _trim(self) -> None:
        if len(self._jobs) <= MAX_KEPT_JOBS:
            return
        done = [j for j in self._jobs.values() if j.state in ("succeeded", "failed")]
        for j in sorted(done, key=lambda j: j.created_at)[: len(self._jobs) - MAX_KEPT_JOBS]:
            del self._jobs[j.job_id]

    def _run(self, job: Job, fn: Callable[[JobProgress], dict[str, Any]], on_done: Callable[[Job], None] | None
             ) -> None:
        progress = JobProgress(job, self._lock)
        with self._lock:
            job.state, job.started_at, job.message = "running", _now(), "running / 运行中"
        try:
            result = fn(progress)
        except FraudnetError as exc:
            log.warning("job %s (%s) failed: %s", job.job_id, job.kind, exc)
            with self._lock:
                job.state, job.error = "failed", str(exc)
                job.message = f"failed / 失败: {exc}"[:500]
        except Exception as exc:  # a job must report every failure, never die silently
            log.exception("job %s (%s) crashed", job.job_id, job.kind)
            with self._lock:
                job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
                job.message = f"failed / 失败: {type(exc).__name__}: {exc}"[:500]
        else:
            with self._lock:
                job.state, job.result, job.progress = "succeeded", result, 1.0
                job.message = "done / 完成"
        finally:
            with self._lock:
                job.finished_at = _now()
            if on_done is not None:
                try:
                    on_done(job)
                except Exception:
                    log.exception("job %s: completion hook failed", job.job_id)

    def get(self, job_id: str) -> Job:
        """A snapshot of one job; NotFoundError if unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFoundError(f"job {job_id!r} not found")
            return Job(**job.to_dict())

    def list(self) -> list[Job]:
        """Snapshots of all jobs, newest first."""
        with self._lock:
            jobs = [Job(**j.to_dict()) for j in self._jobs.values()]
        return sorted(jobs, key=lambda j: j.created_at, reverse=True)

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Block until the job finishes (for tests and the CLI); returns its final snapshot."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if job.state in ("succeeded", "failed"):
                return job
            time.sleep(0.05)
        return self.get(job_id)

    def shutdown(self) -> None:
        """Stop accepting jobs and wait for the running one."""
        self._pool.shutdown(wait=True, cancel_futures=True)
