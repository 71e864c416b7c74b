"""Append-only audit log, keyed with a workspace secret and anchored by signed checkpoints outside the store.

Tables (created on first use):
- `audit_log` — one row per audited action: `seq` (1, 2, …), `at` (UTC), `user`, `role`, `action` (e.g.
  `entity.profile`, `lead.status`), `method`, `path`, `status_code`, `entities` (the node ids `Type:key` read or
  changed, as a JSON array: one string per entry is ≈ 3.5× cheaper for DuckDB to store than a list of the ≈ 500
  persons an ego network names; tables of the earlier `VARCHAR[]` form are converted on open), `detail` (JSON
  text), and a chain: `prev_hash`, `entry_hash` = HMAC-SHA256 under the workspace's audit key of the previous
  hash and the entry's canonical JSON.
- `api_tokens` — the token table of earlier versions, if present: tokens now live in `tokens.db`
  (`fraudnet.claims.tokens`), and this table is copied there when the store is opened.

Outside the claims store (so that whoever can write `claims.duckdb` cannot rewrite the evidence):
- `<workspace>/audit.key` (mode 0600; `FRAUDNET_AUDIT_KEY_FILE` names another place) — the chain's key. Without
  it an edited entry cannot be given a valid hash: recomputing a plain SHA-256 chain no longer verifies.
- `<workspace>/audit.checkpoints` — append-only JSON lines `{seq, head, count, time, sig}` signed with the key,
  written every `CHECKPOINT_EVERY` entries or `CHECKPOINT_INTERVAL_S` seconds, on flush and on shutdown. They
  reveal truncation (fewer entries than a checkpoint counted) and rows rewritten before a checkpoint.
- Migration: the first line (`"type": "genesis"`) is written when the key is created and records `keyed_from`:
  entries before it (an older workspace's plain SHA-256 chain) are verified the old way, and the head of that
  old chain is anchored by the genesis line itself.

`verify_audit` names the first entry that fails and why. What the chain does not prove: anyone holding the key
file (or root on the host) can forge a new history; entries written after the last checkpoint can be removed
unnoticed (at most `CHECKPOINT_INTERVAL_S` seconds of them). Copy the checkpoint file off the host for more.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from fraudnet.claims.tokens import DEFAULT_EXPIRY_DAYS, ROLES, TokenInfo, TokenStore, token_store
from fraudnet.errors import InvalidRequestError, StoreError
from fraudnet.privacy import create_secret_file

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
    "verify_audit",
    "AuditVerification",
    "AUDIT_KEY_FILE",
    "CHECKPOINT_FILE",
]

log = logging.getLogger(__name__)

_GENESIS = "0" * 64
AUDIT_KEY_FILE = "audit.key"
CHECKPOINT_FILE = "audit.checkpoints"
AUDIT_KEY_ENV = "FRAUDNET_AUDIT_KEY_FILE"
CHECKPOINT_EVERY = 1000
CHECKPOINT_INTERVAL_S = 10.0
# An in-memory claims store (tests) has no workspace: its chain is keyed with a key of this process.
_MEMORY_KEY = secrets.token_bytes(32)
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
)


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


def ensure_tables(con: Any) -> None:
    """Create the audit table if missing, convert an `audit_log` whose `entities` are still a `VARCHAR[]` to JSON
    text (a no-op on a read-only store that has it); on a workspace's store also copy the tokens of the old
    `api_tokens` table to tokens.db and write the token changes queued there while the store was busy."""
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
    except Exception as exc:  # read-only connection: fine when the table exists
        have = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'audit_log'"
                           ).fetchone()[0]
        if not have:
            raise StoreError(f"audit: cannot create the audit table ({exc})") from exc
        return
    if _database_path(con) is not None:
        drain_token_audit(con)


def drain_token_audit(con: Any) -> int:
    """Write the token changes queued in tokens.db (made while the server held the store) to the audit log."""
    if _database_path(con) is None:
        return 0
    store = _tokens_of(con)  # copies an old api_tokens table on first use
    items = store.drain_audit()
    for at, action, detail in items:
        append_audit(con, "cli", action, role="admin", detail={**detail, "queued_at": at})
    return len(items)


# ---------------------------------------------------------------------------------------------------- tokens
# Tokens live in `<workspace>/tokens.db` (`fraudnet.claims.tokens`). These helpers take the claims store's
# connection (its file names the workspace) or the workspace folder, as the earlier table-based ones did.
def _tokens_of(con_or_workspace: Any) -> TokenStore:
    if isinstance(con_or_workspace, str | os.PathLike):
        return token_store(con_or_workspace)
    db = _database_path(con_or_workspace)
    if db is None:
        raise StoreError("API tokens need a workspace: an in-memory claims store has no tokens.db")
    store = token_store(db.parent)
    _import_legacy_tokens(con_or_workspace, store)
    return store


def _import_legacy_tokens(con: Any, store: TokenStore) -> None:
    """Copy the tokens of the claims store's old `api_tokens` table into tokens.db, once per workspace (a row
    added to that table later never becomes a token)."""
    if store.path in _IMPORTED:
        return
    _IMPORTED.add(store.path)
    if store.legacy_checked:
        return
    try:
        has = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'api_tokens'"
                          ).fetchone()[0]
        rows = con.execute('SELECT token_id, "user", role, token_hash, created_at, revoked_at, last_used_at '
                           "FROM api_tokens").fetchall() if has else []
    except Exception as exc:  # a store that cannot be read now: try again in the next process
        log.debug("tokens: old api_tokens table not read (%s)", exc)
        return
    if rows and (added := store.import_rows(rows)):
        log.info("tokens: %d token(s) of the claims store's api_tokens table copied to %s", added, store.path)
    store.mark_legacy_checked()


_IMPORTED: set[Path] = set()


def create_token(con: Any, user: str, role: str, expires_days: float | None = DEFAULT_EXPIRY_DAYS) -> str:
    """Create an API token for `user` with `role` (admin, investigator, viewer), valid `expires_days` days;
    returns it (shown once). `con`: the claims store's connection or the workspace folder."""
    return _tokens_of(con).create(user, role, expires_days)


