"""Append-only audit log and API tokens (stored only as hashes) in the claims store.

Tables (created on first use):
- `audit_log` — one row per audited action: `seq` (1, 2, …), `at` (UTC), `user`, `role`, `action` (e.g.
  `entity.profile`, `lead.status`), `method`, `path`, `status_code`, `entities` (the node ids `Type:key` read or
  changed, as a JSON array: one string per entry is ≈ 3.5× cheaper for DuckDB to store than a list of the ≈ 500
  persons an ego network names; tables of the earlier `VARCHAR[]` form are converted on open), `detail` (JSON
  text), and a hash chain: `prev_hash`, `entry_hash` = SHA-256 of the previous hash and the entry's canonical
  JSON. Rows are only ever inserted; `verify_audit_chain` tells whether any row was edited or removed afterwards.
- `api_tokens` — `token_id`, `user`, `role`, `token_hash` (SHA-256 of the token; the token itself is shown
  once by `create_token` and never stored), `created_at`, `revoked_at`, `last_used_at`.

Tokens look like `fn_<token_id>_<secret>`: the id lets an operator name a token to revoke without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from fraudnet.errors import InvalidRequestError, NotFoundError, StoreError

__all__ = [
    "ROLES",
    "TokenInfo",
    "AuditEntry",
    "ensure_tables",
    "create_token",
    "revoke_token",
    "revoke",
    "list_tokens",
    "verify_token",
    "touch_token",
    "append_audit",
    "AuditLog",
    "query_audit",
    "verify_audit_chain",
]

log = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("admin", "investigator", "viewer")
_USER_RE = re.compile(r"^[\w.@\-\u4e00-\u9fff]{1,64}$")
_TOKEN_RE = re.compile(r"^fn_([0-9a-f]{8})_([A-Za-z0-9_\-]{20,100})$")
_GENESIS = "0" * 64
# One process appends at a time so that the hash chain stays linear.
_AUDIT_LOCK = threading.Lock()
# The audit_log columns in insert order, as Arrow types (for the writer's batch inserts). The entity lists are
# built as large_string lists: pyarrow converts Python lists to list<string> about 20× slower.
_ROW_NAMES = ("seq", "at", "user", "role", "action", "method", "path", "status_code", "entities", "detail",
              "prev_hash", "entry_hash")
_ROW_COLUMNS = ", ".join(f'"{name}"' for name in _ROW_NAMES)
_ROW_TYPES = (pa.int64(), pa.timestamp("us"), pa.string(), pa.string(), pa.string(), pa.string(), pa.string(),
              pa.int32(), pa.large_string(), pa.string(), pa.string(), pa.string())

_DDL = (
    """CREATE TABLE IF NOT EXISTS audit_log (
        seq BIGINT PRIMARY KEY, "at" TIMESTAMP NOT NULL, "user" VARCHAR NOT NULL, role VARCHAR,
        action VARCHAR NOT NULL, method VARCHAR, path VARCHAR, status_code INTEGER, entities VARCHAR,
        detail VARCHAR, prev_hash VARCHAR NOT NULL, entry_hash VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS api_tokens (
        token_id VARCHAR PRIMARY KEY, "user" VARCHAR NOT NULL, role VARCHAR NOT NULL,
        token_hash VARCHAR NOT NULL UNIQUE, created_at TIMESTAMP NOT NULL, revoked_at TIMESTAMP,
        last_used_at TIMESTAMP)""",
)


@dataclass(frozen=True)
class TokenInfo:
    """An API token's owner and role (never the token itself)."""

    token_id: str
    user: str
    role: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "user": self.user, "role": self.role, "created_at": self.created_at,
                "revoked_at": self.revoked_at, "last_used_at": self.last_used_at}


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log."""

    seq: int
    at: datetime
    user: str
    role: str | None
    action: str
    method: str | None
    path: str | None
    status_code: int | None
    entities: list[str]
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "user": self.user, "role": self.role, "action": self.action,
                "method": self.method, "path": self.path, "status_code": self.status_code,
                "entities": self.entities, "detail": self.detail}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_tables(con: Any) -> None:
    """Create the audit and token tables if missing, and convert an `audit_log` whose `entities` are still a
    `VARCHAR[]` to JSON text (a no-op on a read-only store that has them)."""
    try:
        for ddl in _DDL:
            con.execute(ddl)
        kind = con.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'audit_log' "
                           "AND column_name = 'entities'").fetchone()
        if kind and kind[0].endswith("[]"):
            with _AUDIT_LOCK:
                con.execute("ALTER TABLE audit_log ALTER COLUMN entities SET DATA TYPE VARCHAR "
                            "USING to_json(entities)::VARCHAR")
            log.info("audit: entities of audit_log converted to JSON text")
    except Exception as exc:  # read-only connection: fine when the tables exist
        have = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name IN ('audit_log', 'api_tokens')"
        ).fetchall()}
        if len(have) < 2:
            raise StoreError(f"audit: cannot create the audit/token tables ({exc})") from exc


# ---------------------------------------------------------------------------------------------------- tokens
def create_token(con: Any, user: str, role: str) -> str:
    """Create an API token for `user` with `role` (admin, investigator, viewer); returns it (shown once)."""
    if role not in ROLES:
        raise InvalidRequestError(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")
    if not isinstance(user, str) or not _USER_RE.match(user):
        raise InvalidRequestError(
            f"user {user!r} must be 1–64 letters, digits, Chinese characters or . _ @ -", field="user")
    ensure_tables(con)
    token_id = secrets.token_hex(4)
    while con.execute("SELECT 1 FROM api_tokens WHERE token_id = ?", [token_id]).fetchone():
        token_id = secrets.token_hex(4)
    token = f"fn_{token_id}_{secrets.token_urlsafe(32)}"
    con.execute('INSERT INTO api_tokens (token_id, "user", role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)',
                [token_id, user, role, _hash_token(token), _now()])
    return token


def revoke_token(con: Any, token_id_or_user: str) -> int:
    """Revoke a token by its id (`fn_<id>_…`, the id alone, or the whole token) or every token of a user.

    Returns how many tokens were revoked; raises NotFoundError when nothing matched.
    """
    ensure_tables(con)
    key = token_id_or_user.strip()
    match = _TOKEN_RE.match(key)
    if match:
        key = match.group(1)
    rows = con.execute(
        'SELECT token_id FROM api_tokens WHERE (token_id = ? OR "user" = ?) AND revoked_at IS NULL',
        [key, key]).fetchall()
    if not rows:
        raise NotFoundError(f"no active token with id or user {token_id_or_user!r}")
    ids = [r[0] for r in rows]
    con.execute("UPDATE api_tokens SET revoked_at = ? WHERE list_contains(?, token_id)", [_now(), ids])
    return len(ids)


def list_tokens(con: Any, include_revoked: bool = True) -> list[TokenInfo]:
    """All tokens (without secrets), oldest first."""
    ensure_tables(con)
    rows = con.execute(
        'SELECT token_id, "user", role, created_at, revoked_at, last_used_at FROM api_tokens '
        "WHERE revoked_at IS NULL OR ? ORDER BY created_at, token_id", [include_revoked]).fetchall()
    return [TokenInfo(*r) for r in rows]


def verify_token(con: Any, token: str) -> TokenInfo | None:
    """The active token's owner and role, or None for an unknown, malformed or revoked token."""
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        return None
    digest = _hash_token(token)
    row = con.execute(
        'SELECT token_id, "user", role, created_at, revoked_at, last_used_at, token_hash FROM api_tokens '
        "WHERE token_id = ?", [token[3:11]]).fetchone()
    if row is None or row[4] is not None or not hmac.compare_digest(row[6], digest):
        return None
    return TokenInfo(*row[:6])


