"""Read-only Cypher check: refuses write clauses and write/admin procedures before a query reaches Neo4j.

This is the first of two guards: the query is also run in a READ access-mode session, so Neo4j itself refuses
any write the text check might miss. The check strips comments, string literals and backtick-quoted names
first, so `MATCH (n {name: 'CREATE'})` passes and `MATCH (n) /* x */ DETACH DELETE n` does not.
"""

from __future__ import annotations

import re

from fraudnet.errors import InvalidRequestError

__all__ = ["check_read_only", "WRITE_CLAUSES", "MAX_QUERY_CHARS"]

MAX_QUERY_CHARS = 20_000

# Clause keywords that write or administer (matched as whole words, case-insensitive, outside literals).
WRITE_CLAUSES: tuple[str, ...] = (
    "CREATE", "MERGE", "SET", "DETACH DELETE", "DELETE", "DETACH", "REMOVE", "DROP", "LOAD CSV", "FOREACH", "ALTER",
    "GRANT", "DENY", "REVOKE", "RENAME", "START DATABASE", "STOP DATABASE", "TERMINATE", "ENABLE", "DISABLE", "USE",
    "IN TRANSACTIONS", "FINISH",
)
# Procedures that may be called from a read-only query (prefixes, lower case).
_ALLOWED_PROCEDURES: tuple[str, ...] = (
    "db.labels", "db.relationshiptypes", "db.propertykeys", "db.schema.", "db.indexes", "db.constraints",
    "db.info", "db.ping", "apoc.meta.", "apoc.path.", "apoc.algo.", "apoc.coll.", "apoc.text.", "apoc.map.",
    "apoc.convert.", "apoc.date.", "apoc.temporal.", "apoc.math.", "apoc.number.", "apoc.agg.", "apoc.label.",
    "apoc.neighbors.", "apoc.nodes.connected", "apoc.node.", "apoc.rel.", "apoc.util.md5", "apoc.util.sha",
    "apoc.spatial.distance", "apoc.stats.degrees", "apoc.version",
)
_GDS_READ_SUFFIXES: tuple[str, ...] = (".stream", ".stats", ".estimate")

_LITERALS = re.compile(
    r"""//[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`]|``)*`""", re.DOTALL)
_CALL = re.compile(r"\bCALL\s+([A-Za-z_][\w.]*)", re.IGNORECASE)


def _strip(query: str) -> str:
    def repl(m: re.Match[str]) -> str:
        s = m.group(0)
        if s.startswith("`"):
            return "`x`"
        if s.startswith(("'", '"')):
            return "''"
        return " "

    return _LITERALS.sub(repl, query)


def _word_pattern(clause: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(w) for w in clause.split())
    return re.compile(rf"(?<![\w$.]){words}(?![\w])", re.IGNORECASE)


_CLAUSE_PATTERNS = [(c, _word_pattern(c)) for c in WRITE_CLAUSES]


def check_read_only(query: str) -> str:
    """Return the query unchanged if it only reads; raise InvalidRequestError naming the offending clause.

    Refused: CREATE, MERGE, SET, DELETE/DETACH DELETE, REMOVE, DROP, LOAD CSV, FOREACH, schema and admin
    commands (ALTER, GRANT, DENY, REVOKE, RENAME, START/STOP DATABASE, TERMINATE, USE), `CALL {…} IN
    TRANSACTIONS`, and procedures outside a read-only allow list (`dbms.*`, `apoc.create.*`, `apoc.periodic.*`,
    `apoc.cypher.*`, `gds.*.write|mutate`, …).
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequestError("query must be a non-empty Cypher statement", field="query")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidRequestError(f"query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}",
                                  field="query")
    text = _strip(query)
    if "/*" in text:
        raise InvalidRequestError("query has an unterminated /* comment", field="query")
    if re.search(r"['\"`]", text.replace("''", "").replace("`x`", "")):
        raise InvalidRequestError("query has an unterminated string or quoted name", field="query")
    hits = []
    for clause, pattern in _CLAUSE_PATTERNS:
        m = pattern.search(text)
        if m:
            hits.append((m.start(), -len(clause), clause))
    if hits:
        clause = min(hits)[2]  # the first in the text (the longest name at one place: DETACH DELETE)
        raise InvalidRequestError(
            f"read-only Cypher: the {clause} clause is not allowed (只读查询，不允许 {clause})", field="query")
    for m in _CALL.finditer(text):
        name = m.group(1).lower()
        if name.startswith("gds.") and name.endswith(_GDS_READ_SUFFIXES):
            continue
        if any(name == p.rstrip(".") or name.startswith(p) for p in _ALLOWED_PROCEDURES):
            continue
        raise InvalidRequestError(
            f"read-only Cypher: procedure CALL {m.group(1)} is not allowed (不允许调用过程 {m.group(1)})",
            field="query")
    return query