def revoke_token(con: Any, token_id_or_user: str) -> int:
    """Revoke a token by its id (`fn_<id>_…`, the id alone, or the whole token) or every token of a user.

    Returns how many tokens were revoked; raises NotFoundError when nothing matched. A running server refuses
    the token from its next request on."""
    return len(_tokens_of(con).revoke(token_id_or_user))


def list_tokens(con: Any, include_revoked: bool = True) -> list[TokenInfo]:
    """All tokens (without secrets), oldest first."""
    return _tokens_of(con).list(include_revoked)


def verify_token(con: Any, token: str) -> TokenInfo | None:
    """The active token's owner and role, or None for an unknown, malformed, revoked or expired token."""
    return _tokens_of(con).verify(token)


def touch_token(con: Any, token_id: str) -> None:
    """Record that a token was just used (best effort)."""
    _tokens_of(con).touch(token_id)


# ---------------------------------------------------------------------------------------------- chain key
class _Chain:
    """How entries of one claims store are hashed: HMAC-SHA256 under the audit key, and where checkpoints go."""

    def __init__(self, key: bytes, checkpoints: Path | None) -> None:
        self.key = key
        self.checkpoints = checkpoints
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    def entry_hash(self, prev: str, body: str) -> str:
        h = self._base.copy()  # copying the keyed state costs what one SHA-256 does
        h.update((prev + body).encode())
        return h.hexdigest()

    def sign(self, fields: dict[str, Any]) -> str:
        return hmac.new(self.key, b"fraudnet-audit-checkpoint\n" + _checkpoint_text(fields),
                        hashlib.sha256).hexdigest()

    def checkpoint(self, seq: int, head: str, **extra: Any) -> None:
        """Append one signed line `{seq, head, count, time, …, sig}` to the checkpoint file (O_APPEND, 0600)."""
        if self.checkpoints is None:
            return
        fields = {"seq": int(seq), "head": head, "count": int(seq),
                  "time": datetime.now(UTC).isoformat(timespec="seconds"), **extra}
        line = json.dumps({**fields, "sig": self.sign(fields)}, sort_keys=True, separators=(",", ":")) + "\n"
        fd = os.open(self.checkpoints, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def _checkpoint_text(fields: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in fields.items() if k != "sig"}, sort_keys=True,
                      separators=(",", ":")).encode()


