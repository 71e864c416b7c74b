"""The Neo4j launcher: build, start on an OS-chosen port, status, clean stop, data kept in the workspace, CLI."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from fraudnet.cli import main as cli
from fraudnet.config import Settings
from fraudnet.errors import ConfigError
from fraudnet.graph import neo4j_server as srv
from fraudnet.graph.neo4j_load import PARTS, graph_counts, open_driver, sync_leads

pytestmark = pytest.mark.neo4j


def test_session_server_is_running_with_auth(neo4j_server_info: srv.ServerInfo,
                                             neo4j_server: tuple[str, str, str]) -> None:
    workspace = neo4j_server_info.home.parent
    state = srv.status(workspace)
    assert state["running"] and state["bolt"] and state["auth"]
    assert state["uri"] == neo4j_server[0] == f"bolt://127.0.0.1:{neo4j_server_info.port}"
    assert neo4j_server_info.port != 7687
    server_json = (neo4j_server_info.home / "server.json").read_text()
    assert neo4j_server[2] not in server_json  # the password is never written down
    assert srv.running_uri(workspace) == neo4j_server[0]
    # Bolt answers with the password, and the default password is refused.
    uri, user, password = neo4j_server
    open_driver(Settings(workspace=workspace, neo4j_uri=uri, neo4j_user=user, neo4j_password=password)).close()
    from fraudnet.errors import Neo4jUnavailableError

    with pytest.raises(Neo4jUnavailableError, match="refused the credentials"):
        open_driver(Settings(workspace=workspace, neo4j_uri=uri, neo4j_user="neo4j", neo4j_password="neo4j"))


@pytest.mark.slow
def test_start_stop_restart_keeps_data(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    info = srv.start(ws, port=0, heap="512m", pagecache="64m", timeout=180)
    try:
        assert info.home == (ws / "neo4j").resolve() and (info.home / "data").is_dir()
        assert srv.start(ws, port=0).pid == info.pid  # already running: same server
        settings = Settings(workspace=ws)  # no NEO4J_URI: the launcher's server.json is used
        lead = {"lead_id": "LTEST", "kind": "rule:test", "severity": "yellow", "score": 0.1, "persons": [],
                "practitioners": [], "institutions": [], "evidence": [], "amount_at_risk": 0.0,
                "period_start": None, "period_end": None, "explanation_zh": "测试", "explanation_en": "test",
                "status": "new"}
        assert sync_leads([lead], settings) == 1
        assert srv.stop(ws)
        assert not psutil.pid_exists(info.pid) or psutil.Process(info.pid).status() == psutil.STATUS_ZOMBIE
        assert "FRAUDNET_NEO4J_STOPPED" in info.log_path.read_text()  # the shutdown hook ran: clean stop
        assert srv.status(ws)["running"] is False and not (info.home / "server.json").exists()
        assert srv.stop(ws) is False
        again = srv.start(ws, port=0, heap="512m", pagecache="64m", timeout=180)
        assert again.pid != info.pid
        assert graph_counts(settings)["Lead"] == 1  # the data lives in <workspace>/neo4j
    finally:
        srv.stop(ws)


def test_stale_server_file(tmp_path: Path) -> None:
    home = tmp_path / "neo4j"
    home.mkdir()
    (home / "server.json").write_text(json.dumps({
        "uri": "bolt://127.0.0.1:1", "pid": os.getpid(), "port": 1, "home": str(home),
        "log_path": str(home / "neo4j.log")}))
    state = srv.status(tmp_path)
    assert state["running"] is False and state["stale"] is True
    assert srv.running_uri(tmp_path) is None
    assert srv.stop(tmp_path) is False  # never signals a process that is not our launcher
    assert psutil.pid_exists(os.getpid())
    assert not (home / "server.json").exists()


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="heap"):
        srv.start(tmp_path, heap="lots")
    with pytest.raises(ConfigError, match="8 characters"):
        srv.start(tmp_path, password="short")


def test_ensure_built_needs_java_and_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pom.xml").write_text("<project/>")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(ConfigError, match="Java 17"):
        srv.ensure_built(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        srv.ensure_built(tmp_path / "missing")


def test_ensure_built_finds_the_built_launcher() -> None:
    launcher = srv.ensure_built()
    assert (launcher / "target" / "classes" / "org" / "fraudnet" / "neo4j" / "Launcher.class").exists()
    assert any((launcher / "lib").glob("neo4j-5.26.*.jar"))
    assert any((launcher / "lib").glob("neo4j-bolt-5.26.*.jar"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_status_and_unreachable_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEO4J_PASSWORD", raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["-w", str(tmp_path), "neo4j", "status"])
    assert result.exit_code == 1 and "not running" in result.output
    uri = f"bolt://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("NEO4J_URI", uri)
    result = runner.invoke(cli, ["-w", str(tmp_path), "neo4j", "load"])
    assert result.exit_code == 1
    assert uri in result.output and "claims store is intact" in result.output


def test_cli_load_into_session_server(tmp_path: Path, neo4j_clean: tuple[str, str, str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_neo4j_load import EXPECTED, build_handmade_store

    build_handmade_store(tmp_path / "ws").close()
    uri, user, password = neo4j_clean
    monkeypatch.setenv("NEO4J_URI", uri)
    monkeypatch.setenv("NEO4J_USER", user)
    monkeypatch.setenv("NEO4J_PASSWORD", password)
    runner = CliRunner()
    result = runner.invoke(cli, ["-w", str(tmp_path / "ws"), "neo4j", "load", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["relationships_created"] == sum(EXPECTED[p.name] for p in PARTS if p.kind == "rel")
    assert report["nodes_created"] == sum(EXPECTED[p.name] for p in PARTS if p.kind == "node")
    result = runner.invoke(cli, ["-w", str(tmp_path / "ws"), "neo4j", "load"])
    assert result.exit_code == 0, result.output
    assert "nothing changed" in result.output
