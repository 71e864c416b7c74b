"""Read-only Cypher check: refuses write clauses, admin commands and procedures outside a short allow list.

Three guards stand between an investigator's text and the data. `check_read_only` reads the text: it strips
comments and string literals (so `MATCH (n {name: 'CREATE'})` passes and `MATCH (n) /* x */ DETACH DELETE n`
does not) and reads backtick-quoted names as the names they are (`` CALL `dbms`.`listConfig`() `` is
`dbms.listConfig`). `check_plan` reads Neo4j's own `EXPLAIN` of the statement: only a read query type, no
`SHOW`/admin operator, procedure calls only from `ALLOWED_PROCEDURES`. Last, the statement runs in a READ
access-mode session, so Neo4j refuses any write both checks might miss.
"""

from __future__ import annotations

import re
from typing import Any

from fraudnet.errors import InvalidRequestError

__all__ = ["check_read_only", "check_plan", "WRITE_CLAUSES", "ALLOWED_PROCEDURES", "MAX_QUERY_CHARS"]

MAX_QUERY_CHARS = 20_000

# Clause keywords that write or administer (matched as whole words, case-insensitive, outside literals).
WRITE_CLAUSES: tuple[str, ...] = (
    "CREATE", "MERGE", "SET", "DETACH DELETE", "DELETE", "DETACH", "REMOVE", "DROP", "LOAD CSV", "FOREACH", "ALTER",
    "GRANT", "DENY", "REVOKE", "RENAME", "START DATABASE", "STOP DATABASE", "TERMINATE", "ENABLE", "DISABLE", "USE",
    "IN TRANSACTIONS", "FINISH",
)
# The only procedures a read-only query may call (exact names, lower case): schema look-ups for exploring the graph.
ALLOWED_PROCEDURES: frozenset[str] = frozenset({
    "db.labels", "db.relationshiptypes", "db.propertykeys", "db.schema.visualization",
    "db.schema.nodetypeproperties", "db.schema.reltypeproperties",
})
# Neo4j query types (ResultSummary.query_type) that only read.
_READ_QUERY_TYPES = frozenset({"r"})

_LITERALS = re.compile(
    r"""//[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`]|``)*`""", re.DOTALL)
_CALL = re.compile(r"\bCALL\s+([A-Za-z_][\w.]*)", re.IGNORECASE)
_ADMIN_COMMAND = re.compile(r"^\s*(SHOW|TERMINATE)\b", re.IGNORECASE)  # SHOW USERS/SETTINGS/TRANSACTIONS …
_PROC_NAME = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\(")


def _strip(query: str, names: bool = False) -> str:
    """The query without comments and string literals; quoted names become `x`, or with `names` the name they
    quote (`dbms`.`listConfig` is dbms.listConfig: how procedure calls are read)."""
    def repl(m: re.Match[str]) -> str:
        s = m.group(0)
        if s.startswith("`"):
            if not names:
                return "`x`"
            name = re.sub(r"[^\w.]", "_", s[1:-1].replace("``", "`"))
            return name if name and not name[0].isdigit() else "x" + name
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
    commands (ALTER, GRANT, DENY, REVOKE, RENAME, START/STOP DATABASE, TERMINATE, USE, SHOW), `CALL {…} IN
    TRANSACTIONS`, and procedure calls outside `ALLOWED_PROCEDURES`, however their names are quoted.
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
    admin = _ADMIN_COMMAND.match(text)
    if admin:
        raise InvalidRequestError(f"read-only Cypher: {admin.group(1).upper()} commands are not allowed "
                                  f"(只读查询，不允许 {admin.group(1).upper()} 命令)", field="query")
    hits = []
    for clause, pattern in _CLAUSE_PATTERNS:
        m = pattern.search(text)
        if m:
            hits.append((m.start(), -len(clause), clause))
    if hits:
        clause = min(hits)[2]  # the first in the text (the longest name at one place: DETACH DELETE)
        raise InvalidRequestError(
            f"read-only Cypher: the {clause} clause is not allowed (只读查询，不允许 {clause})", field="query")
    for m in _CALL.finditer(re.sub(r"\s*\.\s*", ".", _strip(query, names=True))):
        _check_procedure(m.group(1))
    return query


def _check_procedure(name: str) -> None:
    if name.lower() not in ALLOWED_PROCEDURES:
        raise InvalidRequestError(
            f"read-only Cypher: procedure CALL {name} is not allowed; allowed: {', '.join(sorted(ALLOWED_PROCEDURES))}"
            f" (不允许调用过程 {name})", field="query")


def _operators(plan: Any) -> list[tuple[str, dict[str, Any]]]:
    """(operator type without its `@runtime` suffix, arguments) of every operator of an EXPLAIN plan."""
    out: list[tuple[str, dict[str, Any]]] = []
    stack = [plan] if plan else []
    while stack:
        node = stack.pop()
        get = node.get if isinstance(node, dict) else (lambda k, d=None, n=node: getattr(n, k, d))
        op = str(get("operatorType", None) or get("operator_type", "") or "").split("@")[0]
        out.append((op, dict(get("args", None) or get("arguments", None) or {})))
        stack.extend(get("children", None) or [])
    return out


def check_plan(query_type: str | None, plan: Any) -> None:
    """Refuse a statement from Neo4j's EXPLAIN of it: a query type other than read, an admin or `SHOW`
    operator, or a procedure outside `ALLOWED_PROCEDURES` (whatever quoting or spacing hid it from the text)."""
    for op, args in _operators(plan):
        lowered = op.lower()
        if lowered.startswith(("show", "terminate", "create", "drop", "alter", "grant", "deny", "revoke")):
            raise InvalidRequestError(
                f"read-only Cypher: the {op} operation is not allowed (只读查询，不允许 {op})", field="query")
        if lowered == "procedurecall":
            m = _PROC_NAME.match(str(args.get("Details", "")))
            if not m:
                raise InvalidRequestError("read-only Cypher: a procedure call whose name cannot be read is not allowed"
                                          " (无法识别的过程调用)", field="query")
            _check_procedure(m.group(1))
    if query_type not in _READ_QUERY_TYPES:
        raise InvalidRequestError(
            f"read-only Cypher: Neo4j plans this statement as query type {query_type!r}, not a read "
            f"(只读查询，该语句不是只读类型)", field="query")
