"""`LeadQueries`: the lead store as the API reads it — cached pages of the queue, the leads version every cache
keys on, and the entity risk snapshot (`RiskIndex`) that graph answers colour their nodes with."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson

from fraudnet.api.claims_access import ClaimsAccess, ThreadCursor
from fraudnet.claims.leads import MODEL_RISK_COLUMNS, LeadIndex, LeadStore

__all__ = ["LeadQueries", "RiskIndex", "RiskTable"]

# (entity type, key) → {"score", "leads", "amount_at_risk", "top_kinds", and the model's figures once it scored}
RiskTable = dict[tuple[str, str], dict[str, Any]]


class RiskIndex:
    """Entity risk (`fraudnet.detectors.risk`; with the model's probability and expected recovery once a model has
    scored the store) looked up by node id.

    Loaded lazily from the lead store and dropped whenever leads or decisions change; a table is never modified
    once handed out (a change gives a new table object).
    """

    def __init__(self, leads: LeadStore) -> None:
        self._leads = leads
        self._lock = threading.Lock()
        self._rows: RiskTable | None = None

    def invalidate(self) -> None:
        with self._lock:
            self._rows = None

    def _load(self) -> RiskTable:
        frame = self._leads.entity_scores()
        rows: RiskTable = {}
        for rec in frame.to_dict("records"):
            kinds = rec.get("top_kinds") or ""
            row = {
                "score": float(rec["score"]), "leads": int(rec["leads"]),
                "amount_at_risk": float(rec["amount_at_risk"] or 0.0),
                "top_kinds": [k for k in str(kinds).split(";") if k],
            }
            for name in MODEL_RISK_COLUMNS:  # the model's figures beside the unsupervised risk, once it scored
                value = rec.get(name)
                if value is not None and value == value:
                    row[name] = value
            rows[(str(rec["entity_type"]), str(rec["entity_id"]))] = row
        return rows

    def table(self) -> RiskTable:
        """(entity type, key) → risk; Pharmacy entities are under "Institution" (as in the lead store)."""
        with self._lock:
            if self._rows is None:
                self._rows = self._load()
            return self._rows

    def lookup(self, node_type: str, key: str) -> dict[str, Any] | None:
        """Risk of one entity (Pharmacy counts as Institution), or None when no active lead involves it."""
        risk_type = "Institution" if node_type == "Pharmacy" else node_type
        return self.table().get((risk_type, key))


class LeadQueries:
    """The lead store over the calling thread's cursor, with what is cached per leads version.

    `version` moves on every change to leads or decisions (`changed()`); cached pages, the in-memory `LeadIndex`
    and the risk table follow it.
    """

    def __init__(self, claims: ClaimsAccess) -> None:
        self.con: ThreadCursor = claims.con
        self.store = LeadStore(self.con)
        self.risk = RiskIndex(self.store)
        self.version = 0
        self._page_lock = threading.Lock()
        self._pages: dict[tuple, tuple[int, bytes, int]] = {}
        self._items: dict[str, bytes] = {}  # lead id → rendered list item, valid for `_items_version`
        self._items_version = -1
        self._index_lock = threading.Lock()
        self._index: tuple[int, LeadIndex] | None = None  # (leads version, index)

    def risk_snapshot(self) -> tuple[int, RiskTable]:
        """(leads version, the risk table of that version or newer): the version is read first, so a table newer
        than its label is only sent again, never an old table under a new label."""
        version = self.version
        return version, self.risk.table()

    def page(self, render_row: Callable[[dict], bytes], envelope: dict[str, Any], **query: Any) -> tuple[bytes, int]:
        """A page of `LeadStore.list(**query)` as the JSON body `{"items": [render_row(row), …], "total": …,
        **envelope}`; returns (body, total).

        Until the leads or decisions change (`changed`), bodies are answered from a small cache, pages are chosen
        from an in-memory `LeadIndex` of the active leads, and each lead's item is rendered once: a new filter or
        page costs no query but the items not rendered yet.
        """
        key = (tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in query.items())),
               tuple(sorted(envelope.items())))
        with self._page_lock:
            version = self.version
            hit = self._pages.get(key)
        if hit is not None and hit[0] == version:
            return hit[1], hit[2]
        ids, total = self._lead_index(version).page_ids(**query)
        with self._page_lock:
            items = self._items if self._items_version == version else {}
        missing = [i for i in ids if i not in items]
        if missing:
            fresh = {i: render_row(row) for i, row in self.store.summaries(missing).items()}
            with self._page_lock:
                if self._items_version != version or len(self._items) > 100_000:
                    self._items, self._items_version = {}, version
                if version == self.version:
                    self._items.update(fresh)
        else:
            fresh = {}
        rows = [row for row in (fresh.get(i) or items.get(i) for i in ids) if row is not None]
        body = b"".join((b'{"items":[', b",".join(rows), b"],", orjson.dumps({"total": total, **envelope})[1:]))
        with self._page_lock:
            if version == self.version:
                if len(self._pages) >= 1024:
                    self._pages.clear()
                self._pages[key] = (version, body, total)
        return body, total

    def _lead_index(self, version: int) -> LeadIndex:
        """The `LeadIndex` of the active leads, rebuilt once per leads version (see `page`)."""
        with self._index_lock:
            if self._index is None or self._index[0] != version:
                self._index = (version, LeadIndex(self.con))
            return self._index[1]

    def changed(self) -> None:
        """Call after any change to leads or decisions: drops cached pages and entity risk."""
        self.risk.invalidate()  # before the version moves: whoever reads the new version gets the new table
        with self._page_lock:
            self.version += 1
            self._pages.clear()
