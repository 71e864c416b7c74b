"""`ClaimsAccess`: the API's claims store — one DuckDB connection, a cursor per thread, the job's own cursor and
the write lock that case changes and jobs hold."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

from fraudnet.claims.store import ClaimsStore
from fraudnet.errors import StoreError

__all__ = ["ClaimsAccess", "ThreadCursor", "WRITE_LOCK_TIMEOUT_S"]

# A case change waits this long for a running job's writes before answering 503 (retry later).
WRITE_LOCK_TIMEOUT_S = 30.0


class ThreadCursor:
    """A stand-in for a DuckDB connection that forwards every call to the calling thread's own cursor.

    FastAPI may resolve a dependency on one worker thread and run the endpoint on another; resolving the cursor
    at call time keeps each thread on its own cursor (DuckDB connections must not be shared across threads).
    """

    def __init__(self, access: ClaimsAccess) -> None:
        self._access = access

    def __getattr__(self, name: str) -> Any:
        return getattr(self._access.thread_cursor(), name)


class ClaimsAccess:
    """The claims store as the API's threads share it.

    Requests read through `con` (each thread its own cursor); the job thread through `job_store()`; writes (case
    changes, jobs) hold `writing()`.
    """

    def __init__(self, store: ClaimsStore) -> None:
        self.store = store
        self.write_lock = threading.RLock()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._job_store: ClaimsStore | None = None
        self.con = ThreadCursor(self)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new DuckDB cursor on the claims store (DuckDB connections are not shared across threads)."""
        try:
            return self.store.con.cursor()
        except Exception as exc:
            raise StoreError(f"claims store {getattr(self.store, 'path', '')}: cannot open a cursor ({exc})") from exc

    def thread_cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the claims store (created on first use, closed by `close`)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self.cursor()
            self._local.cursor = cur
            with self._lock:
                self._cursors.append(cur)
        return cur

    def job_store(self) -> ClaimsStore:
        """The ClaimsStore as the job thread uses it: a shallow copy answering through one cursor of its own.

        Kept for the life of the app (jobs run one at a time on one worker thread), so that per-connection
        state the ingest registers (its DuckDB functions) is registered once.
        """
        with self._lock:
            if self._job_store is None:
                store = copy.copy(self.store)
                store.con = self.cursor()
                self._job_store = store
            return self._job_store

    @contextmanager
    def writing(self, timeout: float = WRITE_LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the write lock; StoreError (503) if a job keeps it longer than `timeout` seconds."""
        if not self.write_lock.acquire(timeout=timeout):
            raise StoreError(f"the claims store is busy with a running job for more than {timeout:.0f} s; retry later "
                             "(数据库正被后台任务写入，请稍后重试)")
        try:
            yield
        finally:
            self.write_lock.release()

    def close_cursors(self) -> None:
        """Close every thread and job cursor (at shutdown)."""
        with self._lock:
            cursors, self._cursors = self._cursors, []
            if self._job_store is not None:
                cursors.append(self._job_store.con)
                self._job_store = None
        for cur in cursors:
            try:
                cur.close()
            except Exception:  # pragma: no cover - closing a cursor twice is harmless
                pass

    def close(self) -> None:
        """Close the cursors and the claims store."""
        self.close_cursors()
        self.store.close()
