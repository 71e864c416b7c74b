"""Case files (案卷): a lead's link chart as an investigator left it, kept with every saved version.

A case file belongs to one lead and its owner; each save appends a version (never overwritten) holding the
chart state: node ids with positions and pinned/hidden flags, annotations on nodes and links, free-text notes,
layout, viewport and time window. Only ids and the user's own words are stored: labels, names and figures are
read again (and masked for the reader's role) whenever the file is opened or exported. The owner may share a
file with colleagues by user name; admins see every file.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from fraudnet.errors import InvalidRequestError, NotFoundError, PermissionDeniedError

__all__ = ["ensure_casefile_tables", "create_casefile", "save_version", "get_casefile", "list_casefiles",
           "share_casefile", "can_read", "can_write"]

_DDL = (
    """CREATE TABLE IF NOT EXISTS casefiles (
        casefile_id VARCHAR PRIMARY KEY, lead_id VARCHAR NOT NULL, title VARCHAR NOT NULL, owner VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL, latest_version INTEGER NOT NULL,
        shared_with VARCHAR[] NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS casefile_versions (
        casefile_id VARCHAR NOT NULL, version INTEGER NOT NULL, saved_by VARCHAR NOT NULL, saved_at TIMESTAMP NOT NULL,
        comment VARCHAR, state JSON NOT NULL, PRIMARY KEY (casefile_id, version))""",
)


def ensure_casefile_tables(con: Any) -> None:
    for ddl in _DDL:
        con.execute(ddl)


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def _row(con: Any, casefile_id: str) -> dict[str, Any] | None:
    r = con.execute("SELECT casefile_id, lead_id, title, owner, created_at, updated_at, latest_version, shared_with "
                    "FROM casefiles WHERE casefile_id = ?", [casefile_id]).fetchone()
    if r is None:
        return None
    keys = ("casefile_id", "lead_id", "title", "owner", "created_at", "updated_at", "latest_version", "shared_with")
    out = dict(zip(keys, r, strict=True))
    out["shared_with"] = list(out["shared_with"] or [])
    return out


def can_read(meta: dict[str, Any], user: str, role: str) -> bool:
    return role == "admin" or user == meta["owner"] or user in meta["shared_with"]


def can_write(meta: dict[str, Any], user: str, role: str) -> bool:
    return role in ("admin", "investigator") and can_read(meta, user, role)


def create_casefile(con: Any, lead_id: str, title: str, owner: str, state: dict[str, Any],
                    comment: str | None = None) -> dict[str, Any]:
    """A new case file with its first version; returns it as `get_casefile` does."""
    ensure_casefile_tables(con)
    cid = "CF" + secrets.token_hex(8).upper()
    now = _now()
    con.execute("BEGIN")
    try:
        con.execute("INSERT INTO casefiles VALUES (?, ?, ?, ?, ?, ?, 1, ?::VARCHAR[])",
                    [cid, lead_id, title, owner, now, now, []])
        con.execute("INSERT INTO casefile_versions VALUES (?, 1, ?, ?, ?, ?)",
                    [cid, owner, now, comment, json.dumps(state, ensure_ascii=False)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return get_casefile(con, cid, owner, "admin")


def _require(con: Any, casefile_id: str, user: str, role: str) -> dict[str, Any]:
    ensure_casefile_tables(con)
    meta = _row(con, casefile_id)
    if meta is None or not can_read(meta, user, role):
        # Someone else's unshared file answers like a missing one.
        raise NotFoundError(f"case file {casefile_id!r} not found / 案卷不存在")
    return meta


def save_version(con: Any, casefile_id: str, user: str, role: str, state: dict[str, Any],
                 comment: str | None = None, title: str | None = None) -> dict[str, Any]:
    """Append a version (the owner, colleagues it is shared with, admins; not viewers)."""
    meta = _require(con, casefile_id, user, role)
    if not can_write(meta, user, role):
        raise PermissionDeniedError(f"{user} may read but not change case file {casefile_id}")
    version = int(meta["latest_version"]) + 1
    now = _now()
    con.execute("BEGIN")
    try:
        con.execute("INSERT INTO casefile_versions VALUES (?, ?, ?, ?, ?, ?)",
                    [casefile_id, version, user, now, comment, json.dumps(state, ensure_ascii=False)])
        con.execute("UPDATE casefiles SET latest_version = ?, updated_at = ?, title = coalesce(?, title) "
                    "WHERE casefile_id = ?", [version, now, title, casefile_id])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return get_casefile(con, casefile_id, user, role)


def get_casefile(con: Any, casefile_id: str, user: str, role: str, version: int | None = None) -> dict[str, Any]:
    """The case file with the state of `version` (latest by default) and the list of versions."""
    meta = _require(con, casefile_id, user, role)
    versions = con.execute("SELECT version, saved_by, saved_at, comment FROM casefile_versions "
                           "WHERE casefile_id = ? ORDER BY version", [casefile_id]).fetchall()
    want = meta["latest_version"] if version is None else int(version)
    found = con.execute("SELECT state FROM casefile_versions WHERE casefile_id = ? AND version = ?",
                        [casefile_id, want]).fetchone()
    if found is None:
        raise InvalidRequestError(f"case file {casefile_id} has no version {want} (1–{meta['latest_version']})",
                                  field="version")
    state = found[0]
    return {**meta, "version": want, "state": json.loads(state) if isinstance(state, str) else state,
            "versions": [{"version": v, "saved_by": u, "saved_at": t, "comment": c} for v, u, t, c in versions]}


def list_casefiles(con: Any, user: str, role: str, lead_id: str | None = None) -> list[dict[str, Any]]:
    """Case files the user may open (own, shared with them, or all for admins), newest first."""
    ensure_casefile_tables(con)
    rows = con.execute(
        "SELECT casefile_id FROM casefiles WHERE (? IS NULL OR lead_id = ?) "
        "AND (? = 'admin' OR owner = ? OR list_contains(shared_with, ?)) ORDER BY updated_at DESC, casefile_id",
        [lead_id, lead_id, role, user, user]).fetchall()
    return [m for m in (_row(con, r[0]) for r in rows) if m is not None]


def share_casefile(con: Any, casefile_id: str, user: str, role: str, users: list[str]) -> dict[str, Any]:
    """Share with colleagues (the owner or an admin); their own role's masking applies when they open it."""
    meta = _require(con, casefile_id, user, role)
    if role != "admin" and user != meta["owner"]:
        raise PermissionDeniedError(f"only the owner ({meta['owner']}) or an admin may share case file "
                                    f"{casefile_id}")
    merged = sorted({*meta["shared_with"], *(u.strip() for u in users if u.strip())} - {meta["owner"]})
    con.execute("UPDATE casefiles SET shared_with = ?::VARCHAR[], updated_at = ? WHERE casefile_id = ?",
                [merged, _now(), casefile_id])
    return get_casefile(con, casefile_id, user, role)