def touch_token(con: Any, token_id: str) -> None:
    """Record that a token was just used (best effort: a concurrent update of the same row is skipped)."""
    try:
        con.execute("UPDATE api_tokens SET last_used_at = ? WHERE token_id = ?", [_now(), token_id])
    except Exception:  # duckdb.TransactionException on a concurrent update: the other writer wins
        pass


# ---------------------------------------------------------------------------------------------------- audit
def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _canonical(at: datetime, user: str, role: str | None, action: str, method: str | None, path: str | None,
               status_code: int | None, entities: Sequence[str], detail: str) -> str:
    """The text an entry's hash covers: its fields as one compact JSON array."""
    return json.dumps([at.isoformat(timespec="microseconds"), user, role, action, method, path, status_code,
                       list(entities), detail], ensure_ascii=False, separators=(",", ":"))


def _entities_json(entities: Sequence[str]) -> str:
    """The `entities` column's text: the list as `_canonical` writes it."""
    return json.dumps(list(entities), ensure_ascii=False, separators=(",", ":"))


def _canonical_from(at: datetime, user: str, role: str | None, action: str, method: str | None, path: str | None,
                    status_code: int | None, entities_json: str, detail: str) -> str:
    """`_canonical` with the entity list already written as `_entities_json` (not encoded a second time): a compact
    JSON array is its items' texts joined by commas."""
    head = json.dumps([at.isoformat(timespec="microseconds"), user, role, action, method, path, status_code],
                      ensure_ascii=False, separators=(",", ":"))
    return f"{head[:-1]},{entities_json},{json.dumps(detail, ensure_ascii=False)}]"


