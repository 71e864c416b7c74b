"""Authentication (bearer tokens), roles, PII masking for viewers, and the audit helper the routes call."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool

from fraudnet.api.deps import ApiContext, get_ctx
from fraudnet.claims.scope import Scope
from fraudnet.claims.tokens import TokenStore, token_store
from fraudnet.graph.model import EntityProfile, Node

__all__ = [
    "Principal",
    "get_principal",
    "require_roles",
    "UserDep",
    "EditorDep",
    "AdminDep",
    "mask_node",
    "mask_profile",
    "masked_props",
    "record_audit",
    "person_ids",
    "CASE_ROLES",
]

log = logging.getLogger(__name__)

CASE_ROLES = ("admin", "investigator")
_TOKEN_CACHE_TTL_S = 30.0
# Properties that are personal data, with how a viewer sees them.
_NAME_PROPS = ("psn_name", "prac_psn_name")
_LABEL_FROM = {"Person": "psn_name", "Practitioner": "prac_psn_name", "Address": "live_addr"}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user: str
    role: str
    token_id: str
    scope: Scope | None = None  # regions and/or cases the token is limited to; None: the whole workspace

    @property
    def sees_pii(self) -> bool:
        return self.role in CASE_ROLES


class _TokenCache:
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


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail=message,
                         headers={"WWW-Authenticate": "Bearer"})


async def get_principal(request: Request, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Principal:
    """The caller of a `Authorization: Bearer <token>` request; 401 for a missing, unknown, expired or revoked
    token.

    Async so that a token seen within the last seconds is checked on the event loop without a thread hop;
    the token table is read on a worker thread."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise _unauthorized("missing Authorization: Bearer <token> header (缺少访问令牌)")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Authorization header must be 'Bearer <token>' (令牌格式错误)")
    token = token.strip()
    cache: _TokenCache = request.app.state.token_cache
    tokens = token_store(ctx.settings.workspace)
    rev = tokens.revision()
    if cache.sync(rev):
        await run_in_threadpool(_drain_token_audit, ctx, tokens)
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


def _verify(tokens: TokenStore, token: str) -> Any:
    info = tokens.verify(token)
    if info is not None:
        tokens.touch(info.token_id)
    return info


def _drain_token_audit(ctx: ApiContext, tokens: TokenStore) -> None:
    """Token changes made by `fraudnet tokens` while this server holds the claims store go to the audit log."""
    try:
        for at, action, detail in tokens.drain_audit():
            ctx.audit.append("cli", action, role="admin", detail={**detail, "queued_at": at})
    except Exception:  # the request goes on; the entries stay queued only if the drain itself failed
        log.exception("audit: could not take the queued token changes")


def require_roles(*roles: str) -> Any:
    """A dependency that lets only the given roles through (403 otherwise)."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"role {principal.role!r} may not do this; needs {' or '.join(roles)} "
                       f"(当前角色 {principal.role} 无此权限)")
        return principal

    return check


UserDep = Annotated[Principal, Depends(get_principal)]
EditorDep = Annotated[Principal, Depends(require_roles(*CASE_ROLES))]
AdminDep = Annotated[Principal, Depends(require_roles("admin"))]


# ------------------------------------------------------------------------------------------------ masking
def _mask_address(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    keep = min(6, max(1, len(value) // 3))
    return value[:keep] + "*" * 4


def _mask_birth(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return f"{value.year}-**-**"
    if isinstance(value, str) and len(value) >= 4:
        return value[:4] + "-**-**"
    return value


def masked_props(props: dict[str, Any]) -> dict[str, Any]:
    """Properties as a viewer sees them: names 张*三, certno 3101**********1234, phones 138****5678, address and
    birth date shortened."""
    from fraudnet import privacy

    out = dict(props)
    for key in _NAME_PROPS:
        if out.get(key):
            out[key] = privacy.mask_name(str(out[key]))
    for key in ("certno", "certno_masked"):
        if out.get(key) and "*" not in str(out[key]):
            out[key] = privacy.mask_certno(str(out[key]))
    for key in ("mob", "mob_masked", "tel"):
        if out.get(key) and "*" not in str(out[key]):
            out[key] = privacy.mask_phone(str(out[key]))
    if out.get("live_addr"):
        out["live_addr"] = _mask_address(out["live_addr"])
    if out.get("brdy"):
        out["brdy"] = _mask_birth(out["brdy"])
    return out


def _masked_label(node_type: str, key: str, label: str, raw: dict[str, Any], masked: dict[str, Any]) -> str:
    prop = _LABEL_FROM.get(node_type)
    if prop is None:
        return label
    if raw.get(prop) not in (None, "") and label == str(raw.get(prop)):
        return str(masked.get(prop))
    if label == key:
        return label
    # A label derived from personal data in another way: show the key instead.
    return key


def mask_node(node: Node, principal: Principal) -> Node:
    """The node as the principal may see it (unchanged for admins and investigators)."""
    if principal.sees_pii:
        return node
    props = masked_props(node.props or {})
    return replace(node, props=props, label=_masked_label(node.type, node.key, node.label, node.props or {}, props))


def mask_profile(profile: EntityProfile, principal: Principal) -> EntityProfile:
    """The entity profile as the principal may see it."""
    if principal.sees_pii:
        return profile
    props = masked_props(profile.props or {})
    return replace(profile, props=props,
                   label=_masked_label(profile.type, profile.key, profile.label, profile.props or {}, props))


# ------------------------------------------------------------------------------------------------ audit
def person_ids(node_ids: Iterable[str]) -> list[str]:
    """The Person node ids among `node_ids`."""
    return [n for n in node_ids if n.startswith("Person:")]


def record_audit(ctx: ApiContext, request: Request, principal: Principal, action: str,
                 entities: Iterable[str] = (), detail: dict[str, Any] | None = None,
                 status_code: int = 200) -> None:
    """Queue who/what/when/which entities for the audit log (written by the context's audit writer)."""
    query = str(request.url.query)
    path = request.url.path + (f"?{query}" if query else "")
    ctx.audit.append(principal.user, action, role=principal.role, entities=entities, method=request.method,
                     path=path[:2000], status_code=status_code, detail=detail)
