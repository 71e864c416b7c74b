"""CLI writes while `fraudnet serve` holds the workspace: sent to the server as jobs instead of failing on the lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.claims.tokens import TokenStore
from fraudnet.cli.remote import _from_command_line
from fraudnet.generate.days import next_day
from tests.fixtures.server import copy_workspace, start_server, stop_server


def _cli(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fraudnet", "-w", str(ws), *args], capture_output=True, text=True,
                          timeout=600)


def test_server_url_from_its_command_line() -> None:
    assert _from_command_line("/x/python -m fraudnet -w ws serve --port 8123") == "http://127.0.0.1:8123"
    assert _from_command_line("fraudnet serve --host=0.0.0.0 --port=9000") == "http://127.0.0.1:9000"
    assert _from_command_line("fraudnet -w ws serve") == "http://127.0.0.1:8000"
    assert _from_command_line("fraudnet -w ws ingest data") is None


@pytest.mark.timeout(900)
def test_ingest_detect_and_tokens_while_the_server_runs(small_claims_workspace: Path, small_city_dir: Path,
                                                        tmp_path: Path) -> None:
    ws = copy_workspace(small_claims_workspace, tmp_path / "ws")
    _, rows = next_day(small_city_dir, tmp_path / "next")
    with ClaimsStore.open(ws) as store:
        before = store.table_counts()
    proc, _url = start_server(ws, tmp_path / "serve.log")
    try:
        ingest = _cli(ws, "ingest", str(tmp_path / "next"))
        assert ingest.returncode == 0, ingest.stdout + ingest.stderr
        assert "sent to the running server" in ingest.stdout and "ingested by the server" in ingest.stdout
        detect = _cli(ws, "detect", "--only", "rule")
        assert detect.returncode == 0, detect.stdout + detect.stderr
        assert "detected by the server" in detect.stdout
        created = _cli(ws, "tokens", "create", "--user", "bob", "--role", "viewer")
        assert created.returncode == 0, created.stderr
        revoked = _cli(ws, "tokens", "revoke", "bob")
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr
        # a write the server cannot take on names it and says what to do
        refused = _cli(ws, "ingest", "--keep-extra-columns", str(tmp_path / "next"))
        assert refused.returncode == 1 and "not available through the running server" in refused.stdout
    finally:
        stop_server(proc)
    with ClaimsStore.open(ws, read_only=True) as store:
        after = store.table_counts()
        kinds = {r[0] for r in store.con.execute("SELECT DISTINCT kind FROM leads WHERE active").fetchall()}
    assert after["mdtrt"] - before["mdtrt"] == rows["mdtrt"] and after["fee_list"] - before["fee_list"] == rows[
        "fee_list"]
    assert kinds and all(k.startswith("rule:") for k in kinds)
    tokens = TokenStore(ws)
    try:
        active = list(tokens.list(include_revoked=False))
    finally:
        tokens.close()
    assert not [t for t in active if t.user.startswith("cli-") or t.user == "bob"]  # the CLI's own token revoked
