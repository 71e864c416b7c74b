"""`GraphStoreHolder`: the graph store the API answers from, replaced as a whole after an ingest into the embedded
store (listeners, e.g. the ego service's worker processes, follow the replacement)."""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any, Protocol

from fraudnet.claims.store import ClaimsStore
from fraudnet.graph.store import GraphStore, ProgressFn

__all__ = ["GraphStoreHolder", "StoreListener"]

log = logging.getLogger(__name__)


class StoreListener(Protocol):
    """Told before and after the held store is replaced."""

    def store_replacing(self) -> None:
        """The current store is about to be replaced (stop using what was built over it)."""
        ...

    def store_replaced(self, store: GraphStore) -> None:
        """`store` answers from now on."""
        ...


class GraphStoreHolder:
    """The current graph store (thread-safe reads), its replacement and its refresh after an ingest."""

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._listeners: list[StoreListener] = []

    @property
    def store(self) -> GraphStore:
        with self._lock:
            return self._store

    def listen(self, listener: StoreListener) -> None:
        self._listeners.append(listener)

    def swap(self, new: GraphStore) -> None:
        """Answer from `new` from now on and close the old store."""
        for listener in self._listeners:
            listener.store_replacing()
        with self._lock:
            old, self._store = self._store, new
        gc.freeze()  # the new store lives until the next swap: keep the collector from walking it
        for listener in self._listeners:
            listener.store_replaced(new)
        if old is not new:
            try:
                old.close()
            except Exception:  # closing a replaced store must not fail the job that replaced it
                log.warning("closing the replaced graph store failed", exc_info=True)

    def refresh_after_ingest(self, claims: ClaimsStore, progress: ProgressFn | None = None) -> dict[str, Any]:
        """Bring the graph up to date with the claims store (`GraphStore.refreshed`; a new store is swapped in);
        returns what was done."""
        store = self.store
        refresh = store.refreshed(claims, progress)
        if refresh.store is not store:
            self.swap(refresh.store)
        return refresh.summary

    def close(self) -> None:
        self.store.close()
