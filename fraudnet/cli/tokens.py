"""`fraudnet tokens create|list|revoke`: API tokens (stored only as hashes in `<workspace>/tokens.db`).

These commands work while `fraudnet serve` runs: tokens are not in the claims store, and a running server sees a
change at its next request. The audit entry of a change goes to the claims store, or, while the server holds
it, is queued for the server to write.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

__all__ = ["COMMANDS", "tokens"]


def _tokens(ctx: click.Context) -> Any:
    from fraudnet.claims.audit import _tokens_of
    from fraudnet.claims.store import DB_FILE_NAME, ClaimsStore
    from fraudnet.errors import FraudnetError

    workspace = Path(ctx.obj["workspace"])
    try:
        if (workspace / DB_FILE_NAME).exists() and not (workspace / "tokens.db").exists():
            # Tokens of an older version are in the claims store: copy them once (read-only is enough).
            try:
                with ClaimsStore.open(workspace, read_only=True) as store:
                    return _tokens_of(store.con)
            except FraudnetError:
                pass
        return _tokens_of(workspace)
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc


def _audit(ctx: click.Context, tokens: Any, action: str, detail: dict[str, Any]) -> None:
    """Write the audit entry to the claims store; while another process (the server) holds it, queue it."""
    from fraudnet.claims.audit import append_audit, ensure_tables
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.errors import StoreError

    try:
        store = ClaimsStore.open(ctx.obj["workspace"], read_only=False)
    except StoreError:
        tokens.queue_audit(action, detail)
        click.echo("the claims store is in use (fraudnet serve?): the change applies at once, the server writes "
                   "its audit entry / 服务运行中：更改立即生效，审计记录由服务写入", err=True)
        return
    with store:
        ensure_tables(store.con)  # also writes entries queued earlier
        append_audit(store.con, "cli", action, role="admin", detail=detail)


@click.group()
def tokens() -> None:
    """API tokens for `fraudnet serve` (roles: admin, investigator, viewer). 接口令牌管理。"""


@tokens.command("create")
@click.option("--user", "-u", required=True, help="User name the token belongs to.")
@click.option("--role", "-r", required=True, type=click.Choice(["admin", "investigator", "viewer"]),
              help="admin: everything incl. Cypher and audit; investigator: cases; viewer: read, masked PII.")
@click.option("--expires", "expires_days", type=click.FloatRange(min=0), default=90.0, show_default=True,
              help="Days until the token expires (0: never). 有效天数（0 表示不过期）。")
@click.option("--regions", default="", metavar="ADMDVS,...",
              help="Limit the token to these admdvs prefixes (2/4/6 digits: province/city/district), e.g. "
                   "310101,3101. 限定医保区划。")
@click.option("--cases", default="", metavar="LEAD_ID,...",
              help="Limit the token to these leads and the entities they name (e.g. the leads referred to a police "
                   "liaison). 限定案件（线索编号）。")
@click.pass_context
def create(ctx: click.Context, user: str, role: str, expires_days: float, regions: str, cases: str) -> None:
    """Create a token and print it once (it is stored only as a hash). Without --regions/--cases it sees the
    whole workspace. 创建令牌（只显示一次）。"""
    from fraudnet.claims.scope import Scope, split_list
    from fraudnet.errors import FraudnetError

    store = _tokens(ctx)
    try:
        token = store.create(user, role, expires_days or None, regions=split_list(regions),
                             cases=split_list(cases))
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    info = store.verify(token)
    scope = {"regions": list(info.regions), "cases": list(info.cases)} if info else {}
    _audit(ctx, store, "token.create", {"user": user, "role": role, "token_id": token[3:11],
                                        "expires_days": expires_days or None, **scope})
    click.echo(token)
    until = (f"expires in {expires_days:g} days / {expires_days:g} 天后过期" if expires_days
             else "never expires / 不过期")
    scope_of = Scope.of(info.regions, info.cases) if info else None
    limited = f", limited to {scope_of.describe()}" if scope_of else ""
    click.echo(f"token for {user} ({role}){limited}, {until}; keep it secret, it is not shown again / "
               "请妥善保存，不会再次显示", err=True)


@tokens.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked tokens.")
@click.pass_context
def list_(ctx: click.Context, show_all: bool) -> None:
    """List tokens (ids, users, roles, expiry; never the secrets). 列出令牌。"""
    from rich.console import Console
    from rich.table import Table

    from fraudnet.claims.scope import Scope

    rows = _tokens(ctx).list(include_revoked=show_all)
    table = Table(title="API tokens / 接口令牌", title_justify="left")
    for col in ("token_id", "user", "role", "scope", "created", "expires", "last used", "revoked"):
        table.add_column(col)
    for t in rows:
        expires = _when(t.expires_at) + (" (expired)" if t.expired else "") if t.expires_at else "never"
        limited = Scope.of(t.regions, t.cases)
        scope = limited.describe() if limited else "all / 全部"
        table.add_row(t.token_id, t.user, t.role, scope, _when(t.created_at), expires, _when(t.last_used_at),
                      _when(t.revoked_at))
    Console(width=140).print(table)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@tokens.command("revoke")
@click.argument("token_id_or_user")
@click.pass_context
def revoke(ctx: click.Context, token_id_or_user: str) -> None:
    """Revoke a token by its id (or the token itself), or every token of a user; a running server refuses it
    from its next request on. 吊销令牌（运行中的服务立即生效）。"""
    from fraudnet.errors import FraudnetError

    store = _tokens(ctx)
    try:
        ids = store.revoke(token_id_or_user)
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    key = token_id_or_user if len(token_id_or_user) <= 64 and not token_id_or_user.startswith("fn_") \
        else token_id_or_user[3:11]
    _audit(ctx, store, "token.revoke", {"target": key, "revoked": len(ids), "token_ids": ids})
    click.echo(f"revoked {len(ids)} token(s) / 已吊销 {len(ids)} 个令牌")


COMMANDS = [tokens]
