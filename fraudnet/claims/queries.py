"""Investigator look-ups on the claims store: entity search by key or name, and a lead's evidence visits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from fraudnet.graph.model import node_id

__all__ = ["search_entities", "evidence_visits", "resolve_members", "EVIDENCE_VISIT_COLUMNS"]

EVIDENCE_VISIT_COLUMNS: tuple[str, ...] = (
    "mdtrt_id", "begntime", "endtime", "med_type", "psn_no", "fixmedins_code", "atddr_no", "dise_codg",
    "dise_name", "medfee_sumamt", "fund_pay_sumamt",
)
MAX_EVIDENCE = 5000

# (node type, table, key column, name column, extra condition)
_SEARCHABLE: tuple[tuple[str, str, str, str | None, str], ...] = (
    ("Person", "psn_info", "psn_no", "psn_name", "TRUE"),
    ("Practitioner", "prac_info", "prac_psn_code", "prac_psn_name", "TRUE"),
    ("Institution", "medins_info", "fixmedins_code", "fixmedins_name", "coalesce(fixmedins_type, '') <> '2'"),
    ("Pharmacy", "medins_info", "fixmedins_code", "fixmedins_name", "fixmedins_type = '2'"),
    ("Drug", "hilist", "hilist_code", "hilist_name", "TRUE"),
)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_entities(con: Any, q: str, limit: int = 20, by_name: bool = True,
                    types: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Entities whose key starts with `q` (case-insensitive) or, with `by_name`, whose name contains it.

    Order: exact key matches, key-prefix matches, then name matches; within each by type and key. Each hit is
    `{id, type, key, label, matched: "key"|"name"}`; the label is the name (callers mask it per role).
    """
    text = (q or "").strip()
    if not text:
        return []
    pattern_key = _escape_like(text.lower()) + "%"
    pattern_name = "%" + _escape_like(text) + "%"
    parts, params = [], []
    for rank_type, (node_type, table, key_col, name_col, cond) in enumerate(_SEARCHABLE):
        if types and node_type not in types:
            continue
        name_expr = f'"{name_col}"' if name_col else "NULL"
        name_match = f"OR {name_expr} LIKE ? ESCAPE '\\'" if by_name and name_col else ""
        parts.append(
            f"SELECT '{node_type}' AS type, {rank_type} AS type_rank, \"{key_col}\" AS key, {name_expr} AS name, "
            f"CASE WHEN lower(\"{key_col}\") = ? THEN 0 WHEN lower(\"{key_col}\") LIKE ? ESCAPE '\\' THEN 1 "
            f"ELSE 2 END AS rank FROM \"{table}\" WHERE ({cond}) AND "
            f"(lower(\"{key_col}\") LIKE ? ESCAPE '\\' {name_match})")
        params.extend([text.lower(), pattern_key, pattern_key])
        if name_match:
            params.append(pattern_name)
    if not parts:
        return []
    query = (" UNION ALL ".join(parts)) + f" ORDER BY rank, type_rank, key LIMIT {int(limit)}"
    try:
        rows = con.execute(query, params).fetchall()
    except duckdb.CatalogException:  # an empty workspace has no tables yet
        return []
    hits = []
    for node_type, _, key, name, rank in rows:
        hits.append({"id": node_id(node_type, key), "type": node_type, "key": key,
                     "label": name if name not in (None, "") else key, "matched": "key" if rank < 2 else "name"})
    return hits


def evidence_visits(con: Any, mdtrt_ids: Sequence[str], limit: int = MAX_EVIDENCE) -> list[dict[str, Any]]:
    """The visits (from `visit_fact`) with the given ids, oldest first, at most `limit`."""
    ids = [str(i) for i in mdtrt_ids][: max(0, int(limit))]
    if not ids:
        return []
    cols = ", ".join(EVIDENCE_VISIT_COLUMNS)
    try:
        rows = con.execute(
            f"SELECT {cols} FROM visit_fact WHERE mdtrt_id IN (SELECT unnest(?::VARCHAR[])) "
            "ORDER BY begntime, mdtrt_id",
            [ids]
        ).fetchall()
    except duckdb.CatalogException:
        return []
    out = []
    for r in rows:
        rec = dict(zip(EVIDENCE_VISIT_COLUMNS, r, strict=True))
        for k in ("medfee_sumamt", "fund_pay_sumamt"):
            if rec[k] is not None:
                rec[k] = round(float(rec[k]), 2)
        out.append(rec)
    return out


def resolve_members(con: Any, persons: Sequence[str] = (), practitioners: Sequence[str] = (),
                    institutions: Sequence[str] = ()) -> list[str]:
    """Graph node ids of a lead's members that exist in the reference tables.

    Institutions become `Pharmacy:` when `medins_info.fixmedins_type` is 2 and `Institution:` otherwise (the
    graph stores' rule); members unknown to the reference tables are left out.
    """
    out: list[str] = []
    lookups = (
        ("Person", "psn_info", "psn_no", None, persons),
        ("Practitioner", "prac_info", "prac_psn_code", None, practitioners),
        ("Institution", "medins_info", "fixmedins_code", "fixmedins_type", institutions),
    )
    for node_type, table, key_col, type_col, keys in lookups:
        keys = [str(k) for k in keys if k]
        if not keys:
            continue
        type_expr = f'"{type_col}"' if type_col else "NULL"
        try:
            rows = con.execute(
                f'SELECT DISTINCT "{key_col}", {type_expr} FROM "{table}" '
                f'WHERE "{key_col}" IN (SELECT unnest(?::VARCHAR[])) ORDER BY 1', [keys]).fetchall()
        except duckdb.CatalogException:
            continue
        for key, typ in rows:
            t = "Pharmacy" if node_type == "Institution" and str(typ or "") == "2" else node_type
            out.append(node_id(t, key))
    return out
