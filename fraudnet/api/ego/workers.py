"""Graph worker processes: ego networks without a time window, answered as JSON by forked processes.

Every request of the API runs in one Python process under one interpreter lock, and a 2-hop ego network of
500 nodes costs that lock ≈ 10 ms on a 200k-person city, so 20 investigators opening link charts at once
queue behind a single core. The embedded graph does not change between ingests, so once it is built the
server forks a few workers that share its arrays copy-on-write; a request thread hands one of them the query
and waits (lock released) for the finished JSON body. The server keeps everything that touches the claims
store: authentication, the audit log, case changes, and the entity risk scores, which it sends along whenever
they changed since that worker's last task. The graph is the store's in-memory `EntityGraph`
(`GraphStore.projection()`): the embedded store's own, or Neo4j's projection once it is read. Linux only (fork);
elsewhere egos are answered in the server process. `fraudnet.api.ego.EgoService` decides which.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, NamedTuple

from fraudnet.api.ego.answer import EgoAnswer
from fraudnet.api.ego.render import EgoRenderer
from fraudnet.api.present import RiskTable
from fraudnet.api.principal import Principal
from fraudnet.errors import FraudnetError, NotFoundError
from fraudnet.graph.entity_graph import EntityGraph

__all__ = ["GraphWorkers", "default_worker_count", "forking_available"]

log = logging.getLogger(__name__)

# Seconds a worker may take for one answer before the request is answered in the server process instead.
ANSWER_TIMEOUT_S = 60.0


def forking_available() -> bool:
    """Workers need `fork` (they inherit the built graph); Linux has it safely, macOS and Windows do not."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def default_worker_count() -> int:
    """One worker per CPU (at most 8), none where fork is unavailable.

    With the compiled layer loops and answers passed through shared memory a worker's answer is cheap next to the
    server's part, so on 2 cores 2 workers answered more egos per second than 3 (238 against 216 in one
    side-by-side pair; three processes competing for two cores cost each other cache and switches)."""
    return min(os.cpu_count() or 1, 8) if forking_available() else 0


# Bytes of each worker's answer buffer: shared memory mapped before the fork, where the worker writes the JSON body
# of its answer and the server copies it out, instead of pickling ≈ 400 kB through the pipe (a quarter of a worker's
# time went into sending it). Only the pages written are ever allocated; a larger body goes through the pipe.
REPLY_BUFFER_BYTES = 32 * 1024 * 1024


class _Worker:
    def __init__(self, process: BaseProcess, conn: Connection, buffer: mmap.mmap) -> None:
        self.process = process
        self.conn = conn
        self.buffer = buffer
        self.risk_version: int | None = None


class _Task(NamedTuple):
    query: dict[str, Any]
    principal: Principal
    risk_version: int
    risk_table: Callable[[], RiskTable]
    done: Future


