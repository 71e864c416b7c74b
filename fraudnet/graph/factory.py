"""`open_graph_store`: the graph store for a workspace — Neo4j when configured or running, else embedded."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from fraudnet.config import Settings
from fraudnet.graph.store import GraphStore

__all__ = ["open_graph_store", "neo4j_settings"]

log = logging.getLogger(__name__)


def neo4j_settings(settings: Settings) -> Settings | None:
    """Settings pointing at Neo4j: NEO4J_URI when set, else our launcher's URI if it runs in the workspace."""
    if settings.neo4j_uri:
        return settings
    try:
        from fraudnet.graph.neo4j_server import running_uri
    except ImportError:  # pragma: no cover - the launcher module is part of the package
        return None
    uri = running_uri(settings.workspace)
    if uri:
        return dataclasses.replace(settings, neo4j_uri=uri)
    return None


def open_graph_store(settings: Settings, claims: Any) -> GraphStore:
    """`Neo4jStore` when NEO4J_URI is set or our launcher runs in the workspace, else `EmbeddedStore(claims)`.

    Raises `Neo4jUnavailableError` when Neo4j is configured but unreachable (no silent fallback: the user
    asked for Neo4j).
    """
    neo = neo4j_settings(settings)
    if neo is not None:
        from fraudnet.graph.neo4j_store import Neo4jStore

        log.info("graph store: Neo4j at %s", neo.neo4j_uri)
        return Neo4jStore(neo)
    from fraudnet.graph.embedded_store import EmbeddedStore

    log.info("graph store: embedded (claims store %s)", getattr(claims, "path", "?"))
    return EmbeddedStore(claims)
