"""Loose defaults: workspace folder 0700 and its files 0600; a held claims-store lock gives a clear answer."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.errors import StoreError
from tests.fixtures.server import ApiWorkspace, start_server, stop_server


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_workspace_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual default that made claims.duckdb 644 in a 755 folder
    try:
        ws = tmp_path / "ws"
        with ClaimsStore.open(ws) as store:
            store.execute("CREATE TABLE t AS SELECT 1 AS x")
            _ = store.secret_key
        with ClaimsStore.open(ws):
            pass
    finally:
        os.umask(old)
    assert _mode(ws) == 0o700
    assert _mode(ws / "claims.duckdb") == 0o600
    assert _mode(ws / "secret.key") == 0o600
    if (ws / "claims.duckdb.wal").exists():
        assert _mode(ws / "claims.duckdb.wal") == 0o600


def test_existing_open_workspace_is_tightened(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    with ClaimsStore.open(ws):
        pass
    os.chmod(ws, 0o755)
    os.chmod(ws / "claims.duckdb", 0o644)
    with ClaimsStore.open(ws):
        pass
    assert _mode(ws) == 0o700 and _mode(ws / "claims.duckdb") == 0o600


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(path)!r})
        print("held", flush=True)
        time.sleep({seconds})
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_held_lock_names_the_holder_and_can_be_waited_for(tmp_path: Path, monkeypatch) -> None:
    ws = tmp_path / "ws"
    with ClaimsStore.open(ws):
        pass
    holder = _hold(ws / "claims.duckdb", 2.0)
    try:
        with pytest.raises(StoreError) as err:
            ClaimsStore.open(ws)
        text = str(err.value)
        assert f"process {holder.pid}" in text and "FRAUDNET_LOCK_WAIT" in text
        monkeypatch.setenv("FRAUDNET_LOCK_WAIT", "30")
        started = time.monotonic()
        with ClaimsStore.open(ws):  # waits until the holder lets go
            assert time.monotonic() - started > 0.5
    finally:
        holder.wait(timeout=30)


def test_cli_wait_option_waits_for_the_lock(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from fraudnet.cli import main

    monkeypatch.setenv("FRAUDNET_LOCK_WAIT", "0")  # restored after the test (--wait sets it for the process)
    ws = tmp_path / "ws"
    with ClaimsStore.open(ws):
        pass
    holder = _hold(ws / "claims.duckdb", 2.0)
    try:
        failed = CliRunner().invoke(main, ["-w", str(ws), "quarantine"])
        assert failed.exit_code != 0 and "--wait" in " ".join(failed.output.split())
        started = time.monotonic()
        waited = CliRunner().invoke(main, ["-w", str(ws), "--wait", "30", "quarantine"])
        assert waited.exit_code == 0, waited.output
        assert time.monotonic() - started > 0.5
    finally:
        holder.wait(timeout=30)


def test_writing_commands_while_serving_say_what_to_do(api_handbuilt: ApiWorkspace, tmp_path: Path) -> None:
    ws = api_handbuilt.path
    proc, _url = start_server(ws, tmp_path / "serve.log", env={"FRAUDNET_GRAPH_WORKERS": "0"})
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
        folder = tmp_path / "in"
        folder.mkdir()
        # an empty folder: nothing to send, and the message names the server holding the store
        r = subprocess.run([sys.executable, "-m", "fraudnet", "-w", str(ws), "ingest", str(folder)],
                           capture_output=True, text=True, env=env, timeout=120)
        out = " ".join((r.stdout + r.stderr).split())  # the ingest console wraps long lines
        assert r.returncode != 0
        assert "nothing was sent" in out and f"process {proc.pid}" in out and "serve" in out, out
        assert "Could not set lock" not in out
        # detection goes through the server as a job instead of failing on the lock
        r = subprocess.run([sys.executable, "-m", "fraudnet", "-w", str(ws), "detect"], capture_output=True,
                           text=True, env=env, timeout=300)
        out = " ".join((r.stdout + r.stderr).split())
        assert "Could not set lock" not in out, out
    finally:
        stop_server(proc)


@pytest.mark.neo4j
def test_neo4j_start_without_password_generates_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fraudnet neo4j start` without NEO4J_PASSWORD used to run Neo4j without authentication."""
    import dataclasses

    from click.testing import CliRunner

    from fraudnet.cli import main
    from fraudnet.config import load_settings
    from fraudnet.errors import Neo4jUnavailableError
    from fraudnet.graph import neo4j_server as srv
    from fraudnet.graph.neo4j_load import open_driver

    for name in ("NEO4J_PASSWORD", "NEO4J_URI", "NEO4J_USER"):
        monkeypatch.delenv(name, raising=False)
    ws = tmp_path / "ws"
    result = CliRunner().invoke(main, ["-w", str(ws), "neo4j", "start", "--port", "0", "--heap", "512m",
                                       "--pagecache", "64m"])
    try:
        assert result.exit_code == 0, result.output
        secret = ws / "neo4j" / "password"
        assert _mode(secret) == 0o600 and len(secret.read_text().strip()) >= 32
        assert srv.status(ws)["auth"] is True
        assert secret.read_text().strip() not in (ws / "neo4j" / "server.json").read_text()
        settings = load_settings(ws)  # commands find the server through server.json and read the password
        assert settings.neo4j_password == secret.read_text().strip()
        open_driver(settings).close()
        with pytest.raises(Neo4jUnavailableError):
            open_driver(dataclasses.replace(settings, neo4j_password="wrong-password"))
    finally:
        srv.stop(ws)
