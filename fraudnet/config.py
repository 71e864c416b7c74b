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
    # Processes answering ego networks beside the API server (`fraudnet.api.ego`); 0 = none.
    graph_workers: int = 0
    # Requests of one process sending Cypher to Neo4j at once (the rest wait their turn): bounds the load the API
    # puts on Neo4j; about twice Neo4j's cores.
    neo4j_concurrency: int = 4
    # The API answers ego networks from an in-memory projection of Neo4j's entity graph, read again after each load
    # (`graph.neo4j_projection`); the load stamp is checked every `neo4j_projection_poll_s` seconds.
    neo4j_projection: bool = True
    neo4j_projection_poll_s: float = 10.0

    @property
    def claims_db_path(self) -> Path:
        return self.workspace / "claims.duckdb"

    @property
    def neo4j_home(self) -> Path:
        return self.workspace / "neo4j"

    @property
    def use_neo4j(self) -> bool:
        return bool(self.neo4j_uri)


def _workspace_neo4j_password(workspace: Path) -> str:
    """The password `fraudnet neo4j start` generated into `<workspace>/neo4j/password` (mode 0600), or ""."""
    try:
        return (workspace / "neo4j" / "password").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def load_settings(workspace: str | os.PathLike[str] | None = None) -> Settings:
    """Read settings from FRAUDNET_WORKSPACE, FRAUDNET_GRAPH_WORKERS, FRAUDNET_NEO4J_CONCURRENCY,
    FRAUDNET_NEO4J_PROJECTION, FRAUDNET_NEO4J_PROJECTION_POLL and NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD /
    NEO4J_DATABASE; without NEO4J_PASSWORD, the password `fraudnet neo4j start` generated in the workspace."""
    ws = Path(workspace or os.environ.get("FRAUDNET_WORKSPACE") or DEFAULT_WORKSPACE)
    workers_text = os.environ.get("FRAUDNET_GRAPH_WORKERS", "").strip() or "0"
    if not workers_text.isdigit() or int(workers_text) > 64:
        raise ConfigError(f"FRAUDNET_GRAPH_WORKERS={workers_text!r} is not a whole number of processes from 0 to 64")
    concurrency_text = os.environ.get("FRAUDNET_NEO4J_CONCURRENCY", "").strip() or "4"
    if not concurrency_text.isdigit() or not 1 <= int(concurrency_text) <= 256:
        raise ConfigError(f"FRAUDNET_NEO4J_CONCURRENCY={concurrency_text!r} is not a whole number of queries from "
                          "1 to 256")
    projection_text = os.environ.get("FRAUDNET_NEO4J_PROJECTION", "").strip().lower() or "1"
    if projection_text not in ("0", "1", "true", "false", "on", "off", "yes", "no"):
        raise ConfigError(f"FRAUDNET_NEO4J_PROJECTION={projection_text!r} is not one of 1/0, on/off, true/false")
    poll_text = os.environ.get("FRAUDNET_NEO4J_PROJECTION_POLL", "").strip() or "10"
    try:
        poll_s = float(poll_text)
    except ValueError:
        poll_s = -1.0
    if not 0.5 <= poll_s <= 3600:
        raise ConfigError(f"FRAUDNET_NEO4J_PROJECTION_POLL={poll_text!r} is not a number of seconds from 0.5 to 3600")
    return Settings(
        workspace=ws,
        neo4j_uri=os.environ.get("NEO4J_URI", ""),
        neo4j_user=os.environ.get("NEO4J_USER", "neo4j"),
        neo4j_password=os.environ.get("NEO4J_PASSWORD", "") or _workspace_neo4j_password(ws),
        neo4j_database=os.environ.get("NEO4J_DATABASE", "neo4j"),
        graph_workers=int(workers_text),
        neo4j_concurrency=int(concurrency_text),
        neo4j_projection=projection_text in ("1", "true", "on", "yes"),
        neo4j_projection_poll_s=poll_s,
    )
