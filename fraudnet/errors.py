"""One error hierarchy for fraudnet; messages name the offending value and where it came from."""

from __future__ import annotations

__all__ = [
    "FraudnetError",
    "ConfigError",
    "IngestError",
    "MissingTableError",
    "MissingColumnError",
    "StoreError",
    "Neo4jUnavailableError",
    "NotFoundError",
    "QueryLimitError",
    "DetectorError",
    "PermissionDeniedError",
    "NotAuthenticatedError",
    "InvalidRequestError",
    "CypherNotSupportedError",
]


class FraudnetError(Exception):
    """Base class of every error fraudnet raises on purpose."""


class ConfigError(FraudnetError):
    """A setting (environment variable, option, config file) is missing or invalid."""


class IngestError(FraudnetError):
    """Input files cannot be ingested as a whole (a row-level problem goes to quarantine instead)."""


class MissingTableError(IngestError):
    """A required table of the data contract is not in the input folder."""


class MissingColumnError(IngestError):
    """A required column is missing from an input file."""


class CypherNotSupportedError(ConfigError):
    """Read-only Cypher was asked of a graph store that has none (the embedded store): a mode, not a failure."""

    def __init__(self, store: str = "embedded") -> None:
        super().__init__(f"Cypher needs the Neo4j graph store; this server uses the {store} store (set NEO4J_URI "
                         "or start `fraudnet neo4j start`) / 仅 Neo4j 模式支持 Cypher 查询")
        self.store = store


class StoreError(FraudnetError):
    """The claims store or a graph store failed or was used wrongly."""


class Neo4jUnavailableError(StoreError):
    """Neo4j could not be reached at the configured URI."""


class NotFoundError(FraudnetError):
    """An entity, lead or job that was asked for does not exist."""


class QueryLimitError(FraudnetError):
    """A query asked for more than the configured limits allow (depth, nodes, rows, time)."""


class DetectorError(FraudnetError):
    """A detector was given invalid parameters or inputs."""


class PermissionDeniedError(FraudnetError):
    """The caller's role does not allow the action."""


class NotAuthenticatedError(FraudnetError):
    """The caller gave no valid credentials (missing, malformed, unknown, expired or revoked token)."""


class InvalidRequestError(FraudnetError):
    """A caller's parameter (filter, sort key, status transition…) is invalid; `field` names the parameter."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