def _entities_of(text: str | list[str] | None) -> list[str]:
    """The entity list of a stored entry."""
    if text is None:
        return []
    return list(text) if isinstance(text, list) else json.loads(text)


def append_audit(con: Any, user: str, action: str, *, role: str | None = None, entities: Iterable[str] = (),
                 method: str | None = None, path: str | None = None, status_code: int | None = None,
                 detail: dict[str, Any] | None = None) -> int:
    """Append one entry to the audit log (who, what, when, which entities); returns its sequence number."""
    with _AUDIT_LOCK:
        seq, _ = _append(con, None, user, action, role, entities, method, path, status_code, detail)
    return seq


class AuditLog:
    """The audit writer of a long-running process (the API server).

    `append` queues the entry (who, what, when — the time is taken at the call) and returns at once; one
    writer thread assigns sequence numbers and hashes in call order and inserts the entries queued within
    `window_s` of each other in one transaction (a DuckDB commit costs milliseconds; a request should not wait
    for it, nor every entry pay for one). `flush` waits
    until everything queued is written; `close` flushes and stops the writer. Only one process writes a claims
    store at a time (DuckDB's file lock), so the writer may remember the chain's tail.
    """

    def __init__(self, connect: Callable[[], Any], max_batch: int = 500, window_s: float = 0.2) -> None:
        self._connect = connect
        self._max_batch = max_batch
        self._window_s = window_s
        self._queue: queue.Queue[tuple | None] = queue.Queue()
        self._tail: tuple[int, str] | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.errors = 0

    def append(self, user: str, action: str, *, role: str | None = None, entities: Iterable[str] = (),
               method: str | None = None, path: str | None = None, status_code: int | None = None,
               detail: dict[str, Any] | None = None) -> None:
        """Queue one entry (see `append_audit`)."""
        ents = list(dict.fromkeys(map(str, entities)))  # C loops: an ego read names ≈ 500 persons
        detail_text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=_json_default)
        self._ensure_thread()
        self._queue.put((_now(), user, role, action, method, path, status_code, ents, detail_text))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued entry is written (or `timeout` seconds pass)."""
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(("flush", done))  # type: ignore[arg-type]
        done.wait(timeout)

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=60)
            self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="fraudnet-audit", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        con = self._connect()
        try:
            stop = False
            while not stop:
                batch: list[tuple] = []
                waiters: list[threading.Event] = []
                item = self._queue.get()
                deadline = time.monotonic() + self._window_s
                while True:
                    if item is None:
                        stop = True
                    elif item[0] == "flush":
                        waiters.append(item[1])
                    else:
                        batch.append(item)
                    if stop or waiters or len(batch) >= self._max_batch:
                        break
                    # Group commit: gather what arrives within the window (each DuckDB commit syncs the log,
                    # ≈ 5 ms; under load one commit per entry kept a core busy). A flush or stop writes at once.
                    try:
                        item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                if batch:
                    self._write(con, batch)
                for w in waiters:
                    w.set()
        finally:
            try:
                con.close()
            except Exception:  # pragma: no cover
                pass

    def _write(self, con: Any, batch: list[tuple]) -> None:
        try:
            if self._tail is None:
                last = con.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
                self._tail = (int(last[0]), str(last[1])) if last else (0, _GENESIS)
            seq, prev = self._tail
            rows = []
            for at, user, role, action, method, path, status_code, ents, detail_text in batch:
                seq += 1
                ents_json = _entities_json(ents)
                body = _canonical_from(at, user, role, action, method, path, status_code, ents_json, detail_text)
                entry_hash = hashlib.sha256((prev + body).encode()).hexdigest()
                rows.append([seq, at, user, role, action, method, path, status_code, ents_json, detail_text, prev,
                             entry_hash])
                prev = entry_hash
            # One columnar insert per batch: `executemany` converts row by row under the interpreter lock, which
            # for entries naming hundreds of persons (an ego network's) stalled the whole server.
            table = pa.Table.from_arrays([pa.array(list(col), type=kind) for col, kind in
                                          zip(zip(*rows, strict=True), _ROW_TYPES, strict=True)], names=_ROW_NAMES)
            with _AUDIT_LOCK:
                con.execute("BEGIN TRANSACTION")
                try:
                    con.register("_audit_batch", table)
                    try:
                        con.execute(f"INSERT INTO audit_log ({_ROW_COLUMNS}) SELECT * FROM _audit_batch")
                    finally:
                        con.unregister("_audit_batch")
                    con.execute("COMMIT")
                except Exception:
                    con.execute("ROLLBACK")
                    raise
            self._tail = (seq, prev)
        except Exception:  # keep serving; the failure is logged and counted, the tail re-read next time
            self.errors += 1
            self._tail = None
            log.exception("audit: could not write %d entries", len(batch))


def _append(con: Any, tail: tuple[int, str] | None, user: str, action: str, role: str | None,
            entities: Iterable[str], method: str | None, path: str | None, status_code: int | None,
            detail: dict[str, Any] | None) -> tuple[int, str]:
    ents = list(dict.fromkeys(map(str, entities)))
    detail_text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=_json_default)
    at = _now()
    if tail is None:
        last = con.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        tail = (int(last[0]), str(last[1])) if last else (0, _GENESIS)
    seq, prev = tail[0] + 1, tail[1]
    ents_json = _entities_json(ents)
    body = _canonical_from(at, user, role, action, method, path, status_code, ents_json, detail_text)
    entry_hash = hashlib.sha256((prev + body).encode()).hexdigest()
    con.execute(
        f"INSERT INTO audit_log ({_ROW_COLUMNS}) VALUES ({', '.join('?' * len(_ROW_NAMES))})",
        [seq, at, user, role, action, method, path, status_code, ents_json, detail_text, prev, entry_hash])
    return seq, entry_hash


def query_audit(con: Any, *, user: str | None = None, entity: str | None = None, action: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                limit: int = 100) -> list[AuditEntry]:
    """Audit entries matching the filters, newest first (`entity` is a node id such as `Person:P001`)."""
    if not isinstance(limit, int) or limit < 1 or limit > 10_000:
        raise InvalidRequestError(f"limit must be between 1 and 10000, got {limit!r}", field="limit")
    where, params = ["TRUE"], []
    if user:
        where.append('"user" = ?')
        params.append(user)
    if entity:
        where.append("list_contains(from_json(entities, '[\"VARCHAR\"]'), ?)")
        params.append(entity)
    if action:
        where.append("(action = ? OR starts_with(action, ?))")
        params.extend([action, action + "."])
    if since:
        where.append('"at" >= ?')
        params.append(since)
    if until:
        where.append('"at" < ?')
        params.append(until)
    rows = con.execute(
        'SELECT seq, "at", "user", role, action, method, path, status_code, entities, detail FROM audit_log '
        f"WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT {int(limit)}", params).fetchall()
    return [AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], _entities_of(r[8]),
                       json.loads(r[9]) if r[9] else {}) for r in rows]


def verify_audit_chain(con: Any) -> tuple[bool, int | None]:
    """Recompute the hash chain; returns (True, None) or (False, seq of the first altered or missing entry)."""
    prev, expected = _GENESIS, 1
    cur = con.execute(
        'SELECT seq, "at", "user", role, action, method, path, status_code, entities, detail, prev_hash, '
        "entry_hash FROM audit_log ORDER BY seq")
    while True:
        batch = cur.fetchmany(10_000)
        if not batch:
            return True, None
        for r in batch:
            if r[0] != expected or r[10] != prev:
                return False, expected
            body = _canonical(r[1], r[2], r[3], r[4], r[5], r[6], r[7], _entities_of(r[8]), r[9] or "{}")
            if hashlib.sha256((prev + body).encode()).hexdigest() != r[11]:
                return False, r[0]
            prev, expected = r[11], expected + 1


# Short name used in the project notes (`list` is `list_tokens`: a module-level `list` would shadow the builtin).
revoke = revoke_token
