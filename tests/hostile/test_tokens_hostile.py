"""Tokens: expiry, and create/revoke while `fraudnet serve` holds the claims store (applies at once, audited)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from fraudnet.api.app import create_app
from fraudnet.claims.tokens import TokenStore
from fraudnet.config import Settings
from tests.fixtures.server import ApiWorkspace, start_server, stop_server


def _cli(ws: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    return subprocess.run([sys.executable, "-m", "fraudnet", "-w", str(ws), *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_tokens_expire(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    short = store.create("alice", "viewer", expires_days=2 / 86400)
    forever = store.create("bob", "viewer", expires_days=None)
    default = store.create("carol", "viewer")
    infos = {t.user: t for t in store.list()}
    assert infos["bob"].expires_at is None
    assert 89.9 < (infos["carol"].expires_at - infos["carol"].created_at).total_seconds() / 86400 <= 90
    assert store.verify(short) is not None
    time.sleep(2.2)
    assert store.verify(short) is None and store.verify(forever) is not None and store.verify(default) is not None
    assert {t.user: t for t in store.list()}["alice"].expired and not infos["bob"].expired


def test_cached_token_is_refused_once_expired_or_revoked(api_handbuilt: ApiWorkspace) -> None:
    """The server caches verified tokens; expiry and a revocation by another handle still apply at once."""
    with TestClient(create_app(Settings(workspace=api_handbuilt.path, graph_workers=0))) as c:
        short = TokenStore(api_handbuilt.path).create("dave", "viewer", expires_days=2 / 86400)
        h = {"Authorization": f"Bearer {short}"}
        assert c.get("/api/me", headers=h).status_code == 200
        assert c.get("/api/me", headers=api_handbuilt.headers("viewer")).status_code == 200
        TokenStore(api_handbuilt.path).revoke("viewer1")  # another connection, as another process would
        assert c.get("/api/me", headers=api_handbuilt.headers("viewer")).status_code == 401
        time.sleep(2.2)
        r = c.get("/api/me", headers=h)
        assert r.status_code == 401 and "expired" in r.json()["message"]


def test_cli_writes_tokens_while_the_server_runs(api_handbuilt: ApiWorkspace, tmp_path: Path) -> None:
    """`fraudnet tokens create/revoke/list` used to fail with DuckDB's "Could not set lock on file" while serving."""
    ws = api_handbuilt.path
    proc, url = start_server(ws, tmp_path / "serve.log", env={"FRAUDNET_GRAPH_WORKERS": "0"})
    try:
        viewer = api_handbuilt.headers("viewer")
        admin = api_handbuilt.headers("admin")
        assert httpx.get(url + "/api/me", headers=viewer).status_code == 200  # now cached by the server
        made = _cli(ws, "tokens", "create", "--user", "erin", "--role", "investigator", "--expires", "7")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[0]
        assert httpx.get(url + "/api/me", headers={"Authorization": f"Bearer {token}"}).json()["user"] == "erin"
        gone = _cli(ws, "tokens", "revoke", "viewer1")
        assert gone.returncode == 0, gone.stderr
        assert "lock" not in gone.stderr.lower()
        assert httpx.get(url + "/api/me", headers=viewer).status_code == 401  # at once, not after a restart
        listed = _cli(ws, "tokens", "list", "--all")
        assert listed.returncode == 0 and "erin" in listed.stdout
        body = httpx.get(url + "/api/audit", params={"action": "token", "verify": "true"}, headers=admin).json()
        assert {e["action"] for e in body["items"]} >= {"token.create", "token.revoke"}
        assert body["chain"]["ok"] is True, body["chain"]
    finally:
        stop_server(proc)


def test_tokens_cli_on_a_fresh_workspace(tmp_path: Path) -> None:
    from fraudnet.cli import main

    ws = tmp_path / "ws"
    r = CliRunner().invoke(main, ["-w", str(ws), "tokens", "create", "--user", "x", "--role", "viewer",
                                  "--expires", "0"])
    assert r.exit_code == 0, r.output
    assert TokenStore(ws).list()[0].expires_at is None


@pytest.mark.parametrize("days", ["-1", "abc"])
def test_bad_expiry_is_refused(tmp_path: Path, days: str) -> None:
    from fraudnet.cli import main

    r = CliRunner().invoke(main, ["-w", str(tmp_path), "tokens", "create", "-u", "x", "-r", "viewer",
                                  "--expires", days])
    assert r.exit_code != 0


def test_old_token_table_is_copied_once_and_rows_added_later_are_not_tokens(tmp_path: Path, monkeypatch) -> None:
    """Tokens of a workspace from before tokens.db keep working (with an expiry); a row someone writes into the
    claims store's old table afterwards is never taken as a token."""
    import hashlib
    from datetime import datetime

    import duckdb

    from fraudnet.claims import audit

    ddl = ('CREATE TABLE api_tokens (token_id VARCHAR PRIMARY KEY, "user" VARCHAR NOT NULL, role VARCHAR NOT NULL, '
           "token_hash VARCHAR NOT NULL UNIQUE, created_at TIMESTAMP NOT NULL, revoked_at TIMESTAMP, "
           "last_used_at TIMESTAMP)")

    def old_token(con: duckdb.DuckDBPyConnection, token_id: str, user: str, role: str) -> str:
        token = f"fn_{token_id}_{'s' * 40}{token_id}"
        con.execute("INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                    [token_id, user, role, hashlib.sha256(token.encode()).hexdigest(), datetime(2026, 1, 1)])
        return token

    ws = tmp_path / "ws"
    ws.mkdir()
    con = duckdb.connect(str(ws / "claims.duckdb"))
    con.execute(ddl)
    kept = old_token(con, "0000aaaa", "alice", "admin")
    audit.ensure_tables(con)  # what the server does when it opens the store
    info = audit.verify_token(con, kept)
    assert info is not None and info.user == "alice" and info.expires_at is not None
    injected = old_token(con, "0000bbbb", "mallory", "admin")
    monkeypatch.setattr(audit, "_IMPORTED", set())  # a later process
    audit.ensure_tables(con)
    assert audit.verify_token(con, injected) is None and audit.verify_token(con, kept) is not None