def _database_path(con: Any) -> Path | None:
    """The claims store's file, or None for an in-memory database."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return Path(row[0]) if row and row[0] else None


def audit_key_path(workspace: Path) -> Path:
    """`FRAUDNET_AUDIT_KEY_FILE`, else `<workspace>/audit.key`."""
    override = os.environ.get(AUDIT_KEY_ENV, "").strip()
    return Path(override) if override else workspace / AUDIT_KEY_FILE


def _load_key(path: Path) -> bytes | None:
    if not path.exists():
        return None
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: audit key is not hex text ({exc})") from exc
    if len(key) < 16:
        raise StoreError(f"{path}: audit key is {len(key)} bytes, expected at least 16")
    return key


def _chain_for_write(con: Any) -> _Chain:
    """The chain of the store behind `con`; creates the audit key (0600) and the genesis checkpoint on first use.

    The genesis line records `keyed_from` (entries before it — an older workspace's plain SHA-256 chain — stay
    verifiable the old way) and anchors the head of that older chain."""
    db = _database_path(con)
    if db is None:
        return _Chain(_MEMORY_KEY, None)
    workspace = db.parent
    key_path = audit_key_path(workspace)
    key = _load_key(key_path)
    if key is not None:
        return _Chain(key, workspace / CHECKPOINT_FILE)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    new_key = secrets.token_bytes(32)
    if not create_secret_file(key_path, new_key.hex() + "\n"):
        return _chain_for_write(con)
    chain = _Chain(new_key, workspace / CHECKPOINT_FILE)
    last = con.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, head = (int(last[0]), str(last[1])) if last else (0, _GENESIS)
    chain.checkpoint(seq, head, type="genesis", keyed_from=seq + 1)
    if seq:
        log.info("audit: key created; entries 1..%d keep their unkeyed chain, anchored by the genesis checkpoint",
                 seq)
    return chain


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
        chain = _chain_for_write(con)
        seq, head = _append(con, chain, None, user, action, role, entities, method, path, status_code, detail)
        chain.checkpoint(seq, head)  # after the insert is committed: a checkpoint never counts a missing entry
    return seq


class AuditLog:
    """The audit writer of a long-running process (the API server).

    `append` queues the entry (who, what, when — the time is taken at the call) and returns at once; one
    writer thread assigns sequence numbers and hashes in call order and inserts the entries queued within
    `window_s` of each other in one transaction (a DuckDB commit costs milliseconds; a request should not wait
    for it, nor every entry pay for one). `flush` waits
    until everything queued is written; `close` flushes and stops the writer. Only one process writes a claims
    store at a time (DuckDB's file lock), so the writer may remember the chain's tail. A signed checkpoint is
    appended every `checkpoint_every` entries or `checkpoint_interval_s` seconds, on flush and on close.
    """

    def __init__(self, connect: Callable[[], Any], max_batch: int = 500, window_s: float = 0.2,
                 checkpoint_every: int = CHECKPOINT_EVERY,
                 checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self._connect = connect
        self._max_batch = max_batch
        self._window_s = window_s
        self._checkpoint_every = checkpoint_every
        self._checkpoint_interval_s = checkpoint_interval_s
        self._chain: _Chain | None = None
        self._checkpointed: tuple[int, float] = (0, time.monotonic())  # (seq, when) of the last checkpoint
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
                pending = self._tail is not None and self._tail[0] > self._checkpointed[0]
                try:  # idle with entries not yet checkpointed: checkpoint them when the interval is up
                    item = self._queue.get(timeout=self._checkpoint_interval_s if pending else None)
                except queue.Empty:
                    self._checkpoint()
                    continue
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
                if (waiters or stop) or (self._tail and (
                        self._tail[0] - self._checkpointed[0] >= self._checkpoint_every
                        or time.monotonic() - self._checkpointed[1] >= self._checkpoint_interval_s)):
                    self._checkpoint()
                for w in waiters:
                    w.set()
        finally:
            try:
                con.close()
            except Exception:  # pragma: no cover
                pass

    def _checkpoint(self) -> None:
        """Anchor the tail in the checkpoint file when entries were written since the last checkpoint."""
        tail, chain = self._tail, self._chain
        if tail is None or chain is None or tail[0] <= self._checkpointed[0]:
            return
        try:
            chain.checkpoint(*tail)
            self._checkpointed = (tail[0], time.monotonic())
        except OSError:
            self.errors += 1
            log.exception("audit: could not write a checkpoint")

    def _write(self, con: Any, batch: list[tuple]) -> None:
        try:
            if self._chain is None:
                self._chain = _chain_for_write(con)
            chain = self._chain
            if self._tail is None:
                last = con.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
                self._tail = (int(last[0]), str(last[1])) if last else (0, _GENESIS)
            seq, prev = self._tail
            rows = []
            for at, user, role, action, method, path, status_code, ents, detail_text in batch:
                seq += 1
                ents_json = _entities_json(ents)
                body = _canonical_from(at, user, role, action, method, path, status_code, ents_json, detail_text)
                entry_hash = chain.entry_hash(prev, body)
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


def _append(con: Any, chain: _Chain, tail: tuple[int, str] | None, user: str, action: str, role: str | None,
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
    entry_hash = chain.entry_hash(prev, body)
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


@dataclass(frozen=True)
class AuditVerification:
    """What `verify_audit` found: `ok`, the first entry that fails (`first_bad_seq`) and why (`reason`)."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None
    keyed_from: int | None = None  # first entry under the audit key (None: a workspace not migrated yet)
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "first_bad_seq": self.first_bad_seq, "reason": self.reason,
                "keyed_from": self.keyed_from, "checkpoints": self.checkpoints,
                "last_checkpoint_seq": self.last_checkpoint_seq}


