"""Investigators' read-only Cypher on Neo4j: READ access mode, a row limit, a server-side timeout, plain results.

The caller checks the text with `fraudnet.graph.cypher_guard.check_read_only` first; here Neo4j's `EXPLAIN` of
the statement is checked by `cypher_guard.check_plan` (read query type, no admin operator, allowed procedures
only) before it runs, and the READ session is the last guard (Neo4j refuses writes in a read transaction).
Parameters are always passed separately.
"""

from __future__ import annotations

import logging
import math
from datetime import date, datetime, time
from typing import Any

from fraudnet.errors import InvalidRequestError, Neo4jUnavailableError, QueryLimitError, StoreError
from fraudnet.graph.cypher_guard import check_plan
from fraudnet.graph.model import NODE_KEYS, node_id

__all__ = ["run_read_cypher", "plain_value"]

log = logging.getLogger(__name__)


def plain_value(value: Any) -> Any:
    """A Neo4j result value as JSON-friendly Python: nodes/relationships/paths as dicts, times as ISO strings."""
    import neo4j.graph

    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, neo4j.graph.Node):
        labels = sorted(value.labels)
        props = {k: plain_value(v) for k, v in dict(value).items()}
        nid = None
        for label in labels:
            key_prop = NODE_KEYS.get(label)
            if key_prop and props.get(key_prop) is not None:
                nid = node_id(label, str(props[key_prop]))
                break
        return {"id": nid or value.element_id, "labels": labels, "props": props}
    if isinstance(value, neo4j.graph.Relationship):
        return {"type": value.type, "start": plain_value(value.start_node), "end": plain_value(value.end_node),
                "props": {k: plain_value(v) for k, v in dict(value).items()}}
    if isinstance(value, neo4j.graph.Path):
        return {"nodes": [plain_value(n) for n in value.nodes],
                "relationships": [plain_value(r) for r in value.relationships]}
    to_native = getattr(value, "to_native", None)
    if to_native is not None:
        try:
            value = to_native()
        except (ValueError, OverflowError):
            return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return str(value)


def run_read_cypher(driver: Any, database: str, query: str, params: dict[str, Any] | None = None,
                    limit: int = 1000, timeout: float = 15.0) -> dict[str, Any]:
    """Run one statement in a READ session with `neo4j.Query(query, timeout=timeout)`.

    Returns `{columns, rows, truncated}` with at most `limit` rows (`truncated` when more were available).
    Raises InvalidRequestError for a statement Neo4j rejects (syntax, a write in read mode, bad parameters),
    QueryLimitError when the timeout is hit, Neo4jUnavailableError when Neo4j cannot be reached.
    """
    import neo4j

    if not 1 <= int(limit) <= 100_000:
        raise QueryLimitError(f"limit {limit} is outside 1..100000")
    rows: list[list[Any]] = []
    columns: list[str] = []
    truncated = False
    try:
        with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
            explained = session.run(neo4j.Query("EXPLAIN " + query, timeout=timeout), parameters=dict(params or {}))
            summary = explained.consume()
            check_plan(summary.query_type, summary.plan)
            result = session.run(neo4j.Query(query, timeout=timeout), parameters=dict(params or {}))
            columns = list(result.keys())
            for record in result:
                if len(rows) >= limit:
                    truncated = True
                    break
                rows.append([plain_value(v) for v in record.values()])
            result.consume()
    except neo4j.exceptions.ServiceUnavailable as exc:
        raise Neo4jUnavailableError(f"Neo4j is unreachable: {exc} / 无法连接 Neo4j") from exc
    except neo4j.exceptions.Neo4jError as exc:
        code = exc.code or ""
        message = exc.message or str(exc)
        if "TransactionTimedOut" in code or "Timeout" in code:
            raise QueryLimitError(f"query exceeded the {timeout:g} s timeout / 查询超时 ({code})") from exc
        if code.startswith("Neo.ClientError"):
            raise InvalidRequestError(f"Neo4j rejected the query: {message} ({code})", field="query") from exc
        raise StoreError(f"Neo4j query failed: {message} ({code})") from exc
    except neo4j.exceptions.DriverError as exc:
        raise InvalidRequestError(f"query or parameters not accepted by the driver: {exc}", field="query") from exc
    return {"columns": columns, "rows": rows, "truncated": truncated}
