"""Authentication (bearer tokens checked against the workspace's token store, cached for a few seconds), role
checks, and the audit helper the routes call. The dependencies built on these are in `fraudnet.api.deps`;
`Principal` and PII masking are in `fraudnet.api.principal` (re-exported here)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from fraudnet.api.principal import CASE_ROLES, Principal, mask_node, mask_profile, masked_props, person_ids
from fraudnet.claims.audit import AuditLog
from fraudnet.claims.scope import Scope
from fraudnet.claims.tokens import TokenInfo, TokenStore, token_store
from fraudnet.config import Settings
from fraudnet.errors import NotAuthenticatedError, PermissionDeniedError

__all__ = [
    "Principal",
    "TokenCache",
    "authenticate",
    "check_role",
    "mask_node",
    "mask_profile",
    "masked_props",
    "record_audit",
    "person_ids",
    "CASE_ROLES",
]

log = logging.getLogger(__name__)

_TOKEN_CACHE_TTL_S = 30.0


class TokenCache:
    """Verified tokens for a few seconds, so that a burst of requests does not re-read the token store.

    Every lookup first compares the token store's revision (a `stat` of `tokens.rev`, replaced on each create,
    revoke or queued audit entry, also by another process): on a change the cache is emptied, so a revocation
    applies to the next request. An entry is also dropped when its token expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, Principal, float]] = {}
        self._rev: tuple[int, int, int] | None = None

    def sync(self, rev: tuple[int, int, int]) -> bool:
        """Empty the cache when the token store changed since the last call; True if it did."""
        with self._lock:
            if rev == self._rev:
                return False
            self._rev = rev
            self._items.clear()
            return True

    def get(self, token: str) -> Principal | None:
        with self._lock:
            hit = self._items.get(token)
            if hit is None or time.monotonic() - hit[0] > _TOKEN_CACHE_TTL_S or time.time() >= hit[2]:
                return None
            return hit[1]

    def put(self, token: str, principal: Principal, rev: tuple[int, int, int], expires: float) -> None:
        """Remember a token verified when the store was at `rev` (not if it changed meanwhile)."""
        with self._lock:
            if rev != self._rev:
                return
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[token] = (time.monotonic(), principal, expires)


def _unauthorized(message: str) -> NotAuthenticatedError:
    return NotAuthenticatedError(message)  # 401 with `WWW-Authenticate: Bearer` (fraudnet.api.errors)


async def authenticate(request: Request, settings: Settings, audit: AuditLog) -> Principal:
    """The caller of a `Authorization: Bearer <token>` request; 401 for a missing, unknown, expired or revoked
    token (`fraudnet.api.deps.get_principal`).

    Async so that a token seen within the last seconds is checked on the event loop without a thread hop;
    the token table is read on a worker thread."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise _unauthorized("missing Authorization: Bearer <token> header (缺少访问令牌)")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Authorization header must be 'Bearer <token>' (令牌格式错误)")
    token = token.strip()
    cache: TokenCache = request.app.state.token_cache
    tokens = token_store(settings.workspace)
    rev = tokens.revision()
    if cache.sync(rev):
        await run_in_threadpool(_drain_token_audit, audit, tokens)
    principal = cache.get(token)
    if principal is None:
        info = await run_in_threadpool(_verify, tokens, token)
        if info is None:
            raise _unauthorized("unknown, expired or revoked token (令牌无效、已过期或已吊销)")
        principal = Principal(user=info.user, role=info.role, token_id=info.token_id,
                              scope=Scope.of(info.regions, info.cases))
        expires = info.expires_at.replace(tzinfo=UTC).timestamp() if info.expires_at else float("inf")
        cache.put(token, principal, rev, expires)
    request.state.principal = principal
    return principal


def _verify(tokens: TokenStore, token: str) -> TokenInfo | None:
    info = tokens.verify(token)
    if info is not None:
        tokens.touch(info.token_id)
    return info


def _drain_token_audit(audit: AuditLog, tokens: TokenStore) -> None:
    """Token changes made by `fraudnet tokens` while this server holds the claims store go to the audit log."""
    try:
        for at, action, detail in tokens.drain_audit():
            audit.append("cli", action, role="admin", detail={**detail, "queued_at": at})
    except Exception:  # the request goes on; the entries stay queued only if the drain itself failed
        log.exception("audit: could not take the queued token changes")


def check_role(principal: Principal, roles: tuple[str, ...]) -> Principal:
    """The principal when its role is one of `roles`; PermissionDeniedError (403) otherwise."""
    if principal.role not in roles:
        raise PermissionDeniedError(f"role {principal.role!r} may not do this; needs {' or '.join(roles)} "
                                    f"(当前角色 {principal.role} 无此权限)")
    return principal


# ------------------------------------------------------------------------------------------------ audit
def record_audit(audit: AuditLog, request: Request, principal: Principal, action: str,
                 entities: Iterable[str] = (), detail: dict[str, Any] | None = None,
                 status_code: int = 200) -> None:
    """Queue who/what/when/which entities for the audit log (written by the server's audit writer)."""
    query = str(request.url.query)
    path = request.url.path + (f"?{query}" if query else "")
    audit.append(principal.user, action, role=principal.role, entities=entities, method=request.method,
                     path=path[:2000], status_code=status_code, detail=detail)
