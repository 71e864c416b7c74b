"""API tokens in `<workspace>/tokens.db` (SQLite, mode 0600), apart from the claims store.

Tokens look like `fn_<token_id>_<secret>`; only their SHA-256 is stored. They expire (`DEFAULT_EXPIRY_DAYS`
unless given) and can be revoked at any time, also while `fraudnet serve` holds the claims store: SQLite lets
several processes write one small file, and every change replaces `tokens.rev`, whose identity a running server
checks (one `stat`) before it trusts a token it verified earlier. So a revocation applies to the next request.

Token changes made while the claims store is locked by the server are queued here (`audit_pending`) and written
to the audit log by the server when it sees the change, or by the next command that writes the claims store.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fraudnet.errors import InvalidRequestError, NotFoundError, StoreError

__all__ = ["ROLES", "TOKENS_FILE", "REVISION_FILE", "DEFAULT_EXPIRY_DAYS", "TokenInfo", "TokenStore",
           "token_store"]

ROLES: tuple[str, ...] = ("admin", "investigator", "viewer")
TOKENS_FILE = "tokens.db"
REVISION_FILE = "tokens.rev"
DEFAULT_EXPIRY_DAYS = 90
_USER_RE = re.compile(r"^[\w.@\-\u4e00-\u9fff]{1,64}$")
TOKEN_RE = re.compile(r"^fn_([0-9a-f]{8})_([A-Za-z0-9_\-]{20,100})$")
_TOUCH_EVERY_S = 60.0  # last_used_at is written at most this often per token

_DDL = (
    """CREATE TABLE IF NOT EXISTS tokens (
        token_id TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT, last_used_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS audit_pending (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
# Columns added after the first release, with their type: a tokens.db of an older version gains them on open.
_ADDED_COLUMNS = (("regions", "TEXT"), ("cases", "TEXT"))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _text(value: datetime | None) -> str | None:
    return value.isoformat(sep=" ") if value else None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """An API token's owner, role and dates (never the token itself)."""

    token_id: str
    user: str
    role: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    regions: tuple[str, ...] = ()  # admdvs prefixes the token is limited to (`fraudnet.claims.scope`)
    cases: tuple[str, ...] = ()  # lead ids the token is limited to

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= _now()

    def to_dict(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "user": self.user, "role": self.role, "created_at": self.created_at,
                "expires_at": self.expires_at, "revoked_at": self.revoked_at, "last_used_at": self.last_used_at,
                "regions": list(self.regions), "cases": list(self.cases)}


_COLUMNS = "token_id, user, role, created_at, revoked_at, last_used_at, expires_at, regions, cases"
_NCOLS = 9


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v for v in (value or "").split(",") if v)


def _info(row: tuple) -> TokenInfo:
    return TokenInfo(row[0], row[1], row[2], _when(row[3]), _when(row[4]), _when(row[5]), _when(row[6]),
                     _split(row[7]), _split(row[8]))


class TokenStore:
    """The token file of one workspace; safe to share between threads (one connection behind a lock)."""

    def __init__(self, workspace: str | Path) -> None:
        self.workspace = Path(workspace)
        self.path = self.workspace / TOKENS_FILE
        self.revision_path = self.workspace / REVISION_FILE
        self._lock = threading.Lock()
        self._touched: dict[str, float] = {}
        self.workspace.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))  # created 0600 before SQLite opens it
            os.chmod(self.path, 0o600)
            self._con = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None,
                                        check_same_thread=False)
            for ddl in _DDL:
                self._con.execute(ddl)
            have = {r[1] for r in self._con.execute("PRAGMA table_info(tokens)").fetchall()}
            for column, kind in _ADDED_COLUMNS:
                if column not in have:  # a tokens.db of an older version: its tokens keep full access
                    with contextlib.suppress(sqlite3.OperationalError):  # another process added it meanwhile
                        self._con.execute(f"ALTER TABLE tokens ADD COLUMN {column} {kind}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the token store {self.path}: {exc}") from exc
        if not self.revision_path.exists():
            self._bump()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")
                try:
                    yield self._con
                    self._con.execute("COMMIT")
                except BaseException:
                    self._con.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"token store {self.path}: {exc}") from exc

    def _bump(self) -> None:
        """Replace `tokens.rev` (a new inode): a server compares its identity before trusting a cached token."""
        tmp = self.revision_path.with_name(f".{REVISION_FILE}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(8) + "\n")
        os.replace(tmp, self.revision_path)

    def revision(self) -> tuple[int, int, int]:
        """Identity of the last change (inode, mtime ns, size of `tokens.rev`); a stat, no lock, no query."""
        try:
            st = os.stat(self.revision_path)
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def create(self, user: str, role: str, expires_days: float | None = DEFAULT_EXPIRY_DAYS,
               regions: Iterable[str] = (), cases: Iterable[str] = ()) -> str:
        """Create a token for `user` with `role`; it expires after `expires_days` (None or 0: never). With
        `regions` (admdvs prefixes of 2, 4 or 6 digits) and/or `cases` (lead ids) it sees only that scope
        (`fraudnet.claims.scope`). Returns the token (shown once)."""
        from fraudnet.claims.scope import check_cases, check_regions

        regions, cases = check_regions(regions), check_cases(cases)
        if role not in ROLES:
            raise InvalidRequestError(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")
        if not isinstance(user, str) or not _USER_RE.match(user):
            raise InvalidRequestError(
                f"user {user!r} must be 1–64 letters, digits, Chinese characters or . _ @ -", field="user")
        if expires_days is not None and expires_days < 0:
            raise InvalidRequestError(f"expiry of {expires_days} days is negative", field="expires")
        now = _now()
        expires = now + timedelta(days=expires_days) if expires_days else None
        with self._tx() as con:
            token_id = secrets.token_hex(4)
            while con.execute("SELECT 1 FROM tokens WHERE token_id = ?", [token_id]).fetchone():
                token_id = secrets.token_hex(4)
            token = f"fn_{token_id}_{secrets.token_urlsafe(32)}"
            con.execute("INSERT INTO tokens (token_id, user, role, token_hash, created_at, expires_at, regions, "
                        "cases) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [token_id, user, role, hash_token(token), _text(now), _text(expires),
                         ",".join(regions) or None, ",".join(cases) or None])
        self._bump()
        return token

    def revoke(self, token_id_or_user: str) -> list[str]:
        """Revoke a token by its id (`fn_<id>_…`, the id alone, or the whole token) or every token of a user;
        returns the revoked ids, raises NotFoundError when nothing active matched."""
        key = token_id_or_user.strip()
        match = TOKEN_RE.match(key)
        if match:
            key = match.group(1)
        with self._tx() as con:
            ids = [r[0] for r in con.execute(
                "SELECT token_id FROM tokens WHERE (token_id = ? OR user = ?) AND revoked_at IS NULL",
                [key, key]).fetchall()]
            if not ids:
                raise NotFoundError(f"no active token with id or user {token_id_or_user!r}")
            con.executemany("UPDATE tokens SET revoked_at = ? WHERE token_id = ?",
                            [(_text(_now()), i) for i in ids])
        self._bump()
        return ids

    def list(self, include_revoked: bool = True) -> list[TokenInfo]:
        """All tokens (without secrets), oldest first; revoked ones unless `include_revoked` is False."""
        with self._lock:
            rows = self._con.execute(
                f"SELECT {_COLUMNS} FROM tokens WHERE revoked_at IS NULL OR ? ORDER BY created_at, token_id",
                [include_revoked]).fetchall()
        return [_info(r) for r in rows]

    def verify(self, token: str) -> TokenInfo | None:
        """The token's owner and role, or None for an unknown, malformed, revoked or expired token."""
        if not isinstance(token, str) or not TOKEN_RE.match(token):
            return None
        with self._lock:
            row = self._con.execute(f"SELECT {_COLUMNS}, token_hash FROM tokens WHERE token_id = ?",
                                    [token[3:11]]).fetchone()
        if row is None or not hmac.compare_digest(row[_NCOLS], hash_token(token)):
            return None
        info = _info(row[:_NCOLS])
        if info.revoked_at is not None or info.expired:
            return None
        return info

    def touch(self, token_id: str) -> None:
        """Record that a token was used (at most once a minute per token; best effort)."""
        import time

        now = time.monotonic()
        if now - self._touched.get(token_id, -1e9) < _TOUCH_EVERY_S:
            return
        self._touched[token_id] = now
        try:
            with self._lock:
                self._con.execute("UPDATE tokens SET last_used_at = ? WHERE token_id = ?",
                                  [_text(_now()), token_id])
        except sqlite3.Error:  # busy: another process is writing; the next use records it
            pass

    def queue_audit(self, action: str, detail: dict[str, Any]) -> None:
        """Keep an audit entry for the claims store's audit log (written by `drain_audit`)."""
        with self._tx() as con:
            con.execute("INSERT INTO audit_pending (at, action, detail) VALUES (?, ?, ?)",
                        [_text(_now()), action, json.dumps(detail, ensure_ascii=False, sort_keys=True)])
        self._bump()  # a running server drains the queue when it sees the change

    def drain_audit(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Take the queued audit entries (time, action, detail), oldest first."""
        with self._tx() as con:
            rows = con.execute("SELECT id, at, action, detail FROM audit_pending ORDER BY id").fetchall()
            if rows:
                con.execute("DELETE FROM audit_pending WHERE id <= ?", [rows[-1][0]])
        return [(r[1], r[2], json.loads(r[3])) for r in rows]

    @property
    def legacy_checked(self) -> bool:
        """Whether the claims store's old `api_tokens` table was looked at already (it is copied once only:
        rows written there later, by whoever can write the claims store, never become tokens)."""
        with self._lock:
            return self._con.execute("SELECT 1 FROM meta WHERE key = 'legacy_checked'").fetchone() is not None

    def mark_legacy_checked(self) -> None:
        with self._tx() as con:
            con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('legacy_checked', ?)", [_text(_now())])

    def import_rows(self, rows: list[tuple]) -> int:
        """Copy tokens of the claims store's old `api_tokens` table (token_id, user, role, token_hash, created_at,
        revoked_at, last_used_at); they expire `DEFAULT_EXPIRY_DAYS` after the copy. Returns how many were new."""
        expires = _text(_now() + timedelta(days=DEFAULT_EXPIRY_DAYS))
        with self._tx() as con:
            before = con.execute("SELECT count(*) FROM tokens").fetchone()[0]
            con.executemany(
                "INSERT OR IGNORE INTO tokens (token_id, user, role, token_hash, created_at, expires_at, revoked_at, "
                "last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(r[0], r[1], r[2], r[3], _text(r[4]), expires, _text(r[5]), _text(r[6])) for r in rows])
            added = con.execute("SELECT count(*) FROM tokens").fetchone()[0] - before
        if added:
            self._bump()
        return added

    def close(self) -> None:
        with self._lock:
            self._con.close()


_STORES: dict[Path, TokenStore] = {}
_BY_NAME: dict[str, TokenStore] = {}  # the workspace as given → its store (no path resolution per request)
_STORES_LOCK = threading.Lock()


def token_store(workspace: str | Path) -> TokenStore:
    """The process's token store of a workspace (opened once)."""
    name = os.fspath(workspace)
    store = _BY_NAME.get(name)
    if store is not None:
        return store
    path = Path(workspace).resolve()
    with _STORES_LOCK:
        store = _STORES.get(path)
        if store is None:
            store = _STORES[path] = TokenStore(path)
        _BY_NAME[name] = store
        return store
