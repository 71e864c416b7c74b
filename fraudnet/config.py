"""Settings from the environment: workspace folder and Neo4j connection."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fraudnet.errors import ConfigError

__all__ = ["Settings", "load_settings", "DEFAULT_WORKSPACE"]

DEFAULT_WORKSPACE = Path("fraudnet-data")


@dataclass(frozen=True)
class Settings:
    """Where fraudnet keeps its data and which graph store it talks to.

    `neo4j_uri` empty means the embedded default store is used.
    """

    workspace: Path
    neo4j_uri: str = ""
    neo4j_user: str = "neo4j"
    neo4j_password: str = ""
    neo4j_database: str = "neo4j"
    # Processes answering ego networks beside the API server (`fraudnet.api.graph_workers`); 0 = none.
    graph_workers: int = 0

    @property
    def claims_db_path(self) -> Path:
        return self.workspace / "claims.duckdb"

    @property
    def neo4j_home(self) -> Path:
        return self.workspace / "neo4j"

    @property
    def use_neo4j(self) -> bool:
        return bool(self.neo4j_uri)


def load_settings(workspace: str | os.PathLike[str] | None = None) -> Settings:
    """Read settings from FRAUDNET_WORKSPACE, FRAUDNET_GRAPH_WORKERS and NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD /
    NEO4J_DATABASE."""
    ws = Path(workspace or os.environ.get("FRAUDNET_WORKSPACE") or DEFAULT_WORKSPACE)
    workers_text = os.environ.get("FRAUDNET_GRAPH_WORKERS", "").strip() or "0"
    if not workers_text.isdigit() or int(workers_text) > 64:
        raise ConfigError(f"FRAUDNET_GRAPH_WORKERS={workers_text!r} is not a whole number of processes from 0 to 64")
    return Settings(
        workspace=ws,
        neo4j_uri=os.environ.get("NEO4J_URI", ""),
        neo4j_user=os.environ.get("NEO4J_USER", "neo4j"),
        neo4j_password=os.environ.get("NEO4J_PASSWORD", ""),
        neo4j_database=os.environ.get("NEO4J_DATABASE", "neo4j"),
        graph_workers=int(workers_text),
    )