class GraphWorkers:
    """`count` processes forked now from this one, each answering `ego_json` from `store` as it is now.

    Thread-safe. Calls queue their task in arrival order; one thread per worker takes the next task, sends it
    and waits for the answer, so requests are served first come, first served. A worker that dies or stops
    answering is dropped and its task answered None (the caller then answers in-process).
    """

    def __init__(self, store: EntityGraph, count: int) -> None:
        if count < 1:
            raise ValueError(f"worker count {count} < 1")
        if not forking_available():
            raise FraudnetError("graph workers need the fork start method (Linux)")
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        context = multiprocessing.get_context("fork")
        for i in range(count):
            parent_end, child_end = context.Pipe()
            buffer = mmap.mmap(-1, REPLY_BUFFER_BYTES)  # anonymous and shared: the child writes, the server reads
            # The child must not hold the server's ends of any pipe, or it would keep its siblings from seeing
            # the server go away (end of file on their pipe).
            server_ends = [parent_end, *(w.conn for w in self._all)]
            process = context.Process(target=_serve, args=(child_end, store, server_ends, buffer),
                                      name=f"fraudnet-graph-{i}", daemon=True)
            process.start()
            child_end.close()
            self._all.append(_Worker(process, parent_end, buffer))
        self._senders = [threading.Thread(target=self._send_tasks, args=(w,), name=f"fraudnet-graph-send-{i}",
                                          daemon=True) for i, w in enumerate(self._all)]
        for thread in self._senders:
            thread.start()
        log.info("graph workers: %d processes (%s)", count, ", ".join(str(w.process.pid) for w in self._all))

    @property
    def alive(self) -> int:
        """How many workers can still answer."""
        with self._lock:
            return len(self._all)

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all]

    async def ego_json(self, query: dict[str, Any], principal: Principal, risk_version: int,
                       risk_table: Callable[[], RiskTable]) -> EgoAnswer | None:
        """The ego network `store.ego_index(**query)` rendered for `principal`, or None if no worker answered.

        `risk_table()` gives the entity risk table of `risk_version`; it is sent only to a worker that has an
        older one. Errors of the query itself (unknown node, limits) are raised here as the store raises them.
        """
        with self._lock:
            if self._closed or not self._all:
                return None
        done: Future = Future()
        self._tasks.put(_Task(query, principal, risk_version, risk_table, done))
        try:
            status, payload = await asyncio.wait_for(asyncio.wrap_future(done), 2 * ANSWER_TIMEOUT_S)
        except TimeoutError:
            return None
        if status == "ok":
            return EgoAnswer(*payload)
        if status == "missing":  # not in the worker's graph: the server's store decides (Neo4j may have it already)
            return None
        if status == "error":
            raise payload
        if status == "failed":
            log.error("graph worker failed: %s; answering in the server process", payload)
        return None

    def _send_tasks(self, worker: _Worker) -> None:
        """One worker's sender thread: task after task from the shared queue, until None or the worker is lost."""
        while True:
            task = self._tasks.get()
            if task is None:
                return
            try:
                update = task.risk_table() if worker.risk_version != task.risk_version else None
                worker.conn.send(("ego", task.query, task.principal, update))
                if not worker.conn.poll(ANSWER_TIMEOUT_S):
                    raise TimeoutError(f"no answer in {ANSWER_TIMEOUT_S:.0f} s")
                reply = worker.conn.recv()
                if reply[0] == "ok" and isinstance(reply[1][0], int):  # the body is in the shared buffer
                    size = reply[1][0]
                    reply = ("ok", (worker.buffer[:size], *reply[1][1:]))
            except (OSError, EOFError, TimeoutError) as exc:
                task.done.set_result(("lost", None))
                self._drop(worker, exc)
                return
            except Exception as exc:  # the risk table could not be read: answer in-process (it will say why)
                task.done.set_result(("failed", f"{type(exc).__name__}: {exc}"))
                continue
            if update is not None:
                worker.risk_version = task.risk_version
            task.done.set_result(reply)

    def _drop(self, worker: _Worker, exc: BaseException) -> None:
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
            left = len(self._all)
        log.error("graph worker %s lost (%s); %d left", worker.process.pid, exc, left)
        worker.process.kill()  # it may still be computing a late answer
        _stop(worker)
        if not left:  # nobody takes queued tasks any more: answer them None (in-process)
            while True:
                try:
                    task = self._tasks.get_nowait()
                except queue.Empty:
                    return
                if task is not None:
                    task.done.set_result(("lost", None))

    def close(self) -> None:
        """Stop every worker (each finishes the answer it is writing)."""
        with self._lock:
            self._closed, workers, self._all = True, self._all, []
        for _ in self._senders:
            self._tasks.put(None)
        for thread in self._senders:
            thread.join(timeout=ANSWER_TIMEOUT_S)
        for worker in workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in workers:
            _stop(worker)


def _stop(worker: _Worker) -> None:
    worker.process.join(timeout=5.0)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(timeout=5.0)
    worker.conn.close()
    worker.buffer.close()


def _serve(conn: Connection, store: EntityGraph, server_ends: list[Connection], buffer: mmap.mmap) -> None:
    """A worker's loop: answer ("ego", query, principal, risk update) messages until None or end of pipe; an
    answer's body goes into `buffer` (its size in the reply) when it fits there."""
    renderer = EgoRenderer(store)
    for end in server_ends:
        end.close()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which then stops its workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the server's handler inherited by fork
    risk: RiskTable = {}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        _, query, principal, update = message
        if update is not None:
            risk = update
        try:
            body, *rest = renderer.render(principal, risk, **query)
            if len(body) <= len(buffer):
                buffer[:len(body)] = body
                reply: tuple[str, Any] = ("ok", (len(body), *rest))
            else:
                reply = ("ok", (body, *rest))
        except NotFoundError:
            # A Neo4j projection lags a load by up to its poll interval: the server's own store answers such ids.
            reply = ("missing", None)
        except FraudnetError as exc:
            reply = ("error", exc)
        except Exception as exc:  # reported to the server, which answers the request itself
            reply = ("failed", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (OSError, EOFError):
            return