def _read_checkpoints(path: Path, chain: _Chain) -> tuple[list[dict[str, Any]], str | None]:
    """The checkpoint lines, each signature checked; (lines, the first problem or None)."""
    if not path.exists():
        return [], None
    lines: list[dict[str, Any]] = []
    with path.open("r", encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                item = json.loads(text)
                fields = {k: v for k, v in item.items() if k != "sig"}
                good = isinstance(item.get("sig"), str) and hmac.compare_digest(chain.sign(fields), item["sig"])
                int(item["seq"]), int(item["count"]), str(item["head"])
            except (ValueError, KeyError, TypeError, AttributeError):
                return lines, f"{path.name} line {number} is not a checkpoint record"
            if not good:
                return lines, f"{path.name} line {number}: signature does not match (edited or forged checkpoint)"
            lines.append(item)
    return lines, None


def verify_audit(con: Any) -> AuditVerification:
    """Check the audit log: the keyed chain, every checkpoint's head, and that no checkpoint counted more entries
    than the log holds (truncation). Names the first entry that fails and the reason."""
    db = _database_path(con)
    cps: list[dict[str, Any]] = []
    keyed_from: int | None = 1
    chain = _Chain(_MEMORY_KEY, None)
    if db is not None:
        # Checkpoints are read before the entries: a checkpoint is written after its entries are committed, so
        # none read here can count an entry the later read of the log misses.
        cp_path = db.parent / CHECKPOINT_FILE
        key = _load_key(audit_key_path(db.parent))
        entries = int(con.execute("SELECT count(*) FROM audit_log").fetchone()[0])
        if key is None:
            if cp_path.exists():
                return AuditVerification(False, entries, None, f"the audit key {audit_key_path(db.parent)} is "
                                         "missing but checkpoints exist: the chain cannot be checked")
            keyed_from = None  # an older workspace that has not written since the key was introduced
        else:
            chain = _Chain(key, cp_path)
            cps, problem = _read_checkpoints(cp_path, chain)
            if problem:
                return AuditVerification(False, entries, None, problem, checkpoints=len(cps))
            if not cps or cps[0].get("type") != "genesis":
                return AuditVerification(False, entries, None, f"{CHECKPOINT_FILE} is missing or lost its first "
                                         "(genesis) line: the keyed chain is not anchored", checkpoints=len(cps))
            keyed_from = int(cps[0]["keyed_from"])
    anchors: dict[int, dict[str, Any]] = {}
    for cp in cps:
        anchors.setdefault(int(cp["seq"]), cp)
    last_cp = max((int(cp["seq"]) for cp in cps), default=None)
    counted = max((cp for cp in cps), key=lambda cp: int(cp["count"]), default=None)

    def result(ok: bool, n: int, bad: int | None = None, reason: str | None = None) -> AuditVerification:
        return AuditVerification(ok, n, bad, reason, keyed_from, len(cps), last_cp)

    prev, expected, vouched = _GENESIS, 1, 0  # vouched: the last entry a checkpoint confirmed
    cur = con.execute(
        'SELECT seq, "at", "user", role, action, method, path, status_code, entities, detail, prev_hash, '
        "entry_hash FROM audit_log ORDER BY seq")
    while True:
        batch = cur.fetchmany(10_000)
        if not batch:
            break
        for r in batch:
            seq = r[0]
            if seq != expected:
                return result(False, expected - 1, expected,
                              f"entry {expected} is missing (the next stored entry is {seq})")
            if r[10] != prev:
                return result(False, seq, seq, f"entry {seq} does not link to entry {seq - 1} (prev_hash differs)")
            body = _canonical(r[1], r[2], r[3], r[4], r[5], r[6], r[7], _entities_of(r[8]), r[9] or "{}")
            if keyed_from is None or seq < keyed_from:
                digest = hashlib.sha256((prev + body).encode()).hexdigest()
            else:
                digest = chain.entry_hash(prev, body)
            if not hmac.compare_digest(digest, r[11]):
                how = "under the audit key" if keyed_from is not None and seq >= keyed_from else "(unkeyed part)"
                return result(False, seq, seq, f"entry {seq} was altered: its hash {how} does not match its content")
            cp = anchors.get(seq)
            if cp is not None:
                if cp["head"] != r[11]:
                    return result(False, seq, vouched + 1,
                                  f"entries {vouched + 1}..{seq} were rewritten: entry {seq} is not the one "
                                  f"checkpointed at {cp.get('time')}")
                vouched = seq
            prev, expected = r[11], expected + 1
    n = expected - 1
    if counted is not None and int(counted["count"]) > n:
        return result(False, n, n + 1, f"truncated: the checkpoint of {counted.get('time')} counted "
                                       f"{counted['count']} entries, the log has {n} (entries {n + 1}.."
                                       f"{counted['count']} were removed)")
    return result(True, n)


def verify_audit_chain(con: Any) -> tuple[bool, int | None]:
    """(True, None), or (False, seq of the first altered or missing entry); see `verify_audit` for the reason."""
    found = verify_audit(con)
    return found.ok, found.first_bad_seq


# Short name used in the project notes (`list` is `list_tokens`: a module-level `list` would shadow the builtin).
revoke = revoke_token
