"""`fraudnet tokens create|list|revoke`: API tokens (stored only as hashes in the claims store)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from fraudnet.claims.store import ClaimsStore

__all__ = ["COMMANDS", "tokens"]


def _open(ctx: click.Context) -> ClaimsStore:
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.errors import StoreError

    try:
        return ClaimsStore.open(ctx.obj["workspace"], read_only=False)
    except StoreError as exc:
        raise click.ClickException(
            f"{exc}\n(is `fraudnet serve` running on this workspace? DuckDB lets one process write at a time; "
            "stop it first / 若 fraudnet serve 正在运行，请先停止)") from exc


@click.group()
def tokens() -> None:
    """API tokens for `fraudnet serve` (roles: admin, investigator, viewer). 接口令牌管理。"""


@tokens.command("create")
@click.option("--user", "-u", required=True, help="User name the token belongs to.")
@click.option("--role", "-r", required=True, type=click.Choice(["admin", "investigator", "viewer"]),
              help="admin: everything incl. Cypher and audit; investigator: cases; viewer: read, masked PII.")
@click.pass_context
def create(ctx: click.Context, user: str, role: str) -> None:
    """Create a token and print it once (it is stored only as a hash). 创建令牌（只显示一次）。"""
    from fraudnet.claims.audit import append_audit, create_token
    from fraudnet.errors import FraudnetError

    with _open(ctx) as store:
        try:
            token = create_token(store.con, user, role)
        except FraudnetError as exc:
            raise click.ClickException(str(exc)) from exc
        append_audit(store.con, "cli", "token.create", role="admin", detail={"user": user, "role": role,
                                                                           "token_id": token[3:11]})
    click.echo(token)
    click.echo(f"token for {user} ({role}); keep it secret, it is not shown again / 请妥善保存，不会再次显示",
               err=True)


@tokens.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked tokens.")
@click.pass_context
def list_(ctx: click.Context, show_all: bool) -> None:
    """List tokens (ids, users, roles; never the secrets). 列出令牌。"""
    from rich.console import Console
    from rich.table import Table

    from fraudnet.claims.audit import list_tokens

    with _open(ctx) as store:
        rows = list_tokens(store.con, include_revoked=show_all)
    table = Table(title="API tokens / 接口令牌", title_justify="left")
    for col in ("token_id", "user", "role", "created", "last used", "revoked"):
        table.add_column(col)
    for t in rows:
        table.add_row(t.token_id, t.user, t.role, _when(t.created_at), _when(t.last_used_at), _when(t.revoked_at))
    Console(width=120).print(table)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@tokens.command("revoke")
@click.argument("token_id_or_user")
@click.pass_context
def revoke(ctx: click.Context, token_id_or_user: str) -> None:
    """Revoke a token by its id (or the token itself), or every token of a user. 吊销令牌。"""
    from fraudnet.claims.audit import append_audit, revoke_token
    from fraudnet.errors import FraudnetError

    with _open(ctx) as store:
        try:
            n = revoke_token(store.con, token_id_or_user)
        except FraudnetError as exc:
            raise click.ClickException(str(exc)) from exc
        key = token_id_or_user if len(token_id_or_user) <= 64 and not token_id_or_user.startswith("fn_") \
            else token_id_or_user[3:11]
        append_audit(store.con, "cli", "token.revoke", role="admin", detail={"target": key, "revoked": n})
    click.echo(f"revoked {n} token(s) / 已吊销 {n} 个令牌")


COMMANDS = [tokens]
