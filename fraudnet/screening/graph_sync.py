"""Neo4j after a screening run (when configured or our launcher runs): the new claims loaded, the leads mirrored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fraudnet.config import Settings

__all__ = ["neo4j_sync"]


def neo4j_sync(settings: Settings) -> Callable[[Any, bool], dict[str, Any]] | None:
    """A `graph_sync(store, data_changed)` for `screen_folder` when Neo4j is configured, else None."""
    from fraudnet.graph.factory import neo4j_settings

    target = neo4j_settings(settings)
    if target is None:
        return None

    def sync(store: Any, data_changed: bool) -> dict[str, Any]:
        from fraudnet.claims.leads import LeadStore
        from fraudnet.graph.neo4j_load import load_graph, sync_leads

        out: dict[str, Any] = {"neo4j": target.neo4j_uri}
        if data_changed:
            report = load_graph(store, target)
            out["load"] = {k: v for k, v in vars(report).items() if isinstance(v, int | float | str)}
        out["leads_synced"] = sync_leads(LeadStore(store.con).all_leads(), target, replace=True)
        return out

    return sync
